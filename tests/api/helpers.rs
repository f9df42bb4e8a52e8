//! `spawn_app()`: the real server on 127.0.0.1:0 with a fresh database (SQLite in a temp
//! dir, or a fresh PostgreSQL database when `WAGATE_TEST_DATABASE_URL` is set), plus a
//! small HTTP client that speaks its JSON.

use std::future::Future;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use figment::providers::Serialized;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use wagate::api::AppState;
use wagate::app::App;
use wagate::config::Config;

pub const PASSWORD: &str = "correct horse battery";

/// How long a test waits for a condition before it fails. Generous on purpose: machines
/// differ by 2x and CI may run on a loaded one; a passing test never waits this long.
pub const DEADLINE: Duration = Duration::from_secs(60);

/// Polls `check` until it answers `Ok`, and returns that value. `Err` carries what was
/// seen instead, for the failure message when `deadline` passes. The one way tests wait:
/// for a condition, never for a fixed time.
pub async fn eventually<T, E, F, Fut>(deadline: Duration, mut check: F) -> T
where
    E: std::fmt::Display,
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, E>>,
{
    let until = Instant::now() + deadline;
    let mut pause = Duration::from_millis(5);
    loop {
        match check().await {
            Ok(value) => return value,
            Err(seen) if Instant::now() >= until => panic!("not so after {deadline:?}: {seen}"),
            Err(_) => {}
        }
        tokio::time::sleep(pause).await;
        pause = (pause * 2).min(Duration::from_millis(50));
    }
}

pub struct TestApp {
    pub base: String,
    pub state: AppState,
    pub client: reqwest::Client,
    pub data_dir: PathBuf,
    pub database_url: String,
    settings: Vec<(String, Value)>,
    offline: bool,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    server: Option<tokio::task::JoinHandle<anyhow::Result<()>>>,
    owned: Option<Owned>,
}

/// What the first app of a test owns and cleans up: the temp dir and the PG database.
struct Owned {
    _dir: tempfile::TempDir,
    /// Drops the test's PostgreSQL database, if it has one.
    _database: Option<PgGuard>,
}

pub struct Response {
    pub status: StatusCode,
    pub headers: reqwest::header::HeaderMap,
    pub body: Value,
}

impl Response {
    #[track_caller]
    pub fn assert_status(&self, status: u16) -> &Self {
        assert_eq!(self.status.as_u16(), status, "unexpected status; body: {}", self.body);
        self
    }

    #[track_caller]
    pub fn assert_error(&self, status: u16, code: &str) -> &Self {
        self.assert_status(status);
        assert_eq!(self.body["error"]["code"], code, "body: {}", self.body);
        assert!(
            self.body["error"]["message"].as_str().is_some_and(|m| !m.is_empty()),
            "error without message: {}",
            self.body
        );
        self
    }

    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }
}

/// Settings for one test's server: config keys on top of the embedded defaults.
#[derive(Default)]
pub struct Builder {
    settings: Vec<(String, Value)>,
    offline_whatsapp: bool,
}

pub fn builder() -> Builder {
    Builder::default()
}

pub async fn spawn_app() -> TestApp {
    builder().spawn().await
}

/// A server with the owner's password already set to [`PASSWORD`].
pub async fn spawn_app_with_password() -> TestApp {
    let app = spawn_app().await;
    app.set_first_password().await;
    app
}

impl Builder {
    /// The real WhatsApp engine, on a network where WhatsApp cannot be reached.
    pub fn offline_whatsapp(mut self) -> Self {
        self.offline_whatsapp = true;
        self.settings.push(("engine".into(), "whatsapp".into()));
        self
    }

    pub fn with(mut self, key: &str, value: impl Into<Value>) -> Self {
        self.settings.push((key.to_owned(), value.into()));
        self
    }

