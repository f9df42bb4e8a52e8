//! Media files on the sandbox: a received file is downloaded after its message is stored,
//! kept, announced as `message.media` and served byte for byte (ranges too, after a restart
//! too); failed downloads are retried and given up honestly; the settings can skip files.

use base64::Engine as _;
use serde_json::{Value, json};
use sha2::Digest as _;

use crate::fixtures::{self, Receiver};
use crate::helpers::{DEADLINE, TestApp, builder, eventually, phone_path as path};

const A: &str = "+12015550101";
const ALICE: &str = "+12015550150";

/// Phone A paired, with the virtual account Alice (and Bob).
async fn ready(app: TestApp) -> (TestApp, String) {
    app.set_first_password().await;
    crate::messages::connected_app(app).await
}

/// A webhook receiving `message.media`.
async fn media_hook(app: &TestApp, token: &str) -> Receiver {
    let receiver = Receiver::start().await;
    app.post(
        "/api/v1/user/webhooks",
        Some(token),
        json!({"url": receiver.url(), "services": ["message.media"]}),
    )
    .await
    .assert_status(201);
    receiver
}

/// Injects a sandbox fault (`media_down`, `media_up`) into phone A.
async fn fault(app: &TestApp, token: &str, kind: &str) {
    app.post(
        &format!("/api/v1/sandbox/phones/{A}/faults"),
        Some(token),
        json!({"kind": kind}),
    )
    .await
    .assert_status(200);
}

/// Alice sends phone A a file; answers the message id.
async fn alice_sends(app: &TestApp, token: &str, data: &[u8], mime: &str, name: Option<&str>) -> String {
    let resp = app
        .post(
            &format!("/api/v1/sandbox/phones/{A}/inbound"),
            Some(token),
            json!({"from": ALICE, "message": "the invoice", "media": {
                "kind": "document", "mimeType": mime, "fileName": name,
                "dataBase64": base64::prelude::BASE64_STANDARD.encode(data)}}),
        )
        .await;
    resp.assert_status(200);
    resp.body["id"].as_str().unwrap().to_owned()
}

/// The message's `media` once `check` accepts it.
async fn media_when(app: &TestApp, token: &str, id: &str, what: &str, check: impl Fn(&Value) -> bool) -> Value {
    eventually(DEADLINE, || async {
        let resp = app.get(&path(A, "/messages"), Some(token)).await;
        resp.assert_status(200);
        let message = resp.body["data"]
            .as_array()
            .unwrap()
            .iter()
            .find(|m| m["id"] == id)
            .cloned();
        match message {
            Some(m) if check(&m["media"]) => Ok(m["media"].clone()),
            other => Err(format!("the file of {id} is not {what}: {other:?}")),
        }
    })
    .await
}

/// GET with a token (and headers), answering the status, headers and raw bytes.
async fn fetch(app: &TestApp, token: &str, url: &str, headers: &[(&str, &str)]) -> reqwest::Response {
    let mut req = app.client.get(app.url(url)).bearer_auth(token);
    for (name, value) in headers {
        req = req.header(*name, *value);
    }
    req.send().await.unwrap()
}

fn header<'a>(resp: &'a reqwest::Response, name: &str) -> &'a str {
    resp.headers()
        .get(name)
        .map(|v| v.to_str().unwrap())
        .unwrap_or_default()
}

