use futures::StreamExt;
use serde_json::{Value, json};

use crate::fixtures::{Receiver, signature_valid};
use crate::helpers::{DEADLINE, TestApp, builder, eventually, spawn_app_with_password};

const A: &str = "+12015550101";
const ALICE: &str = "+12015550150";
const HOOKS: &str = "/api/v1/user/webhooks";

async fn webhook_app(app: TestApp) -> (TestApp, String) {
    let token = app.token().await;
    app.post(
        "/api/v1/sandbox/accounts",
        Some(&token),
        json!({"phone": ALICE, "name": "Alice"}),
    )
    .await
    .assert_status(201);
    app.pair_phone(&token, A).await;
    (app, token)
}

fn fast_retries() -> crate::helpers::Builder {
    builder()
        .with("webhooks.backoff_min", "20ms")
        .with("webhooks.backoff_max", "100ms")
}

async fn create_hook(app: &TestApp, token: &str, url: &str, services: Value) -> Value {
    let resp = app
        .post(HOOKS, Some(token), json!({"url": url, "services": services}))
        .await;
    resp.assert_status(201);
    resp.body
}

async fn inbound(app: &TestApp, token: &str, text: &str) -> Value {
    let resp = app
        .post(
            &format!("/api/v1/sandbox/phones/{A}/inbound"),
            Some(token),
            json!({"from": ALICE, "message": text}),
        )
        .await;
    resp.assert_status(200);
    resp.body
}

#[tokio::test]
async fn an_inbound_message_arrives_signed() {
    let (app, token) = webhook_app(spawn_app_with_password().await).await;
    let receiver = Receiver::start().await;
    let hook = create_hook(&app, &token, &receiver.url(), json!(["message.received"])).await;
    let secret = hook["secret"].as_str().unwrap();
    assert!(secret.starts_with("whsec_"));
    assert_eq!(hook["services"], json!(["message.received"]));

    let injected = inbound(&app, &token, "hello gateway").await;
    let hit = receiver.wait_for(1).await.remove(0);
    assert!(signature_valid(&hit, secret), "signature verifies");
    assert!(!signature_valid(&hit, "whsec_wrong"), "and not with another secret");
    assert_eq!(hit.header("x-wagate-event"), "message.received");
    assert_eq!(hit.header("content-type"), "application/json");
    let body = hit.json();
    assert_eq!(hit.header("x-wagate-delivery"), body["id"].as_str().unwrap());
    assert_eq!(body["event"], "message.received");
    assert_eq!(body["phone"], A);
    assert_eq!(body["data"]["id"], injected["id"]);
    assert_eq!(body["data"]["text"], "hello gateway");
    assert_eq!(body["data"]["pushName"], "Alice");
    // As the spec documents it: a field without a value is absent, never null.
    let data = body["data"].as_object().unwrap();
    assert!(data.values().all(|v| !v.is_null()), "{body}");
    assert!(!data.contains_key("quotedId"), "{body}");
    let age = chrono::Utc::now().timestamp() - hit.header("x-wagate-timestamp").parse::<i64>().unwrap();
    assert!(age.abs() < 60);

    // The listing never shows the secret.
    let list = app.get(HOOKS, Some(&token)).await;
    assert_eq!(list.body["data"][0]["id"], hook["id"]);
    assert!(list.body["data"][0].get("secret").is_none());
}

#[tokio::test]
async fn a_failing_receiver_gets_the_event_once_it_recovers() {
    let app = fast_retries().spawn().await;
    app.set_first_password().await;
    let (app, token) = webhook_app(app).await;
    let receiver = Receiver::start().await;
    receiver.fail_next(2);
    let hook = create_hook(&app, &token, &receiver.url(), json!(["message.received"])).await;
    inbound(&app, &token, "try again").await;
    let hits = receiver.wait_for(3).await;
    let ids: Vec<&str> = hits.iter().map(|h| h.header("x-wagate-delivery")).collect();
    assert!(
        ids.iter().all(|id| *id == ids[0]),
        "the same delivery id on every retry: {ids:?}"
    );
    let id = hook["id"].as_str().unwrap();
    let log = deliveries(&app, &token, id, "?status=delivered", 1).await;
    let entry = &log["data"][0];
    assert_eq!(entry["status"], "delivered", "{log}");
    assert_eq!(entry["attempts"], 3);
    assert_eq!(entry["lastStatusCode"], 200);
    assert_eq!(entry["event"], "message.received");
    assert!(entry["deliveredAt"].is_string());
    assert_eq!(log["pagination"]["total"], 1);
}

