use reqwest::Method;
use serde_json::json;

use crate::helpers::{DEADLINE, builder, eventually, spawn_app_with_password};

const A: &str = "+12015550101";
const B: &str = "+12015550102";

use crate::helpers::phone_path as path;

#[tokio::test]
async fn add_connect_shows_a_qr_code_and_scanning_connects() {
    let app = spawn_app_with_password().await;
    let token = app.token().await;
    let added = app.add_phone(&token, A).await;
    assert_eq!(added["status"], "disconnected");
    assert_eq!(added["country"], "US");

    let resp = app.post(&path(A, "/connect"), Some(&token), json!({})).await;
    resp.assert_status(200);
    let view = resp.body;
    assert_eq!(view["status"], "pairing");
    let qr = &view["qr"];
    assert!(qr["code"].as_str().unwrap().starts_with("2@"), "{qr}");
    assert!(qr["pngDataUrl"].as_str().unwrap().starts_with("data:image/png;base64,"));
    assert!(qr["svg"].as_str().unwrap().contains("<svg"));
    assert!(qr["expiresAt"].is_string());
    assert_eq!(qr["count"], 1);
    assert!(view["pairingCode"].is_null());

    app.post(&format!("/api/v1/sandbox/phones/{A}/scan"), Some(&token), json!({}))
        .await
        .assert_status(200);
    let view = app.wait_for_status(&token, A, "connected").await;
    assert_eq!(view["jid"], "12015550101@s.whatsapp.net");
    assert!(view["lid"].as_str().unwrap().ends_with("@lid"));
    assert!(view["pushName"].is_string());
    assert!(view["connectedAt"].is_string());
    assert!(view["qr"].is_null());
    assert!(view["lastError"].is_null());
}

#[tokio::test]
async fn connect_is_idempotent() {
    let app = spawn_app_with_password().await;
    let token = app.token().await;
    app.add_phone(&token, A).await;
    let first = app.post(&path(A, "/connect"), Some(&token), json!({})).await.body;
    // No body at all is accepted too.
    let second = app
        .request(Method::POST, &path(A, "/connect"), Some(&token), None)
        .await;
    second.assert_status(200);
    assert_eq!(second.body["status"], "pairing");
    assert_eq!(
        second.body["qr"]["code"], first["qr"]["code"],
        "the same QR while it is valid"
    );

    app.post(&format!("/api/v1/sandbox/phones/{A}/scan"), Some(&token), json!({}))
        .await;
    app.wait_for_status(&token, A, "connected").await;
    let again = app.post(&path(A, "/connect"), Some(&token), json!({})).await;
    again.assert_status(200);
    assert_eq!(again.body["status"], "connected");
    assert!(again.body["qr"].is_null());
}

#[tokio::test]
async fn pairing_code_mode_returns_a_code_to_type() {
    let app = spawn_app_with_password().await;
    let token = app.token().await;
    app.add_phone(&token, A).await;
    let view = app
        .post(&path(A, "/connect"), Some(&token), json!({"pairingCodeMode": true}))
        .await
        .body;
    assert_eq!(view["status"], "pairing");
    assert!(view["qr"].is_null(), "{view}");
    let code = view["pairingCode"]["code"].as_str().unwrap();
    assert_eq!(code.len(), 9, "XXXX-XXXX: {code}");
    assert_eq!(&code[4..5], "-");
    app.post(&format!("/api/v1/sandbox/phones/{A}/scan"), Some(&token), json!({}))
        .await
        .assert_status(200);
    app.wait_for_status(&token, A, "connected").await;
}

#[tokio::test]
async fn qr_codes_rotate_and_pairing_gives_up_when_they_run_out() {
    let app = builder()
        .with("sandbox.qr_period", "1s")
        .with("sandbox.qr_count", 3)
        .spawn()
        .await;
    app.set_first_password().await;
    let token = app.token().await;
    app.add_phone(&token, A).await;
    let first = app.post(&path(A, "/connect"), Some(&token), json!({})).await.body;
    let first_code = first["qr"]["code"].as_str().unwrap().to_owned();
    let first_count = first["qr"]["count"].as_u64().unwrap();
    let rotated = eventually(DEADLINE, || async {
        let view = app.phone(&token, A).await;
        match view["qr"]["count"].as_u64() {
            Some(count) if count > first_count => Ok(view),
            _ => Err(format!("no newer QR code: {view}")),
        }
    })
    .await;
    assert_ne!(rotated["qr"]["code"], first_code.as_str());
    let gave_up = app.wait_for_status(&token, A, "disconnected").await;
    assert!(
        gave_up["lastError"].as_str().unwrap().contains("not scanned"),
        "{gave_up}"
    );
    assert!(gave_up["qr"].is_null());
    app.post(&format!("/api/v1/sandbox/phones/{A}/scan"), Some(&token), json!({}))
        .await
        .assert_error(409, "not_pairing");
}

