//! What survives a `kill -9`: the gateway runs as its own process here, so it can be killed.

use std::collections::{HashMap, HashSet};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use serde_json::json;

use crate::fixtures::Receiver;
use crate::helpers::{PASSWORD, fresh_database, send};

const BIN: &str = env!("CARGO_BIN_EXE_wagate");
const A: &str = "+12015550101";
const ALICE: &str = "+12015550150";

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// The gateway as a child process on a fixed port and data dir.
struct Gateway {
    child: Child,
    base: String,
}

impl Gateway {
    async fn start(port: u16, dir: &std::path::Path, database_url: &str) -> Self {
        let child = Command::new(BIN)
            .args(["serve", "--listen", &format!("127.0.0.1:{port}"), "--data-dir"])
            .arg(dir)
            .env("WAGATE_ENGINE", "sandbox")
            .env("WAGATE_DATABASE_URL", database_url)
            .env("WAGATE_WEBHOOKS__BACKOFF_MIN", "20ms")
            .env("WAGATE_WEBHOOKS__BACKOFF_MAX", "200ms")
            .env("WAGATE_SANDBOX__CONNECT_DELAY", "10ms")
            .env("RUST_LOG", "warn")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let gateway = Self {
            child,
            base: format!("http://127.0.0.1:{port}"),
        };
        let client = reqwest::Client::new();
        for _ in 0..500 {
            if client
                .get(format!("{}/api/v1/health", gateway.base))
                .send()
                .await
                .is_ok()
            {
                return gateway;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        panic!("the gateway did not start");
    }

    fn kill_9(mut self) {
        // Child::kill sends SIGKILL: no graceful shutdown, nothing flushed.
        self.child.kill().unwrap();
        self.child.wait().unwrap();
    }
}

impl Drop for Gateway {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

async fn post(base: &str, path: &str, token: Option<&str>, body: serde_json::Value) -> crate::helpers::Response {
    let mut req = reqwest::Client::new().post(format!("{base}{path}")).json(&body);
    if let Some(token) = token {
        req = req.bearer_auth(token);
    }
    send(req).await
}

#[tokio::test]
async fn events_survive_a_dead_receiver_and_a_killed_gateway() {
    wagate::app::install_crypto_provider();
    let dir = tempfile::tempdir().unwrap();
    let (database_url, _guard) = fresh_database().await;
    let port = free_port();
    let receiver_port = free_port();
    let gateway = Gateway::start(port, dir.path(), &database_url).await;
    let base = gateway.base.clone();
    post(
        &base,
        "/api/v1/auth/change-password",
        None,
        json!({"newPassword": PASSWORD}),
    )
    .await
    .assert_status(200);
    let token = post(&base, "/api/v1/auth/login", None, json!({"password": PASSWORD}))
        .await
        .body["token"]
        .as_str()
        .unwrap()
        .to_owned();
    let t = Some(token.as_str());
    post(
        &base,
        "/api/v1/sandbox/accounts",
        t,
        json!({"phone": ALICE, "name": "Alice"}),
    )
    .await
    .assert_status(201);
    post(&base, "/api/v1/user/phones", t, json!({"phone": A}))
        .await
        .assert_status(201);
    post(&base, &format!("/api/v1/user/phones/{A}/connect"), t, json!({}))
        .await
        .assert_status(200);
    post(&base, &format!("/api/v1/sandbox/phones/{A}/scan"), t, json!({}))
        .await
        .assert_status(200);
    for _ in 0..200 {
        let view = send(
            reqwest::Client::new()
                .get(format!("{base}/api/v1/user/phones/{A}"))
                .bearer_auth(&token),
        )
        .await;
        if view.body["status"] == "connected" {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    // The receiver is down: nothing listens on its port yet.
    let hook_url = format!("http://127.0.0.1:{receiver_port}/hook");
    post(
        &base,
        "/api/v1/user/webhooks",
        t,
        json!({"url": hook_url, "services": ["message.received"]}),
    )
    .await
    .assert_status(201);
    let mut ids = Vec::new();
    for i in 0..200 {
        let resp = post(
            &base,
            &format!("/api/v1/sandbox/phones/{A}/inbound"),
            t,
            json!({"from": ALICE, "message": format!("n{i}")}),
        )
        .await;
        resp.assert_status(200);
        assert_eq!(resp.body["delivered"], true, "stored before the answer");
        ids.push(resp.body["id"].as_str().unwrap().to_owned());
    }
    gateway.kill_9();

    let receiver = Receiver::start_on(&format!("127.0.0.1:{receiver_port}")).await;
    let gateway = Gateway::start(port, dir.path(), &database_url).await;
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    let hits = loop {
        let hits = receiver.hits();
        let distinct: HashSet<&str> = hits.iter().map(|h| h.header("x-wagate-delivery")).collect();
        if distinct.len() >= 200 {
            break hits;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "only {} of 200 events delivered",
            distinct.len()
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    // Every message exactly once by delivery id (retries reuse the id), in order.
    let mut text_of_delivery: HashMap<String, String> = HashMap::new();
    let mut order = Vec::new();
    for hit in &hits {
        let body = hit.json();
        let text = body["data"]["text"].as_str().unwrap().to_owned();
        let delivery = hit.header("x-wagate-delivery").to_owned();
        let previous = text_of_delivery.insert(delivery, text.clone());
        assert!(
            previous.is_none() || previous.as_ref() == Some(&text),
            "a delivery id names one event"
        );
        if !order.contains(&text) {
            order.push(text);
        }
    }
    let expected: Vec<String> = (0..200).map(|i| format!("n{i}")).collect();
    assert_eq!(order, expected, "all 200, in order");
    let message_ids: HashSet<String> = hits
        .iter()
        .map(|h| h.json()["data"]["id"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(message_ids, ids.into_iter().collect::<HashSet<_>>());
    drop(gateway);
}
