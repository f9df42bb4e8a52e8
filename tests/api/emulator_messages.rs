//! Messaging on the real engine through `wa-emulator`, end to end encrypted: what the
//! gateway sends is what the other person's phone decrypts, what a person sends lands in
//! history, contacts and webhooks, and receipts and server refusals move a message's
//! status.

use serde_json::{Value, json};

use crate::emulator::{A, A_DIGITS, World, path, world};
use crate::fixtures::Receiver;
use crate::helpers::{DEADLINE, eventually};

const B: &str = "5511987654321";
const C: &str = "12015550177";

/// The gateway's phone A paired, and a person B on WhatsApp.
async fn talking() -> World {
    let w = world().await;
    w.pair().await;
    w.control("POST", "/control/accounts", json!({"phone": B, "name": "Bia"}))
        .await
        .assert_status(201);
    w
}

impl World {
    /// What the person `phone` received, decrypted by their phone.
    async fn inbox(&self, phone: &str) -> Vec<Value> {
        let resp = self
            .control("GET", &format!("/control/accounts/{phone}/messages"), Value::Null)
            .await;
        resp.assert_status(200);
        resp.body["data"].as_array().unwrap().clone()
    }

    /// Waits for the message `id` on the person's phone.
    async fn arrived(&self, phone: &str, id: &str) -> Value {
        eventually(DEADLINE, || async {
            let inbox = self.inbox(phone).await;
            inbox
                .iter()
                .find(|m| m["id"] == id)
                .cloned()
                .ok_or_else(|| format!("{id} has not reached {phone}: {inbox:?}"))
        })
        .await
    }

    /// The person `phone` sends `body` (`to` defaults to the gateway's phone).
    async fn person_sends(&self, phone: &str, mut body: Value) -> String {
        if body.get("to").is_none() {
            body["to"] = json!(A_DIGITS);
        }
        let resp = self
            .control("POST", &format!("/control/accounts/{phone}/messages"), body)
            .await;
        resp.assert_status(201);
        resp.body["id"].as_str().unwrap().to_owned()
    }

    /// A webhook receiving `message.received`.
    async fn message_hook(&self) -> Receiver {
        let receiver = Receiver::start().await;
        self.app
            .post(
                "/api/v1/user/webhooks",
                Some(&self.token),
                json!({"url": receiver.url(), "services": ["message.received"]}),
            )
            .await
            .assert_status(201);
        receiver
    }

    async fn gateway_sends(&self, body: Value) -> crate::helpers::Response {
        self.app.post(&path("/message"), Some(&self.token), body).await
    }

    async fn history(&self, query: &str) -> Vec<Value> {
        let resp = self
            .app
            .get(&format!("{}{query}", path("/messages")), Some(&self.token))
            .await;
        resp.assert_status(200);
        resp.body["data"].as_array().unwrap().clone()
    }

