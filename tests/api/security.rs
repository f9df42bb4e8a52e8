//! Every protected operation refuses every kind of bad credential; hostile strings in
//! every path parameter and body field get a 4xx, never a 5xx or a split header; and no
//! secret reaches the logs.

use std::io::Read;
use std::process::{Command, Stdio};

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use reqwest::Method;
use serde_json::{Map, Value, json};
use wagate::auth::jwt::{Claims, Jwt, TokenKind};
use wagate::db::settings::{self, Key};

use crate::helpers::{PASSWORD, TestApp, send, spawn_app_with_password};

/// Every operation of the spec: method, path template, operation.
pub fn operations() -> Vec<(Method, String, Value)> {
    let spec: Value = serde_json::from_str(&wagate::api::spec_json()).unwrap();
    let mut ops = Vec::new();
    for (path, item) in spec["paths"].as_object().unwrap() {
        for (method, op) in item.as_object().unwrap() {
            ops.push((method.to_uppercase().parse().unwrap(), path.clone(), op.clone()));
        }
    }
    ops
}

fn fill(path: &str, value: &str) -> String {
    let mut out = String::new();
    for segment in path.split('/') {
        if !out.is_empty() || path.starts_with('/') {
            out.push('/');
        }
        out.push_str(if segment.starts_with('{') { value } else { segment });
    }
    out.replacen("//", "/", 1)
}

pub fn plausible(path: &str) -> String {
    path.replace("{phone}", "+12015550101")
        .replace("{group_id}", "120363000000000000@g.us")
        .replace("{delivery_id}", "00000000-0000-0000-0000-000000000000")
        .replace("{id}", "00000000-0000-0000-0000-000000000000")
}

