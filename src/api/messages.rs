//! `/api/v1/user/phones/{phone}/…`: send messages (text, media, lists), show typing,
//! check numbers on WhatsApp, and read the message history.

use base64::Engine as _;
use bytes::Bytes;
use chrono::{DateTime, Utc};
use poem::web::Data;
use poem_openapi::param::{Path, Query};
use poem_openapi::payload::Json;
use poem_openapi::types::multipart::{JsonField, Upload};
use poem_openapi::{ApiRequest, Multipart, Object, OpenApi, Union};

use super::ApiTags;
use super::error::statuses::*;
use super::error::{ApiError, Errors};
use super::pagination::{Pagination, page_params};
use super::phones::PhonePath;
use crate::api::AppState;
use crate::api::scheme::Owner;
use crate::db::messages::Model as StoredMessage;
use crate::domain::MediaKind;
use crate::domain::{Direction, Jid, MessageStatus, RecipientError, recipient};
use crate::engine::{ListMessage, ListRow, ListSection, Lookup, Media, OutgoingContent, OutgoingMessage, Quoted};
use crate::gateway::PhoneHandle;
use crate::media::{self, MediaError, MediaFile};

#[derive(Default)]
pub struct MessagesApi;

/// Most numbers one has-whatsapp request may check.
const MAX_LOOKUPS: usize = 50;

#[derive(Debug, Clone, Default, Object)]
#[oai(rename_all = "camelCase", skip_serializing_if_is_none)]
pub struct MessageOptions {
    /// Reply to this message (its id, from history or a webhook).
    #[oai(validator(max_length = 128))]
    quoted_message_id: Option<String>,
    /// People to @mention: numbers with country code or JIDs.
    #[oai(validator(max_items = 256))]
    mentions: Option<Vec<String>>,
    /// Show a preview of the first link in a text message. Default true.
    link_preview: Option<bool>,
    /// Send audio as a voice note (push-to-talk). Default false.
    voice_note: Option<bool>,
    /// Your own id for the message (8–64 letters and digits). A send retried with the
    /// same id (after a timeout, say) is not sent again: the answer is the message
    /// already sent. Recipients see one message either way.
    #[oai(validator(pattern = "^[A-Za-z0-9]{8,64}$"))]
    message_id: Option<String>,
}

#[derive(Debug, Clone, Object)]
#[oai(rename_all = "camelCase", skip_serializing_if_is_none)]
pub struct ListRowRequest {
    /// Returned in the reply when this row is picked.
    #[oai(validator(min_length = 1, max_length = 200))]
    id: String,
    #[oai(validator(min_length = 1, max_length = 24))]
    title: String,
    #[oai(validator(max_length = 72))]
    description: Option<String>,
}

#[derive(Debug, Clone, Object)]
#[oai(rename_all = "camelCase", skip_serializing_if_is_none)]
pub struct ListSectionRequest {
    #[oai(validator(max_length = 24))]
    title: String,
    #[oai(validator(min_items = 1, max_items = 10))]
    rows: Vec<ListRowRequest>,
}

/// A list message: a button that opens sections of rows to pick from.
#[derive(Debug, Clone, Object)]
#[oai(rename_all = "camelCase", skip_serializing_if_is_none)]
pub struct ListRequest {
    #[oai(validator(max_length = 60))]
    title: String,
    /// The text above the button; defaults to `message`.
    #[oai(validator(max_length = 4096))]
    body: Option<String>,
    #[oai(validator(max_length = 60))]
    footer: Option<String>,
    /// The button's label.
    #[oai(validator(min_length = 1, max_length = 20))]
    button_text: String,
    #[oai(validator(min_items = 1, max_items = 10))]
    sections: Vec<ListSectionRequest>,
}