    /// Waits until history holds message `id` and `check` accepts it.
    async fn stored(&self, id: &str, what: &str, check: impl Fn(&Value) -> bool) -> Value {
        eventually(DEADLINE, || async {
            let history = self.history("").await;
            match history.iter().find(|m| m["id"] == id) {
                Some(m) if check(m) => Ok(m.clone()),
                other => Err(format!("{id} is not {what}: {other:?}")),
            }
        })
        .await
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_text_the_gateway_sends_is_what_the_recipient_decrypts_and_receipts_follow() {
    let w = talking().await;
    let resp = w.gateway_sends(json!({"recipient": B, "message": "olá Bia"})).await;
    resp.assert_status(200);
    let id = resp.body["id"].as_str().unwrap().to_owned();
    let got = w.arrived(B, &id).await;
    assert_eq!(got["text"], "olá Bia", "{got}");
    assert_eq!(got["type"], "text", "{got}");
    assert_eq!(got["from"], format!("{A_DIGITS}@s.whatsapp.net"), "{got}");
    assert_eq!(got["fromMe"], false, "{got}");
    // Bia's phone said it arrived; then she reads it.
    w.stored(&id, "delivered", |m| m["status"] == "delivered").await;
    w.control("POST", &format!("/control/accounts/{B}/read"), json!({"ids": [id]}))
        .await
        .assert_status(200);
    w.stored(&id, "read", |m| m["status"] == "read").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_persons_text_lands_in_history_contacts_and_the_webhook() {
    let w = talking().await;
    let receiver = w.message_hook().await;
    let id = w.person_sends(B, json!({"text": "oi, tudo bem?"})).await;
    let stored = w.stored(&id, "stored", |_| true).await;
    assert_eq!(stored["direction"], "in", "{stored}");
    assert_eq!(stored["text"], "oi, tudo bem?", "{stored}");
    assert_eq!(stored["chat"], format!("{B}@s.whatsapp.net"), "{stored}");
    assert_eq!(stored["pushName"], "Bia", "{stored}");
    let hit = receiver.wait_for(1).await.remove(0).json();
    assert_eq!(hit["event"], "message.received", "{hit}");
    assert_eq!(hit["data"]["id"], id.as_str(), "{hit}");
    assert_eq!(hit["data"]["text"], "oi, tudo bem?", "{hit}");
    let contacts = w.app.get(&format!("/api/v1/user/contacts/{A}"), Some(&w.token)).await;
    contacts.assert_status(200);
    let bia = contacts.body["data"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["number"] == B)
        .cloned();
    assert_eq!(
        bia.map(|c| c["pushName"].clone()),
        Some(json!("Bia")),
        "{}",
        contacts.body
    );
    // The gateway told Bia's phone it arrived (after storing it).
    let receipts = eventually(DEADLINE, || async {
        let resp = w
            .control("GET", &format!("/control/accounts/{B}/receipts"), Value::Null)
            .await;
        let data = resp.body["data"].as_array().unwrap().clone();
        if data.iter().any(|r| r["ids"].as_array().unwrap().contains(&json!(id))) {
            Ok(data)
        } else {
            Err(format!("no receipt for {id}: {data:?}"))
        }
    })
    .await;
    assert!(!receipts.is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_message_the_server_refuses_is_failed_not_sent() {
    let w = talking().await;
    w.control("POST", "/control/accounts", json!({"phone": C, "name": "Cid"}))
        .await
        .assert_status(201);
    // WhatsApp's server nacks the next message to Cid (479: the stanza was refused).
    w.control("POST", &format!("/control/accounts/{C}/refuse"), json!({"code": 479}))
        .await
        .assert_status(200);
    let resp = w.gateway_sends(json!({"recipient": C, "message": "refused"})).await;
    resp.assert_error(400, "rejected_by_whatsapp");
    let message = resp.body["error"]["message"].as_str().unwrap_or_default();
    assert!(message.contains("479"), "{}", resp.body);
    let history = w.history("").await;
    assert_eq!(history[0]["text"], "refused", "{history:?}");
    assert_eq!(history[0]["status"], "failed", "{history:?}");
    assert!(w.inbox(C).await.is_empty(), "a refused message reached the recipient");
    // The next one goes through.
    let resp = w.gateway_sends(json!({"recipient": C, "message": "accepted"})).await;
    let id = resp.body["id"].as_str().unwrap().to_owned();
    w.arrived(C, &id).await;
    w.stored(&id, "delivered", |m| m["status"] == "delivered").await;
}

/// A `wa.Message` as the control API takes it.
fn encoded(message: whatsapp_rust::waproto::whatsapp::Message) -> String {
    use base64::Engine as _;
    use whatsapp_rust::waproto::buffa::Message as _;
    base64::prelude::BASE64_STANDARD.encode(message.encode_to_vec())
}

impl World {
    /// Waits until the gateway's device has acknowledged everything the server holds for it.
    async fn all_acknowledged(&self) {
        eventually(DEADLINE, || async {
            let resp = self
                .control("GET", &format!("/control/accounts/{A_DIGITS}/devices"), Value::Null)
                .await;
            let waiting = resp.body["data"][0]["inbox"].as_u64();
            if waiting == Some(0) {
                Ok(())
            } else {
                Err(format!("the gateway has not acknowledged everything: {}", resp.body))
            }
        })
        .await
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn messages_the_gateway_cannot_read_yet_are_kept_as_unsupported_and_named() {
    use whatsapp_rust::waproto::buffa::MessageField;
    use whatsapp_rust::waproto::whatsapp as wa;
    let w = talking().await;
    let video_note = wa::Message {
        ptv_message: MessageField::some(wa::message::VideoMessage {
            mimetype: Some("video/mp4".into()),
            seconds: Some(4),
            ..Default::default()
        }),
        ..Default::default()
    };
    let poll = wa::Message {
        poll_creation_message_v3: MessageField::some(wa::message::PollCreationMessage {
            name: Some("Lunch?".into()),
            options: vec![wa::message::poll_creation_message::Option {
                option_name: Some("yes".into()),
                ..Default::default()
            }],
            selectable_options_count: Some(1),
            ..Default::default()
        }),
        ..Default::default()
    };
    let event = wa::Message {
        event_message: MessageField::some(wa::message::EventMessage {
            name: Some("Party".into()),
            start_time: Some(1_800_000_000),
            ..Default::default()
        }),
        ..Default::default()
    };
    let mut sent = Vec::new();
    for (message, raw) in [
        (video_note, "ptvMessage"),
        (poll, "pollCreationMessageV3"),
        (event, "eventMessage"),
    ] {
        let id = w.person_sends(B, json!({"protobufBase64": encoded(message)})).await;
        sent.push((id, raw));
    }
    for (id, raw) in &sent {
        let stored = w.stored(id, "stored", |_| true).await;
        assert_eq!(stored["type"], "unsupported", "{stored}");
        assert_eq!(stored["rawType"], *raw, "{stored}");
        assert_eq!(stored["chat"], format!("{B}@s.whatsapp.net"), "{stored}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn status_and_newsletter_posts_are_not_chats_and_raise_no_message_event() {
    let w = talking().await;
    let receiver = w.message_hook().await;
    w.control(
        "POST",
        &format!("/control/accounts/{B}/status"),
        json!({"text": "on holiday", "to": [A_DIGITS]}),
    )
    .await
    .assert_status(201);
    let post = w
        .control(
            "POST",
            "/control/newsletters/120363000000000777/posts",
            json!({"text": "weekly news"}),
        )
        .await;
    post.assert_status(201);
    assert_eq!(post.body["devices"], 1, "{}", post.body);
    w.all_acknowledged().await;
    let id = w.person_sends(B, json!({"text": "a real message"})).await;
    w.stored(&id, "stored", |_| true).await;
    let history = w.history("").await;
    assert_eq!(history.len(), 1, "{history:?}");
    let hits = receiver.wait_for(1).await;
    assert_eq!(hits.len(), 1, "{:?}", hits.iter().map(|h| h.json()).collect::<Vec<_>>());
    let contacts = w.app.get(&format!("/api/v1/user/contacts/{A}"), Some(&w.token)).await;
    contacts.assert_status(200);
    let body = contacts.body.to_string();
    assert!(!body.contains("broadcast") && !body.contains("newsletter"), "{body}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_send_retried_with_the_same_id_reaches_the_recipient_once() {
    let w = talking().await;
    let body =
        json!({"recipient": B, "message": "pay the invoice", "messageOptions": {"messageId": "INVOICE20261203A"}});
    let first = w.gateway_sends(body.clone()).await;
    first.assert_status(200);
    assert_eq!(first.body["id"], "INVOICE20261203A", "{}", first.body);
    // The caller's answer was lost (a timeout, say): it sends again with the same id.
    let again = w.gateway_sends(body).await;
    again.assert_status(200);
    assert_eq!(again.body["id"], "INVOICE20261203A", "{}", again.body);
    // Messages in a chat arrive in order: once the next one is there, a second copy would be.
    let next = w.gateway_sends(json!({"recipient": B, "message": "thanks"})).await;
    let next = next.body["id"].as_str().unwrap().to_owned();
    w.arrived(B, &next).await;
    let copies = w
        .inbox(B)
        .await
        .iter()
        .filter(|m| m["id"] == "INVOICE20261203A")
        .count();
    assert_eq!(copies, 1, "the retried send reached the recipient {copies} times");
    let stored: Vec<Value> = w
        .history("")
        .await
        .into_iter()
        .filter(|m| m["id"] == "INVOICE20261203A")
        .collect();
    assert_eq!(stored.len(), 1, "{stored:?}");
    // An id that is not one.
    w.gateway_sends(json!({"recipient": B, "message": "x", "messageOptions": {"messageId": "no spaces allowed"}}))
        .await
        .assert_status(400);
}

/// A person WhatsApp addresses by LID.
const L: &str = "447700900123";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_person_addressed_by_lid_is_one_chat_under_their_number_with_the_lid_beside() {
    let w = talking().await;
    let created = w
        .control(
            "POST",
            "/control/accounts",
            json!({"phone": L, "name": "Lee", "addressing": "lid"}),
        )
        .await;
    created.assert_status(201);
    let lid = created.body["lid"].as_str().unwrap().to_owned();
    let number = format!("{L}@s.whatsapp.net");
    // Lee writes from their LID.
    let inbound = w.person_sends(L, json!({"text": "hello from Lee"})).await;
    let stored = w.stored(&inbound, "stored", |_| true).await;
    assert_eq!(stored["chat"], number.as_str(), "{stored}");
    assert_eq!(stored["sender"], number.as_str(), "{stored}");
    assert_eq!(stored["senderLid"], lid.as_str(), "{stored}");
    // The account's own phone writes to Lee's LID: the linked gateway sees it as its own
    // message, to Lee.
    let own = w
        .person_sends(A_DIGITS, json!({"to": lid, "text": "sent from the phone"}))
        .await;
    let own = w.stored(&own, "stored", |_| true).await;
    assert_eq!(own["direction"], "out", "{own}");
    assert_eq!(own["chat"], number.as_str(), "{own}");
    // The gateway answers Lee's number.
    let resp = w.gateway_sends(json!({"recipient": L, "message": "hi Lee"})).await;
    resp.assert_status(200);
    let reply = resp.body["id"].as_str().unwrap().to_owned();
    w.arrived(L, &reply).await;
    let chats: std::collections::BTreeSet<String> = w
        .history("")
        .await
        .iter()
        .map(|m| m["chat"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(chats, [number.clone()].into(), "one chat for Lee");
    let only_lee = w.history(&format!("?chat={number}")).await;
    assert_eq!(only_lee.len(), 3, "{only_lee:?}");
    let contacts = w.app.get(&format!("/api/v1/user/contacts/{A}"), Some(&w.token)).await;
    let lee: Vec<&Value> = contacts.body["data"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|c| c["number"] == L || c["lid"] == lid.as_str() || c["jid"] == lid.as_str())
        .collect();
    assert_eq!(lee.len(), 1, "{}", contacts.body);
    assert_eq!(lee[0]["lid"], lid.as_str(), "{}", contacts.body);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reactions_keep_their_target_removals_and_list_replies_their_row() {
    use whatsapp_rust::waproto::buffa::MessageField;
    use whatsapp_rust::waproto::whatsapp as wa;
    let w = talking().await;
    let resp = w
        .gateway_sends(json!({"recipient": B, "message": "lunch at noon?"}))
        .await;
    let mine = resp.body["id"].as_str().unwrap().to_owned();
    w.arrived(B, &mine).await;
    let reaction = |emoji: &str| wa::Message {
        reaction_message: MessageField::some(wa::message::ReactionMessage {
            key: MessageField::some(wa::MessageKey {
                remote_jid: Some(format!("{A_DIGITS}@s.whatsapp.net")),
                from_me: Some(false),
                id: Some(mine.clone()),
                ..Default::default()
            }),
            text: Some(emoji.into()),
            sender_timestamp_ms: Some(1_800_000_000_000),
            ..Default::default()
        }),
        ..Default::default()
    };
    let liked = w
        .person_sends(B, json!({"protobufBase64": encoded(reaction("👍"))}))
        .await;
    let removed = w
        .person_sends(B, json!({"protobufBase64": encoded(reaction(""))}))
        .await;
    let pick = wa::Message {
        list_response_message: MessageField::some(wa::message::ListResponseMessage {
            title: Some("Pasta".into()),
            list_type: Some(wa::message::list_response_message::ListType::SINGLE_SELECT),
            single_select_reply: MessageField::some(wa::message::list_response_message::SingleSelectReply {
                selected_row_id: Some("m1".into()),
            }),
            ..Default::default()
        }),
        ..Default::default()
    };
    let picked = w.person_sends(B, json!({"protobufBase64": encoded(pick)})).await;
    let liked = w.stored(&liked, "stored", |_| true).await;
    assert_eq!(liked["type"], "reaction", "{liked}");
    assert_eq!(liked["text"], "👍", "{liked}");
    assert_eq!(liked["targetId"], mine.as_str(), "{liked}");
    let removed = w.stored(&removed, "stored", |_| true).await;
    assert_eq!(removed["type"], "reaction_removed", "{removed}");
    assert_eq!(removed["targetId"], mine.as_str(), "{removed}");
    assert!(removed.get("text").is_none(), "{removed}");
    let picked = w.stored(&picked, "stored", |_| true).await;
    assert_eq!(picked["type"], "list_reply", "{picked}");
    assert_eq!(picked["selectedId"], "m1", "{picked}");
    assert_eq!(picked["text"], "Pasta", "{picked}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reaction_the_gateway_sends_is_one_the_persons_phone_shows_on_their_message() {
    let w = talking().await;
    let id = w.person_sends(B, json!({"text": "did it arrive?"})).await;
    w.stored(&id, "stored", |_| true).await;
    let resp = w
        .app
        .post(
            &path(&format!("/messages/{id}/reaction")),
            Some(&w.token),
            json!({"emoji": "🎉"}),
        )
        .await;
    resp.assert_status(200);
    let reaction = w.arrived(B, resp.body["id"].as_str().unwrap()).await;
    assert_eq!(reaction["type"], "reaction", "{reaction}");
    assert_eq!(reaction["text"], "🎉", "{reaction}");
    assert_eq!(reaction["target"]["id"], id.as_str(), "{reaction}");
    // The key as the reacting phone sees it: the person wrote the message, not the phone.
    assert_eq!(reaction["target"]["fromMe"], false, "{reaction}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn marking_a_chat_read_sends_the_person_read_receipts() {
    let w = talking().await;
    let first = w.person_sends(B, json!({"text": "are you there?"})).await;
    let second = w.person_sends(B, json!({"text": "hello?"})).await;
    w.stored(&second, "stored", |_| true).await;
    w.stored(&first, "stored", |_| true).await;
    let resp = w
        .app
        .post(&path(&format!("/chats/{B}/read")), Some(&w.token), json!({}))
        .await;
    resp.assert_status(200);
    assert_eq!(resp.body["read"], 2, "{}", resp.body);
    eventually(DEADLINE, || async {
        let resp = w
            .control("GET", &format!("/control/accounts/{B}/receipts"), Value::Null)
            .await;
        let data = resp.body["data"].as_array().unwrap().clone();
        let read: Vec<&Value> = data
            .iter()
            .filter(|r| r["type"] == "read")
            .flat_map(|r| r["ids"].as_array().unwrap().iter())
            .collect();
        if [&first, &second].iter().all(|id| read.contains(&&json!(id))) {
            Ok(())
        } else {
            Err(format!("no read receipts for {first} and {second}: {data:?}"))
        }
    })
    .await;
    w.stored(&first, "read", |m| m["status"] == "read").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn places_and_contact_cards_reach_the_person_and_theirs_land_in_history() {
    use whatsapp_rust::waproto::buffa::MessageField;
    use whatsapp_rust::waproto::whatsapp as wa;
    let w = talking().await;
    let place = w
        .gateway_sends(json!({"recipient": B, "location": {"latitude": 52.52, "longitude": 13.405, "name": "Mitte"}}))
        .await;
    place.assert_status(200);
    let seen = w.arrived(B, place.body["id"].as_str().unwrap()).await;
    assert_eq!(seen["type"], "location", "{seen}");
    let card = w
        .gateway_sends(json!({"recipient": B, "contacts": [{"name": "Ana", "phones": [C]}]}))
        .await;
    card.assert_status(200);
    let seen = w.arrived(B, card.body["id"].as_str().unwrap()).await;
    assert_eq!(seen["type"], "contact", "{seen}");

    let theirs = wa::Message {
        location_message: MessageField::some(wa::message::LocationMessage {
            degrees_latitude: Some(-23.55),
            degrees_longitude: Some(-46.63),
            name: Some("Paulista".into()),
            ..Default::default()
        }),
        ..Default::default()
    };
    let id = w.person_sends(B, json!({"protobufBase64": encoded(theirs)})).await;
    let stored = w.stored(&id, "stored", |_| true).await;
    assert_eq!(stored["type"], "location", "{stored}");
    assert_eq!(stored["location"]["latitude"], -23.55, "{stored}");
    assert_eq!(stored["location"]["name"], "Paulista", "{stored}");
    assert_eq!(stored["text"], "Paulista", "{stored}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn received_media_is_downloaded_from_whatsapps_servers_and_served_byte_for_byte() {
    use base64::Engine as _;
    use sha2::Digest as _;
    let w = talking().await;
    let photo = crate::fixtures::png();
    let id = w
        .person_sends(
            B,
            json!({"media": {"kind": "image", "mimeType": "image/png",
                "dataBase64": base64::prelude::BASE64_STANDARD.encode(&photo)}}),
        )
        .await;
    let stored = w.stored(&id, "downloaded", |m| m["media"]["status"] == "stored").await;
    let media = &stored["media"];
    assert_eq!(media["sha256"], hex::encode(sha2::Sha256::digest(&photo)), "{stored}");
    assert_eq!(media["kind"], "image", "{stored}");
    let got = w
        .app
        .client
        .get(w.app.url(media["url"].as_str().unwrap()))
        .bearer_auth(&w.token)
        .send()
        .await
        .unwrap();
    assert_eq!(got.status(), 200);
    assert_eq!(got.headers()["content-type"], "image/png");
    assert_eq!(got.bytes().await.unwrap().as_ref(), photo.as_slice());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn received_media_keeps_the_path_and_keys_to_download_it_later() {
    use base64::Engine as _;
    use sha2::Digest as _;
    let w = talking().await;
    let photo = crate::fixtures::png();
    let id = w
        .person_sends(
            B,
            json!({"media": {"kind": "image", "mimeType": "image/png",
                "dataBase64": base64::prelude::BASE64_STANDARD.encode(&photo), "caption": "the invoice"}}),
        )
        .await;
    let stored = w.stored(&id, "stored", |_| true).await;
    assert_eq!(stored["type"], "image", "{stored}");
    assert_eq!(stored["text"], "the invoice", "{stored}");
    assert!(!stored.to_string().contains("mediaKey"), "keys stay private: {stored}");
    let phone = wagate::domain::PhoneNumber::parse(A_DIGITS, None).unwrap();
    let row = wagate::db::messages::find(&w.app.state.db, &phone, &id)
        .await
        .unwrap()
        .unwrap();
    let kept: wagate::engine::MediaRef =
        serde_json::from_str(row.media_ref.as_deref().expect("a media reference")).unwrap();
    assert!(kept.direct_path.starts_with('/'), "{kept:?}");
    assert_eq!(kept.media_key.len(), 32, "{kept:?}");
    assert_eq!(kept.file_sha256, sha2::Sha256::digest(&photo).to_vec());
    assert_eq!(kept.file_enc_sha256.len(), 32, "{kept:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_media_kind_the_gateway_sends_is_what_the_recipient_decrypts_with_its_preview_size_and_length() {
    use base64::Engine as _;
    use sha2::Digest as _;
    use wagate::media::probe::samples;
    let w = talking().await;
    let data_url =
        |mime: &str, bytes: &[u8]| format!("data:{mime};base64,{}", base64::prelude::BASE64_STANDARD.encode(bytes));
    let files: [(&str, Vec<u8>, Value); 5] = [
        ("image", samples::png(640, 480), json!({"caption": "the view"})),
        ("video", samples::mp4(1280, 720, 12), json!({})),
        (
            "audio",
            samples::ogg_opus(7),
            json!({"messageOptions": {"voiceNote": true}}),
        ),
        (
            "document",
            b"%PDF-1.4\n the quarterly numbers".to_vec(),
            json!({"fileName": "q3.pdf"}),
        ),
        ("sticker", samples::webp(512, 512), json!({"mediaType": "sticker"})),
    ];
    for (kind, bytes, extra) in files {
        let mut body = json!({"recipient": B, "media": data_url("application/octet-stream", &bytes)});
        if let Some(caption) = extra.get("caption") {
            body["message"] = caption.clone();
        }
        for key in ["messageOptions", "fileName", "mediaType"] {
            if let Some(value) = extra.get(key) {
                body[key] = value.clone();
            }
        }
        let resp = w.gateway_sends(body).await;
        resp.assert_status(200);
        let id = resp.body["id"].as_str().unwrap().to_owned();
        let got = w.arrived(B, &id).await;
        let media = &got["media"];
        assert_eq!(media["kind"], kind, "{got}");
        let sha = hex::encode(sha2::Sha256::digest(&bytes));
        assert_eq!(
            media["sha256"],
            sha.as_str(),
            "what {B} decrypted is what was sent: {got}"
        );
        assert_eq!(media["declaredSha256"], sha.as_str(), "{got}");
        match kind {
            "image" => {
                assert_eq!(
                    (media["width"].clone(), media["height"].clone()),
                    (json!(640), json!(480)),
                    "{got}"
                );
                assert_eq!(media["hasThumbnail"], true, "{got}");
                assert_eq!(media["caption"], "the view", "{got}");
            }
            "video" => {
                assert_eq!(
                    (media["width"].clone(), media["height"].clone()),
                    (json!(1280), json!(720)),
                    "{got}"
                );
                assert_eq!(media["seconds"], 12, "{got}");
            }
            "audio" => {
                assert_eq!(media["seconds"], 7, "{got}");
                assert_eq!(media["voiceNote"], true, "{got}");
                assert_eq!(media["mimeType"], "audio/ogg; codecs=opus", "{got}");
            }
            "document" => assert_eq!(media["fileName"], "q3.pdf", "{got}"),
            _ => {
                assert_eq!(media["mimeType"], "image/webp", "{got}");
                assert_eq!(
                    (media["width"].clone(), media["height"].clone()),
                    (json!(512), json!(512)),
                    "{got}"
                );
            }
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn in_a_lid_group_mentions_go_by_lid_and_members_by_number() {
    let w = talking().await;
    let cid = w
        .control("POST", "/control/accounts", json!({"phone": C, "name": "Cid"}))
        .await;
    cid.assert_status(201);
    let cid_lid = cid.body["lid"].as_str().unwrap().to_owned();
    let group = w
        .control(
            "POST",
            &format!("/control/accounts/{B}/groups"),
            json!({"subject": "Lunch club", "members": [A_DIGITS, C], "addressing": "lid"}),
        )
        .await;
    group.assert_status(201);
    let group = group.body["id"].as_str().unwrap().to_owned();
    // The gateway lists it, members by number.
    let list = w.app.get(&path("/groups?refresh=true"), Some(&w.token)).await;
    list.assert_status(200);
    assert!(
        list.body["data"]
            .as_array()
            .unwrap()
            .iter()
            .any(|g| g["subject"] == "Lunch club"),
        "{}",
        list.body
    );
    let details = w.app.get(&path(&format!("/groups/{group}")), Some(&w.token)).await;
    details.assert_status(200);
    let members: std::collections::BTreeSet<String> = details.body["data"]["participants"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["jid"].as_str().unwrap().to_owned())
        .collect();
    let expected: std::collections::BTreeSet<String> =
        [A_DIGITS, B, C].iter().map(|n| format!("{n}@s.whatsapp.net")).collect();
    assert_eq!(members, expected, "{}", details.body);
    // A mention of Cid reaches the group by Cid's LID.
    let resp = w
        .gateway_sends(
            json!({"jid": group, "message": format!("@{C} are you in?"), "messageOptions": {"mentions": [C]}}),
        )
        .await;
    resp.assert_status(200);
    let id = resp.body["id"].as_str().unwrap().to_owned();
    let got = w.arrived(C, &id).await;
    assert_eq!(got["chat"], group.as_str(), "{got}");
    assert_eq!(got["mentions"], json!([cid_lid]), "{got}");
    let lid_user = cid_lid.trim_end_matches("@lid");
    assert_eq!(got["text"], format!("@{lid_user} are you in?"), "{got}");
    // Bia writes to the group: stored under the group, from her number, her LID beside.
    let said = w.person_sends(B, json!({"to": group, "text": "noon works"})).await;
    let stored = w.stored(&said, "stored", |_| true).await;
    assert_eq!(stored["chat"], group.as_str(), "{stored}");
    assert_eq!(stored["sender"], format!("{B}@s.whatsapp.net"), "{stored}");
    let bia_lid = stored["senderLid"].as_str().unwrap().to_owned();
    assert!(bia_lid.ends_with("@lid"), "{stored}");
    // A reply to her names her as the group knows her: by LID.
    let resp = w
        .gateway_sends(json!({"jid": group, "message": "see you there", "messageOptions": {"quotedMessageId": said}}))
        .await;
    resp.assert_status(200);
    let got = w.arrived(C, resp.body["id"].as_str().unwrap()).await;
    assert_eq!(got["quotedId"], said.as_str(), "{got}");
    assert_eq!(got["quotedParticipant"], bia_lid.as_str(), "{got}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reply_carries_the_quoted_message_and_its_author() {
    let w = talking().await;
    let asked = w.person_sends(B, json!({"text": "can you send the invoice?"})).await;
    w.stored(&asked, "stored", |_| true).await;
    let resp = w
        .gateway_sends(
            json!({"recipient": B, "message": "here it comes", "messageOptions": {"quotedMessageId": asked}}),
        )
        .await;
    resp.assert_status(200);
    let got = w.arrived(B, resp.body["id"].as_str().unwrap()).await;
    assert_eq!(got["quotedId"], asked.as_str(), "{got}");
    assert_eq!(got["quotedParticipant"], format!("{B}@s.whatsapp.net"), "{got}");
    // Bia answers the reply: history knows what she quoted.
    let mine = resp.body["id"].as_str().unwrap().to_owned();
    let thanks = w.person_sends(B, json!({"text": "thanks!", "quotedId": mine})).await;
    let stored = w.stored(&thanks, "stored", |_| true).await;
    assert_eq!(stored["quotedId"], mine.as_str(), "{stored}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_list_arrives_as_a_single_select_the_phone_opens_and_the_pick_comes_back_by_row_id() {
    use wa::message::interactive_response_message::{
        Body, InteractiveResponseMessage as Response, NativeFlowResponseMessage,
    };
    use whatsapp_rust::waproto::buffa::MessageField;
    use whatsapp_rust::waproto::whatsapp as wa;
    let w = talking().await;
    let resp = w
        .gateway_sends(json!({
            "recipient": B,
            "message": "What would you like?",
            "list": {"title": "Menu", "buttonText": "Open the menu", "footer": "Cantina",
                "sections": [{"title": "Mains", "rows": [
                    {"id": "m1", "title": "Pasta", "description": "fresh"},
                    {"id": "m2", "title": "Risotto"}]}]}
        }))
        .await;
    resp.assert_status(200);
    let id = resp.body["id"].as_str().unwrap().to_owned();
    let got = w.arrived(B, &id).await;
    assert_eq!(got["type"], "interactive", "{got}");
    assert_eq!(got["text"], "What would you like?", "{got}");
    let button = &got["buttons"][0];
    assert_eq!(button["name"], "single_select", "{got}");
    assert_eq!(button["params"]["title"], "Open the menu", "{got}");
    let rows = &button["params"]["sections"][0]["rows"];
    assert_eq!(
        (rows[0]["id"].clone(), rows[1]["id"].clone()),
        (json!("m1"), json!("m2")),
        "{got}"
    );
    // Bia picks the risotto.
    let pick = wa::Message {
        interactive_response_message: MessageField::some(wa::message::InteractiveResponseMessage {
            body: MessageField::some(Body {
                text: Some("Risotto".into()),
                ..Default::default()
            }),
            context_info: MessageField::some(wa::ContextInfo {
                stanza_id: Some(id.clone()),
                participant: Some(format!("{A_DIGITS}@s.whatsapp.net")),
                ..Default::default()
            }),
            interactive_response_message: Some(Response::NativeFlowResponseMessage(Box::new(
                NativeFlowResponseMessage {
                    name: Some("single_select".into()),
                    params_json: Some(r#"{"id":"m2"}"#.into()),
                    version: Some(3),
                },
            ))),
        }),
        ..Default::default()
    };
    let picked = w.person_sends(B, json!({"protobufBase64": encoded(pick)})).await;
    let stored = w.stored(&picked, "stored", |_| true).await;
    assert_eq!(stored["type"], "list_reply", "{stored}");
    assert_eq!(stored["selectedId"], "m2", "{stored}");
    assert_eq!(stored["text"], "Risotto", "{stored}");
    assert_eq!(stored["quotedId"], id.as_str(), "{stored}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_kill_9_while_the_server_holds_messages_loses_none_and_stores_each_once() {
    use crate::emulator::{emulator_with_account, paired_process};
    use crate::helpers::{fresh_database, send};
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};
    const TOTAL: usize = 40;
    let emulator = emulator_with_account().await;
    let dir = tempfile::tempdir().unwrap();
    let (database_url, _pg) = fresh_database().await;
    let gateway = paired_process(&emulator, dir.path(), &database_url, true).await;
    let control = emulator.url();
    send(
        reqwest::Client::new()
            .post(format!("{control}/control/accounts"))
            .json(&json!({"phone": B, "name": "Bia"})),
    )
    .await
    .assert_status(201);
    // Bia writes steadily; the gateway is killed part-way and is down for the rest.
    let sent = Arc::new(AtomicUsize::new(0));
    let writer = {
        let (control, sent) = (control.clone(), Arc::clone(&sent));
        tokio::spawn(async move {
            let mut ids = Vec::new();
            for i in 0..TOTAL {
                let resp = send(
                    reqwest::Client::new()
                        .post(format!("{control}/control/accounts/{B}/messages"))
                        .json(&json!({"to": A_DIGITS, "text": format!("message {i}")})),
                )
                .await;
                resp.assert_status(201);
                ids.push(resp.body["id"].as_str().unwrap().to_owned());
                sent.fetch_add(1, Ordering::Relaxed);
            }
            ids
        })
    };
    eventually(DEADLINE, || async {
        match sent.load(Ordering::Relaxed) {
            n @ 8.. => Ok(n),
            n => Err(format!("only {n} sent")),
        }
    })
    .await;
    gateway.signal("-9");
    drop(gateway);
    let ids = writer.await.unwrap();
    let held = send(reqwest::Client::new().get(format!("{control}/control/accounts/{A_DIGITS}/devices"))).await;
    let waiting = held.body["data"][0]["inbox"].as_u64().unwrap_or_default();
    assert!(waiting > 0, "the server holds nothing for the gateway: {}", held.body);
    // Back up: the offline queue comes in, each message stored once.
    let gateway = paired_process(&emulator, dir.path(), &database_url, false).await;
    let history = eventually(DEADLINE, || async {
        let page = gateway.get(&path("/messages?limit=100")).await.body;
        let data = page["data"].as_array().cloned().unwrap_or_default();
        if data.len() >= TOTAL {
            Ok(data)
        } else {
            Err(format!("{} of {TOTAL} stored", data.len()))
        }
    })
    .await;
    let mut stored: Vec<String> = history.iter().map(|m| m["id"].as_str().unwrap().to_owned()).collect();
    stored.sort();
    let mut expected = ids.clone();
    expected.sort();
    assert_eq!(stored, expected, "every message once, nothing else");
    eventually(DEADLINE, || async {
        let held = send(reqwest::Client::new().get(format!("{control}/control/accounts/{A_DIGITS}/devices"))).await;
        match held.body["data"][0]["inbox"].as_u64() {
            Some(0) => Ok(()),
            _ => Err(format!("not all acknowledged: {}", held.body)),
        }
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn typing_reaches_the_person_and_clears() {
    let w = talking().await;
    let chatstate = || async {
        w.control("GET", &format!("/control/accounts/{B}/chatstates"), Value::Null)
            .await
            .body["data"][A_DIGITS]
            .clone()
    };
    for (typing, shown) in [(true, "composing"), (false, "paused")] {
        w.app
            .post(
                &path("/typing"),
                Some(&w.token),
                json!({"recipient": B, "isTyping": typing}),
            )
            .await
            .assert_status(200);
        eventually(DEADLINE, || async {
            match chatstate().await {
                state if state == shown => Ok(()),
                state => Err(format!("{B} sees {state}, not {shown}")),
            }
        })
        .await;
    }
}