#[tokio::test]
async fn deliveries_give_up_after_the_configured_attempts() {
    let app = fast_retries().with("webhooks.max_attempts", 2).spawn().await;
    app.set_first_password().await;
    let (app, token) = webhook_app(app).await;
    let receiver = Receiver::start().await;
    receiver.fail_next(100);
    let hook = create_hook(&app, &token, &receiver.url(), json!(["message.received"])).await;
    inbound(&app, &token, "doomed").await;
    receiver.wait_for(2).await;
    let id = hook["id"].as_str().unwrap();
    let log = deliveries(&app, &token, id, "?status=failed", 1).await;
    assert_eq!(log["data"][0]["attempts"], 2, "{log}");
    assert_eq!(log["data"][0]["lastStatusCode"], 500);
    assert!(log["data"][0]["lastError"].as_str().unwrap().contains("500"));
    let delivery_id = log["data"][0]["id"].as_str().unwrap();
    assert_given_up(&app, &token, &receiver, delivery_id, 2).await;

    // By hand it goes again, with the same id.
    let resp = app
        .post(
            &format!("{HOOKS}/{id}/deliveries/{delivery_id}/redeliver"),
            Some(&token),
            json!({}),
        )
        .await;
    resp.assert_status(200);
    assert_eq!(resp.body["status"], "pending");
    let hits = eventually(DEADLINE, || async {
        let hits = receiver.hits();
        match hits
            .iter()
            .filter(|h| h.header("x-wagate-delivery") == delivery_id)
            .count()
        {
            3 => Ok(hits),
            n => Err(format!("{n} attempts of {delivery_id}")),
        }
    })
    .await;
    assert_eq!(hits.last().unwrap().header("x-wagate-delivery"), delivery_id);
    app.post(
        &format!("{HOOKS}/{id}/deliveries/nope/redeliver"),
        Some(&token),
        json!({}),
    )
    .await
    .assert_error(404, "delivery_not_found");
}

/// Waits until the webhook's delivery log (with `query`) holds at least `n` entries.
async fn deliveries(app: &TestApp, token: &str, hook: &str, query: &str, n: usize) -> Value {
    eventually(DEADLINE, || async {
        let log = app.get(&format!("{HOOKS}/{hook}/deliveries{query}"), Some(token)).await;
        log.assert_status(200);
        // The page and its total are two reads: a delivered mark landing between them
        // makes them disagree for a moment.
        let total = log.body["pagination"]["total"].as_u64().unwrap_or(0);
        match log.body["data"].as_array().map_or(0, Vec::len) {
            count if count >= n && total >= n as u64 => Ok(log.body),
            _ => Err(format!("fewer than {n} deliveries{query}: {}", log.body)),
        }
    })
    .await
}

/// Proves a given-up delivery is not tried again: a later event of the same phone goes
/// through the same ordered lane, so once it arrived, the given-up one had its last try.
async fn assert_given_up(app: &TestApp, token: &str, receiver: &Receiver, delivery_id: &str, tries: usize) {
    receiver.fail_next(0);
    let later = inbound(app, token, "later").await;
    let later_id = later["id"].as_str().unwrap().to_owned();
    eventually(DEADLINE, || async {
        match receiver
            .hits()
            .iter()
            .any(|h| h.json()["data"]["id"] == later_id.as_str())
        {
            true => Ok(()),
            false => Err("the later event has not arrived"),
        }
    })
    .await;
    let tried = receiver
        .hits()
        .iter()
        .filter(|h| h.header("x-wagate-delivery") == delivery_id)
        .count();
    assert_eq!(tried, tries, "no attempt after giving up");
}

