//! Faults the gateway must ride out: a `kill -9` in the middle of a burst, a database that
//! is locked for a while, a webhook receiver that hangs, phones that keep crashing under
//! load, and SIGTERM with requests in flight. Each is bounded in time.

use std::collections::HashSet;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use serde_json::{Value, json};

use crate::fixtures::Receiver;
use crate::helpers::{DEADLINE, builder, eventually, free_port, fresh_database, send};
use crate::process::Process;

const A: &str = "+12015550101";
const B: &str = "+12015550102";
const ALICE: &str = "+12015550150";
/// Longer than any request takes on a loaded machine, far shorter than a hung delivery.
const HUNG: Duration = Duration::from_secs(30);

async fn history_ids(process: &Process, phone: &str) -> HashSet<String> {
    let mut ids = HashSet::new();
    let mut page = 1;
    loop {
        let body = process
            .get(&format!("/api/v1/user/phones/{phone}/messages?limit=100&page={page}"))
            .await
            .body;
        let data = body["data"].as_array().unwrap();
        if data.is_empty() {
            return ids;
        }
        ids.extend(data.iter().map(|m| m["id"].as_str().unwrap().to_owned()));
        page += 1;
    }
}

#[tokio::test]
async fn a_kill_9_during_a_burst_loses_nothing_that_was_acknowledged() {
    wagate::app::install_crypto_provider();
    let dir = tempfile::tempdir().unwrap();
    let (database_url, _guard) = fresh_database().await;
    let port = free_port();
    let receiver = Receiver::start().await;
    let mut gateway = Process::start(port, dir.path(), &database_url, &[]).await;
    gateway.log_in(true).await;
    gateway
        .post("/api/v1/sandbox/accounts", json!({"phone": ALICE, "name": "Alice"}))
        .await
        .assert_status(201);
    gateway.pair(A).await;
    gateway
        .post(
            "/api/v1/user/webhooks",
            json!({"url": receiver.url(), "services": ["message.received"]}),
        )
        .await
        .assert_status(201);

    // A burst of inbound messages and sends, from several clients, cut short by SIGKILL.
    let base = gateway.base.clone();
    let token = gateway.token.clone().unwrap();
    let answered = Arc::new(AtomicUsize::new(0));
    let mut tasks = Vec::new();
    for worker in 0..6 {
        let base = base.clone();
        let token = token.clone();
        let answered = Arc::clone(&answered);
        tasks.push(tokio::spawn(async move {
            let client = reqwest::Client::new();
            let mut acknowledged = Vec::new();
            for i in 0..1000 {
                let (path, body) = if worker % 2 == 0 {
                    (
                        format!("/api/v1/sandbox/phones/{A}/inbound"),
                        json!({"from": ALICE, "message": format!("in {worker}-{i}")}),
                    )
                } else {
                    (
                        format!("/api/v1/user/phones/{A}/message"),
                        json!({"recipient": ALICE, "message": format!("out {worker}-{i}")}),
                    )
                };
                let Ok(resp) = client
                    .post(format!("{base}{path}"))
                    .bearer_auth(&token)
                    .json(&body)
                    .send()
                    .await
                else {
                    break;
                };
                if resp.status() != 200 {
                    break;
                }
                let Ok(body) = resp.json::<Value>().await else { break };
                let inbound = worker % 2 == 0;
                if !inbound || body["delivered"] == true {
                    acknowledged.push((inbound, body["id"].as_str().unwrap().to_owned()));
                    answered.fetch_add(1, Ordering::Relaxed);
                }
            }
            acknowledged
        }));
    }
    // Killed once the burst is well under way, however fast this machine is.
    eventually(DEADLINE, || async {
        match answered.load(Ordering::Relaxed) {
            n @ 100.. => Ok(n),
            n => Err(format!("only {n} requests answered")),
        }
    })
    .await;
    gateway.signal("-KILL");
    let mut acknowledged = Vec::new();
    for task in tasks {
        acknowledged.extend(task.await.unwrap());
    }
    drop(gateway);
    assert!(acknowledged.len() >= 100, "the burst got going: {}", acknowledged.len());

    let mut gateway = Process::start(port, dir.path(), &database_url, &[]).await;
    gateway.log_in(false).await;
    gateway.wait_connected(A).await;
    let stored = history_ids(&gateway, A).await;
    for (_, id) in &acknowledged {
        assert!(
            stored.contains(id),
            "acknowledged message {id} is missing after the restart"
        );
    }
    // Every stored inbound message reaches the webhook (the outbox was written with it).
    let inbound: HashSet<String> = acknowledged
        .iter()
        .filter(|(i, _)| *i)
        .map(|(_, id)| id.clone())
        .collect();
    eventually(DEADLINE, || async {
        let delivered: HashSet<String> = receiver
            .hits()
            .iter()
            .map(|h| h.json()["data"]["id"].as_str().unwrap().to_owned())
            .collect();
        match inbound.difference(&delivered).count() {
            0 => Ok(()),
            n => Err(format!(
                "{n} acknowledged inbound messages have not reached the webhook"
            )),
        }
    })
    .await;
}