/// A message to send, as JSON.
#[derive(Debug, Object)]
#[oai(rename_all = "camelCase", skip_serializing_if_is_none)]
pub struct SendMessageRequest {
    /// A JID (`…@s.whatsapp.net`, `…@g.us`), a number with `country`, or 7–15 digits with
    /// country code.
    #[oai(validator(max_length = 128))]
    recipient: Option<String>,
    /// The text, or the caption of media.
    #[oai(validator(max_length = 65536))]
    message: Option<String>,
    /// ISO 3166 alpha-2 country of a national `recipient` number.
    #[oai(validator(pattern = "^[A-Za-z]{2}$"))]
    country: Option<String>,
    /// A JID that overrides `recipient`.
    #[oai(validator(max_length = 128))]
    jid: Option<String>,
    /// An http(s) URL of media to send; fetched by the server.
    #[oai(validator(max_length = 4096))]
    media_link: Option<String>,
    /// Media to send, base64 or a `data:` URL (multipart uploads are more efficient).
    media: Option<String>,
    // No doc comment: a described enum reference becomes `allOf`, which some SDK
    // generators reject. The enum's own description says what it is.
    media_type: Option<MediaKind>,
    /// The file name shown for documents.
    #[oai(validator(max_length = 255))]
    file_name: Option<String>,
    list: Option<ListRequest>,
    message_options: Option<MessageOptions>,
}

/// A message to send, as multipart/form-data with the media file as `media`.
#[derive(Debug, Multipart)]
#[oai(rename_all = "camelCase")]
pub struct SendMessageForm {
    recipient: Option<String>,
    message: Option<String>,
    country: Option<String>,
    jid: Option<String>,
    media_link: Option<String>,
    /// The media file.
    media: Option<Upload>,
    /// image, video, audio, document or sticker.
    media_type: Option<String>,
    file_name: Option<String>,
    list: Option<JsonField<ListRequest>>,
    message_options: Option<JsonField<MessageOptions>>,
}

#[derive(Debug, ApiRequest)]
pub enum SendBody {
    Json(Json<SendMessageRequest>),
    Multipart(SendMessageForm),
}

/// A message WhatsApp accepted: its `status` is `sent`, and receipts move it on to
/// `delivered` and `read` (see `listMessages`).
#[derive(Debug, Object)]
#[oai(rename_all = "camelCase", skip_serializing_if_is_none)]
pub struct SentView {
    /// The message id WhatsApp knows it by.
    id: String,
    status: MessageStatus,
    /// The recipient's JID.
    recipient: String,
    /// text, image, video, audio, document, sticker or list.
    r#type: String,
    timestamp: DateTime<Utc>,
}

#[derive(Debug, Object)]
#[oai(rename_all = "camelCase", skip_serializing_if_is_none)]
pub struct TypingRequest {
    #[oai(validator(max_length = 128))]
    recipient: Option<String>,
    /// true shows "typing…", false clears it.
    is_typing: bool,
    #[oai(validator(pattern = "^[A-Za-z]{2}$"))]
    country: Option<String>,
    #[oai(validator(max_length = 128))]
    jid: Option<String>,
}

#[derive(Debug, Object)]
#[oai(rename_all = "camelCase", skip_serializing_if_is_none)]
pub struct TypingView {
    recipient: String,
    /// composing or paused.
    state: String,
}

#[derive(Debug, Object)]
#[oai(rename_all = "camelCase", skip_serializing_if_is_none)]
pub struct HasWhatsappRequest {
    /// One number to check.
    #[oai(validator(max_length = 128))]
    recipient: Option<String>,
    /// Several numbers to check at once (up to 50); the answer is then a list.
    #[oai(validator(max_items = 50))]
    recipients: Option<Vec<String>>,
    #[oai(validator(pattern = "^[A-Za-z]{2}$"))]
    country: Option<String>,
}

#[derive(Debug, Object)]
#[oai(rename_all = "camelCase", skip_serializing_if_is_none)]
pub struct NumberCheck {
    /// The number as asked.
    recipient: String,
    /// Its WhatsApp JID.
    jid: String,
    /// Whether the number has WhatsApp.
    exists: bool,
    /// The account's LID, when WhatsApp tells it.
    lid: Option<String>,
    is_business: Option<bool>,
}