async fn bad_tokens(app: &TestApp) -> Vec<(&'static str, Option<String>)> {
    let good = app.token().await;
    let parts: Vec<&str> = good.split('.').collect();
    let mut payload: Value = serde_json::from_slice(&URL_SAFE_NO_PAD.decode(parts[1]).unwrap()).unwrap();
    payload["kind"] = json!("api");
    let tampered = format!(
        "{}.{}.{}",
        parts[0],
        URL_SAFE_NO_PAD.encode(payload.to_string()),
        parts[2]
    );
    let unsigned = format!(
        "{}.{}.",
        URL_SAFE_NO_PAD.encode(r#"{"alg":"none","typ":"JWT"}"#),
        parts[1]
    );
    let secret = settings::get(&app.state.db, Key::JwtSecret).await.unwrap().unwrap();
    let own = Jwt::new(&hex::decode(secret).unwrap());
    let now = chrono::Utc::now().timestamp();
    let claims = |exp: i64| Claims {
        sub: "owner".into(),
        jti: uuid::Uuid::new_v4().to_string(),
        iat: now,
        exp: Some(now + exp),
        kind: TokenKind::Session,
        epoch: Some(1),
    };
    let expired = own.encode(&claims(-3600)).unwrap();
    let foreign = Jwt::new(b"another server's secret").encode(&claims(3600)).unwrap();
    let revoked = app.token().await;
    app.request(Method::POST, "/api/v1/auth/logout", Some(&revoked), None)
        .await
        .assert_status(200);
    vec![
        ("none", None),
        ("tampered", Some(tampered)),
        ("alg none", Some(unsigned)),
        ("expired", Some(expired)),
        ("another server's", Some(foreign)),
        ("revoked", Some(revoked)),
        ("garbage", Some("garbage".into())),
    ]
}

#[tokio::test]
async fn every_protected_operation_refuses_bad_credentials() {
    let app = spawn_app_with_password().await;
    let tokens = bad_tokens(&app).await;
    let mut checked = 0;
    for (method, path, op) in operations() {
        if op["security"].as_array().is_none_or(Vec::is_empty) {
            continue;
        }
        for (what, token) in &tokens {
            let body = matches!(method, Method::POST | Method::PUT).then(|| json!({}));
            let resp = app
                .request(method.clone(), &plausible(&path), token.as_deref(), body)
                .await;
            assert_eq!(resp.status, 401, "{method} {path} with a {what} token: {}", resp.body);
            checked += 1;
        }
        // The cookie is checked the same way.
        let req = app
            .client
            .request(method.clone(), app.url(&plausible(&path)))
            .header("Cookie", format!("wagate_session={}", tokens[1].1.as_deref().unwrap()));
        assert_eq!(send(req).await.status, 401, "{method} {path} with a tampered cookie");
    }
    assert!(checked > 200, "only {checked} checks: the spec lost its operations?");
}

const HOSTILE: &[&str] = &[
    "../../etc/passwd",
    "..%2F..%2Fetc%2Fpasswd",
    "%00",
    "a\r\nX-Injected: yes",
    "<script>alert(1)</script>",
    "' OR '1'='1",
    "\u{202e}\u{0000}",
];

fn encode(value: &str) -> String {
    url::form_urlencoded::byte_serialize(value.as_bytes()).collect()
}

/// A JSON body with every string property of the operation's schema set to `value`.
fn hostile_body(spec: &Value, op: &Value, value: &str) -> Option<Value> {
    let schema = &op["requestBody"]["content"]["application/json; charset=utf-8"]["schema"];
    let name = schema["$ref"].as_str()?.rsplit('/').next()?;
    let properties = spec["components"]["schemas"][name]["properties"].as_object()?;
    let mut body = Map::new();
    for (key, prop) in properties {
        if prop["type"] == "string" {
            body.insert(key.clone(), json!(value));
        } else if prop["type"] == "array" && prop["items"]["type"] == "string" {
            body.insert(key.clone(), json!([value]));
        }
    }
    Some(Value::Object(body))
}

#[tokio::test]
async fn hostile_strings_get_4xx_answers_and_never_split_headers() {
    let app = spawn_app_with_password().await;
    let token = app.token().await;
    app.post("/api/v1/user/phones", Some(&token), json!({"phone": "+12015550101"}))
        .await
        .assert_status(201);
    let spec: Value = serde_json::from_str(&wagate::api::spec_json()).unwrap();
    let long = "x".repeat(10_000);
    let mut values: Vec<&str> = HOSTILE.to_vec();
    values.push(&long);
    let mut checked = 0;
    for (method, path, op) in operations() {
        // Skip the destructive and the slow: logging out ends the session under test.
        let id = op["operationId"].as_str().unwrap();
        if ["logout", "streamEvents", "revokeToken"].contains(&id) {
            continue;
        }
        for value in &values {
            if path.contains('{') {
                let resp = app
                    .request(method.clone(), &fill(&path, &encode(value)), Some(&token), None)
                    .await;
                assert!(
                    resp.status.as_u16() < 500,
                    "{method} {path} with path {value:?}: {} {}",
                    resp.status,
                    resp.body
                );
                assert!(resp.header("x-injected").is_none());
                checked += 1;
            }
            if let Some(body) = hostile_body(&spec, &op, value) {
                let resp = app
                    .request(method.clone(), &plausible(&path), Some(&token), Some(body.clone()))
                    .await;
                assert!(
                    resp.status.as_u16() < 500,
                    "{method} {path} with body {body}: {} {}",
                    resp.status,
                    resp.body
                );
                assert!(resp.header("x-injected").is_none());
                checked += 1;
            }
        }
    }
    assert!(checked > 100, "only {checked} checks");
    // The stored data is intact.
    app.get("/api/v1/user/phones/+12015550101", Some(&token))
        .await
        .assert_status(200);
}

#[tokio::test]
async fn no_secret_reaches_the_logs() {
    wagate::app::install_crypto_provider();
    let dir = tempfile::tempdir().unwrap();
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let mut child = Command::new(env!("CARGO_BIN_EXE_wagate"))
        .args(["serve", "--listen", &format!("127.0.0.1:{port}"), "--data-dir"])
        .arg(dir.path())
        .env("WAGATE_ENGINE", "sandbox")
        .env("WAGATE_LOG__FORMAT", "json")
        .env("WAGATE_NETWORK__ALLOW_NETWORKS", "[\"127.0.0.1/32\"]")
        .env("RUST_LOG", "trace,hyper=debug,h2=debug")
        .env_remove("WAGATE_DATABASE_URL")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let base = format!("http://127.0.0.1:{port}");
    let client = reqwest::Client::new();
    crate::helpers::eventually(crate::helpers::DEADLINE, || async {
        match client.get(format!("{base}/api/v1/health")).send().await {
            Ok(_) => Ok(()),
            Err(err) => Err(format!("the server does not answer: {err}")),
        }
    })
    .await;
    let post = |path: &str, token: Option<&str>, body: Value| {
        let mut req = client.post(format!("{base}{path}")).json(&body);
        if let Some(token) = token {
            req = req.bearer_auth(token);
        }
        req.send()
    };
    post("/api/v1/auth/change-password", None, json!({"newPassword": PASSWORD}))
        .await
        .unwrap();
    let login: Value = post("/api/v1/auth/login", None, json!({"password": PASSWORD}))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let session = login["token"].as_str().unwrap().to_owned();
    let permanent: Value = post("/api/v1/auth/generate-token", None, json!({"password": PASSWORD}))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let permanent = permanent["token"].as_str().unwrap().to_owned();
    let hook: Value = post(
        "/api/v1/user/webhooks",
        Some(&session),
        json!({"url": "http://127.0.0.1:9/hook", "services": ["message.received"]}),
    )
    .await
    .unwrap()
    .json()
    .await
    .unwrap();
    let secret = hook["secret"].as_str().unwrap().to_owned();
    client
        .get(format!("{base}/api/v1/auth/verify?token={permanent}"))
        .send()
        .await
        .unwrap();
    post("/api/v1/auth/login", None, json!({"password": "a wrong password"}))
        .await
        .unwrap();
    client
        .get(format!("{base}/api/v1/user/phones"))
        .header("Cookie", format!("wagate_session={session}"))
        .send()
        .await
        .unwrap();
    child.kill().unwrap();
    let mut logs = String::new();
    child.stderr.take().unwrap().read_to_string(&mut logs).unwrap();
    child.stdout.take().unwrap().read_to_string(&mut logs).unwrap();
    child.wait().unwrap();
    assert!(logs.len() > 1000, "the server logged: {logs}");
    for (what, value) in [
        ("the password", PASSWORD),
        ("a wrong password", "a wrong password"),
        ("a session token", session.as_str()),
        ("a permanent token", permanent.as_str()),
        ("a webhook secret", secret.as_str()),
    ] {
        assert!(!logs.contains(value), "{what} appears in the logs");
    }
}

/// Files and directories under `dir` that users other than the owner may read or enter.
fn open_to_others(dir: &std::path::Path) -> Vec<String> {
    use std::os::unix::fs::PermissionsExt;
    let mut open = Vec::new();
    let mut pending = vec![dir.to_path_buf()];
    while let Some(path) = pending.pop() {
        let meta = std::fs::symlink_metadata(&path).unwrap();
        if meta.permissions().mode() & 0o077 != 0 {
            open.push(format!("{} {:o}", path.display(), meta.permissions().mode() & 0o777));
        }
        if meta.is_dir() {
            pending.extend(std::fs::read_dir(&path).unwrap().map(|e| e.unwrap().path()));
        }
    }
    open
}

#[tokio::test]
async fn the_data_directory_is_private_to_the_server_user() {
    use std::os::unix::fs::PermissionsExt;
    wagate::app::install_crypto_provider();
    let root = tempfile::tempdir().unwrap();
    // An existing data dir left open by an older version (or a careless copy).
    let dir = root.path().join("data");
    std::fs::create_dir_all(dir.join("sandbox")).unwrap();
    std::fs::write(dir.join("sandbox/old.json"), b"{}").unwrap();
    for (path, mode) in [
        (dir.clone(), 0o755),
        (dir.join("sandbox"), 0o755),
        (dir.join("sandbox/old.json"), 0o644),
    ] {
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).unwrap();
    }
    assert_eq!(open_to_others(&dir).len(), 3);
    let (database_url, _pg) = crate::helpers::fresh_database().await;
    let mut process = crate::process::Process::start(crate::helpers::free_port(), &dir, &database_url, &[]).await;
    process.log_in(true).await;
    process.pair("+12015550101").await;
    // The database, its WAL, the sandbox's link files: all written, none readable by others.
    if database_url.is_empty() {
        assert!(dir.join("wagate.db").exists());
    }
    assert!(std::fs::read_dir(dir.join("sandbox")).unwrap().count() > 1);
    let open = open_to_others(&dir);
    assert!(open.is_empty(), "readable by others: {open:?}");
}

