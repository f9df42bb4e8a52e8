//! The real engine against `wa-emulator`: WhatsApp's protocol on loopback. Pairing by QR
//! and by code, logging in again with the stored keys, and everything WhatsApp's side or
//! the person's phone can do to a linked device, seen through the gateway's API.

use std::time::Duration;

use serde_json::{Value, json};
use wa_emulator::{Config as EmulatorConfig, Emulator};

use crate::helpers::{DEADLINE, TestApp, builder, eventually, free_port, fresh_database, send};
use crate::process::Process;

pub const A: &str = "+12015550123";
pub const A_DIGITS: &str = "12015550123";

pub fn path(action: &str) -> String {
    crate::helpers::phone_path(A, action)
}

/// An emulated network and a gateway whose `whatsapp` engine talks to it.
pub struct World {
    pub emulator: Emulator,
    pub app: TestApp,
    pub token: String,
    pub http: reqwest::Client,
}

pub async fn world() -> World {
    world_with(EmulatorConfig::default(), &[]).await
}

/// One QR reference: the client's only QR code lives 60 s (a fixed time in the client),
/// then its QR codes have run out.
async fn world_with_one_qr_code() -> World {
    let config = EmulatorConfig {
        qr_refs: 1,
        ..EmulatorConfig::default()
    };
    world_with(config, &[]).await
}

pub async fn world_with(config: EmulatorConfig, settings: &[(&str, &str)]) -> World {
    let emulator = Emulator::start("127.0.0.1:0".parse().unwrap(), config).await.unwrap();
    let mut app = builder()
        .with("engine", "whatsapp")
        .with("whatsapp.server_url", emulator.ws_url())
        .with("phones.connect_wait", "10s");
    for (key, value) in settings {
        app = app.with(key, *value);
    }
    let app = app.spawn().await;
    app.set_first_password().await;
    let token = app.token().await;
    let world = World {
        emulator,
        app,
        token,
        http: reqwest::Client::new(),
    };
    world
        .control("POST", "/control/accounts", json!({"phone": A_DIGITS, "name": "Alice"}))
        .await
        .assert_status(201);
    world
}

impl World {
    pub async fn control(&self, method: &str, path: &str, body: Value) -> crate::helpers::Response {
        let url = format!("{}{path}", self.emulator.url());
        let req = match method {
            "GET" => self.http.get(url),
            _ => self.http.post(url).json(&body),
        };
        send(req).await
    }

    pub async fn view(&self) -> Value {
        self.app.phone(&self.token, A).await
    }

    pub async fn wait_for(&self, status: &str) -> Value {
        self.app.wait_for_status(&self.token, A, status).await
    }

    async fn connect(&self, body: Value) -> Value {
        let resp = self.app.post(&path("/connect"), Some(&self.token), body).await;
        resp.assert_status(200);
        resp.body
    }

    /// The account's linked devices, as its phone lists them.
    async fn devices(&self) -> Vec<Value> {
        let resp = self
            .control("GET", &format!("/control/accounts/{A_DIGITS}/devices"), Value::Null)
            .await;
        resp.assert_status(200);
        resp.body["data"].as_array().unwrap().clone()
    }

    /// Waits until the emulator's view of the linked devices satisfies `check`.
    async fn devices_until(&self, what: &str, check: impl Fn(&[Value]) -> bool) -> Vec<Value> {
        eventually(DEADLINE, || async {
            let devices = self.devices().await;
            if check(&devices) {
                Ok(devices)
            } else {
                Err(format!("{what}: {devices:?}"))
            }
        })
        .await
    }

    /// Waits for a QR code on the phone's view and returns it.
    async fn qr(&self) -> String {
        eventually(DEADLINE, || async {
            let view = self.view().await;
            match view["qr"]["code"].as_str() {
                Some(code) => Ok(code.to_owned()),
                None => Err(format!("no QR code: {view}")),
            }
        })
        .await
    }

    /// The pairing code on the phone's view, once there is one.
    async fn current_code(&self) -> Result<String, String> {
        let view = self.view().await;
        match view["pairingCode"]["code"].as_str() {
            Some(code) => Ok(code.to_owned()),
            None => Err(format!("no pairing code: {view}")),
        }
    }