#[derive(Debug, Object)]
#[oai(rename_all = "camelCase", skip_serializing_if_is_none)]
pub struct NumberCheckList {
    data: Vec<NumberCheck>,
}

#[derive(Debug, Union)]
#[oai(one_of)]
pub enum HasWhatsappView {
    One(NumberCheck),
    Many(NumberCheckList),
}

#[derive(Debug, Object)]
#[oai(rename_all = "camelCase", skip_serializing_if_is_none)]
pub struct MediaInfoView {
    mime_type: String,
    file_name: Option<String>,
    /// Size in bytes.
    size: Option<i64>,
}

#[derive(Debug, Object)]
#[oai(rename_all = "camelCase", skip_serializing_if_is_none)]
pub struct MessageView {
    /// The WhatsApp message id.
    id: String,
    direction: Direction,
    /// The chat's JID: the other person, or the group.
    chat: String,
    /// Who wrote it: their phone-number JID when known.
    sender: String,
    /// The sender's LID, when WhatsApp addresses them by one.
    sender_lid: Option<String>,
    /// The sender's chosen name, for received messages.
    push_name: Option<String>,
    /// text, image, video, audio, document, sticker, list, list_reply, reaction,
    /// reaction_removed, location, contact, poll, or unsupported.
    r#type: String,
    /// For type `unsupported`: WhatsApp's kind of the message, which the gateway cannot
    /// read yet (e.g. `ptvMessage`, `pollCreationMessageV3`).
    raw_type: Option<String>,
    /// The text, or the media's caption.
    text: Option<String>,
    media: Option<MediaInfoView>,
    status: MessageStatus,
    /// The message this one replies to.
    quoted_id: Option<String>,
    /// For a reaction (`reaction`, `reaction_removed`): the message reacted to.
    target_id: Option<String>,
    /// For a list reply: the id of the row picked (`text` is its title).
    selected_id: Option<String>,
    /// When it was sent.
    timestamp: DateTime<Utc>,
    /// When the gateway stored it.
    stored_at: DateTime<Utc>,
}

impl From<StoredMessage> for MessageView {
    fn from(row: StoredMessage) -> Self {
        Self {
            media: row.media_mime.map(|mime_type| MediaInfoView {
                mime_type,
                file_name: row.media_file_name,
                size: row.media_size,
            }),
            id: row.message_id,
            direction: row.direction,
            chat: row.chat,
            sender: row.sender,
            sender_lid: row.sender_lid,
            push_name: row.push_name,
            r#type: row.kind,
            raw_type: row.raw_kind,
            text: row.body,
            status: row.status,
            quoted_id: row.quoted_id,
            target_id: row.target_id,
            selected_id: row.selected_id,
            timestamp: row.timestamp,
            stored_at: row.created_at,
        }
    }
}

#[derive(Debug, Object)]
#[oai(rename_all = "camelCase", skip_serializing_if_is_none)]
pub struct MessagePage {
    /// Newest first.
    data: Vec<MessageView>,
    pagination: Pagination,
}

/// A send request, whichever way it came.
struct SendInput {
    recipient: Option<String>,
    message: Option<String>,
    country: Option<String>,
    jid: Option<String>,
    media_link: Option<String>,
    media: Option<MediaFile>,
    media_type: Option<MediaKind>,
    file_name: Option<String>,
    list: Option<ListRequest>,
    options: MessageOptions,
}

#[OpenApi(tag = "ApiTags::Messages")]
impl MessagesApi {
    /// Send a message
    ///
    /// Sends text, media (by `mediaLink`, base64 `media`, or a multipart upload) or a list
    /// message, optionally replying to a message and mentioning people. Answers once
    /// WhatsApp accepted the message. Recipient rules: with `@` a JID; without `@` but with
    /// `country` a validated phone number; otherwise 7–15 digits with country code.
    #[oai(path = "/user/phones/:phone/message", method = "post", operation_id = "sendMessage")]
    async fn send(
        &self,
        _owner: Owner,
        state: Data<&AppState>,
        phone: Path<PhonePath>,
        body: SendBody,
    ) -> Result<Json<SentView>, Errors<{ SIGNED_IN | PHONE | BODY | CONFLICT | TOO_MANY_REQUESTS }>> {
        let phone = state.gateway.phone(&phone.0.0)?;
        let input = match body {
            SendBody::Json(Json(req)) => json_input(req)?,
            SendBody::Multipart(form) => form_input(form).await?,
        };
        let message = build_message(&state, &phone, input).await?;
        let row = phone.send(message, state.config.http.request_timeout).await?;
        Ok(Json(SentView {
            id: row.message_id,
            status: row.status,
            recipient: row.chat,
            r#type: row.kind,
            timestamp: row.timestamp,
        }))
    }

