// wagate dashboard: plain JavaScript, no build step. Talks to /api/v1 with the session
// cookie and follows phone state over the /api/v1/ws event stream.
"use strict";

const API = "/api/v1";
const $ = (id) => document.getElementById(id);

const state = {
  phones: [],
  passwordSet: true,
  webhook: null,
  socket: null,
  pairing: new Set(), // phones whose pairing panel is open
};

// ---------------------------------------------------------------- HTTP

class ApiError extends Error {
  constructor(status, code, message) {
    super(message);
    this.status = status;
    this.code = code;
  }
}

async function api(method, path, body) {
  const init = { method, credentials: "same-origin", headers: {} };
  if (body !== undefined) {
    init.headers["Content-Type"] = "application/json";
    init.body = JSON.stringify(body);
  }
  const resp = await fetch(API + path, init);
  const text = await resp.text();
  const data = text ? JSON.parse(text) : null;
  if (!resp.ok) {
    const err = (data && data.error) || {};
    if (resp.status === 401 && path !== "/auth/login") showLogin("Your session has ended; log in again.");
    throw new ApiError(resp.status, err.code || "error", err.message || resp.statusText);
  }
  return data;
}

function say(message) {
  $("status").textContent = message;
}

function fail(id, err) {
  $(id).textContent = err ? err.message : "";
}

function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs)) {
    if (key === "class") node.className = value;
    else if (key.startsWith("on")) node.addEventListener(key.slice(2), value);
    else if (value !== undefined && value !== null) node.setAttribute(key, value);
  }
  for (const child of children) {
    if (child === null || child === undefined) continue;
    node.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return node;
}

function when(iso) {
  return iso ? new Date(iso).toLocaleString() : "";
}

// ---------------------------------------------------------------- views

function show(view) {
  for (const id of ["login-view", "setup-view", "app-view"]) $(id).hidden = id !== view;
  const inApp = view === "app-view";
  $("nav").hidden = !inApp;
  $("logout").hidden = !inApp;
}

function showLogin(message) {
  closeSocket();
  show("login-view");
  if (message) say(message);
  $("login-password").focus();
}

async function start() {
  const verify = await api("GET", "/auth/verify");
  state.passwordSet = verify.data.passwordSet;
  if (!state.passwordSet) {
    show("setup-view");
    $("setup-password").focus();
  } else if (!verify.data.valid) {
    showLogin();
  } else {
    await enterApp();
  }
}

async function enterApp() {
  show("app-view");
  say("");
  openSocket();
  await Promise.all([loadQuota(), loadPhones(), loadWebhook(), loadTokens(), loadRoutes()]);
}

// ---------------------------------------------------------------- auth

$("login-form").addEventListener("submit", async (event) => {
  event.preventDefault();
  fail("login-error");
  try {
    await api("POST", "/auth/login", { password: $("login-password").value });
    $("login-password").value = "";
    await enterApp();
  } catch (err) {
    fail("login-error", err);
  }
});

$("setup-form").addEventListener("submit", async (event) => {
  event.preventDefault();
  fail("setup-error");
  const password = $("setup-password").value;
  const setupCode = $("setup-code").value.trim();
  try {
    await api("POST", "/auth/change-password", {
      newPassword: password,
      ...(setupCode ? { setupCode } : {}),
    });
    await api("POST", "/auth/login", { password });
    state.passwordSet = true;
    $("setup-password").value = "";
    await enterApp();
    say("Password set. Welcome!");
  } catch (err) {
    fail("setup-error", err);
  }
});

$("logout").addEventListener("click", async () => {
  try {
    await api("POST", "/auth/logout");
  } finally {
    showLogin("Logged out.");
  }
});

// ---------------------------------------------------------------- phones

async function loadQuota() {
  const quota = await api("GET", "/user/quota");
  $("quota-phones").textContent = `${quota.phones.used} / ${quota.phones.limit}`;
  $("quota-media").textContent = quota.allowedMedia.length ? quota.allowedMedia.join(", ") : "—";
}

async function loadPhones() {
  const list = await api("GET", "/user/phones");
  state.phones = list.data;
  renderPhones();
}

function renderPhones() {
  const list = $("phone-list");
  list.replaceChildren(...state.phones.map(phoneItem));
  $("phones-empty").hidden = state.phones.length > 0;
  const select = $("groups-phone");
  const chosen = select.value;
  select.replaceChildren(
    ...state.phones.map((p) => el("option", { value: p.phone }, `${p.phone} (${p.status.replace("_", " ")})`)),
  );
  if (chosen) select.value = chosen;
}