#[tokio::test]
async fn proxy_environment_variables_do_not_carry_guarded_requests() {
    wagate::app::install_crypto_provider();
    let (proxy_url, visits) = counting_proxy().await;
    let receiver = crate::fixtures::Receiver::start().await;
    let dir = tempfile::tempdir().unwrap();
    let (database_url, _pg) = crate::helpers::fresh_database().await;
    let env = [
        ("HTTP_PROXY", proxy_url.as_str()),
        ("http_proxy", proxy_url.as_str()),
        ("HTTPS_PROXY", proxy_url.as_str()),
        ("ALL_PROXY", proxy_url.as_str()),
    ];
    let mut process =
        crate::process::Process::start(crate::helpers::free_port(), dir.path(), &database_url, &env).await;
    process.log_in(true).await;
    let hook = process
        .post(
            "/api/v1/user/webhooks",
            json!({"url": receiver.url(), "services": ["message.received"]}),
        )
        .await;
    hook.assert_status(201);
    let id = hook.body["id"].as_str().unwrap();
    let test = process
        .post(&format!("/api/v1/user/webhooks/{id}/test"), json!({}))
        .await;
    test.assert_status(200);
    assert_eq!(test.body["delivered"], true, "{}", test.body);
    assert_eq!(receiver.hits().len(), 1, "the receiver was not reached directly");
    assert_eq!(
        visits.load(std::sync::atomic::Ordering::SeqCst),
        0,
        "a guarded request went through the proxy"
    );
}