#[tokio::test]
async fn disconnect_keeps_the_link_so_connect_needs_no_qr() {
    let app = spawn_app_with_password().await;
    let token = app.token().await;
    app.pair_phone(&token, A).await;
    let resp = app.post(&path(A, "/disconnect"), Some(&token), json!({})).await;
    resp.assert_status(200);
    assert_eq!(resp.body["status"], "disconnected");
    // Idempotent.
    app.post(&path(A, "/disconnect"), Some(&token), json!({}))
        .await
        .assert_status(200);
    let resp = app.post(&path(A, "/connect"), Some(&token), json!({})).await;
    resp.assert_status(200);
    assert!(resp.body["qr"].is_null(), "{}", resp.body);
    assert_ne!(resp.body["status"], "pairing");
    app.wait_for_status(&token, A, "connected").await;
}

#[tokio::test]
async fn logout_unlinks_so_connect_needs_a_new_qr() {
    let app = spawn_app_with_password().await;
    let token = app.token().await;
    app.pair_phone(&token, A).await;
    let resp = app.post(&path(A, "/logout"), Some(&token), json!({})).await;
    resp.assert_status(200);
    assert_eq!(resp.body["status"], "logged_out");
    assert!(resp.body["jid"].is_null());
    let resp = app.post(&path(A, "/connect"), Some(&token), json!({})).await;
    assert_eq!(resp.body["status"], "pairing");
    assert!(resp.body["qr"]["code"].is_string());
}

#[tokio::test]
async fn a_crashed_session_is_restarted_while_another_phone_keeps_answering() {
    let app = spawn_app_with_password().await;
    let token = app.token().await;
    app.pair_phone(&token, A).await;
    app.pair_phone(&token, B).await;
    app.fault(&token, A, "crash").await.assert_status(200);
    // B is untouched and answers its requests meanwhile.
    let b = app.phone(&token, B).await;
    assert_eq!(b["status"], "connected");
    app.post(&path(B, "/disconnect"), Some(&token), json!({}))
        .await
        .assert_status(200);
    app.post(&path(B, "/connect"), Some(&token), json!({}))
        .await
        .assert_status(200);

    let a = app.wait_for_status(&token, A, "connected").await;
    assert!(a["qr"].is_null(), "resumed without pairing");
    app.wait_for_status(&token, B, "connected").await;
    let resources = app.get("/api/v1/health/resources", Some(&token)).await.body;
    assert!(
        resources["actors"]["sessionRestarts"].as_u64().unwrap() >= 1,
        "{resources}"
    );
    assert_eq!(resources["phones"]["connected"], 2);
    assert_eq!(resources["phones"]["total"], 2);
}

#[tokio::test]
async fn a_dropped_connection_reconnects_by_itself() {
    let app = builder().with("sandbox.reconnect_delay", "300ms").spawn().await;
    app.set_first_password().await;
    let token = app.token().await;
    app.pair_phone(&token, A).await;
    app.fault(&token, A, "disconnect").await.assert_status(200);
    let reconnecting = app.wait_for_status(&token, A, "reconnecting").await;
    assert!(
        reconnecting["lastError"].as_str().unwrap().contains("lost"),
        "{reconnecting}"
    );
    let connected = app.wait_for_status(&token, A, "connected").await;
    assert!(connected["lastError"].is_null());
}

#[tokio::test]
async fn repeated_crashes_mark_the_phone_failed_until_it_is_connected_again() {
    let app = builder().with("phones.max_restarts", 2).spawn().await;
    app.set_first_password().await;
    let token = app.token().await;
    app.pair_phone(&token, A).await;
    for _ in 0..2 {
        app.crash_and_recover(&token, A).await;
    }
    app.fault(&token, A, "crash").await.assert_status(200);
    let failed = app.wait_for_status(&token, A, "failed").await;
    assert!(
        failed["lastError"].as_str().unwrap().contains("failed 3 times"),
        "{failed}"
    );
    // A person connects it again: no new pairing, since the link is intact.
    let resp = app.post(&path(A, "/connect"), Some(&token), json!({})).await;
    resp.assert_status(200);
    assert!(resp.body["qr"].is_null());
    app.wait_for_status(&token, A, "connected").await;
}