#[tokio::test]
async fn deliveries_give_up_after_the_configured_time_whatever_the_count() {
    let app = fast_retries()
        .with("webhooks.backoff_max", "40ms")
        .with("webhooks.give_up_after", "600ms")
        .spawn()
        .await;
    app.set_first_password().await;
    let (app, token) = webhook_app(app).await;
    let receiver = Receiver::start().await;
    receiver.fail_next(usize::MAX);
    let hook = create_hook(&app, &token, &receiver.url(), json!(["message.received"])).await;
    inbound(&app, &token, "doomed").await;
    let id = hook["id"].as_str().unwrap();
    let log = deliveries(&app, &token, id, "?status=failed", 1).await;
    let entry = &log["data"][0];
    let created: chrono::DateTime<chrono::Utc> = entry["createdAt"].as_str().unwrap().parse().unwrap();
    let given_up: chrono::DateTime<chrono::Utc> = entry["updatedAt"].as_str().unwrap().parse().unwrap();
    assert!(
        given_up - created >= chrono::Duration::milliseconds(600),
        "kept trying for give_up_after: {entry}"
    );
    let attempts = entry["attempts"].as_u64().unwrap();
    assert!(attempts >= 3, "retried, not counted out: {entry}");
    let delivery_id = entry["id"].as_str().unwrap().to_owned();
    assert_given_up(&app, &token, &receiver, &delivery_id, attempts as usize).await;
}

