use std::time::Duration;

use base64::Engine;
use serde_json::{Value, json};

use crate::fixtures::{self, FileServer};
use crate::helpers::{DEADLINE, Response, TestApp, builder, eventually, send, spawn_app_with_password};

const A: &str = "+12015550101";
const B: &str = "+12015550102";
const ALICE: &str = "+12015550150";
const BOB: &str = "+12015550151";

use crate::helpers::phone_path as path;

/// A server with phone A paired and the virtual accounts Alice and Bob registered.
pub(crate) async fn connected_app(app: TestApp) -> (TestApp, String) {
    let token = app.token().await;
    for (phone, name) in [(ALICE, "Alice"), (BOB, "Bob")] {
        app.post(
            "/api/v1/sandbox/accounts",
            Some(&token),
            json!({"phone": phone, "name": name}),
        )
        .await
        .assert_status(201);
    }
    app.pair_phone(&token, A).await;
    (app, token)
}

async fn ready() -> (TestApp, String) {
    connected_app(spawn_app_with_password().await).await
}

/// Sends from phone A.
async fn send_message(app: &TestApp, token: &str, body: Value) -> Response {
    app.post(&path(A, "/message"), Some(token), body).await
}

async fn received(app: &TestApp, token: &str, account: &str) -> Vec<Value> {
    let resp = app
        .get(&format!("/api/v1/sandbox/accounts/{account}/messages"), Some(token))
        .await;
    resp.assert_status(200);
    resp.body["data"].as_array().unwrap().clone()
}

/// The gateway phones a virtual account sees typing.
async fn typing_to(app: &TestApp, token: &str, account: &str) -> Value {
    let resp = app
        .get(&format!("/api/v1/sandbox/accounts/{account}/messages"), Some(token))
        .await;
    resp.assert_status(200);
    resp.body["typing"].clone()
}

async fn history(app: &TestApp, token: &str, query: &str) -> Value {
    let resp = app.get(&format!("{}{query}", path(A, "/messages")), Some(token)).await;
    resp.assert_status(200);
    resp.body
}

/// Waits until the message's status is `status` or past it: receipts follow each other
/// quickly (`sandbox.receipt_delay`), and a slow machine may first look after the next one.
async fn wait_for_status(app: &TestApp, token: &str, id: &str, status: &str) {
    const PROGRESS: [&str; 3] = ["sent", "delivered", "read"];
    let rank = |s: &str| PROGRESS.iter().position(|p| *p == s);
    let reached = |now: &str| now == status || matches!((rank(now), rank(status)), (Some(a), Some(b)) if a >= b);
    eventually(DEADLINE, || async {
        let page = history(app, token, "").await;
        let message = page["data"].as_array().unwrap().iter().find(|m| m["id"] == id).cloned();
        match message {
            Some(m) if m["status"].as_str().is_some_and(reached) => Ok(()),
            other => Err(format!("message {id} is not {status}: {other:?}")),
        }
    })
    .await
}

#[tokio::test]
async fn a_text_reaches_the_recipient_and_history_follows_its_receipts() {
    let (app, token) = ready().await;
    let resp = send_message(
        &app,
        &token,
        json!({"recipient": "12015550150", "message": "hello Alice"}),
    )
    .await;
    resp.assert_status(200);
    assert_eq!(resp.body["status"], "sent");
    assert_eq!(resp.body["recipient"], "12015550150@s.whatsapp.net");
    assert_eq!(resp.body["type"], "text");
    let id = resp.body["id"].as_str().unwrap().to_owned();

    let inbox = received(&app, &token, ALICE).await;
    assert_eq!(inbox.len(), 1);
    assert_eq!(inbox[0]["id"], id.as_str());
    assert_eq!(inbox[0]["text"], "hello Alice");
    assert_eq!(inbox[0]["from"], A);
    assert_eq!(inbox[0]["linkPreview"], true);

    let page = history(&app, &token, "").await;
    let first = &page["data"][0];
    assert_eq!(first["id"], id.as_str());
    assert_eq!(first["direction"], "out");
    assert_eq!(first["chat"], "12015550150@s.whatsapp.net");
    assert_eq!(first["text"], "hello Alice");
    wait_for_status(&app, &token, &id, "delivered").await;
    wait_for_status(&app, &token, &id, "read").await;
}

#[tokio::test]
async fn recipients_follow_the_seed_rules() {
    let (app, token) = ready().await;
    for body in [
        json!({"recipient": "(201) 555-0150", "country": "US", "message": "by country"}),
        json!({"recipient": "12015550150@s.whatsapp.net", "message": "by jid"}),
        json!({"recipient": "ignored", "jid": "12015550150@s.whatsapp.net", "message": "jid wins"}),
    ] {
        let resp = send_message(&app, &token, body.clone()).await;
        resp.assert_status(200);
        assert_eq!(resp.body["recipient"], "12015550150@s.whatsapp.net", "{body}");
    }
    for (body, code) in [
        (json!({"recipient": "12345", "message": "x"}), "invalid_recipient"),
        (
            json!({"recipient": "555-0150", "country": "US", "message": "x"}),
            "invalid_recipient",
        ),
        (
            json!({"recipient": "a@example.com", "message": "x"}),
            "invalid_recipient",
        ),
        (json!({"message": "x"}), "recipient_required"),
        (json!({"recipient": "12015550150"}), "message_required"),
    ] {
        send_message(&app, &token, body).await.assert_error(400, code);
    }
    // Not on WhatsApp: WhatsApp refuses it, and history keeps the failed attempt.
    send_message(&app, &token, json!({"recipient": "12015550177", "message": "x"}))
        .await
        .assert_error(400, "rejected_by_whatsapp");
    assert_eq!(history(&app, &token, "").await["data"][0]["status"], "failed");
}

