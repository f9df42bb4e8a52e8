//! The HTTP API: one `#[OpenApi]` struct per tag, composed into one service whose spec is
//! served live at `/api/v1/openapi.json` and committed as `openapi/openapi.json`.

pub mod auth;
pub mod client;
pub mod contacts;
pub mod error;
pub mod events;
pub mod groups;
pub mod health;
pub mod messages;
pub mod metrics;
pub mod middleware;
pub mod pagination;
pub mod payload;
pub mod phones;
pub mod routes;
pub mod sandbox;
pub mod scheme;
mod state;
pub mod webhooks;

use poem_openapi::{OpenApiService, Tags};

use auth::AuthApi;
use contacts::ContactsApi;
use events::{EventsApi, WagateWebhooks};
use groups::GroupsApi;
use health::HealthApi;
use messages::{ActionsApi, MediaApi, MessagesApi};
use phones::PhonesApi;
use sandbox::SandboxApi;
use webhooks::WebhooksApi;

pub use state::AppState;

/// Where the API lives.
pub const PREFIX: &str = "/api/v1";

#[derive(Tags)]
pub enum ApiTags {
    /// Log in and out, permanent API tokens and the owner's password.
    Auth,
    /// Liveness and resource usage.
    Health,
    /// Phones: add them, link them to WhatsApp by QR code or pairing code, disconnect, log out.
    Phones,
    /// Send messages, show typing, check numbers and read the history of a phone.
    Messages,
    /// A phone's WhatsApp groups (cached).
    Groups,
    /// Contacts learnt by the phones, merged across phones.
    Contacts,
    /// Webhooks: where events are delivered, with signatures, retries and a delivery log.
    Webhooks,
    /// The live event stream (WebSocket).
    Events,
    /// The simulated WhatsApp network (only with `engine = "sandbox"`).
    Sandbox,
}

pub type Apis = (
    AuthApi,
    HealthApi,
    PhonesApi,
    MessagesApi,
    MediaApi,
    ActionsApi,
    GroupsApi,
    ContactsApi,
    WebhooksApi,
    EventsApi,
    SandboxApi,
);

/// The API with its OpenAPI description; the routes and the spec come from this one value.
pub fn service() -> OpenApiService<Apis, &'static dyn WagateWebhooks> {
    OpenApiService::new(Apis::default(), "wagate", env!("CARGO_PKG_VERSION"))
        // `webhooks` first: it resets the URL prefix.
        .webhooks::<&'static dyn WagateWebhooks>()
        .summary("Self-hosted multi-phone WhatsApp HTTP API gateway")
        .description(DESCRIPTION)
        .license(poem_openapi::LicenseObject::new("MIT").url("https://opensource.org/license/mit"))
        .url_prefix(PREFIX)
}

/// The spec as pretty JSON with a trailing newline, exactly as committed and served:
/// each operation that needs a token says which scope (`x-wagate-scope`, and a line of
/// its description).
pub fn spec_json() -> String {
    static SPEC: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    SPEC.get_or_init(|| {
        let raw = service().spec();
        let Ok(mut spec) = serde_json::from_str::<serde_json::Value>(&raw) else {
            return format!("{raw}\n");
        };
        conform_to_openapi_3_0(&mut spec);
        for item in spec["paths"].as_object_mut().into_iter().flat_map(|p| p.values_mut()) {
            for (method, op) in item.as_object_mut().into_iter().flatten() {
                if op.get("security").is_none() {
                    // Public: said so, rather than left to a default.
                    op["security"] = serde_json::json!([]);
                    continue;
                }
                let method = poem::http::Method::from_bytes(method.to_ascii_uppercase().as_bytes())
                    .unwrap_or(poem::http::Method::GET);
                let id = op["operationId"].as_str().unwrap_or_default();
                let scope = crate::auth::scope::required(id, &method).as_str();
                let line = match scope {
                    "admin" => "**Scope:** `admin`.".to_owned(),
                    _ => format!("**Scope:** `{scope}` (or `admin`)."),
                };
                let description = match op["description"].as_str() {
                    Some(text) => format!("{text}\n\n{line}"),
                    None => line,
                };
                op["description"] = description.into();
                op["x-wagate-scope"] = scope.into();
            }
        }
        let mut text = serde_json::to_string_pretty(&spec).unwrap_or(raw);
        text.push('\n');
        text
    })
    .clone()
}