#[tokio::test]
async fn a_received_file_is_kept_announced_and_served_byte_for_byte_ranges_and_restarts_included() {
    let (app, token) = ready(builder().spawn().await).await;
    let receiver = media_hook(&app, &token).await;
    let pdf: Vec<u8> = (0..100_000u32).map(|i| (i % 251) as u8).collect();
    let id = alice_sends(&app, &token, &pdf, "application/pdf", Some("invoice 7.pdf")).await;
    let media = media_when(&app, &token, &id, "stored", |m| m["status"] == "stored").await;
    let sha = hex::encode(sha2::Sha256::digest(&pdf));
    assert_eq!(media["sha256"], sha.as_str(), "{media}");
    assert_eq!(media["size"], 100_000, "{media}");
    assert_eq!(media["kind"], "document", "{media}");
    assert_eq!(media["mimeType"], "application/pdf", "{media}");
    let url = media["url"].as_str().unwrap().to_owned();
    assert_eq!(url, format!("/api/v1/user/phones/12015550101/messages/{id}/media"));

    // The webhook hears it, with the same view.
    let hits = receiver.wait_for(1).await;
    let event = hits[0].json();
    assert_eq!(event["event"], "message.media", "{event}");
    assert_eq!(event["data"]["id"], id.as_str(), "{event}");
    assert_eq!(event["data"]["media"]["status"], "stored", "{event}");
    assert_eq!(event["data"]["media"]["url"], url.as_str(), "{event}");

    let whole = fetch(&app, &token, &url, &[]).await;
    assert_eq!(whole.status(), 200);
    assert_eq!(header(&whole, "content-type"), "application/pdf");
    assert_eq!(header(&whole, "content-length"), "100000");
    assert_eq!(header(&whole, "accept-ranges"), "bytes");
    assert_eq!(header(&whole, "x-content-type-options"), "nosniff");
    assert_eq!(header(&whole, "etag"), format!("\"{sha}\""));
    assert!(header(&whole, "content-disposition").contains("invoice 7.pdf"));
    assert_eq!(whole.bytes().await.unwrap().as_ref(), pdf.as_slice());

    let part = fetch(&app, &token, &url, &[("Range", "bytes=1000-1999")]).await;
    assert_eq!(part.status(), 206);
    assert_eq!(header(&part, "content-range"), "bytes 1000-1999/100000");
    assert_eq!(header(&part, "content-length"), "1000");
    assert_eq!(part.bytes().await.unwrap().as_ref(), &pdf[1000..2000]);
    let tail = fetch(&app, &token, &url, &[("Range", "bytes=-10")]).await;
    assert_eq!(tail.status(), 206);
    assert_eq!(tail.bytes().await.unwrap().as_ref(), &pdf[99_990..]);
    let outside = fetch(&app, &token, &url, &[("Range", "bytes=100000-")]).await;
    assert_eq!(outside.status(), 416);
    assert_eq!(header(&outside, "content-range"), "bytes */100000");

    // Without a token: no file.
    let anonymous = app.client.get(app.url(&url)).send().await.unwrap();
    assert_eq!(anonymous.status(), 401);

    let app = app.restart().await;
    let again = fetch(&app, &token, &url, &[]).await;
    assert_eq!(again.status(), 200);
    assert_eq!(again.bytes().await.unwrap().as_ref(), pdf.as_slice());
}

#[tokio::test]
async fn a_file_this_phone_sends_is_served_too() {
    let (app, token) = ready(builder().spawn().await).await;
    let photo = fixtures::png();
    let resp = app
        .post(
            &path(A, "/message"),
            Some(&token),
            json!({"recipient": ALICE, "media": format!(
                "data:image/png;base64,{}", base64::prelude::BASE64_STANDARD.encode(&photo))}),
        )
        .await;
    resp.assert_status(200);
    let id = resp.body["id"].as_str().unwrap().to_owned();
    let media = media_when(&app, &token, &id, "stored", |m| m["status"] == "stored").await;
    let got = fetch(&app, &token, media["url"].as_str().unwrap(), &[]).await;
    assert_eq!(got.status(), 200);
    assert_eq!(header(&got, "content-type"), "image/png");
    assert_eq!(got.bytes().await.unwrap().as_ref(), photo.as_slice());
}

#[tokio::test]
async fn a_failed_download_is_retried_until_the_media_server_answers() {
    let (app, token) = ready(builder().with("media.attempts", 1000).spawn().await).await;
    fault(&app, &token, "media_down").await;
    let id = alice_sends(&app, &token, b"pending bytes", "text/plain", None).await;
    // Tried and failed at least once: still pending, saying why.
    let media = media_when(&app, &token, &id, "pending after a failure", |m| {
        m["status"] == "pending" && m["error"].is_string()
    })
    .await;
    assert!(media["url"].is_null(), "{media}");
    let url = format!("/api/v1/user/phones/12015550101/messages/{id}/media");
    let early = app.get(&url, Some(&token)).await;
    early.assert_error(409, "media_pending");
    fault(&app, &token, "media_up").await;
    let media = media_when(&app, &token, &id, "stored", |m| m["status"] == "stored").await;
    assert!(media.get("error").is_none(), "{media}");
    let got = fetch(&app, &token, &url, &[]).await;
    assert_eq!(got.bytes().await.unwrap().as_ref(), b"pending bytes");
}