    /// The person scans `qr` with the account's phone.
    async fn scan(&self, qr: &str) {
        self.control("POST", &format!("/control/accounts/{A_DIGITS}/link"), json!({"qr": qr}))
            .await
            .assert_status(200);
    }

    /// The person types `code` on the account's phone.
    async fn type_code(&self, code: &str) -> crate::helpers::Response {
        self.control(
            "POST",
            &format!("/control/accounts/{A_DIGITS}/link-code"),
            json!({"code": code}),
        )
        .await
    }

    /// Adds the phone, shows its QR code, scans it and waits until it is connected.
    pub async fn pair(&self) -> Value {
        self.app.add_phone(&self.token, A).await;
        self.connect(json!({})).await;
        self.scan(&self.qr().await).await;
        self.wait_for("connected").await
    }

    /// Waits until the phone's key store is gone.
    async fn keys_deleted(&self) {
        eventually(DEADLINE, || async {
            if self.key_store().exists() {
                Err("the key store is still there")
            } else {
                Ok(())
            }
        })
        .await;
    }

    async fn kick(&self, body: Value) {
        self.control("POST", &format!("/control/accounts/{A_DIGITS}/devices/kick"), body)
            .await
            .assert_status(200);
    }

    fn key_store(&self) -> std::path::PathBuf {
        self.app.data_dir.join(format!("whatsapp/{A_DIGITS}.db"))
    }

    async fn health(&self) -> Value {
        let resp = self.control("GET", "/control/health", Value::Null).await;
        resp.assert_status(200);
        resp.body
    }
}