function phoneItem(phone) {
  const id = phone.phone.replace("+", "");
  const codeMode = el("input", { type: "checkbox", id: `code-${id}` });
  const item = el(
    "li",
    { class: "phone", "data-phone": phone.phone },
    el(
      "div",
      { class: "phone-head" },
      el("strong", {}, phone.phone),
      el("span", { class: `badge ${phone.status}`, "data-status": phone.status }, phone.status.replace("_", " ")),
      phone.pushName ? el("span", { class: "muted" }, phone.pushName) : null,
    ),
    phone.lastError ? el("p", { class: "muted error-text" }, phone.lastError) : null,
    el(
      "div",
      { class: "actions" },
      el("button", { type: "button", onclick: () => connect(phone.phone, codeMode.checked) }, "Connect"),
      el("label", { class: "check", for: `code-${id}` }, codeMode, " pairing code instead of QR"),
      el("button", { type: "button", class: "secondary", onclick: () => act(phone.phone, "disconnect") }, "Disconnect"),
      el("button", { type: "button", class: "secondary", onclick: () => act(phone.phone, "logout") }, "Log out"),
      el("button", { type: "button", class: "danger", onclick: () => removePhone(phone.phone) }, "Delete"),
    ),
  );
  if (state.pairing.has(phone.phone)) item.append(pairingPanel(phone));
  return item;
}

function pairingPanel(phone) {
  if (phone.status === "connected") {
    state.pairing.delete(phone.phone);
    return el("p", { class: "ok" }, "Connected.");
  }
  if (phone.qr) {
    return el(
      "div",
      { class: "pairing" },
      el("p", {}, "Scan with WhatsApp: Settings → Linked devices → Link a device."),
      el("img", { src: phone.qr.pngDataUrl, alt: `QR code to link ${phone.phone}`, width: 256, height: 256, class: "qr" }),
      el("p", { class: "muted" }, `Code ${phone.qr.count}; refreshes by itself until ${when(phone.qr.expiresAt)}.`),
    );
  }
  if (phone.pairingCode) {
    return el(
      "div",
      { class: "pairing" },
      el("p", {}, "On the phone: Linked devices → Link a device → Link with phone number instead, then type:"),
      el("p", { class: "code", "aria-label": "pairing code" }, phone.pairingCode.code),
    );
  }
  return el("p", { class: "muted" }, "Waiting for WhatsApp…");
}

async function connect(number, pairingCodeMode) {
  say(`Connecting ${number}…`);
  state.pairing.add(number);
  try {
    const view = await api("POST", `/user/phones/${encodeURIComponent(number)}/connect`, { pairingCodeMode });
    updatePhone(view);
    say(view.status === "connected" ? `${number} is connected.` : `${number}: ${view.status}`);
  } catch (err) {
    say(err.message);
  }
}

async function act(number, action) {
  try {
    const view = await api("POST", `/user/phones/${encodeURIComponent(number)}/${action}`);
    state.pairing.delete(number);
    updatePhone(view);
    say(`${number}: ${view.status.replace("_", " ")}`);
  } catch (err) {
    say(err.message);
  }
}

async function removePhone(number) {
  if (!window.confirm(`Delete ${number}? It is logged out and its keys and history are deleted.`)) return;
  try {
    await api("DELETE", `/user/phones/${encodeURIComponent(number)}`);
    state.phones = state.phones.filter((p) => p.phone !== number);
    renderPhones();
    await loadQuota();
    say(`${number} deleted.`);
  } catch (err) {
    say(err.message);
  }
}

function updatePhone(view) {
  const index = state.phones.findIndex((p) => p.phone === view.phone);
  if (index >= 0) state.phones[index] = view;
  else state.phones.push(view);
  renderPhones();
}

$("add-phone-form").addEventListener("submit", async (event) => {
  event.preventDefault();
  fail("add-phone-error");
  const phone = $("add-phone").value.trim();
  const country = $("add-country").value.trim();
  try {
    const view = await api("POST", "/user/phones", { phone, ...(country ? { country } : {}) });
    $("add-phone").value = "";
    $("add-country").value = "";
    updatePhone(view);
    await loadQuota();
    say(`${view.phone} added. Connect it to link it to WhatsApp.`);
  } catch (err) {
    fail("add-phone-error", err);
  }
});

// ---------------------------------------------------------------- live events