#[tokio::test]
async fn every_failed_delivery_is_redelivered_at_once_in_order() {
    let app = fast_retries().with("webhooks.max_attempts", 1).spawn().await;
    app.set_first_password().await;
    let (app, token) = webhook_app(app).await;
    let receiver = Receiver::start().await;
    receiver.fail_next(usize::MAX);
    let hook = create_hook(&app, &token, &receiver.url(), json!(["message.received"])).await;
    let id = hook["id"].as_str().unwrap();
    for text in ["one", "two", "three"] {
        inbound(&app, &token, text).await;
    }
    app.post(&format!("{HOOKS}/{id}/test"), Some(&token), json!({}))
        .await
        .assert_status(200);
    // Three events and the ping, all failed.
    deliveries(&app, &token, id, "?status=failed", 4).await;
    let failed_hits = receiver.hits().len();

    receiver.fail_next(0);
    app.post(
        &format!("{HOOKS}/{id}/deliveries/redeliver?status=pending"),
        Some(&token),
        json!({}),
    )
    .await
    .assert_error(400, "invalid_status");
    app.post(
        &format!("{HOOKS}/00000000-0000-0000-0000-000000000000/deliveries/redeliver"),
        Some(&token),
        json!({}),
    )
    .await
    .assert_error(404, "webhook_not_found");
    let resp = app
        .post(
            &format!("{HOOKS}/{id}/deliveries/redeliver?status=failed"),
            Some(&token),
            json!({}),
        )
        .await;
    resp.assert_status(200);
    assert_eq!(resp.body["requeued"], 3, "every failed event, but not the ping");
    deliveries(&app, &token, id, "?status=delivered", 3).await;
    let again: Vec<String> = receiver.hits()[failed_hits..]
        .iter()
        .map(|h| h.json()["data"]["text"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(again, ["one", "two", "three"]);
    let failed = deliveries(&app, &token, id, "?status=failed", 1).await;
    assert_eq!(failed["data"].as_array().unwrap().len(), 1, "only the ping: {failed}");
    assert_eq!(failed["data"][0]["event"], "ping");
}

#[tokio::test]
async fn each_phones_events_arrive_in_order() {
    let app = fast_retries().spawn().await;
    app.set_first_password().await;
    let (app, token) = webhook_app(app).await;
    let receiver = Receiver::start().await;
    receiver.fail_next(3);
    create_hook(&app, &token, &receiver.url(), json!(["message.received"])).await;
    for i in 0..30 {
        inbound(&app, &token, &format!("n{i}")).await;
    }
    let seen = texts_in_order(&receiver.wait_for(33).await);
    let expected: Vec<String> = (0..30).map(|i| format!("n{i}")).collect();
    assert_eq!(seen, expected, "in order, retries included");
}

/// The texts of the message events a receiver got, in arrival order, each retry of the
/// same one counted once.
fn texts_in_order(hits: &[crate::fixtures::Hit]) -> Vec<String> {
    let mut seen: Vec<String> = Vec::new();
    for hit in hits.iter().filter(|h| h.json()["event"] == "message.received") {
        let text = hit.json()["data"]["text"].as_str().unwrap_or_default().to_owned();
        if seen.last() != Some(&text) {
            seen.push(text);
        }
    }
    seen
}

/// Deliveries the dispatcher holds in memory.
fn held(app: &TestApp) -> u64 {
    app.state.gateway.held_deliveries()
}

#[tokio::test]
async fn a_long_backlog_waits_in_the_database_and_is_read_in_pages_in_order() {
    let app = fast_retries().with("webhooks.held_per_lane", 4).spawn().await;
    app.set_first_password().await;
    let (app, token) = webhook_app(app).await;
    let receiver = Receiver::start().await;
    receiver.fail_next(usize::MAX);
    create_hook(&app, &token, &receiver.url(), json!(["message.received"])).await;
    for i in 0..30 {
        inbound(&app, &token, &format!("n{i}")).await;
        assert!(held(&app) <= 4, "{} deliveries held in memory", held(&app));
    }
    receiver.wait_for(2).await;
    assert!(held(&app) <= 4, "{} deliveries held in memory", held(&app));
    // The health report counts every waiting delivery, held or not (the count is
    // refreshed every `health.refresh_interval`).
    let queues = eventually(DEADLINE, || async {
        let queues = app.get("/api/v1/health/resources", Some(&token)).await.body["queues"].clone();
        match queues["webhookDeliveries"].as_u64() {
            Some(30) => Ok(queues),
            _ => Err(format!("{queues}")),
        }
    })
    .await;
    assert!(queues["webhookDeliveriesHeld"].as_u64().unwrap() <= 4, "{queues}");
    // A restart finds them all in the database, and still holds only a page.
    let app = app.restart().await;
    eventually(DEADLINE, || async {
        match held(&app) {
            1..=4 => Ok(()),
            n => Err(format!("{n} deliveries held after the restart")),
        }
    })
    .await;
    receiver.fail_next(0);
    let seen = eventually(DEADLINE, || async {
        let seen = texts_in_order(&receiver.hits());
        if seen.len() >= 30 {
            Ok(seen)
        } else {
            Err(format!("{} of 30 delivered", seen.len()))
        }
    })
    .await;
    let expected: Vec<String> = (0..30).map(|i| format!("n{i}")).collect();
    assert_eq!(seen, expected, "in order, across pages and the restart");
    eventually(DEADLINE, || async {
        match held(&app) {
            0 => Ok(()),
            n => Err(format!("{n} still held")),
        }
    })
    .await;
}

#[tokio::test]
async fn one_webhook_per_service() {
    let app = spawn_app_with_password().await;
    let token = app.token().await;
    let first = create_hook(
        &app,
        &token,
        "http://127.0.0.1:9/a",
        json!(["message.received", "phone.status"]),
    )
    .await;
    let id = first["id"].as_str().unwrap();
    let second = app
        .post(
            HOOKS,
            Some(&token),
            json!({"url": "http://127.0.0.1:9/b", "services": ["phone.status"]}),
        )
        .await;
    second.assert_error(409, "webhook_exists");
    assert_eq!(second.body["error"]["existingId"], id);
    // Another service is free.
    let other = create_hook(&app, &token, "http://127.0.0.1:9/c", json!(["message.sent"])).await;
    // Replacing keeps the id; taking a service of another webhook is refused.
    let put = app
        .request(
            reqwest::Method::PUT,
            &format!("{HOOKS}/{id}"),
            Some(&token),
            Some(json!({"url": "http://127.0.0.1:9/z", "services": ["message.status"]})),
        )
        .await;
    put.assert_status(200);
    assert_eq!(put.body["url"], "http://127.0.0.1:9/z");
    assert_eq!(put.body["services"], json!(["message.status"]));
    let steal = app
        .request(
            reqwest::Method::PUT,
            &format!("{HOOKS}/{id}"),
            Some(&token),
            Some(json!({"url": "http://127.0.0.1:9/z", "services": ["message.sent"]})),
        )
        .await;
    steal.assert_error(409, "webhook_exists");
    assert_eq!(steal.body["error"]["existingId"], other["id"]);
    // phone.status is free again after the replace.
    create_hook(&app, &token, "http://127.0.0.1:9/d", json!(["phone.status"])).await;
    app.delete(&format!("{HOOKS}/{id}"), Some(&token))
        .await
        .assert_status(200);
    app.delete(&format!("{HOOKS}/{id}"), Some(&token))
        .await
        .assert_error(404, "webhook_not_found");
    app.get(&format!("{HOOKS}/{id}/deliveries"), Some(&token))
        .await
        .assert_error(404, "webhook_not_found");
}

#[tokio::test]
async fn unsafe_and_invalid_urls_are_refused() {
    let app = spawn_app_with_password().await;
    let token = app.token().await;
    for url in [
        "ftp://example.com/hook",
        "not a url",
        "http://169.254.169.254/latest/meta-data",
        "http://[fe80::1]/hook",
        "http://metadata.google.internal/computeMetadata/v1/",
        "http://user:pass@example.com/hook",
    ] {
        app.post(
            HOOKS,
            Some(&token),
            json!({"url": url, "services": ["message.received"]}),
        )
        .await
        .assert_error(400, "invalid_webhook_url");
    }
    app.post(
        HOOKS,
        Some(&token),
        json!({"url": "http://127.0.0.1:9/x", "services": []}),
    )
    .await
    .assert_error(400, "invalid_request");
    app.post(
        HOOKS,
        Some(&token),
        json!({"url": "http://127.0.0.1:9/x", "services": ["message.deleted"]}),
    )
    .await
    .assert_error(400, "invalid_request");

    let closed = builder().with("network.allow_private", false).spawn().await;
    closed.set_first_password().await;
    let token = closed.token().await;
    closed
        .post(
            HOOKS,
            Some(&token),
            json!({"url": "http://10.0.0.5/hook", "services": ["message.received"]}),
        )
        .await
        .assert_error(400, "invalid_webhook_url");
}

#[tokio::test]
async fn a_test_ping_is_signed_and_logged_and_secrets_rotate() {
    let (app, token) = webhook_app(spawn_app_with_password().await).await;
    let receiver = Receiver::start().await;
    let hook = create_hook(&app, &token, &receiver.url(), json!(["message.received"])).await;
    let id = hook["id"].as_str().unwrap();
    let ping = app.post(&format!("{HOOKS}/{id}/test"), Some(&token), json!({})).await;
    ping.assert_status(200);
    assert_eq!(ping.body["delivered"], true);
    assert_eq!(ping.body["statusCode"], 200);
    let hit = receiver.wait_for(1).await.remove(0);
    assert_eq!(hit.header("x-wagate-event"), "ping");
    assert_eq!(
        hit.header("x-wagate-delivery"),
        ping.body["deliveryId"].as_str().unwrap()
    );
    assert!(signature_valid(&hit, hook["secret"].as_str().unwrap()));
    // The envelope every event has.
    let body = hit.json();
    assert_eq!(body["event"], "ping", "{body}");
    assert_eq!(body["id"], ping.body["deliveryId"], "{body}");
    assert!(body["phone"].is_null() && body["timestamp"].is_string(), "{body}");
    assert_eq!(body["data"]["webhookId"], id, "{body}");

    receiver.fail_next(1);
    let failed = app
        .post(&format!("{HOOKS}/{id}/test"), Some(&token), json!({}))
        .await
        .body;
    assert_eq!(failed["delivered"], false);
    assert_eq!(failed["statusCode"], 500);
    let log = app.get(&format!("{HOOKS}/{id}/deliveries"), Some(&token)).await.body;
    let statuses: Vec<&str> = log["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["status"].as_str().unwrap())
        .collect();
    assert_eq!(statuses, ["failed", "delivered"]);
    // The pings went through the dispatcher, which counts every attempt it makes (the
    // failed one is given up at once: a ping is never retried).
    let metrics = app.metrics(&token).await;
    for counted in [
        r#"wagate_webhook_deliveries_total{outcome="delivered"} 1"#,
        r#"wagate_webhook_deliveries_total{outcome="given_up"} 1"#,
    ] {
        assert!(metrics.contains(counted), "{counted} in\n{metrics}");
    }

    let rotated = app
        .post(&format!("{HOOKS}/{id}/rotate-secret"), Some(&token), json!({}))
        .await;
    rotated.assert_status(200);
    let secret = rotated.body["secret"].as_str().unwrap();
    assert_ne!(secret, hook["secret"].as_str().unwrap());
    inbound(&app, &token, "after rotation").await;
    let hits = receiver.wait_for(3).await;
    assert!(signature_valid(&hits[2], secret));
    assert!(!signature_valid(&hits[2], hook["secret"].as_str().unwrap()));
}

#[tokio::test]
async fn message_and_phone_events_reach_their_webhooks() {
    let app = spawn_app_with_password().await;
    let token = app.token().await;
    let receiver = Receiver::start().await;
    create_hook(
        &app,
        &token,
        &receiver.url(),
        json!(["phone.status", "message.sent", "message.status"]),
    )
    .await;
    app.post(
        "/api/v1/sandbox/accounts",
        Some(&token),
        json!({"phone": ALICE, "name": "Alice"}),
    )
    .await;
    app.pair_phone(&token, A).await;
    app.post(
        &format!("/api/v1/user/phones/{A}/message"),
        Some(&token),
        json!({"recipient": ALICE, "message": "hi"}),
    )
    .await
    .assert_status(200);
    let events: Vec<(String, Value)> = eventually(DEADLINE, || async {
        let events: Vec<(String, Value)> = receiver
            .hits()
            .iter()
            .map(|h| (h.header("x-wagate-event").to_owned(), h.json()))
            .collect();
        match events
            .iter()
            .any(|(e, b)| e == "message.status" && b["data"]["status"] == "read")
        {
            true => Ok(events),
            false => Err(format!("no read receipt yet among {} events", events.len())),
        }
    })
    .await;
    let phone: Vec<&Value> = events
        .iter()
        .filter(|(e, _)| e == "phone.status")
        .map(|(_, b)| b)
        .collect();
    assert_eq!(phone[0]["data"]["status"], "connecting");
    let first_qr = phone.iter().find(|b| b["data"]["qr"].is_object()).expect("a QR event");
    assert_eq!(first_qr["data"]["qr"]["count"], 1);
    assert!(phone.iter().any(|b| b["data"]["status"] == "connected"), "{phone:?}");
    let sent = events.iter().find(|(e, _)| e == "message.sent").expect("message.sent");
    assert_eq!(sent.1["data"]["text"], "hi");
    let statuses: Vec<&str> = events
        .iter()
        .filter(|(e, _)| e == "message.status")
        .map(|(_, b)| b["data"]["status"].as_str().unwrap())
        .collect();
    assert_eq!(statuses, ["delivered", "read"]);
    assert!(events.iter().all(|(e, _)| e != "message.received"), "not subscribed");

    // Deleting the phone is its last phone.status, delivered like every event.
    app.delete(&format!("/api/v1/user/phones/{A}"), Some(&token))
        .await
        .assert_status(200);
    let deleted = eventually(DEADLINE, || async {
        receiver
            .hits()
            .iter()
            .map(|h| h.json())
            .find(|b| b["event"] == "phone.status" && b["data"]["status"] == "deleted")
            .ok_or("no phone.status deleted reached the webhook")
    })
    .await;
    assert_eq!(deleted["phone"], A, "{deleted}");
}

pub type Stream = tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

/// The live event stream at `url`, opened with a Bearer token.
pub async fn open_stream(url: &str, token: &str) -> Stream {
    let mut request = tokio_tungstenite::tungstenite::client::IntoClientRequest::into_client_request(url).unwrap();
    request
        .headers_mut()
        .insert("Authorization", format!("Bearer {token}").parse().unwrap());
    tokio_tungstenite::connect_async(request).await.unwrap().0
}

#[tokio::test]
async fn the_websocket_streams_qr_and_connection_events() {
    let app = spawn_app_with_password().await;
    let token = app.token().await;
    let url = app.url("/api/v1/ws").replacen("http://", "ws://", 1);
    let unauthenticated = tokio_tungstenite::connect_async(url.as_str()).await;
    assert!(unauthenticated.is_err(), "the stream needs credentials");

    let mut socket = open_stream(&url, &token).await;
    app.add_phone(&token, A).await;
    app.post(&format!("/api/v1/user/phones/{A}/connect"), Some(&token), json!({}))
        .await;
    app.post(&format!("/api/v1/sandbox/phones/{A}/scan"), Some(&token), json!({}))
        .await;
    let mut statuses = Vec::new();
    let deadline = tokio::time::Instant::now() + DEADLINE;
    while !statuses.contains(&"connected".to_owned()) {
        let message = tokio::time::timeout_at(deadline, socket.next())
            .await
            .expect("events in time")
            .unwrap()
            .unwrap();
        let event: Value = serde_json::from_str(message.to_text().unwrap()).unwrap();
        assert_eq!(event["event"], "phone.status");
        assert_eq!(event["phone"], A);
        if event["data"]["qr"]["code"].is_string() {
            statuses.push("qr".to_owned());
        }
        statuses.push(event["data"]["status"].as_str().unwrap().to_owned());
    }
    assert!(statuses.contains(&"pairing".to_owned()), "{statuses:?}");
    assert!(
        statuses.contains(&"qr".to_owned()),
        "the QR code is streamed: {statuses:?}"
    );
}

#[tokio::test]
async fn an_endless_answer_from_a_receiver_is_not_read_to_the_end() {
    // The request may take an hour: only the cap on the answer ends this one.
    let app = builder().with("webhooks.timeout", "1h").spawn().await;
    app.set_first_password().await;
    let token = app.token().await;
    // Answers 200, then streams a chunked body for ever.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/hook", listener.local_addr().unwrap());
    tokio::spawn(async move {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        while let Ok((mut socket, _)) = listener.accept().await {
            tokio::spawn(async move {
                let mut request = vec![0u8; 64 * 1024];
                let _ = socket.read(&mut request).await;
                let head = b"HTTP/1.1 200 OK\r\ncontent-type: text/plain\r\ntransfer-encoding: chunked\r\n\r\n";
                if socket.write_all(head).await.is_err() {
                    return;
                }
                let chunk = format!("{:x}\r\n{}\r\n", 16 * 1024, "x".repeat(16 * 1024));
                while socket.write_all(chunk.as_bytes()).await.is_ok() {}
            });
        }
    });
    let hook = create_hook(&app, &token, &url, json!(["message.received"])).await;
    let id = hook["id"].as_str().unwrap();
    let test = tokio::time::timeout(
        std::time::Duration::from_secs(30),
        app.post(&format!("{HOOKS}/{id}/test"), Some(&token), json!({})),
    )
    .await
    .expect("the test ping read the endless answer");
    test.assert_status(200);
    assert_eq!(test.body["statusCode"], 200, "{}", test.body);
    assert_eq!(test.body["delivered"], true, "{}", test.body);
}

#[tokio::test]
async fn a_webhook_url_is_checked_again_at_delivery_under_the_current_rules() {
    let app = builder().with("network.allow_private", true).spawn().await;
    app.set_first_password().await;
    let token = app.token().await;
    let receiver = Receiver::start().await;
    let hook = create_hook(&app, &token, &receiver.url(), json!(["message.received"])).await;
    let id = hook["id"].as_str().unwrap().to_owned();
    // The owner forbids private networks; the loopback receiver was accepted before.
    let app = app.restart_with("network.allow_private", false).await;
    let token = app.token().await;
    let test = app.post(&format!("{HOOKS}/{id}/test"), Some(&token), json!({})).await;
    test.assert_status(200);
    assert_eq!(test.body["delivered"], false, "{}", test.body);
    assert!(
        test.body["error"].as_str().unwrap().contains("current network rules"),
        "{}",
        test.body
    );
    assert!(receiver.hits().is_empty(), "the refused receiver was reached");
}

#[tokio::test]
async fn the_websocket_closes_with_4001_when_its_session_ends() {
    let app = spawn_app_with_password().await;
    let token = app.token().await;
    let url = app.url("/api/v1/ws").replacen("http://", "ws://", 1);
    let mut socket = open_stream(&url, &token).await;
    app.post("/api/v1/auth/logout", Some(&token), json!({}))
        .await
        .assert_status(200);
    let deadline = tokio::time::Instant::now() + DEADLINE;
    loop {
        let message = tokio::time::timeout_at(deadline, socket.next())
            .await
            .expect("the stream outlived its session");
        match message {
            Some(Ok(tokio_tungstenite::tungstenite::Message::Close(Some(frame)))) => {
                assert_eq!(u16::from(frame.code), 4001, "{frame:?}");
                break;
            }
            Some(Ok(tokio_tungstenite::tungstenite::Message::Close(None))) | None | Some(Err(_)) => {
                panic!("closed without the session-ended code")
            }
            Some(Ok(_)) => {}
        }
    }
}