fn connected(device: &Value) -> bool {
    device["connected"] == true
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_phone_pairs_by_qr_and_shows_on_the_account_as_wagate_and_unavailable() {
    let w = world().await;
    let view = w.pair().await;
    assert_eq!(view["jid"], format!("{A_DIGITS}@s.whatsapp.net"), "{view}");
    assert!(view["lid"].as_str().is_some_and(|l| l.ends_with("@lid")), "{view}");
    assert_eq!(view["pushName"], "Alice", "{view}");
    assert!(view["qr"].is_null(), "{view}");
    let devices = w
        .devices_until("the device is online and unavailable", |d| {
            d.len() == 1 && connected(&d[0]) && d[0]["presence"] == "unavailable"
        })
        .await;
    assert_eq!(devices[0]["name"], "wagate", "{devices:?}");
    assert!(devices[0]["prekeys"].as_u64().unwrap() > 0, "{devices:?}");
    assert_eq!(w.health().await["doubleConnections"], 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restart_logs_in_again_with_the_stored_keys() {
    let w = world().await;
    w.pair().await;
    let World {
        emulator,
        app,
        token,
        http,
    } = w;
    let app = app.restart().await;
    let w = World {
        emulator,
        app,
        token,
        http,
    };
    let view = w.wait_for("connected").await;
    assert!(view["qr"].is_null(), "a linked phone was shown a QR code: {view}");
    let devices = w
        .devices_until("one device, online", |d| d.len() == 1 && connected(&d[0]))
        .await;
    assert_eq!(devices[0]["id"], 1, "the restart linked a second device: {devices:?}");
    assert_eq!(
        w.health().await["doubleConnections"],
        0,
        "two connections were open for the device"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pairing_code_stays_alone_and_valid_while_the_qr_codes_run_out() {
    // The QR codes run out after 60 s; the pairing code (valid about 180 s) has not.
    let w = world_with_one_qr_code().await;
    w.app.add_phone(&w.token, A).await;
    let connected_at = tokio::time::Instant::now();
    w.connect(json!({"pairingCodeMode": true})).await;
    let code = eventually(DEADLINE, || w.current_code()).await;
    // Past the QR code's lifetime (the condition is the client's own clock).
    tokio::time::sleep_until(connected_at + Duration::from_secs(65)).await;
    let view = w.view().await;
    assert_eq!(view["status"], "pairing", "{view}");
    assert_eq!(view["pairingCode"]["code"], code.as_str(), "{view}");
    assert!(view["qr"].is_null(), "a QR code replaced the pairing code: {view}");
    w.type_code(&code).await.assert_status(200);
    w.wait_for("connected").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_mistyped_code_is_replaced_by_a_fresh_one_that_links() {
    let w = world().await;
    w.app.add_phone(&w.token, A).await;
    w.connect(json!({"pairingCodeMode": true})).await;
    let first = eventually(DEADLINE, || w.current_code()).await;
    w.type_code("ZZZZ-ZZZZ").await.assert_error(400, "wrong_code");
    // The primary could not open the key bundle and said nothing: after its minute of
    // silence the client retires the code (PairingCodeRefresh) and a new one is shown.
    let second = eventually(Duration::from_secs(150), || async {
        match w.current_code().await {
            Ok(code) if code != first => Ok(code),
            seen => Err(format!("still the first code: {seen:?}")),
        }
    })
    .await;
    let view = w.view().await;
    assert_eq!(view["status"], "pairing", "{view}");
    assert!(view["qr"].is_null(), "{view}");
    w.type_code(&second).await.assert_status(200);
    w.wait_for("connected").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_qr_code_nobody_scans_expires_honestly_and_connect_starts_over() {
    let w = world_with_one_qr_code().await;
    w.app.add_phone(&w.token, A).await;
    w.connect(json!({})).await;
    let first = w.qr().await;
    let view = eventually(Duration::from_secs(120), || async {
        let view = w.view().await;
        if view["status"] == "disconnected" {
            Ok(view)
        } else {
            Err(format!("still {}", view["status"]))
        }
    })
    .await;
    assert!(
        view["lastError"].as_str().unwrap().contains("not scanned in time"),
        "{view}"
    );
    assert!(view["qr"].is_null(), "{view}");
    // A fresh client: a new QR code, and it links.
    w.connect(json!({})).await;
    let second = w.qr().await;
    assert_ne!(first, second);
    w.scan(&second).await;
    w.wait_for("connected").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unlinking_on_the_phone_logs_out_deletes_the_keys_and_connect_pairs_anew() {
    let w = world().await;
    w.pair().await;
    assert!(w.key_store().exists());
    w.control("POST", &format!("/control/accounts/{A_DIGITS}/unlink"), json!({}))
        .await
        .assert_status(200);
    let view = w.wait_for("logged_out").await;
    assert!(view["lastError"].as_str().unwrap().contains("logged out"), "{view}");
    assert!(view["jid"].is_null(), "{view}");
    w.keys_deleted().await;
    let view = w.connect(json!({})).await;
    assert_eq!(view["status"], "pairing", "{view}");
    w.scan(&w.qr().await).await;
    w.wait_for("connected").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn whatsapp_logging_the_device_out_unlinks_it_too() {
    let w = world().await;
    w.pair().await;
    // Stream error 401: WhatsApp's servers end the linked device's session for good.
    w.kick(json!({"reason": "logout"})).await;
    let view = w.wait_for("logged_out").await;
    assert!(view["lastError"].as_str().unwrap().contains("logged out"), "{view}");
    w.keys_deleted().await;
    assert!(w.devices().await.is_empty());
    let view = w.connect(json!({})).await;
    assert_eq!(view["status"], "pairing", "{view}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_replaced_session_stops_without_fighting_back() {
    let w = world().await;
    w.pair().await;
    w.kick(json!({"reason": "replaced"})).await;
    let view = w.wait_for("disconnected").await;
    assert!(view["lastError"].as_str().unwrap().contains("another client"), "{view}");
    w.devices_until("the device stays offline", |d| d.len() == 1 && !connected(&d[0]))
        .await;
    // Connecting again is the person's decision, and it works with the same keys.
    w.connect(json!({})).await;
    w.wait_for("connected").await;
    assert_eq!(w.devices().await.len(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_temporary_ban_fails_the_phone_and_says_when_it_ends() {
    let w = world().await;
    w.pair().await;
    w.kick(json!({"reason": "ban", "seconds": 7200})).await;
    let view = w.wait_for("failed").await;
    let error = view["lastError"].as_str().unwrap();
    assert!(error.contains("temporarily banned"), "{view}");
    assert!(error.contains("ends in 1h") || error.contains("ends in 2h"), "{view}");
    assert_eq!(w.devices().await.len(), 1, "a ban does not unlink the device");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dropped_connection_comes_back_by_itself() {
    let w = world().await;
    let before = w.pair().await;
    w.kick(json!({"reason": "drop"})).await;
    eventually(DEADLINE, || async {
        let view = w.view().await;
        if view["status"] == "connected" && view["connectedAt"] != before["connectedAt"] {
            Ok(())
        } else {
            Err(format!("not reconnected: {view}"))
        }
    })
    .await;
    w.devices_until("online again", |d| d.len() == 1 && connected(&d[0]))
        .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn logging_out_an_offline_phone_unlinks_it_on_the_account() {
    let w = world().await;
    w.pair().await;
    w.app
        .post(&path("/disconnect"), Some(&w.token), json!({}))
        .await
        .assert_status(200);
    w.devices_until("offline", |d| d.len() == 1 && !connected(&d[0])).await;
    let resp = w.app.post(&path("/logout"), Some(&w.token), json!({})).await;
    resp.assert_status(200);
    assert_eq!(resp.body["status"], "logged_out", "{}", resp.body);
    assert!(w.devices().await.is_empty(), "a ghost device is left on the account");
    assert!(!w.key_store().exists());
}

/// A gateway process on the emulator, with phone A paired: its files and memory are its
/// own to measure, and it can be killed.
pub async fn paired_process(emulator: &Emulator, dir: &std::path::Path, database_url: &str, first: bool) -> Process {
    let port = free_port();
    let ws = emulator.ws_url();
    let mut process = Process::start(
        port,
        dir,
        database_url,
        &[
            ("WAGATE_ENGINE", "whatsapp"),
            ("WAGATE_WHATSAPP__SERVER_URL", &ws),
            ("WAGATE_PHONES__CONNECT_WAIT", "10s"),
        ],
    )
    .await;
    process.log_in(first).await;
    if first {
        process
            .post("/api/v1/user/phones", json!({"phone": A}))
            .await
            .assert_status(201);
        process.post(&path("/connect"), json!({})).await.assert_status(200);
        let qr = eventually(DEADLINE, || async {
            let view = process.get(&path("")).await.body;
            match view["qr"]["code"].as_str() {
                Some(code) => Ok(code.to_owned()),
                None => Err(format!("no QR code: {view}")),
            }
        })
        .await;
        let link = reqwest::Client::new()
            .post(format!("{}/control/accounts/{A_DIGITS}/link", emulator.url()))
            .json(&json!({"qr": qr}));
        send(link).await.assert_status(200);
    }
    process.wait_connected(A).await;
    process
}

pub async fn emulator_with_account() -> Emulator {
    wagate::app::install_crypto_provider();
    let emulator = Emulator::start("127.0.0.1:0".parse().unwrap(), EmulatorConfig::default())
        .await
        .unwrap();
    let create = reqwest::Client::new()
        .post(format!("{}/control/accounts", emulator.url()))
        .json(&json!({"phone": A_DIGITS, "name": "Alice"}));
    send(create).await.assert_status(201);
    emulator
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hundred_connects_and_disconnects_leak_nothing() {
    let emulator = emulator_with_account().await;
    let dir = tempfile::tempdir().unwrap();
    let (database_url, _pg) = fresh_database().await;
    let process = paired_process(&emulator, dir.path(), &database_url, true).await;
    let cycle = || async {
        process.post(&path("/disconnect"), json!({})).await.assert_status(200);
        process.post(&path("/connect"), json!({})).await.assert_status(200);
        process.wait_connected(A).await;
    };
    for _ in 0..10 {
        cycle().await;
    }
    let (fds_before, rss_before) = crate::process::fds_and_rss(process.child.id());
    for _ in 0..100 {
        cycle().await;
    }
    let (fds_after, rss_after) = crate::process::fds_and_rss(process.child.id());
    // One client leaked per cycle is a socket and a SQLite pool each time (200 more
    // descriptors over 100 cycles, measured) and megabytes of caches. The bound leaves
    // room for the gateway's own database pool growing to its 8 connections meanwhile
    // (up to 3 descriptors each with SQLite's WAL), which a slow machine may make it do.
    assert!(
        fds_after <= fds_before + 40,
        "open files grew from {fds_before} to {fds_after} over 100 cycles"
    );
    assert!(
        rss_after <= rss_before + 16 * 1024,
        "memory grew from {rss_before} KiB to {rss_after} KiB over 100 cycles"
    );
    let health = send(reqwest::Client::new().get(format!("{}/control/health", emulator.url()))).await;
    assert_eq!(health.body["doubleConnections"], 0, "{}", health.body);
    assert_eq!(health.body["connections"], 1, "{}", health.body);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_kill_9_and_restart_logs_in_again_without_pairing() {
    let emulator = emulator_with_account().await;
    let dir = tempfile::tempdir().unwrap();
    let (database_url, _pg) = fresh_database().await;
    let process = paired_process(&emulator, dir.path(), &database_url, true).await;
    process.signal("-9");
    drop(process);
    let process = paired_process(&emulator, dir.path(), &database_url, false).await;
    let view = process.get(&path("")).await.body;
    assert!(view["qr"].is_null(), "{view}");
    let devices =
        send(reqwest::Client::new().get(format!("{}/control/accounts/{A_DIGITS}/devices", emulator.url()))).await;
    assert_eq!(devices.body["data"].as_array().unwrap().len(), 1, "{}", devices.body);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn has_whatsapp_gives_whatsapps_own_answer_canonical_number_and_lid() {
    let w = world().await;
    w.pair().await;
    // Accounts as WhatsApp knows them: a Brazilian mobile with its ninth digit, a Mexican
    // mobile without the old `1`.
    let mut lids = std::collections::HashMap::new();
    for (phone, name) in [("5511987654321", "Bia"), ("525512345678", "Memo")] {
        let created = w
            .control("POST", "/control/accounts", json!({"phone": phone, "name": name}))
            .await;
        created.assert_status(201);
        lids.insert(phone, created.body["lid"].as_str().unwrap().to_owned());
    }
    let lid_of = |phone: &str| lids.get(phone).cloned();
    let resp = w
        .app
        .post(
            &path("/has-whatsapp"),
            Some(&w.token),
            json!({"recipients": ["+5511987654321", "+551187654321", "+5215512345678", "+12015550999"]}),
        )
        .await;
    resp.assert_status(200);
    let checks = resp.body["data"].as_array().unwrap().clone();
    let expect = |i: usize, exists: bool, jid: &str, lid: Option<String>| {
        let check = &checks[i];
        assert_eq!(check["exists"], exists, "{check}");
        assert_eq!(check["jid"], jid, "{check}");
        assert_eq!(check["lid"].as_str().map(str::to_owned), lid, "{check}");
    };
    expect(0, true, "5511987654321@s.whatsapp.net", lid_of("5511987654321"));
    expect(1, true, "5511987654321@s.whatsapp.net", lid_of("5511987654321"));
    expect(2, true, "525512345678@s.whatsapp.net", lid_of("525512345678"));
    expect(3, false, "12015550999@s.whatsapp.net", None);
    // The client keeps the LID it learnt, as the crate's own lookup would: the phone's
    // key store maps it to the canonical number.
    use sea_orm::{ConnectionTrait, Statement};
    let store = w.app.data_dir.join(format!("whatsapp/{A_DIGITS}.db"));
    let db = sea_orm::Database::connect(format!("sqlite://{}?mode=ro", store.display()))
        .await
        .unwrap();
    let lid = lid_of("5511987654321").unwrap();
    let row = db
        .query_one_raw(Statement::from_sql_and_values(
            sea_orm::DatabaseBackend::Sqlite,
            "SELECT phone_number FROM lid_pn_mapping WHERE lid = ?",
            [lid.trim_end_matches("@lid").into()],
        ))
        .await
        .unwrap()
        .expect("the LID was kept");
    assert_eq!(row.try_get::<String>("", "phone_number").unwrap(), "5511987654321");
}