/// A "proxy" that only counts who comes to it; returns its URL and the count.
async fn counting_proxy() -> (String, std::sync::Arc<std::sync::atomic::AtomicUsize>) {
    let proxy = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", proxy.local_addr().unwrap());
    let visits = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let counted = std::sync::Arc::clone(&visits);
    tokio::spawn(async move {
        while let Ok((socket, _)) = proxy.accept().await {
            counted.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            drop(socket);
        }
    });
    (url, visits)
}

#[tokio::test]
async fn an_explicit_proxy_carries_requests_and_targets_are_checked_before_it() {
    let (proxy_url, visits) = counting_proxy().await;
    let visited = || visits.load(std::sync::atomic::Ordering::SeqCst);
    let app = crate::helpers::builder()
        .with("network.proxy", proxy_url.as_str())
        .spawn()
        .await;
    app.set_first_password().await;
    let token = app.token().await;
    let create = |url: &str, service: &str| {
        app.post(
            "/api/v1/user/webhooks",
            Some(&token),
            json!({"url": url, "services": [service]}),
        )
    };
    // Metadata is refused before anything is sent, proxy or not.
    create("http://169.254.169.254/latest/meta-data/", "message.received")
        .await
        .assert_error(400, "invalid_webhook_url");
    create("http://metadata.google.internal/", "message.received")
        .await
        .assert_error(400, "invalid_webhook_url");
    // A loopback receiver, allowed now (the test servers allow private networks)…
    let hook = create("http://127.0.0.1:9/hook", "message.received").await;
    hook.assert_status(201);
    let id = hook.body["id"].as_str().unwrap().to_owned();
    let ping = app
        .post(&format!("/api/v1/user/webhooks/{id}/test"), Some(&token), json!({}))
        .await;
    ping.assert_status(200);
    assert_eq!(ping.body["delivered"], false, "{}", ping.body);
    assert_eq!(visited(), 1, "the request did not go through the configured proxy");
    // …is refused once the rules close private networks: checked here, never sent.
    let app = app.restart_with("network.allow_private", false).await;
    let token = app.token().await;
    let ping = app
        .post(&format!("/api/v1/user/webhooks/{id}/test"), Some(&token), json!({}))
        .await;
    ping.assert_status(200);
    assert_eq!(ping.body["delivered"], false, "{}", ping.body);
    let error = ping.body["error"].as_str().unwrap();
    assert!(error.contains("refused"), "{error}");
    assert_eq!(visited(), 1, "a refused target reached the proxy");
}

#[tokio::test]
async fn pages_cannot_be_framed_and_the_dashboard_talks_only_to_its_own_origin() {
    let app = crate::helpers::spawn_app().await;
    for path in ["/", "/docs", "/docs/"] {
        let resp = send(app.client.get(app.url(path))).await;
        assert!(
            resp.status.is_success() || resp.status.is_redirection(),
            "{path}: {}",
            resp.status
        );
        assert_eq!(resp.header("x-frame-options"), Some("DENY"), "{path}");
        let csp = resp.header("content-security-policy").unwrap_or_default();
        assert!(csp.contains("frame-ancestors 'none'"), "{path}: {csp}");
        assert_eq!(resp.header("x-content-type-options"), Some("nosniff"), "{path}");
    }
    let csp = send(app.client.get(app.url("/"))).await;
    let csp = csp.header("content-security-policy").unwrap().to_owned();
    assert!(csp.contains("connect-src 'self';"), "{csp}");
    assert!(
        !csp.contains("ws:") && !csp.contains("wss:"),
        "any host's WebSocket is allowed: {csp}"
    );
}