#[tokio::test]
async fn a_download_that_keeps_failing_is_given_up_and_announced() {
    let (app, token) = ready(builder().with("media.attempts", 2).spawn().await).await;
    let receiver = media_hook(&app, &token).await;
    fault(&app, &token, "media_down").await;
    let id = alice_sends(&app, &token, b"never", "text/plain", None).await;
    let media = media_when(&app, &token, &id, "failed", |m| m["status"] == "failed").await;
    assert!(media["error"].as_str().unwrap().contains("media server"), "{media}");
    let hits = receiver.wait_for(1).await;
    assert_eq!(hits[0].json()["data"]["media"]["status"], "failed");
    let url = format!("/api/v1/user/phones/12015550101/messages/{id}/media");
    app.get(&url, Some(&token)).await.assert_error(404, "media_not_kept");
}

#[tokio::test]
async fn files_the_settings_exclude_are_skipped_and_said_so() {
    let app = builder().with("media.download", json!(["image"])).spawn().await;
    let (app, token) = ready(app).await;
    let id = alice_sends(&app, &token, b"%PDF-1.4", "application/pdf", Some("a.pdf")).await;
    let media = media_when(&app, &token, &id, "skipped", |m| m["status"] == "skipped").await;
    assert!(media["error"].as_str().unwrap().contains("media.download"), "{media}");
    let url = format!("/api/v1/user/phones/12015550101/messages/{id}/media");
    app.get(&url, Some(&token)).await.assert_error(404, "media_not_kept");
}

#[tokio::test]
async fn unknown_messages_and_messages_without_a_file_answer_json_404s() {
    let (app, token) = ready(builder().spawn().await).await;
    app.get(&path(A, "/messages/3EB0NOSUCH/media"), Some(&token))
        .await
        .assert_error(404, "message_not_found");
    let resp = app
        .post(
            &format!("/api/v1/sandbox/phones/{A}/inbound"),
            Some(&token),
            json!({"from": ALICE, "message": "just text"}),
        )
        .await;
    resp.assert_status(200);
    let id = resp.body["id"].as_str().unwrap();
    app.get(&path(A, &format!("/messages/{id}/media")), Some(&token))
        .await
        .assert_error(404, "no_media");
    app.get("/api/v1/user/phones/12015550199/messages/x/media", Some(&token))
        .await
        .assert_error(404, "phone_not_found");
}

#[tokio::test]
async fn files_received_before_the_upgrade_are_downloaded_at_the_next_connect() {
    use sea_orm_migration::MigratorTrait;
    let (app, token) = ready(builder().spawn().await).await;
    let id = alice_sends(&app, &token, b"kept keys, no file", "text/plain", None).await;
    media_when(&app, &token, &id, "stored", |m| m["status"] == "stored").await;
    // As before this version: the message and its keys, no record of a download.
    let db = &app.state.db;
    wagate_migrations::Migrator::down(db, Some(2)).await.unwrap();
    wagate_migrations::Migrator::up(db, None).await.unwrap();
    media_when(&app, &token, &id, "pending", |m| m["status"] == "pending").await;
    app.post(&path(A, "/disconnect"), Some(&token), json!({}))
        .await
        .assert_status(200);
    app.post(&path(A, "/connect"), Some(&token), json!({}))
        .await
        .assert_status(200);
    let media = media_when(&app, &token, &id, "stored again", |m| m["status"] == "stored").await;
    let got = fetch(&app, &token, media["url"].as_str().unwrap(), &[]).await;
    assert_eq!(got.bytes().await.unwrap().as_ref(), b"kept keys, no file");
}