function openSocket() {
  closeSocket();
  const scheme = location.protocol === "https:" ? "wss" : "ws";
  const socket = new WebSocket(`${scheme}://${location.host}${API}/ws`);
  state.socket = socket;
  socket.addEventListener("message", async (message) => {
    const event = JSON.parse(message.data);
    if (event.event === "phone.status" && event.phone) {
      if (event.data.status === "deleted") {
        state.phones = state.phones.filter((p) => p.phone !== event.phone);
        renderPhones();
        return;
      }
      try {
        // The event carries the raw QR; the phone view carries its image.
        updatePhone(await api("GET", `/user/phones/${encodeURIComponent(event.phone)}`));
      } catch (err) {
        /* the phone may be gone */
      }
    } else if (event.event === "message.received" && state.webhook) {
      loadDeliveries();
    }
  });
  socket.addEventListener("close", () => {
    if (state.socket === socket && !$("app-view").hidden) setTimeout(openSocket, 2000);
  });
}

function closeSocket() {
  const socket = state.socket;
  state.socket = null;
  if (socket) socket.close();
}

// ---------------------------------------------------------------- webhook

async function loadWebhook() {
  const hooks = await api("GET", "/user/webhooks");
  state.webhook = hooks.data.find((h) => h.services.includes("message.received")) || null;
  $("webhook-current").textContent = state.webhook ? state.webhook.url : "none";
  $("webhook-save").textContent = state.webhook ? "Replace webhook" : "Set webhook";
  $("webhook-tools").hidden = !state.webhook;
  if (state.webhook) await loadDeliveries();
}

async function loadDeliveries() {
  if (!state.webhook) return;
  const page = await api("GET", `/user/webhooks/${state.webhook.id}/deliveries?limit=10`);
  $("deliveries").replaceChildren(
    ...page.data.map((d) =>
      el(
        "tr",
        {},
        el("td", {}, d.event),
        el("td", {}, el("span", { class: `badge ${d.status}` }, d.status)),
        el("td", {}, d.attempts),
        el("td", {}, d.lastStatusCode || d.lastError || ""),
        el("td", {}, when(d.deliveredAt || d.updatedAt)),
      ),
    ),
  );
}

$("webhook-form").addEventListener("submit", async (event) => {
  event.preventDefault();
  fail("webhook-error");
  $("webhook-secret").hidden = true;
  const url = $("webhook-url").value.trim();
  const body = { url, services: ["message.received"] };
  try {
    if (state.webhook) {
      await api("PUT", `/user/webhooks/${state.webhook.id}`, { url, services: state.webhook.services });
      say("Webhook replaced.");
    } else {
      const created = await api("POST", "/user/webhooks", body);
      $("webhook-secret-value").textContent = created.secret;
      $("webhook-secret").hidden = false;
      say("Webhook set. Copy its signing secret now.");
    }
    $("webhook-url").value = "";
    await loadWebhook();
  } catch (err) {
    fail("webhook-error", err);
  }
});

$("webhook-test").addEventListener("click", async () => {
  $("webhook-test-result").textContent = "Sending…";
  try {
    const result = await api("POST", `/user/webhooks/${state.webhook.id}/test`);
    $("webhook-test-result").textContent = result.delivered
      ? `Delivered (HTTP ${result.statusCode}, ${result.durationMs} ms).`
      : `Not delivered: ${result.error || `HTTP ${result.statusCode}`}.`;
    await loadDeliveries();
  } catch (err) {
    $("webhook-test-result").textContent = err.message;
  }
});

// ---------------------------------------------------------------- groups

$("groups-form").addEventListener("submit", async (event) => {
  event.preventDefault();
  fail("groups-error");
  $("group-detail").hidden = true;
  const number = $("groups-phone").value;
  if (!number) return;
  try {
    const groups = await api("GET", `/user/phones/${encodeURIComponent(number)}/groups`);
    $("groups-meta").textContent = `${groups.data.length} group(s), ${groups.cached ? "from the cache" : "fetched"} at ${when(groups.cachedAt)}.`;
    $("group-list").replaceChildren(
      ...groups.data.map((g) =>
        el(
          "li",
          {},
          el(
            "button",
            { type: "button", class: "link", onclick: () => showGroup(number, g.jid) },
            `${g.subject} — ${g.size} member(s)`,
          ),
        ),
      ),
    );
  } catch (err) {
    fail("groups-error", err);
  }
});