    pub async fn spawn(self) -> TestApp {
        let dir = tempfile::tempdir().expect("temp dir");
        let data_dir = dir.path().to_path_buf();
        let (database_url, database) = fresh_database().await;
        let owned = Owned {
            _dir: dir,
            _database: database,
        };
        let mut app = start(&data_dir, &database_url, &self.settings, self.offline_whatsapp).await;
        app.owned = Some(owned);
        app
    }
}

/// Server logs go to the test's captured output (shown when a test fails).
fn init_logs() {
    static INIT: std::sync::Once = std::sync::Once::new();
    INIT.call_once(|| {
        let filter = tracing_subscriber::EnvFilter::try_from_default_env()
            .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn,wagate=info"));
        let _ = tracing_subscriber::fmt()
            .with_env_filter(filter)
            .with_test_writer()
            .try_init();
    });
}

async fn start(data_dir: &std::path::Path, database_url: &str, settings: &[(String, Value)], offline: bool) -> TestApp {
    let mut figment = Config::base()
        .merge(Serialized::default("listen", "127.0.0.1:0"))
        .merge(Serialized::default("data_dir", data_dir))
        .merge(Serialized::default("database_url", database_url))
        .merge(Serialized::default("engine", "sandbox"))
        .merge(Serialized::default("health.refresh_interval", "200ms"))
        // Receivers and media servers in tests listen on loopback.
        .merge(Serialized::default("network.allow_private", true))
        // Short timers keep the suite fast; tests that need others set their own.
        .merge(Serialized::default("sandbox.qr_period", "2s"))
        .merge(Serialized::default("sandbox.connect_delay", "10ms"))
        .merge(Serialized::default("sandbox.reconnect_delay", "100ms"))
        .merge(Serialized::default("sandbox.receipt_delay", "50ms"))
        .merge(Serialized::default("phones.connect_wait", "2s"))
        .merge(Serialized::default("phones.restart_backoff_min", "20ms"))
        .merge(Serialized::default("phones.restart_backoff_max", "200ms"))
        .merge(Serialized::default("phones.resume_concurrency", 4))
        .merge(Serialized::default("media.retry_backoff", "50ms"))
        .merge(Serialized::default("media.retry_backoff_max", "200ms"));
    for (key, value) in settings {
        figment = figment.merge(Serialized::default(key, value));
    }
    init_logs();
    let config = Config::from_figment(figment).expect("test config");
    let engine = offline.then(|| crate::offline::engine(data_dir));
    let app = App::build_with_engine(config, engine).await.expect("app builds");
    let base = format!("http://127.0.0.1:{}", app.port());
    let state = app.state().clone();
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel();
    let server = tokio::spawn(app.run(async move {
        let _ = stop_rx.await;
    }));
    TestApp {
        base,
        state,
        client: reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .expect("client"),
        data_dir: data_dir.to_path_buf(),
        database_url: database_url.to_owned(),
        stop: Some(stop_tx),
        server: Some(server),
        owned: None,
        settings: settings.to_vec(),
        offline,
    }
}