#[tokio::test]
async fn a_locked_database_gives_clear_503s_and_recovers_without_a_restart() {
    let postgres = std::env::var("WAGATE_TEST_DATABASE_URL").is_ok_and(|u| !u.is_empty());
    let app = builder()
        .with("database_busy_timeout", "200ms")
        .with("http.request_timeout", "1s")
        .spawn()
        .await;
    app.set_first_password().await;
    let token = app.token().await;
    use sea_orm::ConnectionTrait;
    // Another client takes the write lock and holds it.
    let locker = sea_orm::Database::connect(if postgres {
        app.database_url.clone()
    } else {
        format!("sqlite://{}?mode=rw", app.data_dir.join("wagate.db").display())
    })
    .await
    .unwrap();
    let txn = sea_orm::TransactionTrait::begin(&locker).await.unwrap();
    if postgres {
        txn.execute_unprepared("LOCK TABLE phones IN ACCESS EXCLUSIVE MODE")
            .await
            .unwrap();
    } else {
        // A write in the open transaction holds SQLite's write lock until it ends.
        txn.execute_unprepared("UPDATE settings SET updated_at = updated_at")
            .await
            .unwrap();
    }
    let resp = app.post("/api/v1/user/phones", Some(&token), json!({"phone": A})).await;
    resp.assert_status(503);
    let code = resp.body["error"]["code"].as_str().unwrap();
    assert!(
        ["database_unavailable", "request_timeout"].contains(&code),
        "{}",
        resp.body
    );
    // The process is fine meanwhile.
    app.get("/api/v1/health", None).await.assert_status(200);
    txn.rollback().await.unwrap();
    drop(locker);
    // The refused add may still have finished once the lock went (a request that timed out
    // leaves its write waiting on the lock): either way the phone gets added, once.
    let again = app.post("/api/v1/user/phones", Some(&token), json!({"phone": A})).await;
    if again.status != 201 {
        again.assert_error(409, "phone_exists");
    }
    app.get(&format!("/api/v1/user/phones/{A}"), Some(&token))
        .await
        .assert_status(200);
}

#[tokio::test]
async fn a_hanging_webhook_receiver_does_not_hold_up_the_api() {
    // Deliveries wait an hour for the receiver, so an API call that waited on one would
    // blow the (generous, machine-independent) 30 s bound below.
    let app = builder().with("webhooks.timeout", "1h").spawn().await;
    app.set_first_password().await;
    let token = app.token().await;
    // Accepts connections and never answers.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/hook", listener.local_addr().unwrap());
    let holder = tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((socket, _)) = listener.accept().await {
            held.push(socket);
        }
    });
    app.post(
        "/api/v1/sandbox/accounts",
        Some(&token),
        json!({"phone": ALICE, "name": "Alice"}),
    )
    .await;
    app.pair_phone(&token, A).await;
    app.pair_phone(&token, B).await;
    app.post(
        "/api/v1/user/webhooks",
        Some(&token),
        json!({"url": url, "services": ["message.received", "message.sent"]}),
    )
    .await
    .assert_status(201);
    for i in 0..50 {
        let phone = if i % 2 == 0 { A } else { B };
        let resp = tokio::time::timeout(
            HUNG,
            app.post(
                &format!("/api/v1/sandbox/phones/{phone}/inbound"),
                Some(&token),
                json!({"from": ALICE, "message": format!("m{i}")}),
            ),
        )
        .await
        .expect("inbound is stored while the receiver hangs");
        resp.assert_status(200);
        tokio::time::timeout(
            HUNG,
            app.post(
                &format!("/api/v1/user/phones/{phone}/message"),
                Some(&token),
                json!({"recipient": ALICE, "message": "x"}),
            ),
        )
        .await
        .expect("sends go on while the receiver hangs")
        .assert_status(200);
    }
    // The count is refreshed every `health.refresh_interval`.
    eventually(DEADLINE, || async {
        let resources = app.get("/api/v1/health/resources", Some(&token)).await.body;
        match resources["queues"]["webhookDeliveries"].as_u64() {
            Some(50..) => Ok(()),
            _ => Err(format!("{resources}")),
        }
    })
    .await;
    holder.abort();
}