#[tokio::test]
async fn a_restart_resumes_connected_phones_without_a_qr() {
    let app = spawn_app_with_password().await;
    let token = app.token().await;
    app.pair_phone(&token, A).await;
    app.pair_phone(&token, B).await;
    app.post(&path(B, "/disconnect"), Some(&token), json!({}))
        .await
        .assert_status(200);
    let app = app.restart().await;
    let token = app.token().await;
    let a = app.wait_for_status(&token, A, "connected").await;
    assert!(a["qr"].is_null());
    assert_eq!(a["jid"], "12015550101@s.whatsapp.net");
    let b = app.phone(&token, B).await;
    assert_eq!(b["status"], "disconnected", "a disconnected phone stays so");
    // And it still connects without pairing.
    let resp = app.post(&path(B, "/connect"), Some(&token), json!({})).await;
    assert!(resp.body["qr"].is_null());
    app.wait_for_status(&token, B, "connected").await;
}

#[tokio::test]
async fn resumed_phones_log_in_at_most_resume_concurrency_at_once() {
    const C: &str = "+12015550103";
    let app = builder()
        .with("phones.resume_concurrency", 1)
        .with("sandbox.connect_delay", "400ms")
        .spawn()
        .await;
    app.set_first_password().await;
    let token = app.token().await;
    for phone in [A, B, C] {
        app.pair_phone(&token, phone).await;
    }
    let app = app.restart().await;
    let token = app.token().await;
    // One login at a time, 400 ms each: each phone's connection is made at least one
    // login after the previous one's. (With three slots they would all connect at once.)
    let mut connected_at = Vec::new();
    for phone in [A, B, C] {
        let view = app.wait_for_status(&token, phone, "connected").await;
        let at: chrono::DateTime<chrono::Utc> = view["connectedAt"].as_str().unwrap().parse().unwrap();
        connected_at.push(at);
    }
    connected_at.sort();
    for pair in connected_at.windows(2) {
        assert!(
            pair[1] - pair[0] >= chrono::Duration::milliseconds(390),
            "logins overlapped: {connected_at:?}"
        );
    }
}

#[tokio::test]
async fn the_quota_limits_phones_and_is_reported() {
    let app = builder().with("limits.max_phones", 2).spawn().await;
    app.set_first_password().await;
    let token = app.token().await;
    app.add_phone(&token, A).await;
    app.add_phone(&token, B).await;
    app.post("/api/v1/user/phones", Some(&token), json!({"phone": "+12015550103"}))
        .await
        .assert_error(403, "quota_exceeded");
    let quota = app.get("/api/v1/user/quota", Some(&token)).await;
    quota.assert_status(200);
    assert_eq!(quota.body["phones"], json!({"used": 2, "limit": 2}));
    assert_eq!(
        quota.body["allowedMedia"],
        json!(["image", "video", "audio", "document", "sticker"])
    );
}

#[tokio::test]
async fn invalid_duplicate_and_unknown_phones_get_clear_errors() {
    let app = spawn_app_with_password().await;
    let token = app.token().await;
    for bad in ["+1 201 555", "not a number", "+999123456789"] {
        app.post("/api/v1/user/phones", Some(&token), json!({"phone": bad}))
            .await
            .assert_error(400, "invalid_phone");
    }
    app.post(
        "/api/v1/user/phones",
        Some(&token),
        json!({"phone": "123", "country": "XX"}),
    )
    .await
    .assert_error(400, "invalid_phone");
    let national = app
        .post(
            "/api/v1/user/phones",
            Some(&token),
            json!({"phone": "(201) 555-0101", "country": "us"}),
        )
        .await;
    national.assert_status(201);
    assert_eq!(national.body["phone"], A);
    assert_eq!(national.body["country"], "US");
    app.post("/api/v1/user/phones", Some(&token), json!({"phone": "12015550101"}))
        .await
        .assert_error(409, "phone_exists");
    for form in ["+12015550101", "12015550101", "%2B12015550101"] {
        let resp = app.get(&format!("/api/v1/user/phones/{form}"), Some(&token)).await;
        resp.assert_status(200);
        assert_eq!(resp.body["phone"], A);
    }
    app.get(&path(B, ""), Some(&token))
        .await
        .assert_error(404, "phone_not_found");
    app.post(&path(B, "/connect"), Some(&token), json!({}))
        .await
        .assert_error(404, "phone_not_found");
    for bad in ["garbage", "+999123456789"] {
        let resp = app.get(&format!("/api/v1/user/phones/{bad}"), Some(&token)).await;
        resp.assert_error(400, "invalid_phone");
        assert!(
            resp.body["error"]["message"].as_str().unwrap().contains("not a"),
            "{}",
            resp.body
        );
    }
    app.get("/api/v1/user/phones", None)
        .await
        .assert_error(401, "unauthorized");
}