    /// Show typing
    ///
    /// Shows "typing…" to the recipient (`isTyping: true`) or clears it.
    #[oai(path = "/user/phones/:phone/typing", method = "post", operation_id = "sendTyping")]
    async fn typing(
        &self,
        _owner: Owner,
        state: Data<&AppState>,
        phone: Path<PhonePath>,
        body: Json<TypingRequest>,
    ) -> Result<Json<TypingView>, Errors<{ SIGNED_IN | PHONE | BODY | CONFLICT }>> {
        let body = body.0;
        let chat = resolve(body.recipient.as_deref(), body.country.as_deref(), body.jid.as_deref())?;
        let typing = body.is_typing;
        state.gateway.phone(&phone.0.0)?.typing(chat.clone(), typing).await?;
        Ok(Json(TypingView {
            recipient: chat.to_string(),
            state: if typing { "composing" } else { "paused" }.to_owned(),
        }))
    }

    /// Check numbers on WhatsApp
    ///
    /// Whether a number (`recipient`) or up to 50 numbers (`recipients`) have WhatsApp.
    /// Answers are cached briefly (`cache.lookup_ttl`).
    #[oai(
        path = "/user/phones/:phone/has-whatsapp",
        method = "post",
        operation_id = "hasWhatsapp"
    )]
    async fn has_whatsapp(
        &self,
        _owner: Owner,
        state: Data<&AppState>,
        phone: Path<PhonePath>,
        body: Json<HasWhatsappRequest>,
    ) -> Result<Json<HasWhatsappView>, Errors<{ SIGNED_IN | PHONE | BODY | CONFLICT }>> {
        let body = body.0;
        let (asked, batch) = match (body.recipient, body.recipients) {
            (Some(one), None) => (vec![one], false),
            (None, Some(many)) if !many.is_empty() => (many, true),
            (None, Some(_)) => {
                return Err(ApiError::bad_request("invalid_recipient", "`recipients` is empty").into());
            }
            (Some(_), Some(_)) => {
                return Err(ApiError::bad_request(
                    "invalid_recipient",
                    "send either `recipient` or `recipients`, not both",
                )
                .into());
            }
            (None, None) => {
                return Err(
                    ApiError::bad_request("invalid_recipient", "`recipient` or `recipients` is required").into(),
                );
            }
        };
        if asked.len() > MAX_LOOKUPS {
            return Err(ApiError::bad_request(
                "too_many_recipients",
                format!("at most {MAX_LOOKUPS} numbers per request"),
            )
            .into());
        }
        let mut numbers = Vec::with_capacity(asked.len());
        for item in &asked {
            let jid = resolve(Some(item), body.country.as_deref(), None)?;
            let digits = jid
                .phone_digits()
                .ok_or_else(|| ApiError::bad_request("invalid_recipient", format!("`{item}` is not a phone number")))?;
            numbers.push(digits.to_owned());
        }
        let found: Vec<Lookup> = state.gateway.phone(&phone.0.0)?.lookup(numbers.clone()).await?;
        let mut checks: Vec<NumberCheck> = asked
            .into_iter()
            .zip(numbers)
            .map(|(recipient, number)| {
                let lookup = found.iter().find(|l| l.number == number);
                NumberCheck {
                    recipient,
                    jid: lookup.map_or_else(|| Jid::user(&number).to_string(), |l| l.jid.to_string()),
                    exists: lookup.is_some_and(|l| l.exists),
                    lid: lookup.and_then(|l| l.lid.as_ref().map(ToString::to_string)),
                    is_business: lookup.and_then(|l| l.is_business),
                }
            })
            .collect();
        Ok(Json(if batch {
            HasWhatsappView::Many(NumberCheckList { data: checks })
        } else {
            HasWhatsappView::One(checks.remove(0))
        }))
    }

    /// Message history
    ///
    /// Every message the phone sent and received, newest first, with delivery status kept
    /// up to date from receipts. Filter by chat with `recipient` (and `country`) or `jid`.
    #[oai(path = "/user/phones/:phone/messages", method = "get", operation_id = "listMessages")]
    #[allow(clippy::too_many_arguments)]
    async fn history(
        &self,
        _owner: Owner,
        state: Data<&AppState>,
        phone: Path<PhonePath>,
        /// Page number, from 1.
        #[oai(validator(minimum(value = "1"), maximum(value = "1000000000")))]
        page: Query<Option<u64>>,
        /// Messages per page (default 20; larger values are capped at `messaging.history_max_limit`).
        #[oai(validator(minimum(value = "1")))]
        limit: Query<Option<u64>>,
        /// Only this chat: a JID, a number with `country`, or digits with country code.
        recipient: Query<Option<String>>,
        country: Query<Option<String>>,
        /// Only this chat, by JID.
        jid: Query<Option<String>>,
    ) -> Result<Json<MessagePage>, Errors<{ SIGNED_IN | PHONE }>> {
        let phone = state.gateway.phone(&phone.0.0)?;
        let (page, limit) = page_params(page.0, limit.0, 20, state.config.messaging.history_max_limit)?;
        let chat = if recipient.0.is_some() || jid.0.is_some() {
            Some(resolve(recipient.0.as_deref(), country.0.as_deref(), jid.0.as_deref())?.to_string())
        } else {
            None
        };
        let (rows, total) = phone.history(chat.as_deref(), page, limit).await?;
        Ok(Json(MessagePage {
            data: rows.into_iter().map(MessageView::from).collect(),
            pagination: Pagination::new(page, limit, total),
        }))
    }
}