#[tokio::test]
async fn every_media_kind_can_be_sent_by_link() {
    let (app, token) = ready().await;
    let files = FileServer::start().await;
    for (file, kind, mime) in [
        ("photo.png", "image", "image/png"),
        ("photo.jpg", "image", "image/jpeg"),
        ("clip.mp4", "video", "video/mp4"),
        ("voice.ogg", "audio", "audio/ogg"),
        ("report.pdf", "document", "application/pdf"),
    ] {
        let resp = send_message(&app, &token, json!({"recipient": ALICE, "message": format!("here is {file}"), "mediaLink": files.url(&format!("/files/{file}"))}))
            .await;
        resp.assert_status(200);
        assert_eq!(resp.body["type"], kind, "{file}");
        let last = received(&app, &token, ALICE).await.pop().unwrap();
        assert_eq!(last["type"], "media");
        assert_eq!(last["media"]["kind"], kind, "{file}");
        assert_eq!(last["media"]["mimeType"], mime, "{file}");
        assert!(last["media"]["size"].as_u64().unwrap() > 60);
        if kind == "audio" {
            assert!(last["text"].is_null(), "audio has no caption");
        } else {
            assert_eq!(last["text"], format!("here is {file}"));
        }
        if kind == "document" {
            assert_eq!(last["media"]["fileName"], "report.pdf");
        }
    }
    let sticker = send_message(
        &app,
        &token,
        json!({"recipient": ALICE, "mediaLink": files.url("/files/sticker.webp"), "mediaType": "sticker"}),
    )
    .await;
    sticker.assert_status(200);
    assert_eq!(sticker.body["type"], "sticker");
    let page = history(&app, &token, "?limit=3").await;
    assert_eq!(page["data"][0]["type"], "sticker");
    assert_eq!(page["data"][0]["media"]["mimeType"], "image/webp");
}

#[tokio::test]
async fn media_can_be_uploaded_or_sent_as_base64() {
    let (app, token) = ready().await;
    let form = reqwest::multipart::Form::new()
        .text("recipient", ALICE)
        .text("message", "uploaded photo")
        .text("fileName", "holiday.png")
        .part(
            "media",
            reqwest::multipart::Part::bytes(fixtures::png())
                .file_name("upload.png")
                .mime_str("image/png")
                .unwrap(),
        );
    let resp = send(
        app.client
            .post(app.url(&path(A, "/message")))
            .bearer_auth(&token)
            .multipart(form),
    )
    .await;
    resp.assert_status(200);
    assert_eq!(resp.body["type"], "image");
    let last = received(&app, &token, ALICE).await.pop().unwrap();
    assert_eq!(last["media"]["mimeType"], "image/png");
    assert_eq!(last["media"]["fileName"], "holiday.png");
    assert_eq!(last["text"], "uploaded photo");

    let voice = base64::engine::general_purpose::STANDARD.encode(wagate::media::probe::samples::ogg_opus(3));
    let resp = send_message(&app, &token, json!({"recipient": ALICE, "media": format!("data:audio/ogg;base64,{voice}"), "messageOptions": {"voiceNote": true}}))
        .await;
    resp.assert_status(200);
    let last = received(&app, &token, ALICE).await.pop().unwrap();
    assert_eq!(last["media"]["kind"], "audio");
    assert_eq!(last["media"]["voiceNote"], true);
    // A voice note WhatsApp could not play is refused, not sent.
    let mut mp3 = b"ID3\x03\0\0\0\0\0\0".to_vec();
    mp3.extend_from_slice(&[0; 64]);
    let mp3 = base64::engine::general_purpose::STANDARD.encode(mp3);
    let resp = send_message(&app, &token, json!({"recipient": ALICE, "media": format!("data:audio/mpeg;base64,{mp3}"), "messageOptions": {"voiceNote": true}}))
        .await;
    resp.assert_error(415, "voice_note_needs_opus");
    let after = received(&app, &token, ALICE).await;
    assert_eq!(
        after.last().unwrap()["media"]["voiceNote"],
        true,
        "nothing else was sent"
    );

    let doc = base64::engine::general_purpose::STANDARD.encode(fixtures::pdf());
    let resp = send_message(
        &app,
        &token,
        json!({"recipient": ALICE, "media": doc, "fileName": "../../q3.pdf"}),
    )
    .await;
    resp.assert_status(200);
    let last = received(&app, &token, ALICE).await.pop().unwrap();
    assert_eq!(last["media"]["fileName"], "q3.pdf", "directories are stripped");
}

#[tokio::test]
async fn a_list_message_arrives_with_its_sections() {
    let (app, token) = ready().await;
    let list = json!({
        "title": "Menu",
        "body": "Pick a dish",
        "footer": "Kitchen open till 10",
        "buttonText": "See menu",
        "sections": [
            {"title": "Mains", "rows": [{"id": "m1", "title": "Pasta"}, {"id": "m2", "title": "Curry", "description": "spicy"}]},
            {"title": "Drinks", "rows": [{"id": "d1", "title": "Tea"}]}
        ]
    });
    let resp = send_message(&app, &token, json!({"recipient": ALICE, "list": list})).await;
    resp.assert_status(200);
    assert_eq!(resp.body["type"], "list");
    let last = received(&app, &token, ALICE).await.pop().unwrap();
    assert_eq!(last["type"], "list");
    assert_eq!(last["list"]["buttonText"], "See menu");
    assert_eq!(last["list"]["sections"][0]["rows"][1]["description"], "spicy");
    assert_eq!(last["list"]["sections"][1]["rows"][0]["id"], "d1");

    let duplicate = json!({"title": "x", "body": "y", "buttonText": "z", "sections": [{"title": "s", "rows": [{"id": "a", "title": "1"}, {"id": "a", "title": "2"}]}]});
    send_message(&app, &token, json!({"recipient": ALICE, "list": duplicate}))
        .await
        .assert_error(400, "invalid_list");
}

#[tokio::test]
async fn replies_quote_mention_and_can_skip_link_previews() {
    let (app, token) = ready().await;
    let first = send_message(&app, &token, json!({"recipient": ALICE, "message": "first"}))
        .await
        .body["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let resp = send_message(
        &app,
        &token,
        json!({
            "recipient": ALICE,
            "message": "see https://example.com @12015550151",
            "messageOptions": {"quotedMessageId": first, "mentions": ["12015550151"], "linkPreview": false}
        }),
    )
    .await;
    resp.assert_status(200);
    let last = received(&app, &token, ALICE).await.pop().unwrap();
    assert_eq!(last["quotedId"], first.as_str());
    assert_eq!(last["mentions"], json!(["12015550151@s.whatsapp.net"]));
    assert_eq!(last["linkPreview"], false);
    assert_eq!(history(&app, &token, "").await["data"][0]["quotedId"], first.as_str());
}

