//! What the people on the emulated network do with messages, through their phones: send
//! (text, media, quotes, or any message WhatsApp knows as raw protobuf), read what
//! arrived, open a chat (read receipts), create a group, post a status; and what the
//! servers do: refuse messages to an account, carry a newsletter post.

use std::sync::Arc;

use base64::Engine as _;
use base64::prelude::BASE64_STANDARD;
use poem::http::StatusCode;
use poem::web::{Data, Json, Path};
use poem::{IntoResponse, Response, handler};
use serde::Deserialize;
use serde_json::json;
use wacore_binary::Jid;
use wacore_binary::builder::NodeBuilder;
use waproto::buffa::{Message as _, MessageField};
use waproto::whatsapp as wa;
use whatsapp_rust::download::MediaType;
use whatsapp_rust::upload::UploadOptions;

use super::{error, not_found};
use crate::network::{Addressing, Network, digits};
use crate::phone::Phone;
use crate::wire::now_secs;

fn bad(message: impl std::fmt::Display) -> Response {
    error(StatusCode::BAD_REQUEST, "invalid_body", message)
}

/// The running phone of account `phone`.
#[allow(clippy::result_large_err)]
fn phone_of(net: &Network, phone: &str) -> Result<Arc<Phone>, Response> {
    let phone = digits(phone);
    let state = net.state();
    let account = state.accounts.get(&phone).ok_or_else(|| not_found(&phone))?;
    account.primary.clone().ok_or_else(|| {
        error(
            StatusCode::CONFLICT,
            "no_phone",
            format!("the account {phone} has no phone running"),
        )
    })
}