fn resolve(recipient: Option<&str>, country: Option<&str>, jid: Option<&str>) -> Result<Jid, ApiError> {
    recipient::resolve(recipient, country, jid).map_err(|err| {
        let code = if matches!(err, RecipientError::Missing) {
            "recipient_required"
        } else {
            "invalid_recipient"
        };
        ApiError::bad_request(code, err.to_string())
    })
}

fn json_input(req: SendMessageRequest) -> Result<SendInput, ApiError> {
    let media = match req.media.as_deref().map(str::trim).filter(|m| !m.is_empty()) {
        Some(encoded) => Some(decode_base64_media(encoded)?),
        None => None,
    };
    Ok(SendInput {
        recipient: req.recipient,
        message: req.message,
        country: req.country,
        jid: req.jid,
        media_link: req.media_link,
        media,
        media_type: req.media_type,
        file_name: req.file_name,
        list: req.list,
        options: req.message_options.unwrap_or_default(),
    })
}

async fn form_input(form: SendMessageForm) -> Result<SendInput, ApiError> {
    let media_type = match form.media_type.as_deref().map(str::trim).filter(|t| !t.is_empty()) {
        Some(kind) => Some(parse_media_kind(kind)?),
        None => None,
    };
    let media = match form.media {
        Some(upload) => {
            let declared_mime = upload.content_type().map(|m| m.to_ascii_lowercase());
            let file_name = upload.file_name().map(str::to_owned);
            let data = upload.into_vec().await.map_err(|err| {
                ApiError::bad_request("invalid_media", format!("the upload could not be read: {err}"))
            })?;
            Some(MediaFile {
                data: Bytes::from(data),
                declared_mime,
                file_name,
            })
        }
        None => None,
    };
    Ok(SendInput {
        recipient: form.recipient,
        message: form.message,
        country: form.country,
        jid: form.jid,
        media_link: form.media_link,
        media,
        media_type,
        file_name: form.file_name,
        list: form.list.map(|f| f.0),
        options: form.message_options.map(|f| f.0).unwrap_or_default(),
    })
}