#[tokio::test]
async fn inbound_messages_land_in_history_and_contacts() {
    let (app, token) = ready().await;
    let resp = app
        .post(
            &format!("/api/v1/sandbox/phones/{A}/inbound"),
            Some(&token),
            json!({"from": ALICE, "message": "hi there"}),
        )
        .await;
    resp.assert_status(200);
    assert_eq!(resp.body["delivered"], true);
    let page = history(&app, &token, "").await;
    let message = &page["data"][0];
    assert_eq!(message["id"], resp.body["id"]);
    assert_eq!(message["direction"], "in");
    assert_eq!(message["status"], "received");
    assert_eq!(message["sender"], "12015550150@s.whatsapp.net");
    assert_eq!(message["pushName"], "Alice");
    assert_eq!(message["text"], "hi there");

    app.post(
        &format!("/api/v1/sandbox/phones/{A}/inbound"),
        Some(&token),
        json!({"from": BOB, "message": "a photo", "media": {"kind": "image", "mimeType": "image/jpeg", "size": 1234}}),
    )
    .await
    .assert_status(200);
    let media = &history(&app, &token, "").await["data"][0];
    assert_eq!(media["type"], "image");
    assert_eq!(media["media"]["mimeType"], "image/jpeg");
    assert_eq!(media["text"], "a photo");

    let contacts = app.get(&format!("/api/v1/user/contacts/{A}"), Some(&token)).await;
    contacts.assert_status(200);
    let names: Vec<&str> = contacts.body["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["pushName"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["Alice", "Bob"]);
    assert_eq!(contacts.body["data"][0]["number"], "12015550150");
}

#[tokio::test]
async fn inbound_reactions_and_list_replies_keep_what_they_point_at() {
    let (app, token) = ready().await;
    let inbound = |body: Value| {
        let app = &app;
        let token = &token;
        async move {
            app.post(&format!("/api/v1/sandbox/phones/{A}/inbound"), Some(token), body)
                .await
        }
    };
    let sent = send_message(&app, &token, json!({"recipient": ALICE, "message": "lunch?"})).await;
    let mine = sent.body["id"].as_str().unwrap().to_owned();
    inbound(json!({"from": ALICE, "reaction": {"messageId": mine, "emoji": "👍"}}))
        .await
        .assert_status(200);
    let liked = history(&app, &token, "").await["data"][0].clone();
    assert_eq!(liked["type"], "reaction", "{liked}");
    assert_eq!(liked["text"], "👍", "{liked}");
    assert_eq!(liked["targetId"], mine.as_str(), "{liked}");
    inbound(json!({"from": ALICE, "reaction": {"messageId": mine}}))
        .await
        .assert_status(200);
    let removed = history(&app, &token, "").await["data"][0].clone();
    assert_eq!(removed["type"], "reaction_removed", "{removed}");
    assert_eq!(removed["targetId"], mine.as_str(), "{removed}");
    inbound(json!({"from": ALICE, "listReply": {"rowId": "m2", "title": "Risotto"}}))
        .await
        .assert_status(200);
    let picked = history(&app, &token, "").await["data"][0].clone();
    assert_eq!(picked["type"], "list_reply", "{picked}");
    assert_eq!(picked["selectedId"], "m2", "{picked}");
    assert_eq!(picked["text"], "Risotto", "{picked}");
    inbound(json!({"from": ALICE, "reaction": {"messageId": mine, "emoji": "👍"}, "listReply": {"rowId": "m2"}}))
        .await
        .assert_error(400, "invalid_message");
}

#[tokio::test]
async fn lists_without_pages_stop_at_the_cap_and_say_so() {
    let app = crate::helpers::builder()
        .with("limits.unpaginated_max", 1)
        .spawn()
        .await;
    app.set_first_password().await;
    let (app, token) = connected_app(app).await;
    for from in [ALICE, BOB] {
        app.post(
            &format!("/api/v1/sandbox/phones/{A}/inbound"),
            Some(&token),
            json!({"from": from, "message": "hi"}),
        )
        .await
        .assert_status(200);
    }
    for route in ["/api/v1/user/contacts".to_owned(), format!("/api/v1/user/contacts/{A}")] {
        let list = app.get(&route, Some(&token)).await;
        list.assert_status(200);
        assert_eq!(list.body["data"].as_array().unwrap().len(), 1, "{route}: {}", list.body);
        assert_eq!(list.body["truncated"], true, "{route}: {}", list.body);
    }
    // The paginated route has them all.
    let page = app.get("/api/v1/user/contacts/pagination?limit=10", Some(&token)).await;
    assert_eq!(page.body["pagination"]["total"], 2, "{}", page.body);
}

#[tokio::test]
async fn contacts_are_merged_across_phones() {
    let (app, token) = ready().await;
    app.pair_phone(&token, B).await;
    for phone in [A, B] {
        app.post(
            &format!("/api/v1/sandbox/phones/{phone}/inbound"),
            Some(&token),
            json!({"from": ALICE, "message": "hi"}),
        )
        .await
        .assert_status(200);
    }
    app.post(
        &format!("/api/v1/sandbox/phones/{B}/inbound"),
        Some(&token),
        json!({"from": BOB, "message": "yo"}),
    )
    .await
    .assert_status(200);
    let all = app.get("/api/v1/user/contacts", Some(&token)).await;
    all.assert_status(200);
    let data = all.body["data"].as_array().unwrap();
    assert_eq!(data.len(), 2, "{data:?}");
    assert_eq!(all.body["truncated"], false);
    assert_eq!(data[0]["number"], "12015550150");
    let phones: Vec<&str> = data[0]["phones"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["phone"].as_str().unwrap())
        .collect();
    assert_eq!(phones, [A, B]);
    assert_eq!(data[1]["phones"].as_array().unwrap().len(), 1);

    let page = app
        .get("/api/v1/user/contacts/pagination?page=2&limit=1", Some(&token))
        .await;
    page.assert_status(200);
    assert_eq!(page.body["data"][0]["number"], "12015550151");
    assert_eq!(
        page.body["pagination"],
        json!({"page": 2, "limit": 1, "total": 2, "totalPages": 2})
    );
    let past = app
        .get("/api/v1/user/contacts/pagination?page=9&limit=1", Some(&token))
        .await;
    assert_eq!(past.body["data"], json!([]));
    app.get("/api/v1/user/contacts/pagination?limit=0", Some(&token))
        .await
        .assert_error(400, "invalid_limit");
    app.get("/api/v1/user/contacts/+12015550199", Some(&token))
        .await
        .assert_error(404, "phone_not_found");
}

#[tokio::test]
async fn typing_shows_and_clears() {
    let (app, token) = ready().await;
    let on = app
        .post(
            &path(A, "/typing"),
            Some(&token),
            json!({"recipient": ALICE, "isTyping": true}),
        )
        .await;
    on.assert_status(200);
    assert_eq!(
        on.body,
        json!({"recipient": "12015550150@s.whatsapp.net", "state": "composing"})
    );
    assert_eq!(
        typing_to(&app, &token, ALICE).await,
        json!([A]),
        "Alice sees the phone typing"
    );
    let off = app
        .post(
            &path(A, "/typing"),
            Some(&token),
            json!({"recipient": ALICE, "isTyping": false}),
        )
        .await;
    assert_eq!(off.body["state"], "paused");
    assert_eq!(typing_to(&app, &token, ALICE).await, json!([]), "and no longer");
    app.post(&path(A, "/disconnect"), Some(&token), json!({})).await;
    app.post(
        &path(A, "/typing"),
        Some(&token),
        json!({"recipient": ALICE, "isTyping": true}),
    )
    .await
    .assert_error(409, "phone_not_connected");
}

#[tokio::test]
async fn has_whatsapp_answers_single_and_batch_and_caches() {
    let (app, token) = ready().await;
    let yes = app
        .post(&path(A, "/has-whatsapp"), Some(&token), json!({"recipient": ALICE}))
        .await;
    yes.assert_status(200);
    assert_eq!(yes.body["exists"], true);
    assert_eq!(yes.body["jid"], "12015550150@s.whatsapp.net");
    assert!(yes.body["lid"].as_str().unwrap().ends_with("@lid"));
    let no = app
        .post(
            &path(A, "/has-whatsapp"),
            Some(&token),
            json!({"recipient": "(201) 555-0177", "country": "US"}),
        )
        .await;
    assert_eq!(no.body["exists"], false);
    assert!(no.body["lid"].is_null());

    let sandbox = app.state.sandbox.clone().unwrap();
    let before = sandbox.stats().lookups.load(std::sync::atomic::Ordering::Relaxed);
    let batch = app
        .post(
            &path(A, "/has-whatsapp"),
            Some(&token),
            json!({"recipients": [ALICE, "12015550177", BOB]}),
        )
        .await;
    batch.assert_status(200);
    let results: Vec<bool> = batch.body["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["exists"].as_bool().unwrap())
        .collect();
    assert_eq!(results, [true, false, true]);
    assert_eq!(batch.body["data"][2]["recipient"], BOB);
    let after = sandbox.stats().lookups.load(std::sync::atomic::Ordering::Relaxed);
    assert_eq!(after - before, 1, "only Bob was not cached yet");
    app.post(
        &path(A, "/has-whatsapp"),
        Some(&token),
        json!({"recipients": [ALICE, BOB]}),
    )
    .await
    .assert_status(200);
    assert_eq!(
        sandbox.stats().lookups.load(std::sync::atomic::Ordering::Relaxed),
        after,
        "all cached"
    );

    let too_many: Vec<String> = (0..51).map(|i| format!("120155501{i:02}")).collect();
    app.post(&path(A, "/has-whatsapp"), Some(&token), json!({"recipients": too_many}))
        .await
        .assert_error(400, "invalid_request");
    app.post(
        &path(A, "/has-whatsapp"),
        Some(&token),
        json!({"recipient": "1203630@g.us"}),
    )
    .await
    .assert_error(400, "invalid_recipient");
    app.post(&path(A, "/has-whatsapp"), Some(&token), json!({}))
        .await
        .assert_error(400, "invalid_recipient");
}

#[tokio::test]
async fn groups_come_from_the_cache_until_refreshed_or_changed() {
    let app = builder().with("sandbox.latency", "100ms").spawn().await;
    app.set_first_password().await;
    let (app, token) = connected_app(app).await;
    let group = app
        .post(
            "/api/v1/sandbox/groups",
            Some(&token),
            json!({"subject": "Team", "members": [A, ALICE, BOB]}),
        )
        .await;
    group.assert_status(201);
    let group_jid = group.body["jid"].as_str().unwrap().to_owned();
    // The new group's change event reaches the phone before any later call to it, and the
    // phone hands the cache its invalidation while handling it: after one more call to the
    // phone, no late invalidation can clear the cache under the checks below.
    app.post(
        &path(A, "/typing"),
        Some(&token),
        json!({"recipient": ALICE, "isTyping": false}),
    )
    .await
    .assert_status(200);

    let sandbox = app.state.sandbox.clone().unwrap();
    let queries = || sandbox.stats().group_queries.load(std::sync::atomic::Ordering::Relaxed);
    let start = queries();
    // Concurrent misses share one fetch.
    let url = path(A, "/groups");
    let (r1, r2, r3) = tokio::join!(
        app.get(&url, Some(&token)),
        app.get(&url, Some(&token)),
        app.get(&url, Some(&token))
    );
    for r in [&r1, &r2, &r3] {
        r.assert_status(200);
        assert_eq!(r.body["cached"], false);
        assert_eq!(r.body["data"][0]["subject"], "Team");
        assert_eq!(r.body["data"][0]["size"], 3);
    }
    assert_eq!(queries() - start, 1, "single flight");
    let second = app.get(&url, Some(&token)).await;
    assert_eq!(second.body["cached"], true);
    assert_eq!(second.body["cachedAt"], r1.body["cachedAt"]);
    assert_eq!(queries() - start, 1);
    let refreshed = app.get(&format!("{url}?refresh=true"), Some(&token)).await;
    assert_eq!(refreshed.body["cached"], false);
    assert_eq!(queries() - start, 2);

    let detail = app.get(&format!("{url}/{group_jid}"), Some(&token)).await;
    detail.assert_status(200);
    assert_eq!(detail.body["data"]["participants"].as_array().unwrap().len(), 3);
    assert_eq!(detail.body["data"]["participants"][0]["admin"], true);
    let bare_id = group_jid.trim_end_matches("@g.us");
    let again = app.get(&format!("{url}/{bare_id}"), Some(&token)).await;
    assert_eq!(again.body["cached"], true);

    // A new group changes the phone's groups: the cache lets go.
    app.post(
        "/api/v1/sandbox/groups",
        Some(&token),
        json!({"subject": "Family", "members": [A, BOB]}),
    )
    .await
    .assert_status(201);
    eventually(DEADLINE, || async {
        let fresh = app.get(&url, Some(&token)).await.body;
        match fresh["data"].as_array().unwrap().len() {
            2 => Ok(()),
            _ => Err(format!("the cache still shows the old groups: {fresh}")),
        }
    })
    .await;

    app.get(&format!("{url}/120363999999999999@g.us"), Some(&token))
        .await
        .assert_error(404, "not_found");
    app.get(&format!("{url}/not-a-group!"), Some(&token))
        .await
        .assert_error(400, "invalid_group_id");
}

#[tokio::test]
async fn history_pages_are_stable_at_the_edges() {
    let (app, token) = ready().await;
    for i in 0..25 {
        send_message(
            &app,
            &token,
            json!({"recipient": if i % 5 == 0 { BOB } else { ALICE }, "message": format!("m{i}")}),
        )
        .await
        .assert_status(200);
    }
    let first = history(&app, &token, "?page=1&limit=10").await;
    assert_eq!(first["data"].as_array().unwrap().len(), 10);
    assert_eq!(first["data"][0]["text"], "m24");
    assert_eq!(
        first["pagination"],
        json!({"page": 1, "limit": 10, "total": 25, "totalPages": 3})
    );
    let last = history(&app, &token, "?page=3&limit=10").await;
    let texts: Vec<&str> = last["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["text"].as_str().unwrap())
        .collect();
    assert_eq!(texts, ["m4", "m3", "m2", "m1", "m0"]);
    let past = history(&app, &token, "?page=4&limit=10").await;
    assert_eq!(past["data"], json!([]));
    assert_eq!(past["pagination"]["total"], 25);
    let capped = history(&app, &token, "?limit=1000").await;
    assert_eq!(capped["pagination"]["limit"], 100);
    assert_eq!(capped["data"].as_array().unwrap().len(), 25);
    let default = history(&app, &token, "").await;
    assert_eq!(default["pagination"]["limit"], 20);

    let bob = history(
        &app,
        &token,
        &format!("?recipient={}&limit=2", BOB.trim_start_matches('+')),
    )
    .await;
    assert_eq!(bob["pagination"]["total"], 5);
    assert_eq!(bob["data"][0]["text"], "m20");
    let bob_page3 = history(&app, &token, "?jid=12015550151@s.whatsapp.net&limit=2&page=3").await;
    assert_eq!(bob_page3["data"][0]["text"], "m0");

    for (query, code) in [
        ("?limit=0", "invalid_limit"),
        ("?page=0", "invalid_page"),
        ("?page=abc", "invalid_page"),
        ("?page=99999999999", "invalid_page"),
        ("?recipient=123", "invalid_recipient"),
    ] {
        app.get(&format!("{}{query}", path(A, "/messages")), Some(&token))
            .await
            .assert_error(400, code);
    }
}

#[tokio::test]
async fn send_errors_are_clear_and_never_500() {
    let app = builder()
        .with("limits.allowed_media", json!(["image", "document"]))
        .with("limits.max_media_bytes", 1024 * 1024)
        .spawn()
        .await;
    app.set_first_password().await;
    let (app, token) = connected_app(app).await;
    let files = FileServer::start().await;
    let send_link = |link: String| {
        let app = &app;
        let token = token.clone();
        async move { send_message(app, &token, json!({"recipient": ALICE, "mediaLink": link})).await }
    };
    send_link(files.url("/files/clip.mp4"))
        .await
        .assert_error(415, "media_type_not_allowed");
    send_link(files.url("/big")).await.assert_error(413, "media_too_large");
    send_link(files.url("/files/missing.png"))
        .await
        .assert_error(400, "media_unreachable");
    send_link("http://127.0.0.1:9/nothing-listens-here.png".into())
        .await
        .assert_error(400, "media_unreachable");
    send_link("http://169.254.169.254/latest/meta-data/".into())
        .await
        .assert_error(400, "invalid_media_link");
    send_link("ftp://example.com/a.png".into())
        .await
        .assert_error(400, "invalid_media_link");
    send_message(
        &app,
        &token,
        json!({"recipient": ALICE, "mediaLink": files.url("/files/report.pdf"), "mediaType": "image"}),
    )
    .await
    .assert_error(415, "media_type_mismatch");
    send_message(
        &app,
        &token,
        json!({"recipient": ALICE, "mediaLink": files.url("/files/mislabelled.png"), "mediaType": "image"}),
    )
    .await
    .assert_error(415, "media_type_mismatch");
    send_message(&app, &token, json!({"recipient": ALICE, "media": "%%%not base64"}))
        .await
        .assert_error(400, "invalid_media");
    send_message(
        &app,
        &token,
        json!({"recipient": ALICE, "media": "aGk=", "mediaLink": files.url("/files/photo.png")}),
    )
    .await
    .assert_error(400, "invalid_message");
    app.post(
        "/api/v1/user/phones/+12015550199/message",
        Some(&token),
        json!({"recipient": ALICE, "message": "x"}),
    )
    .await
    .assert_error(404, "phone_not_found");
    app.post(&path(A, "/disconnect"), Some(&token), json!({}))
        .await
        .assert_status(200);
    send_message(&app, &token, json!({"recipient": ALICE, "message": "x"}))
        .await
        .assert_error(409, "phone_not_connected");
    // A mislabelled request body type is a 415 too.
    let req = app
        .client
        .post(app.url(&path(A, "/message")))
        .bearer_auth(&token)
        .header("Content-Type", "text/plain")
        .body("hi");
    send(req).await.assert_error(415, "unsupported_content_type");
}

#[tokio::test]
async fn paced_sends_are_spaced_and_do_not_hold_up_other_phones() {
    let app = builder()
        .with("messaging.pacing", "on")
        .with("messaging.send_interval", "400ms")
        .with("messaging.send_jitter", "0s")
        .spawn()
        .await;
    app.set_first_password().await;
    let (app, token) = connected_app(app).await;
    app.pair_phone(&token, B).await;
    let send_a = |i: usize| {
        let app = &app;
        let token = token.clone();
        async move { send_message(app, &token, json!({"recipient": ALICE, "message": format!("a{i}")})).await }
    };
    let from_b = async {
        tokio::time::sleep(Duration::from_millis(20)).await;
        app.post(
            &path(B, "/message"),
            Some(&token),
            json!({"recipient": BOB, "message": "b"}),
        )
        .await
    };
    let (a0, a1, a2, a3, b) = tokio::join!(send_a(0), send_a(1), send_a(2), send_a(3), from_b);
    for r in [&a0, &a1, &a2, &a3, &b] {
        r.assert_status(200);
    }
    let alice = received(&app, &token, ALICE).await;
    let times: Vec<chrono::DateTime<chrono::Utc>> = alice
        .iter()
        .map(|m| m["receivedAt"].as_str().unwrap().parse().unwrap())
        .collect();
    for pair in times.windows(2) {
        assert!(
            pair[1] - pair[0] >= chrono::Duration::milliseconds(390),
            "sends are spaced: {times:?}"
        );
    }
    let bob: chrono::DateTime<chrono::Utc> = received(&app, &token, BOB).await[0]["receivedAt"]
        .as_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!(bob < times[3], "B's send did not wait behind A's queue");
}

#[tokio::test]
async fn a_paced_queue_refuses_what_it_cannot_send_in_time() {
    let app = builder()
        .with("messaging.pacing", "on")
        .with("messaging.send_interval", "1s")
        .with("messaging.send_jitter", "0s")
        .with("http.request_timeout", "1500ms")
        .spawn()
        .await;
    app.set_first_password().await;
    let (app, token) = connected_app(app).await;
    let url = path(A, "/message");
    let send = || app.post(&url, Some(&token), json!({"recipient": ALICE, "message": "x"}));
    let (r1, r2, r3) = tokio::join!(send(), send(), send());
    let statuses = [r1.status.as_u16(), r2.status.as_u16(), r3.status.as_u16()];
    assert!(statuses.contains(&429), "{statuses:?}");
    let refused = [&r1, &r2, &r3].into_iter().find(|r| r.status == 429).unwrap();
    refused.assert_error(429, "too_many_requests");
    assert!(refused.header("retry-after").is_some());
}

#[tokio::test]
async fn texts_with_nul_characters_are_stored_on_every_database() {
    let (app, token) = ready().await;
    let resp = send_message(&app, &token, json!({"recipient": ALICE, "message": "before\u{0}after"})).await;
    resp.assert_status(200);
    assert_eq!(history(&app, &token, "").await["data"][0]["text"], "beforeafter");
    app.post(
        &format!("/api/v1/sandbox/phones/{A}/inbound"),
        Some(&token),
        json!({"from": ALICE, "message": "in\u{0}bound"}),
    )
    .await
    .assert_status(200);
    assert_eq!(history(&app, &token, "").await["data"][0]["text"], "inbound");
}

#[tokio::test]
async fn history_kept_under_a_lid_moves_to_the_persons_number_on_upgrade() {
    use sea_orm_migration::MigratorTrait;
    use wagate::db::contacts::{self, Learnt};
    use wagate::db::messages::{self, NewMessage};
    use wagate::domain::{Direction, Jid, MessageKind, MessageStatus, PhoneNumber};
    let (app, token) = ready().await;
    let db = &app.state.db;
    // As the database was before this version: a person's messages kept under their LID,
    // their contact under the number with the LID beside, and one under the LID alone;
    // another person whose number nobody knows. Then the migrations since are undone.
    let phone = PhoneNumber::parse(A, None).unwrap();
    let (lid, number, stranger) = ("98765432109876@lid", "12015550150@s.whatsapp.net", "11111111111111@lid");
    let row = |id: &str, from: &str| NewMessage {
        message_id: id.into(),
        direction: Direction::In,
        chat: from.into(),
        sender: from.into(),
        kind: MessageKind::Text,
        body: Some("from before".into()),
        media_mime: None,
        media_file_name: None,
        media_size: None,
        quoted_id: None,
        push_name: None,
        status: MessageStatus::Received,
        timestamp: chrono::Utc::now(),
        raw_kind: None,
        sender_lid: None,
        target_id: None,
        selected_id: None,
        media_ref: None,
        media_status: None,
        media_sha256: None,
        media_error: None,
        details: None,
    };
    let last = messages::last_seq(db, &phone).await.unwrap();
    messages::insert(db, &phone, last + 1, row("3EB0OLDLID", lid))
        .await
        .unwrap();
    messages::insert(db, &phone, last + 2, row("3EB0STRANGER", stranger))
        .await
        .unwrap();
    contacts::upsert(
        db,
        &phone,
        &[
            Learnt {
                jid: Some(number.parse::<Jid>().unwrap()),
                lid: Some(lid.into()),
                ..Learnt::default()
            },
            Learnt {
                jid: Some(lid.parse::<Jid>().unwrap()),
                lid: Some(lid.into()),
                push_name: Some("Ana".into()),
                ..Learnt::default()
            },
        ],
    )
    .await
    .unwrap();
    wagate_migrations::Migrator::down(db, Some(4)).await.unwrap();
    wagate_migrations::Migrator::up(db, None).await.unwrap();
    let page = history(&app, &token, "").await;
    let by_id = |id: &str| {
        page["data"]
            .as_array()
            .unwrap()
            .iter()
            .find(|m| m["id"] == id)
            .unwrap()
            .clone()
    };
    let moved = by_id("3EB0OLDLID");
    assert_eq!(moved["chat"], number, "{moved}");
    assert_eq!(moved["sender"], number, "{moved}");
    assert_eq!(moved["senderLid"], lid, "{moved}");
    let kept = by_id("3EB0STRANGER");
    assert_eq!(kept["chat"], stranger, "an unknown number stays a LID: {kept}");
    let people = contacts::of_phone(db, &phone, 100).await.unwrap();
    let ana: Vec<_> = people.iter().filter(|c| c.lid.as_deref() == Some(lid)).collect();
    assert_eq!(ana.len(), 1, "{people:?}");
    assert_eq!(ana[0].jid, number);
    assert_eq!(ana[0].push_name.as_deref(), Some("Ana"), "the name kept under the LID");
}

#[tokio::test]
async fn a_message_of_a_kind_no_longer_known_reads_as_unsupported_after_the_upgrade() {
    use sea_orm::ConnectionTrait;
    use sea_orm_migration::MigratorTrait;
    let (app, token) = ready().await;
    let db = &app.state.db;
    for (from, text) in [(ALICE, "kept as text"), (BOB, "of an old kind")] {
        app.post(
            &format!("/api/v1/sandbox/phones/{A}/inbound"),
            Some(&token),
            json!({"from": from, "message": text}),
        )
        .await
        .assert_status(200);
    }
    // As an early build might have left it: a kind the app's enum does not have.
    wagate_migrations::Migrator::down(db, Some(3)).await.unwrap();
    db.execute_unprepared("UPDATE messages SET kind = 'ptv' WHERE body = 'of an old kind'")
        .await
        .unwrap();
    wagate_migrations::Migrator::up(db, None).await.unwrap();
    let page = history(&app, &token, "").await;
    let by_text = |text: &str| {
        page["data"]
            .as_array()
            .unwrap()
            .iter()
            .find(|m| m["text"] == text)
            .unwrap()
            .clone()
    };
    let old = by_text("of an old kind");
    assert_eq!(old["type"], "unsupported", "{old}");
    assert_eq!(old["rawType"], "ptv", "{old}");
    let kept = by_text("kept as text");
    assert_eq!(kept["type"], "text", "{kept}");
    assert!(kept.get("rawType").is_none(), "{kept}");
}

#[tokio::test]
async fn a_reaction_reaches_the_author_and_history_keeps_its_target() {
    let (app, token) = ready().await;
    let resp = app
        .post(
            &format!("/api/v1/sandbox/phones/{A}/inbound"),
            Some(&token),
            json!({"from": ALICE, "message": "the parcel arrived"}),
        )
        .await;
    resp.assert_status(200);
    let target = resp.body["id"].as_str().unwrap().to_owned();
    let react = |emoji: &'static str| {
        let app = &app;
        let token = &token;
        let target = &target;
        async move {
            app.post(
                &path(A, &format!("/messages/{target}/reaction")),
                Some(token),
                json!({"emoji": emoji}),
            )
            .await
        }
    };
    let sent = react("👍").await;
    sent.assert_status(200);
    assert_eq!(sent.body["type"], "reaction", "{}", sent.body);
    assert_eq!(sent.body["recipient"], "12015550150@s.whatsapp.net");
    let inbox = received(&app, &token, ALICE).await;
    let last = inbox.last().unwrap();
    assert_eq!(last["type"], "reaction", "{last}");
    assert_eq!(last["text"], "👍", "{last}");
    assert_eq!(last["targetId"], target.as_str(), "{last}");
    let page = history(&app, &token, "").await;
    let mine = page["data"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["id"] == sent.body["id"])
        .cloned()
        .unwrap();
    assert_eq!(mine["direction"], "out", "{mine}");
    assert_eq!(mine["type"], "reaction", "{mine}");
    assert_eq!(mine["text"], "👍", "{mine}");
    assert_eq!(mine["targetId"], target.as_str(), "{mine}");

    // Taken back: an empty emoji.
    let removed = react("").await;
    removed.assert_status(200);
    assert_eq!(removed.body["type"], "reaction_removed");
    let inbox = received(&app, &token, ALICE).await;
    let last = inbox.last().unwrap();
    assert_eq!(last["type"], "reaction", "{last}");
    assert!(last.get("text").is_none(), "{last}");

    // What cannot be reacted to, or with.
    app.post(
        &path(A, "/messages/3EB0NOSUCH/reaction"),
        Some(&token),
        json!({"emoji": "👍"}),
    )
    .await
    .assert_error(404, "message_not_found");
    let own = sent.body["id"].as_str().unwrap();
    app.post(
        &path(A, &format!("/messages/{own}/reaction")),
        Some(&token),
        json!({"emoji": "👍"}),
    )
    .await
    .assert_error(409, "invalid_target");
    react("ok").await.assert_error(400, "invalid_emoji");
}

#[tokio::test]
async fn read_receipts_reach_the_sender_one_message_or_a_whole_chat() {
    let (app, token) = ready().await;
    let mut ids = Vec::new();
    for text in ["one", "two", "three"] {
        let resp = app
            .post(
                &format!("/api/v1/sandbox/phones/{A}/inbound"),
                Some(&token),
                json!({"from": ALICE, "message": text}),
            )
            .await;
        resp.assert_status(200);
        ids.push(resp.body["id"].as_str().unwrap().to_owned());
    }
    // One message.
    let resp = app
        .post(&path(A, &format!("/messages/{}/read", ids[0])), Some(&token), json!({}))
        .await;
    resp.assert_status(200);
    assert_eq!(resp.body["read"], 1);
    assert_eq!(read_by_phones(&app, &token).await, vec![ids[0].clone()]);
    let status = |page: &Value, id: &str| {
        page["data"].as_array().unwrap().iter().find(|m| m["id"] == id).unwrap()["status"].clone()
    };
    let page = history(&app, &token, "").await;
    assert_eq!(status(&page, &ids[0]), "read");
    assert_eq!(status(&page, &ids[1]), "received");

    // The rest of the chat, by number; then nothing is left to read.
    let resp = app
        .post(&path(A, "/chats/12015550150/read"), Some(&token), json!({}))
        .await;
    resp.assert_status(200);
    assert_eq!(resp.body["read"], 2);
    assert_eq!(read_by_phones(&app, &token).await, ids);
    let page = history(&app, &token, "").await;
    assert!(ids.iter().all(|id| status(&page, id) == "read"), "{page}");
    let again = app
        .post(
            &path(A, "/chats/12015550150@s.whatsapp.net/read"),
            Some(&token),
            json!({}),
        )
        .await;
    again.assert_status(200);
    assert_eq!(again.body["read"], 0);

    // A message this phone sent is not marked read by it; unknown ids are 404.
    let sent = send_message(&app, &token, json!({"recipient": ALICE, "message": "hi"})).await;
    let own = sent.body["id"].as_str().unwrap();
    app.post(&path(A, &format!("/messages/{own}/read")), Some(&token), json!({}))
        .await
        .assert_error(409, "invalid_target");
    app.post(&path(A, "/messages/3EB0NOSUCH/read"), Some(&token), json!({}))
        .await
        .assert_error(404, "message_not_found");
    app.post(&path(A, "/chats/not-a-chat/read"), Some(&token), json!({}))
        .await
        .assert_error(400, "invalid_recipient");
}

/// Alice's messages the gateway phones marked read, in order.
async fn read_by_phones(app: &TestApp, token: &str) -> Vec<String> {
    let resp = app
        .get(&format!("/api/v1/sandbox/accounts/{ALICE}/messages"), Some(token))
        .await;
    resp.assert_status(200);
    resp.body["read"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["id"].as_str().unwrap().to_owned())
        .collect()
}

#[tokio::test]
async fn places_and_contact_cards_go_both_ways_and_history_keeps_them_whole() {
    let (app, token) = ready().await;
    let place = json!({"latitude": 40.7128, "longitude": -74.006, "name": "Office", "address": "1 Main St"});
    let sent = send_message(&app, &token, json!({"recipient": ALICE, "location": place})).await;
    sent.assert_status(200);
    assert_eq!(sent.body["type"], "location");
    let last = received(&app, &token, ALICE).await.pop().unwrap();
    assert_eq!(last["type"], "location", "{last}");
    assert_eq!(last["location"], place, "{last}");

    let cards = json!([
        {"name": "Bob", "phones": ["+12015550151"]},
        {"name": "Eve", "vcard": "BEGIN:VCARD\nVERSION:3.0\nFN:Eve\nEND:VCARD"}
    ]);
    let sent_cards = send_message(&app, &token, json!({"recipient": ALICE, "contacts": cards})).await;
    sent_cards.assert_status(200);
    assert_eq!(sent_cards.body["type"], "contact");
    let last = received(&app, &token, ALICE).await.pop().unwrap();
    assert_eq!(last["type"], "contacts", "{last}");
    let got = last["contacts"].as_array().unwrap();
    assert_eq!(got.len(), 2, "{last}");
    assert_eq!(got[0]["name"], "Bob");
    assert!(
        got[0]["vcard"]
            .as_str()
            .unwrap()
            .contains("waid=12015550151:+12015550151"),
        "{last}"
    );
    assert_eq!(got[1]["vcard"], "BEGIN:VCARD\nVERSION:3.0\nFN:Eve\nEND:VCARD");

    // Alice shares a place with the phone.
    let inbound = app
        .post(
            &format!("/api/v1/sandbox/phones/{A}/inbound"),
            Some(&token),
            json!({"from": ALICE, "location": {"latitude": -33.8688, "longitude": 151.2093, "name": "Harbour"}}),
        )
        .await;
    inbound.assert_status(200);
    let page = history(&app, &token, "").await;
    let by_id = |id: &Value| {
        page["data"]
            .as_array()
            .unwrap()
            .iter()
            .find(|m| m["id"] == *id)
            .unwrap()
            .clone()
    };
    let theirs = by_id(&inbound.body["id"]);
    assert_eq!(theirs["type"], "location", "{theirs}");
    assert_eq!(theirs["direction"], "in", "{theirs}");
    assert_eq!(theirs["location"]["latitude"], -33.8688, "{theirs}");
    assert_eq!(theirs["text"], "Harbour", "{theirs}");
    let mine = by_id(&sent.body["id"]);
    assert_eq!(mine["location"], place, "{mine}");
    assert_eq!(mine["text"], "Office, 1 Main St", "{mine}");
    let cards_row = by_id(&sent_cards.body["id"]);
    assert_eq!(cards_row["text"], "Bob, Eve", "{cards_row}");
    assert_eq!(cards_row["contacts"].as_array().unwrap().len(), 2, "{cards_row}");

    // Bad places and cards are refused, and so is more than one kind at once.
    for (body, code) in [
        (
            json!({"recipient": ALICE, "location": place, "list": {"title": "", "buttonText": "x",
                "sections": [{"title": "s", "rows": [{"id": "r", "title": "t"}]}]}}),
            "invalid_message",
        ),
        (
            json!({"recipient": ALICE, "contacts": [{"name": "Nobody"}]}),
            "invalid_contact",
        ),
        (
            json!({"recipient": ALICE, "contacts": [{"name": "Both", "phones": ["12015550151"], "vcard": "BEGIN:VCARD"}]}),
            "invalid_contact",
        ),
        (
            json!({"recipient": ALICE, "contacts": [{"name": "Fake", "vcard": "hello"}]}),
            "invalid_contact",
        ),
    ] {
        send_message(&app, &token, body.clone()).await.assert_error(400, code);
    }
    let far = send_message(
        &app,
        &token,
        json!({"recipient": ALICE, "location": {"latitude": 91, "longitude": 0}}),
    )
    .await;
    far.assert_status(400);
}