impl TestApp {
    /// `/metrics` as text, read with `token`.
    pub async fn metrics(&self, token: &str) -> String {
        let resp = self
            .client
            .get(self.url("/metrics"))
            .bearer_auth(token)
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 200, "/metrics");
        resp.text().await.unwrap()
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{}", self.base, path)
    }

    /// Stops the server gracefully and starts a new one on the same data and database,
    /// as a process restart would.
    pub async fn restart(mut self) -> TestApp {
        self.shutdown().await;
        let mut next = start(&self.data_dir, &self.database_url, &self.settings, self.offline).await;
        next.owned = self.owned.take();
        next
    }

    /// [`TestApp::restart`] with one setting changed, as an edited config would.
    pub async fn restart_with(mut self, key: &str, value: impl Into<Value>) -> TestApp {
        self.settings.push((key.to_owned(), value.into()));
        self.restart().await
    }

    pub async fn shutdown(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(server) = self.server.take() {
            server.await.expect("server task").expect("server stops cleanly");
        }
    }

    pub async fn request(&self, method: Method, path: &str, token: Option<&str>, body: Option<Value>) -> Response {
        let mut req = self.client.request(method, self.url(path));
        if let Some(token) = token {
            req = req.bearer_auth(token);
        }
        if let Some(body) = body {
            req = req.json(&body);
        }
        send(req).await
    }

    pub async fn get(&self, path: &str, token: Option<&str>) -> Response {
        self.request(Method::GET, path, token, None).await
    }

    pub async fn post(&self, path: &str, token: Option<&str>, body: Value) -> Response {
        self.request(Method::POST, path, token, Some(body)).await
    }

    pub async fn delete(&self, path: &str, token: Option<&str>) -> Response {
        self.request(Method::DELETE, path, token, None).await
    }

    /// Adds a phone and returns its view.
    pub async fn add_phone(&self, token: &str, phone: &str) -> Value {
        let resp = self
            .post("/api/v1/user/phones", Some(token), json!({"phone": phone}))
            .await;
        resp.assert_status(201);
        resp.body
    }

    pub async fn phone(&self, token: &str, phone: &str) -> Value {
        let resp = self.get(&format!("/api/v1/user/phones/{phone}"), Some(token)).await;
        resp.assert_status(200);
        resp.body
    }

    /// Waits until the phone's status is `status` and returns its view.
    pub async fn wait_for_status(&self, token: &str, phone: &str, status: &str) -> Value {
        eventually(DEADLINE, || async {
            let view = self.phone(token, phone).await;
            if view["status"] == status {
                Ok(view)
            } else {
                Err(format!("{phone} is not {status}: {view}"))
            }
        })
        .await
    }

    /// Adds (if needed), connects, scans the QR code and waits until connected.
    pub async fn pair_phone(&self, token: &str, phone: &str) -> Value {
        let existing = self.get(&format!("/api/v1/user/phones/{phone}"), Some(token)).await;
        if existing.status == StatusCode::NOT_FOUND {
            self.add_phone(token, phone).await;
        }
        let connect = self
            .post(&format!("/api/v1/user/phones/{phone}/connect"), Some(token), json!({}))
            .await;
        connect.assert_status(200);
        assert_eq!(connect.body["status"], "pairing", "{}", connect.body);
        self.post(&format!("/api/v1/sandbox/phones/{phone}/scan"), Some(token), json!({}))
            .await
            .assert_status(200);
        self.wait_for_status(token, phone, "connected").await
    }

    /// Injects a sandbox fault (`disconnect`, `crash`, `logout`) into the phone's session.
    pub async fn fault(&self, token: &str, phone: &str, kind: &str) -> Response {
        self.post(
            &format!("/api/v1/sandbox/phones/{phone}/faults"),
            Some(token),
            json!({"kind": kind}),
        )
        .await
    }

    /// Session restarts so far, from the resources report.
    pub async fn restarts(&self, token: &str) -> u64 {
        let resources = self.get("/api/v1/health/resources", Some(token)).await;
        resources.assert_status(200);
        resources.body["actors"]["sessionRestarts"]
            .as_u64()
            .expect("restart count")
    }

    /// Crashes the phone's session and waits until the supervisor restarted it and it is
    /// connected again.
    pub async fn crash_and_recover(&self, token: &str, phone: &str) {
        let before = self.restarts(token).await;
        self.fault(token, phone, "crash").await.assert_status(200);
        eventually(DEADLINE, || async {
            match self.restarts(token).await {
                n if n > before => Ok(()),
                n => Err(format!("{n} restarts, as before the crash")),
            }
        })
        .await;
        self.wait_for_status(token, phone, "connected").await;
    }

    pub async fn set_first_password(&self) {
        self.post("/api/v1/auth/change-password", None, json!({"newPassword": PASSWORD}))
            .await
            .assert_status(200);
    }

    pub async fn login(&self) -> Response {
        self.post("/api/v1/auth/login", None, json!({"password": PASSWORD}))
            .await
    }

    /// A fresh session token.
    pub async fn token(&self) -> String {
        let resp = self.login().await;
        resp.assert_status(200);
        resp.body["token"].as_str().expect("token").to_owned()
    }
}