/// A recipient as a test writes it: a JID, or a phone number.
#[allow(clippy::result_large_err)]
fn jid_of(to: &str) -> Result<Jid, Response> {
    if to.contains('@') {
        to.parse().map_err(|_| bad(format!("{to} is not a JID")))
    } else if digits(to).is_empty() {
        Err(bad(format!("{to} is neither a phone number nor a JID")))
    } else {
        Ok(Jid::pn(digits(to)))
    }
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Outgoing {
    to: String,
    #[serde(default)]
    text: Option<String>,
    #[serde(default)]
    media: Option<MediaIn>,
    #[serde(default)]
    quoted_id: Option<String>,
    #[serde(default)]
    mentions: Vec<String>,
    /// Any `wa.Message`, encoded: for kinds the fields above do not cover.
    #[serde(default)]
    protobuf_base64: Option<String>,
    /// The message id to use (a resend uses the same one).
    #[serde(default)]
    id: Option<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct MediaIn {
    kind: String,
    #[serde(default)]
    mime_type: Option<String>,
    data_base64: String,
    #[serde(default)]
    file_name: Option<String>,
    #[serde(default)]
    caption: Option<String>,
    #[serde(default)]
    voice_note: bool,
}

/// The quote and mentions of a message the person writes.
fn context(phone: &Phone, body: &Outgoing) -> Option<Box<wa::ContextInfo>> {
    if body.quoted_id.is_none() && body.mentions.is_empty() {
        return None;
    }
    let quoted = body
        .quoted_id
        .as_ref()
        .and_then(|id| phone.received().into_iter().find(|r| &r.id == id));
    let own = phone.client.pn().map(|j| j.to_non_ad().to_string());
    Some(Box::new(wa::ContextInfo {
        stanza_id: body.quoted_id.clone(),
        participant: body
            .quoted_id
            .as_ref()
            .and_then(|_| quoted.as_ref().map(|q| q.from.clone()).or(own)),
        quoted_message: match quoted.and_then(|q| q.text) {
            Some(text) => MessageField::some(wa::Message {
                conversation: Some(text),
                ..Default::default()
            }),
            None => MessageField::none(),
        },
        mentioned_jid: body
            .mentions
            .iter()
            .map(|m| jid_of(m).map(|j| j.to_string()).unwrap_or_else(|_| m.clone()))
            .collect(),
        ..Default::default()
    }))
}

async fn media_message(
    phone: &Phone,
    media: &MediaIn,
    context: Option<Box<wa::ContextInfo>>,
) -> Result<wa::Message, Response> {
    use whatsapp_rust::media::{AudioOptions, DocumentOptions, ImageOptions, VideoOptions};
    let data = BASE64_STANDARD
        .decode(&media.data_base64)
        .map_err(|_| bad("media.dataBase64 is not base64"))?;
    let kind = match media.kind.as_str() {
        "image" => MediaType::Image,
        "video" => MediaType::Video,
        "audio" => MediaType::Audio,
        "document" => MediaType::Document,
        "sticker" => MediaType::Sticker,
        other => return Err(bad(format!("unknown media kind {other}"))),
    };
    let upload = phone
        .client
        .upload(data, kind, UploadOptions::default())
        .await
        .map_err(|e| error(StatusCode::BAD_GATEWAY, "upload_failed", e))?;
    let mime = media.mime_type.clone();
    Ok(match media.kind.as_str() {
        "image" => whatsapp_rust::media::image_message(
            upload,
            ImageOptions {
                caption: media.caption.clone(),
                mimetype: mime,
                context_info: context,
                ..Default::default()
            },
        ),
        "video" => whatsapp_rust::media::video_message(
            upload,
            VideoOptions {
                caption: media.caption.clone(),
                mimetype: mime,
                context_info: context,
                ..Default::default()
            },
        ),
        "audio" => whatsapp_rust::media::audio_message(
            upload,
            AudioOptions {
                mimetype: mime,
                ptt: Some(media.voice_note),
                context_info: context,
                ..Default::default()
            },
        ),
        "sticker" => {
            let mut message = whatsapp_rust::media::image_message(upload, ImageOptions::default());
            let image = message.image_message.take().unwrap_or_default();
            message.sticker_message = MessageField::some(wa::message::StickerMessage {
                url: image.url,
                direct_path: image.direct_path,
                media_key: image.media_key,
                file_enc_sha256: image.file_enc_sha256,
                file_sha256: image.file_sha256,
                file_length: image.file_length,
                media_key_timestamp: image.media_key_timestamp,
                mimetype: Some(media.mime_type.clone().unwrap_or_else(|| "image/webp".into())),
                context_info: context.map(|c| MessageField::some(*c)).unwrap_or_default(),
                ..Default::default()
            });
            message
        }
        _ => whatsapp_rust::media::document_message(
            upload,
            DocumentOptions {
                mimetype: mime,
                file_name: media.file_name.clone(),
                caption: media.caption.clone(),
                context_info: context,
                ..Default::default()
            },
        ),
    })
}

/// `POST /control/accounts/{phone}/messages`: the person sends a message.
#[handler]
pub async fn send(
    Data(net): Data<&Arc<Network>>,
    Path(phone): Path<String>,
    body: poem::Result<Json<Outgoing>>,
) -> Response {
    let Ok(Json(body)) = body else {
        return bad(
            "expected {\"to\", \"text\"?, \"media\"?, \"quotedId\"?, \"mentions\"?, \"protobufBase64\"?, \"id\"?}",
        );
    };
    let phone = match phone_of(net, &phone) {
        Ok(phone) => phone,
        Err(response) => return response,
    };
    let to = match jid_of(&body.to) {
        Ok(to) => to,
        Err(response) => return response,
    };
    let context = context(&phone, &body);
    let message = if let Some(raw) = &body.protobuf_base64 {
        let decoded = BASE64_STANDARD
            .decode(raw)
            .ok()
            .and_then(|b| wa::Message::decode_from_slice(&b).ok());
        match decoded {
            Some(message) => message,
            None => return bad("protobufBase64 is not an encoded wa.Message"),
        }
    } else if let Some(media) = &body.media {
        match media_message(&phone, media, context).await {
            Ok(message) => message,
            Err(response) => return response,
        }
    } else if let Some(text) = &body.text {
        match context {
            None => wa::Message {
                conversation: Some(text.clone()),
                ..Default::default()
            },
            Some(context) => wa::Message {
                extended_text_message: MessageField::some(wa::message::ExtendedTextMessage {
                    text: Some(text.clone()),
                    context_info: MessageField::some(*context),
                    ..Default::default()
                }),
                ..Default::default()
            },
        }
    } else {
        return bad("a message needs text, media or protobufBase64");
    };
    match phone.send(to.clone(), message, body.id.clone()).await {
        Ok(id) => (StatusCode::CREATED, Json(json!({ "id": id, "to": to.to_string() }))).into_response(),
        Err(err) => error(StatusCode::BAD_GATEWAY, "send_failed", err),
    }
}

/// `GET /control/accounts/{phone}/messages`: what reached the person, decrypted (media
/// downloaded and hashed).
#[handler]
pub async fn received(Data(net): Data<&Arc<Network>>, Path(phone): Path<String>) -> Response {
    match phone_of(net, &phone) {
        Ok(phone) => Json(json!({ "data": phone.received_with_media().await })).into_response(),
        Err(response) => response,
    }
}

/// `GET /control/accounts/{phone}/chatstates`: what others show the person now
/// (`{data: {"<sender's number>": "composing"|"recording"|"paused"}}`).
#[handler]
pub fn chatstates(Data(net): Data<&Arc<Network>>, Path(phone): Path<String>) -> Response {
    let state = net.state();
    match state.accounts.get(&crate::network::digits(&phone)) {
        Some(account) => Json(json!({ "data": account.chatstates })).into_response(),
        None => error(StatusCode::NOT_FOUND, "account_not_found", "no such account"),
    }
}

/// `GET /control/accounts/{phone}/receipts`: receipts for the person's own messages.
#[handler]
pub fn receipts(Data(net): Data<&Arc<Network>>, Path(phone): Path<String>) -> Response {
    match phone_of(net, &phone) {
        Ok(phone) => Json(json!({ "data": phone.receipts() })).into_response(),
        Err(response) => response,
    }
}

#[derive(Deserialize)]
pub struct Read {
    ids: Vec<String>,
}

/// `POST /control/accounts/{phone}/read {ids}`: the person reads these messages.
#[handler]
pub async fn read(
    Data(net): Data<&Arc<Network>>,
    Path(phone): Path<String>,
    body: poem::Result<Json<Read>>,
) -> Response {
    let Ok(Json(body)) = body else {
        return bad("expected {\"ids\": [...]}");
    };
    let phone = match phone_of(net, &phone) {
        Ok(phone) => phone,
        Err(response) => return response,
    };
    let arrived = phone.received();
    for id in &body.ids {
        let Some(message) = arrived.iter().find(|r| &r.id == id) else {
            return error(
                StatusCode::NOT_FOUND,
                "message_not_found",
                format!("no message {id} arrived"),
            );
        };
        let (Ok(chat), Ok(sender)) = (message.chat.parse::<Jid>(), message.from.parse::<Jid>()) else {
            return bad("a message with unreadable addresses");
        };
        let sender = (chat.server == "g.us").then_some(&sender);
        if let Err(err) = phone.read(&chat, sender, &[id.as_str()]).await {
            return error(StatusCode::BAD_GATEWAY, "read_failed", err);
        }
    }
    Json(json!({ "read": body.ids })).into_response()
}

#[derive(Deserialize)]
pub struct Refuse {
    code: u16,
    #[serde(default = "one")]
    count: u32,
}

fn one() -> u32 {
    1
}

/// `POST /control/accounts/{phone}/refuse {code, count?}`: the server refuses the next
/// `count` messages sent to this account with error `code` (a nack).
#[handler]
pub fn refuse(Data(net): Data<&Arc<Network>>, Path(phone): Path<String>, body: poem::Result<Json<Refuse>>) -> Response {
    let Ok(Json(body)) = body else {
        return bad("expected {\"code\", \"count\"?}");
    };
    let phone = digits(&phone);
    let mut state = net.state();
    let Some(account) = state.accounts.get_mut(&phone) else {
        return not_found(&phone);
    };
    account.refuse = (body.count > 0).then_some((body.code, body.count));
    Json(json!({ "code": body.code, "count": body.count })).into_response()
}

#[derive(Deserialize)]
pub struct NewGroup {
    subject: String,
    members: Vec<String>,
    #[serde(default)]
    addressing: Option<Addressing>,
}

/// `POST /control/accounts/{phone}/groups {subject, members, addressing?}`: the person
/// creates a group.
#[handler]
pub fn create_group(
    Data(net): Data<&Arc<Network>>,
    Path(phone): Path<String>,
    body: poem::Result<Json<NewGroup>>,
) -> Response {
    let Ok(Json(body)) = body else {
        return bad("expected {\"subject\", \"members\", \"addressing\"?}");
    };
    let phone = digits(&phone);
    let mut state = net.state();
    let Some(account) = state.accounts.get(&phone) else {
        return not_found(&phone);
    };
    let addressing = body.addressing.unwrap_or(account.addressing);
    match crate::groups::create(&mut state, &phone, &body.subject, &body.members, addressing) {
        Ok(group) => (
            StatusCode::CREATED,
            Json(json!({ "id": group.jid(), "subject": group.subject, "members": group.members.len() })),
        )
            .into_response(),
        Err(why) => error(StatusCode::NOT_FOUND, "member_not_found", why),
    }
}

#[derive(Deserialize)]
pub struct Post {
    text: String,
    /// Who sees it (phone numbers); everyone on the network when absent.
    #[serde(default)]
    to: Option<Vec<String>>,
}

/// `POST /control/accounts/{phone}/status {text, to?}`: the person posts a status.
#[handler]
pub async fn post_status(
    Data(net): Data<&Arc<Network>>,
    Path(phone): Path<String>,
    body: poem::Result<Json<Post>>,
) -> Response {
    let Ok(Json(body)) = body else {
        return bad("expected {\"text\", \"to\"?}");
    };
    let poster = match phone_of(net, &phone) {
        Ok(phone) => phone,
        Err(response) => return response,
    };
    let recipients: Vec<Jid> = {
        let state = net.state();
        match &body.to {
            Some(to) => to.iter().map(|p| Jid::pn(digits(p))).collect(),
            None => state
                .accounts
                .keys()
                .filter(|p| **p != digits(&phone))
                .map(|p| Jid::pn(p.clone()))
                .collect(),
        }
    };
    // The phone addresses a status by LIDs it knows: it looks the contacts up first.
    if let Err(err) = poster.client.contacts().is_on_whatsapp(&recipients).await {
        return error(StatusCode::BAD_GATEWAY, "lookup_failed", err);
    }
    let sent = poster
        .client
        .status()
        .send_text(
            &body.text,
            0xff00_0000,
            wa::message::extended_text_message::FontType::SYSTEM,
            &recipients,
            whatsapp_rust::StatusSendOptions::default(),
        )
        .await;
    match sent {
        Ok(sent) => (StatusCode::CREATED, Json(json!({ "id": sent.message_id }))).into_response(),
        Err(err) => error(StatusCode::BAD_GATEWAY, "send_failed", err),
    }
}

/// `POST /control/newsletters/{id}/posts {text, to?}`: a newsletter post reaches its
/// followers' linked devices, in the clear as newsletters are.
#[handler]
pub fn post_newsletter(
    Data(net): Data<&Arc<Network>>,
    Path(id): Path<String>,
    body: poem::Result<Json<Post>>,
) -> Response {
    let Ok(Json(body)) = body else {
        return bad("expected {\"text\", \"to\"?}");
    };
    let newsletter = format!("{}@newsletter", digits(&id));
    let message = wa::Message {
        conversation: Some(body.text.clone()),
        ..Default::default()
    }
    .encode_to_vec();
    let post_id = net.next_stanza_id().replace('.', "").to_uppercase();
    let server_id = 100 + (now_secs() % 1_000_000);
    let mut state = net.state();
    let targets: Vec<(String, u16)> = state
        .accounts
        .values()
        .filter(|a| {
            body.to
                .as_ref()
                .is_none_or(|to| to.iter().any(|p| digits(p) == a.phone))
        })
        .flat_map(|a| {
            a.devices
                .keys()
                .filter(|d| **d != 0)
                .map(|d| (a.phone.clone(), *d))
                .collect::<Vec<_>>()
        })
        .collect();
    for (phone, device) in &targets {
        let node = NodeBuilder::new("message")
            .attr("from", newsletter.clone())
            .attr("id", post_id.clone())
            .attr("server_id", server_id.to_string())
            .attr("t", now_secs().to_string())
            .attr("type", "text")
            .children([NodeBuilder::new("plaintext").bytes(message.clone()).build()])
            .build();
        crate::routing::deliver(&mut state, phone, *device, "message", node);
    }
    (
        StatusCode::CREATED,
        Json(json!({ "id": post_id, "devices": targets.len() })),
    )
        .into_response()
}