fn parse_media_kind(kind: &str) -> Result<MediaKind, ApiError> {
    kind.parse()
        .map_err(|why: String| ApiError::bad_request("invalid_media_type", why))
}

fn decode_base64_media(encoded: &str) -> Result<MediaFile, ApiError> {
    let (declared_mime, data) = match encoded.strip_prefix("data:").and_then(|rest| rest.split_once(',')) {
        Some((meta, data)) => (
            meta.strip_suffix(";base64")
                .map(|m| m.trim().to_ascii_lowercase())
                .filter(|m| !m.is_empty()),
            data,
        ),
        None => (None, encoded),
    };
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(data.trim())
        .map_err(|_| ApiError::bad_request("invalid_media", "`media` is not valid base64 (or a base64 data: URL)"))?;
    Ok(MediaFile {
        data: Bytes::from(bytes),
        declared_mime,
        file_name: None,
    })
}

/// Turns a request into the message to send: recipient, content, options.
async fn build_message(state: &AppState, phone: &PhoneHandle, input: SendInput) -> Result<OutgoingMessage, ApiError> {
    let to = resolve(
        input.recipient.as_deref(),
        input.country.as_deref(),
        input.jid.as_deref(),
    )?;
    let text = input.message.filter(|m| !m.trim().is_empty());
    let options = input.options;
    let link = input.media_link.map(|l| l.trim().to_owned()).filter(|l| !l.is_empty());
    if input.media.is_some() && link.is_some() {
        return Err(ApiError::bad_request(
            "invalid_message",
            "send either `media` or `mediaLink`, not both",
        ));
    }
    let has_media = input.media.is_some() || link.is_some();
    let content = if let Some(list) = input.list {
        if has_media {
            return Err(ApiError::bad_request(
                "invalid_message",
                "a list message cannot carry media",
            ));
        }
        list_content(list, text)?
    } else if has_media {
        let file = match (input.media, link) {
            (Some(file), _) => file,
            (None, Some(link)) => fetch_media(state, &link).await?,
            (None, None) => return Err(ApiError::bad_request("invalid_message", "no media given")),
        };
        media_content(
            state,
            file,
            input.media_type,
            input.file_name,
            text,
            options.voice_note.unwrap_or(false),
        )?
    } else {
        OutgoingContent::Text(
            text.ok_or_else(|| ApiError::bad_request("message_required", "`message` is required for a text message"))?,
        )
    };
    let quoted_id = options
        .quoted_message_id
        .map(|q| q.trim().to_owned())
        .filter(|q| !q.is_empty());
    if quoted_id.as_ref().is_some_and(|q| q.chars().any(char::is_control)) {
        return Err(ApiError::bad_request(
            "invalid_message",
            "`quotedMessageId` is not a message id",
        ));
    }
    // The quoted message's sender and text let WhatsApp show the quote; the history
    // knows them when the message went through this gateway.
    let quoted = match &quoted_id {
        Some(id) => phone.message(id).await?.map(|row| Quoted {
            sender: row.sender.parse().ok(),
            kind: row.kind,
            text: row.body,
            mime: row.media_mime,
            file_name: row.media_file_name,
        }),
        None => None,
    };
    let mentions = options
        .mentions
        .unwrap_or_default()
        .iter()
        .map(|m| resolve(Some(m), None, None))
        .collect::<Result<Vec<_>, _>>()?;
    Ok(OutgoingMessage {
        id: options.message_id,
        to,
        content,
        quoted,
        quoted_id,
        mentions,
        link_preview: options.link_preview.unwrap_or(true),
    })
}

async fn fetch_media(state: &AppState, link: &str) -> Result<MediaFile, ApiError> {
    let max = state.config.limits.max_media_bytes;
    media::fetch(&state.http, link, max).await.map_err(|err| match err {
        MediaError::TooLarge(_) => ApiError::payload_too_large("media_too_large", err.to_string()),
        MediaError::Url(_) => ApiError::bad_request("invalid_media_link", err.to_string()),
        _ => ApiError::bad_request("media_unreachable", err.to_string()),
    })
}