#[tokio::test]
async fn delete_logs_out_and_removes_the_phone_and_its_keys() {
    let app = spawn_app_with_password().await;
    let token = app.token().await;
    app.pair_phone(&token, A).await;
    let key_file = app.data_dir.join("sandbox/devices/12015550101.json");
    assert!(key_file.exists(), "the link is stored while linked");
    app.delete(&path(A, ""), Some(&token)).await.assert_status(200);
    assert!(!key_file.exists(), "the link is deleted with the phone");
    app.get(&path(A, ""), Some(&token))
        .await
        .assert_error(404, "phone_not_found");
    let list = app.get("/api/v1/user/phones", Some(&token)).await;
    assert_eq!(list.body["data"], json!([]));
    app.delete(&path(A, ""), Some(&token))
        .await
        .assert_error(404, "phone_not_found");
    // Added again, it must pair anew.
    app.add_phone(&token, A).await;
    let resp = app.post(&path(A, "/connect"), Some(&token), json!({})).await;
    assert_eq!(resp.body["status"], "pairing");

    let app = app.restart().await;
    let token = app.token().await;
    assert_eq!(
        app.get("/api/v1/user/phones", Some(&token)).await.body["data"]
            .as_array()
            .unwrap()
            .len(),
        1
    );
}

#[tokio::test]
async fn unlinking_on_the_phone_logs_the_phone_out() {
    let app = spawn_app_with_password().await;
    let token = app.token().await;
    app.pair_phone(&token, A).await;
    app.fault(&token, A, "logout").await.assert_status(200);
    let view = app.wait_for_status(&token, A, "logged_out").await;
    assert!(view["lastError"].as_str().unwrap().contains("unlinked"), "{view}");
    assert!(!app.data_dir.join("sandbox/devices/12015550101.json").exists());
}

#[tokio::test]
async fn a_phone_unlinked_on_the_phone_pairs_again_on_connect() {
    let app = spawn_app_with_password().await;
    let token = app.token().await;
    app.pair_phone(&token, A).await;
    app.fault(&token, A, "logout").await.assert_status(200);
    app.wait_for_status(&token, A, "logged_out").await;
    // Straight away, and again after a disconnect: a fresh pairing, never "connect it first".
    let resp = app.post(&path(A, "/connect"), Some(&token), json!({})).await;
    resp.assert_status(200);
    assert_eq!(resp.body["status"], "pairing", "{}", resp.body);
    assert!(resp.body["qr"]["code"].is_string(), "{}", resp.body);
    app.post(&path(A, "/disconnect"), Some(&token), json!({}))
        .await
        .assert_status(200);
    let resp = app
        .post(&path(A, "/connect"), Some(&token), json!({"pairingCodeMode": true}))
        .await;
    resp.assert_status(200);
    assert!(resp.body["pairingCode"]["code"].is_string(), "{}", resp.body);
    app.post(&format!("/api/v1/sandbox/phones/{A}/scan"), Some(&token), json!({}))
        .await
        .assert_status(200);
    app.wait_for_status(&token, A, "connected").await;
}

#[tokio::test]
async fn sandbox_controls_check_their_input() {
    let app = spawn_app_with_password().await;
    let token = app.token().await;
    app.post("/api/v1/sandbox/phones/+12015550199/scan", Some(&token), json!({}))
        .await
        .assert_error(404, "phone_not_found");
    app.add_phone(&token, A).await;
    app.post(&format!("/api/v1/sandbox/phones/{A}/scan"), Some(&token), json!({}))
        .await
        .assert_error(409, "not_pairing");
    app.fault(&token, A, "explode")
        .await
        .assert_error(400, "invalid_request");
    let account = app
        .post(
            "/api/v1/sandbox/accounts",
            Some(&token),
            json!({"phone": "+12015550150", "name": "Alice"}),
        )
        .await;
    account.assert_status(201);
    assert_eq!(account.body["jid"], "12015550150@s.whatsapp.net");
    app.post(
        "/api/v1/sandbox/accounts",
        Some(&token),
        json!({"phone": "+12015550150", "name": "Alice"}),
    )
    .await
    .assert_error(409, "account_exists");
    app.get("/api/v1/sandbox/accounts/+12015550151/messages", Some(&token))
        .await
        .assert_error(404, "account_not_found");
}