pub async fn send(req: reqwest::RequestBuilder) -> Response {
    let resp = req.send().await.expect("request reaches the server");
    let status = resp.status();
    let headers = resp.headers().clone();
    let text = resp.text().await.expect("body");
    let body = if text.is_empty() {
        Value::Null
    } else {
        serde_json::from_str(&text).unwrap_or(Value::String(text))
    };
    Response { status, headers, body }
}

impl Drop for TestApp {
    fn drop(&mut self) {
        // Every error an operation answered is one its spec lists (`Errors<S>`): a status
        // it does not list is a documentation bug, and fails the test that saw it (or one
        // running beside it: the record is process-wide).
        if !std::thread::panicking() {
            let undocumented = wagate::api::error::undocumented();
            assert!(
                undocumented.is_empty(),
                "answered with a status the operation's spec does not list:\n{}",
                undocumented.join("\n")
            );
        }
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        // Then `owned` goes: the data directory, and the database (`PgGuard`).
    }
}

async fn admin_connection(admin_url: &str) -> sea_orm::DatabaseConnection {
    let mut options = sea_orm::ConnectOptions::new(admin_url.to_owned());
    options.max_connections(1).sqlx_logging(false);
    sea_orm::Database::connect(options)
        .await
        .expect("admin connection to PostgreSQL")
}

/// A fresh, empty database URL for a server, and its cleanup: SQLite in its data
/// directory (empty URL) or, with `WAGATE_TEST_DATABASE_URL`, a new PostgreSQL database.
pub async fn fresh_database() -> (String, Option<PgGuard>) {
    match std::env::var("WAGATE_TEST_DATABASE_URL") {
        Ok(admin_url) if !admin_url.is_empty() => {
            let name = format!("wagate_test_{}", uuid::Uuid::new_v4().simple());
            create_pg_database(&admin_url, &name).await;
            (replace_db_name(&admin_url, &name), Some(PgGuard { admin_url, name }))
        }
        _ => (String::new(), None),
    }
}

/// Drops its PostgreSQL database when dropped.
pub struct PgGuard {
    admin_url: String,
    name: String,
}

impl Drop for PgGuard {
    /// The test's runtime is going away: the database is dropped from a thread of its own.
    fn drop(&mut self) {
        let (admin_url, name) = (self.admin_url.clone(), self.name.clone());
        let _ = std::thread::spawn(move || {
            if let Ok(rt) = tokio::runtime::Builder::new_current_thread().enable_all().build() {
                rt.block_on(drop_pg_database(&admin_url, &name));
            }
        })
        .join();
    }
}

async fn create_pg_database(admin_url: &str, name: &str) {
    use sea_orm::ConnectionTrait;
    let db = admin_connection(admin_url).await;
    db.execute_unprepared(&format!("CREATE DATABASE \"{name}\""))
        .await
        .expect("create test database");
    db.close().await.ok();
}

async fn drop_pg_database(admin_url: &str, name: &str) {
    use sea_orm::ConnectionTrait;
    let db = admin_connection(admin_url).await;
    let _ = db
        .execute_unprepared(&format!("DROP DATABASE IF EXISTS \"{name}\" WITH (FORCE)"))
        .await;
    db.close().await.ok();
}

fn replace_db_name(url: &str, name: &str) -> String {
    let mut parsed = url::Url::parse(url).expect("WAGATE_TEST_DATABASE_URL is a URL");
    parsed.set_path(&format!("/{name}"));
    parsed.to_string()
}

/// A loopback port nobody listens on right now.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// `/api/v1/user/phones/{phone}{action}`, e.g. `phone_path(A, "/message")`.
pub fn phone_path(phone: &str, action: &str) -> String {
    format!("/api/v1/user/phones/{phone}{action}")
}