/// What poem-openapi writes beyond OpenAPI 3.0 (the version it declares) moves where 3.0
/// keeps it, and what validators and SDK generators need is added: `info.summary` leads the
/// description, the webhooks are `x-webhooks` (read by Redoc and others), `servers` names
/// this server, and webhook bodies are told apart by `event` (a discriminator).
fn conform_to_openapi_3_0(spec: &mut serde_json::Value) {
    let Some(root) = spec.as_object_mut() else { return };
    // Keys keep their places (`shift_*`), so the committed spec reads in the same order.
    if let Some(info) = root.get_mut("info").and_then(|i| i.as_object_mut())
        && let Some(summary) = info.shift_remove("summary")
    {
        let description = info.get("description").and_then(|d| d.as_str()).unwrap_or_default();
        let summary = summary.as_str().unwrap_or_default();
        let description = format!("{summary}.\n\n{description}");
        info.insert("description".into(), description.into());
    }
    let at = root.keys().position(|k| k == "webhooks").unwrap_or(root.len());
    if let Some(mut webhooks) = root.shift_remove("webhooks") {
        // The gateway calls these; they are signed (`X-Wagate-Signature`), not authenticated.
        for op in webhooks
            .as_object_mut()
            .into_iter()
            .flat_map(|w| w.values_mut())
            .filter_map(|item| item.as_object_mut())
            .flat_map(|item| item.values_mut())
        {
            op["security"] = serde_json::json!([]);
        }
        root.shift_insert(at, "x-webhooks".into(), webhooks);
    }
    root.insert(
        "servers".into(),
        serde_json::json!([{"url": "/", "description": "The server that serves this document"}]),
    );
    if let Some(body) = root
        .get_mut("components")
        .and_then(|c| c.get_mut("schemas"))
        .and_then(|s| s.get_mut("WebhookBody"))
        .and_then(|b| b.as_object_mut())
    {
        let mapping: serde_json::Map<String, serde_json::Value> = crate::domain::EventKind::all()
            .map(|kind| {
                let schema = format!("#/components/schemas/{}", events::webhook_schema(kind));
                (kind.as_str().to_owned(), schema.into())
            })
            .collect();
        body.insert(
            "discriminator".into(),
            serde_json::json!({"propertyName": "event", "mapping": mapping}),
        );
    }
}

/// `GET /api/v1/openapi.json`.
#[poem::handler]
pub fn spec_endpoint() -> poem::Response {
    poem::Response::builder()
        .content_type("application/json; charset=utf-8")
        .body(spec_json())
}

const DESCRIPTION: &str = "\
Link WhatsApp accounts (phones) by QR code or pairing code, then send messages, check numbers, \
read history, groups and contacts, and receive webhooks.

**Authentication.** Every operation except `health`, `login`, `generateToken`, `changePassword`, \
`verifyToken` and `logout` needs a token: a session token from `login` or a permanent token from \
`generateToken`, sent as `Authorization: Bearer <token>` or as the `wagate_session` cookie.

**Scopes.** A permanent token may be limited to scopes (`read`, `send`, `manage`, `admin`) and to \
some phones. Each operation names the scope it needs (`x-wagate-scope`); `admin` covers all. A \
token without the scope gets 403 `insufficient_scope`; a phone outside its list answers 404 \
`phone_not_found`. Session tokens may do everything.

**Errors.** Every error is JSON: `{\"error\":{\"code\":\"snake_case_code\",\"message\":\"…\"}}`.";