/// Streams a chunked body of up to `total` bytes to `path` without credentials, and
/// returns the status the server answered with and how much had been sent by then.
async fn stream_without_auth(port: u16, path: &str, total: usize) -> (u16, usize) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let socket = tokio::net::TcpStream::connect(("127.0.0.1", port)).await.unwrap();
    let (mut read, mut write) = socket.into_split();
    let sent = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let counter = std::sync::Arc::clone(&sent);
    let head = format!(
        "POST {path} HTTP/1.1\r\nhost: 127.0.0.1:{port}\r\ncontent-type: application/json\r\ntransfer-encoding: chunked\r\n\r\n"
    );
    let writer = tokio::spawn(async move {
        write.write_all(head.as_bytes()).await?;
        let chunk = format!("{:x}\r\n{}\r\n", 64 * 1024, " ".repeat(64 * 1024));
        while counter.load(std::sync::atomic::Ordering::SeqCst) < total {
            write.write_all(chunk.as_bytes()).await?;
            counter.fetch_add(64 * 1024, std::sync::atomic::Ordering::SeqCst);
        }
        write.write_all(b"0\r\n\r\n").await
    });
    let mut answer = Vec::new();
    let mut buf = [0u8; 4096];
    while !answer.windows(4).any(|w| w == b"\r\n\r\n") {
        match read.read(&mut buf).await {
            Ok(0) | Err(_) => break,
            Ok(n) => answer.extend_from_slice(&buf[..n]),
        }
    }
    let at_answer = sent.load(std::sync::atomic::Ordering::SeqCst);
    writer.abort();
    let status = String::from_utf8_lossy(&answer)
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    (status, at_answer)
}

#[tokio::test]
async fn unauthenticated_chunked_bodies_are_cut_off_early_and_memory_stays_flat() {
    wagate::app::install_crypto_provider();
    let dir = tempfile::tempdir().unwrap();
    let (database_url, _pg) = crate::helpers::fresh_database().await;
    let port = crate::helpers::free_port();
    let mut process = crate::process::Process::start(port, dir.path(), &database_url, &[]).await;
    process.log_in(true).await;
    let pid = process.child.id();
    let (_, rss_before) = crate::process::fds_and_rss(pid);
    // Eight callers at once, each offering 100 MB to the route that takes media.
    let path = "/api/v1/user/phones/+12015550123/message";
    let tries = (0..8).map(|_| stream_without_auth(port, path, 100 * 1024 * 1024));
    let answers = futures::future::join_all(tries).await;
    let (_, rss_after) = crate::process::fds_and_rss(pid);
    for (status, sent) in &answers {
        assert!(matches!(status, 401 | 413), "answered {status}");
        // What was sent by then sits in socket buffers (a few MiB at most while the
        // server reads nothing), not in the server; before, it read 22 MiB first.
        assert!(*sent < 16 * 1024 * 1024, "{sent} bytes were taken before the answer");
    }
    assert!(
        rss_after < rss_before + 32 * 1024,
        "memory grew from {rss_before} KiB to {rss_after} KiB"
    );
    // With a token, the media route still takes a large body.
    let token = process.token.clone().unwrap();
    use base64::Engine as _;
    process
        .post("/api/v1/user/phones", json!({"phone": "+12015550123"}))
        .await
        .assert_status(201);
    let media = base64::engine::general_purpose::STANDARD.encode(vec![7u8; 2 * 1024 * 1024]);
    let resp = send(
        reqwest::Client::new()
            .post(format!("{}{path}", process.base))
            .bearer_auth(token)
            .json(&json!({"recipient": "+12015550999", "media": format!("data:application/pdf;base64,{media}")})),
    )
    .await;
    assert!(
        resp.status != 413 && resp.status.as_u16() < 500,
        "{} {}",
        resp.status,
        resp.body
    );
}

#[tokio::test]
async fn an_authenticated_chunked_body_over_the_limit_is_413_while_streaming() {
    let app = crate::helpers::builder().with("http.body_limit", 4096).spawn().await;
    app.set_first_password().await;
    let token = app.token().await;
    let chunks = (0..64).map(|_| Ok::<_, std::io::Error>(vec![b' '; 1024]));
    let resp = send(
        app.client
            .post(app.url("/api/v1/user/phones"))
            .bearer_auth(&token)
            .header("content-type", "application/json")
            .body(reqwest::Body::wrap_stream(futures::stream::iter(chunks))),
    )
    .await;
    resp.assert_error(413, "payload_too_large");
    app.get("/api/v1/user/phones", Some(&token)).await.assert_status(200);
}

#[tokio::test]
async fn unknown_methods_and_routes_do_not_mint_metric_labels() {
    let app = spawn_app_with_password().await;
    let token = app.token().await;
    for i in 0..5 {
        let method = Method::from_bytes(format!("X{i}ATTACK").as_bytes()).unwrap();
        let resp = send(app.client.request(method, app.url(&format!("/no/such/route/{i}")))).await;
        assert!(resp.status.is_client_error(), "{}", resp.status);
    }
    let text = app.metrics(&token).await;
    assert!(!text.contains("ATTACK") && !text.contains("/no/such"), "{text}");
    assert!(text.contains(r#"operation="other",method="OTHER""#), "{text}");
}
