//! The real engine where WhatsApp cannot be reached: honest states, clear errors, prompt
//! shutdown, and the per-phone key store's life cycle.

use std::time::Duration;

use serde_json::json;

use crate::helpers::{TestApp, builder};
use crate::offline::REASON;

const A: &str = "+12015550101";

fn path(action: &str) -> String {
    crate::helpers::phone_path(A, action)
}

async fn offline_app() -> (TestApp, String) {
    let app = builder()
        .offline_whatsapp()
        .with("phones.connect_wait", "5s")
        .spawn()
        .await;
    app.set_first_password().await;
    let token = app.token().await;
    (app, token)
}

async fn wait_for_error(app: &TestApp, token: &str) -> serde_json::Value {
    crate::helpers::eventually(crate::helpers::DEADLINE, || async {
        let view = app.phone(token, A).await;
        match view["lastError"].as_str().is_some_and(|e| e.contains(REASON)) {
            true => Ok(view),
            false => Err(format!("no readable error: {view}")),
        }
    })
    .await
}

#[tokio::test]
async fn an_unreachable_whatsapp_is_reported_honestly_and_sends_fail_at_once() {
    let (app, token) = offline_app().await;
    app.add_phone(&token, A).await;
    let resp = app.post(&path("/connect"), Some(&token), json!({})).await;
    resp.assert_status(200);
    assert_eq!(
        resp.body["status"], "connecting",
        "not pairing, not connected: {}",
        resp.body
    );
    assert!(resp.body["qr"].is_null());
    let view = wait_for_error(&app, &token).await;
    assert_eq!(view["status"], "connecting");
    assert!(
        view["lastError"].as_str().unwrap().starts_with("cannot reach"),
        "{view}"
    );

    app.post(
        &path("/message"),
        Some(&token),
        json!({"recipient": "12015550150", "message": "hi"}),
    )
    .await
    .assert_error(409, "phone_not_connected");
    app.post(
        &path("/typing"),
        Some(&token),
        json!({"recipient": "12015550150", "isTyping": true}),
    )
    .await
    .assert_error(409, "phone_not_connected");
    app.post(
        &path("/has-whatsapp"),
        Some(&token),
        json!({"recipient": "12015550150"}),
    )
    .await
    .assert_error(409, "phone_not_connected");
    app.get(&path("/groups"), Some(&token))
        .await
        .assert_error(409, "phone_not_connected");

    // The server stays healthy while the session keeps retrying.
    app.get("/api/v1/health", None).await.assert_status(200);
    let resources = app.get("/api/v1/health/resources", Some(&token)).await.body;
    assert_eq!(resources["phones"]["connecting"], 1);
    assert_eq!(resources["actors"]["sessionRestarts"], 0, "retrying is not crashing");

    // Disconnect stops the retries and says so.
    let off = app.post(&path("/disconnect"), Some(&token), json!({})).await;
    off.assert_status(200);
    assert_eq!(off.body["status"], "disconnected");
}

#[tokio::test]
async fn the_key_store_lives_from_connect_to_logout_or_delete() {
    let (app, token) = offline_app().await;
    let store = app.data_dir.join("whatsapp/12015550101.db");
    app.add_phone(&token, A).await;
    assert!(!store.exists(), "no keys before the first connect");
    app.post(&path("/connect"), Some(&token), json!({}))
        .await
        .assert_status(200);
    assert!(store.exists(), "created on connect");

    let app = app.restart().await;
    let token = app.token().await;
    assert!(store.exists(), "kept across restarts");
    let view = app.phone(&token, A).await;
    assert_ne!(view["status"], "connected");

    app.post(&path("/connect"), Some(&token), json!({}))
        .await
        .assert_status(200);
    let out = app.post(&path("/logout"), Some(&token), json!({})).await;
    out.assert_status(200);
    assert_eq!(out.body["status"], "logged_out");
    assert!(!store.exists(), "deleted on logout");

    app.post(&path("/connect"), Some(&token), json!({}))
        .await
        .assert_status(200);
    assert!(store.exists());
    app.delete(&path(""), Some(&token)).await.assert_status(200);
    assert!(!store.exists(), "deleted with the phone");
}

#[tokio::test]
async fn shutdown_is_prompt_while_sessions_retry() {
    let (mut app, token) = offline_app().await;
    for phone in [A, "+12015550102", "+12015550103"] {
        app.add_phone(&token, phone).await;
        app.post(&format!("/api/v1/user/phones/{phone}/connect"), Some(&token), json!({}))
            .await
            .assert_status(200);
    }
    let started = std::time::Instant::now();
    tokio::time::timeout(Duration::from_secs(20), app.shutdown())
        .await
        .expect("the server stops while sessions are retrying");
    assert!(started.elapsed() < Duration::from_secs(20));
}

#[test]
fn the_default_engine_is_whatsapp() {
    let config = wagate::config::Config::from_figment(wagate::config::Config::base()).unwrap();
    assert_eq!(config.engine, wagate::config::EngineKind::Whatsapp);
    assert!(config.pacing_on(), "pacing is on by default on the real engine");
}