async function showGroup(number, jid) {
  try {
    const group = (await api("GET", `/user/phones/${encodeURIComponent(number)}/groups/${encodeURIComponent(jid)}`)).data;
    const detail = $("group-detail");
    detail.replaceChildren(
      el("h3", {}, group.subject),
      group.description ? el("p", {}, group.description) : null,
      el("p", { class: "muted" }, `${group.jid} · created ${when(group.createdAt)}`),
      el(
        "ul",
        {},
        ...group.participants.map((p) => el("li", {}, p.jid, p.superAdmin ? " (owner)" : p.admin ? " (admin)" : "")),
      ),
    );
    detail.hidden = false;
    detail.querySelector("h3").setAttribute("tabindex", "-1");
    detail.querySelector("h3").focus();
  } catch (err) {
    fail("groups-error", err);
  }
}

// ---------------------------------------------------------------- security

async function loadTokens() {
  const tokens = await api("GET", "/auth/tokens");
  $("token-list").replaceChildren(
    ...tokens.data.map((t) =>
      el(
        "li",
        {},
        el(
          "span",
          {},
          `${t.name} · ${t.scopes.join(", ")} · ${t.phones ? t.phones.join(", ") : "all phones"} · created ${when(t.createdAt)}`,
        ),
        el("button", { type: "button", class: "secondary", onclick: () => revokeToken(t.id) }, "Revoke"),
      ),
    ),
  );
}

async function revokeToken(id) {
  if (!window.confirm("Revoke this token? Anything using it stops working at once.")) return;
  try {
    await api("DELETE", `/auth/tokens/${id}`);
    await loadTokens();
    say("Token revoked.");
  } catch (err) {
    say(err.message);
  }
}

$("token-form").addEventListener("submit", async (event) => {
  event.preventDefault();
  fail("token-error");
  const name = $("token-name").value.trim();
  const scopes = [...document.querySelectorAll("#token-scopes input:checked")].map((box) => box.value);
  const phones = $("token-phones")
    .value.split(",")
    .map((p) => p.trim())
    .filter((p) => p);
  if (scopes.length === 0) {
    fail("token-error", new Error("Choose at least one thing the token may do."));
    return;
  }
  try {
    const created = await api("POST", "/auth/generate-token", {
      password: $("token-password").value,
      scopes,
      ...(name ? { name } : {}),
      ...(phones.length ? { phones } : {}),
    });
    $("token-password").value = "";
    $("token-name").value = "";
    $("token-phones").value = "";
    $("token-value").value = created.token;
    $("token-created").hidden = false;
    $("token-value").focus();
    $("token-value").select();
    await loadTokens();
  } catch (err) {
    fail("token-error", err);
  }
});

$("token-copy").addEventListener("click", async () => {
  const value = $("token-value").value;
  try {
    await navigator.clipboard.writeText(value);
    say("Token copied.");
  } catch (err) {
    $("token-value").select();
    document.execCommand("copy");
    say("Token selected; press Ctrl+C if it was not copied.");
  }
});

$("password-form").addEventListener("submit", async (event) => {
  event.preventDefault();
  fail("password-error");
  const oldPassword = $("password-old").value;
  try {
    await api("POST", "/auth/change-password", {
      newPassword: $("password-new").value,
      ...(oldPassword ? { oldPassword } : {}),
    });
    $("password-old").value = "";
    $("password-new").value = "";
    showLogin("Password changed. Every session has ended: log in with the new password.");
  } catch (err) {
    fail("password-error", err);
  }
});

// ---------------------------------------------------------------- API docs

async function loadRoutes() {
  const spec = await (await fetch(`${API}/openapi.json`)).json();
  const byTag = new Map();
  for (const [path, item] of Object.entries(spec.paths)) {
    for (const [method, op] of Object.entries(item)) {
      const tag = (op.tags && op.tags[0]) || "Other";
      if (!byTag.has(tag)) byTag.set(tag, []);
      byTag.get(tag).push({ method: method.toUpperCase(), path, summary: op.summary || "", description: op.description || "" });
    }
  }
  const sections = [];
  for (const tag of (spec.tags || []).map((t) => t.name)) {
    const routes = byTag.get(tag);
    if (!routes) continue;
    sections.push(
      el("h3", {}, tag),
      el(
        "ul",
        { class: "routes" },
        ...routes.map((r) =>
          el(
            "li",
            {},
            el("code", { class: `method ${r.method.toLowerCase()}` }, r.method),
            " ",
            el("code", {}, r.path),
            el("div", { class: "muted" }, r.summary),
          ),
        ),
      ),
    );
  }
  $("routes").replaceChildren(...sections);
}

start().catch((err) => say(`Cannot reach the server: ${err.message}`));