fn media_content(
    state: &AppState,
    file: MediaFile,
    requested: Option<MediaKind>,
    file_name: Option<String>,
    caption: Option<String>,
    voice_note: bool,
) -> Result<OutgoingContent, ApiError> {
    let max = state.config.limits.max_media_bytes;
    if file.data.len() > max {
        return Err(ApiError::payload_too_large(
            "media_too_large",
            format!("the media is larger than {max} bytes (limits.max_media_bytes)"),
        ));
    }
    if file.data.is_empty() {
        return Err(ApiError::bad_request("invalid_media", "the media is empty"));
    }
    let mime = media::mime_of(&file);
    let kind = requested.unwrap_or_else(|| media::kind_of(&mime));
    if !state.config.limits.allowed_media.contains(&kind) {
        return Err(ApiError::unsupported_media_type(
            "media_type_not_allowed",
            format!("{} messages are not allowed here (limits.allowed_media)", kind.as_str()),
        ));
    }
    let fits = match kind {
        MediaKind::Image => mime.starts_with("image/"),
        MediaKind::Video => mime.starts_with("video/"),
        MediaKind::Audio => mime.starts_with("audio/"),
        MediaKind::Sticker => mime == "image/webp",
        MediaKind::Document => true,
    };
    if !fits {
        return Err(ApiError::unsupported_media_type(
            "media_type_mismatch",
            format!("the file is {mime}, which cannot be sent as {}", kind.as_str()),
        ));
    }
    if voice_note && kind != MediaKind::Audio {
        return Err(ApiError::bad_request(
            "invalid_message",
            "`voiceNote` applies to audio only",
        ));
    }
    // WhatsApp plays voice notes in Opus only: other audio would arrive as a voice note
    // that cannot be played.
    if voice_note && !matches!(mime.as_str(), "audio/ogg" | "audio/opus") {
        return Err(ApiError::unsupported_media_type(
            "voice_note_needs_opus",
            format!(
                "a voice note must be Opus audio in Ogg (audio/ogg), not {mime}; convert it first (for example `ffmpeg -i in -c:a libopus out.ogg`) or send it as plain audio"
            ),
        ));
    }
    let file_name = file_name.or(file.file_name).and_then(|n| media::clean_file_name(&n));
    Ok(OutgoingContent::Media(Media {
        kind,
        data: file.data,
        mime,
        file_name,
        caption: if matches!(kind, MediaKind::Audio | MediaKind::Sticker) {
            None
        } else {
            caption
        },
        voice_note,
    }))
}

fn list_content(list: ListRequest, text: Option<String>) -> Result<OutgoingContent, ApiError> {
    let total_rows: usize = list.sections.iter().map(|s| s.rows.len()).sum();
    if total_rows > 10 {
        return Err(ApiError::bad_request(
            "invalid_list",
            "a list may have at most 10 rows in all",
        ));
    }
    let mut ids = std::collections::HashSet::new();
    for row in list.sections.iter().flat_map(|s| &s.rows) {
        if !ids.insert(row.id.as_str()) {
            return Err(ApiError::bad_request(
                "invalid_list",
                format!("row id `{}` is used twice", row.id),
            ));
        }
    }
    let body = list
        .body
        .filter(|b| !b.trim().is_empty())
        .or(text)
        .ok_or_else(|| ApiError::bad_request("invalid_list", "a list message needs `list.body` or `message`"))?;
    Ok(OutgoingContent::List(ListMessage {
        title: list.title,
        body,
        footer: list.footer,
        button_text: list.button_text,
        sections: list
            .sections
            .into_iter()
            .map(|s| ListSection {
                title: s.title,
                rows: s
                    .rows
                    .into_iter()
                    .map(|r| ListRow {
                        id: r.id,
                        title: r.title,
                        description: r.description,
                    })
                    .collect(),
            })
            .collect(),
    }))
}