#[tokio::test]
async fn phones_crashing_under_load_leave_the_others_alone() {
    let app = builder().with("phones.max_restarts", 100).spawn().await;
    app.set_first_password().await;
    let token = app.token().await;
    app.post(
        "/api/v1/sandbox/accounts",
        Some(&token),
        json!({"phone": ALICE, "name": "Alice"}),
    )
    .await;
    app.pair_phone(&token, A).await;
    app.pair_phone(&token, B).await;
    // B sends for as long as A keeps crashing, and every send must succeed.
    let crashing = std::sync::atomic::AtomicBool::new(true);
    let crasher = async {
        for _ in 0..5 {
            app.crash_and_recover(&token, A).await;
        }
        crashing.store(false, Ordering::Relaxed);
    };
    let sender = async {
        let mut sent = 0;
        while crashing.load(Ordering::Relaxed) || sent < 20 {
            let resp = app
                .post(
                    &format!("/api/v1/user/phones/{B}/message"),
                    Some(&token),
                    json!({"recipient": ALICE, "message": format!("b{sent}")}),
                )
                .await;
            assert_eq!(resp.status, 200, "B's send {sent}: {}", resp.body);
            sent += 1;
        }
        sent
    };
    let ((), sent) = tokio::join!(crasher, sender);
    assert!(sent >= 20, "{sent}");
    app.wait_for_status(&token, A, "connected").await;
    let restarts = app.restarts(&token).await;
    assert!(restarts >= 5, "A was restarted: {restarts}");
}

#[tokio::test]
async fn sigterm_lets_in_flight_requests_finish() {
    wagate::app::install_crypto_provider();
    let dir = tempfile::tempdir().unwrap();
    let (database_url, _guard) = fresh_database().await;
    let port = free_port();
    // Paced sends: the second of two waits about a second in the phone's queue.
    let pacing = [
        ("WAGATE_MESSAGING__PACING", "on"),
        ("WAGATE_MESSAGING__SEND_INTERVAL", "1s"),
        ("WAGATE_MESSAGING__SEND_JITTER", "0s"),
    ];
    let mut gateway = Process::start(port, dir.path(), &database_url, &pacing).await;
    gateway.log_in(true).await;
    gateway
        .post("/api/v1/sandbox/accounts", json!({"phone": ALICE, "name": "Alice"}))
        .await
        .assert_status(201);
    gateway.pair(A).await;
    let send_one = |text: &'static str| {
        let base = gateway.base.clone();
        let token = gateway.token.clone().unwrap();
        tokio::spawn(async move {
            send(
                reqwest::Client::new()
                    .post(format!("{base}/api/v1/user/phones/{A}/message"))
                    .bearer_auth(token)
                    .json(&json!({"recipient": ALICE, "message": text})),
            )
            .await
        })
    };
    let first = send_one("first");
    let second = send_one("second");
    let first = first.await.unwrap();
    first.assert_status(200);
    gateway.signal("-TERM");
    let second = second.await.unwrap();
    second.assert_status(200);
    let status = tokio::task::spawn_blocking(move || {
        let status = gateway.child.wait().unwrap();
        (status, gateway)
    })
    .await
    .unwrap();
    assert!(status.0.success(), "exits cleanly: {:?}", status.0);
    drop(status.1);

    let mut gateway = Process::start(port, dir.path(), &database_url, &pacing).await;
    gateway.log_in(false).await;
    let stored = history_ids(&gateway, A).await;
    for resp in [&first, &second] {
        assert!(
            stored.contains(resp.body["id"].as_str().unwrap()),
            "an answered send was not stored"
        );
    }
}
