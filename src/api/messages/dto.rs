//! What the messaging operations take and answer: requests, forms and views.

use chrono::{DateTime, Utc};
use poem_openapi::payload::Json;
use poem_openapi::types::multipart::{JsonField, Upload};
use poem_openapi::{ApiRequest, Multipart, Object, Union};

use crate::api::pagination::Pagination;
use crate::domain::{MediaKind, Message, MessageKind, MessageStatus};
use crate::events::MessageEventData;

/// How to send: a reply, mentions, link preview, voice note, or a chosen message id.
#[derive(Debug, Clone, Default, Object)]
#[oai(rename_all = "camelCase", skip_serializing_if_is_none)]
pub struct MessageOptions {
    /// Reply to this message (its id, from history or a webhook).
    #[oai(validator(max_length = 128))]
    pub(super) quoted_message_id: Option<String>,
    /// People to @mention: numbers with country code or JIDs.
    #[oai(validator(max_items = 256))]
    pub(super) mentions: Option<Vec<String>>,
    /// Show a preview of the first link in a text message. Default true.
    pub(super) link_preview: Option<bool>,
    /// Send audio as a voice note (push-to-talk). Default false.
    pub(super) voice_note: Option<bool>,
    /// Your own id for the message (8–64 letters and digits). A send retried with the
    /// same id (after a timeout, say) is not sent again: the answer is the message
    /// already sent. Recipients see one message either way.
    #[oai(validator(pattern = "^[A-Za-z0-9]{8,64}$"))]
    pub(super) message_id: Option<String>,
}

/// A row to pick in a list message.
#[derive(Debug, Clone, Object)]
#[oai(rename_all = "camelCase", skip_serializing_if_is_none)]
pub struct ListRowRequest {
    /// Returned in the reply when this row is picked.
    #[oai(validator(min_length = 1, max_length = 200))]
    pub(super) id: String,
    /// The row's title.
    #[oai(validator(min_length = 1, max_length = 24))]
    pub(super) title: String,
    /// The row's description.
    #[oai(validator(max_length = 72))]
    pub(super) description: Option<String>,
}

/// A section of rows in a list message.
#[derive(Debug, Clone, Object)]
#[oai(rename_all = "camelCase", skip_serializing_if_is_none)]
pub struct ListSectionRequest {
    /// The section's title.
    #[oai(validator(max_length = 24))]
    pub(super) title: String,
    #[oai(validator(min_items = 1, max_items = 10))]
    pub(super) rows: Vec<ListRowRequest>,
}

/// A list message: a button that opens sections of rows to pick from.
#[derive(Debug, Clone, Object)]
#[oai(rename_all = "camelCase", skip_serializing_if_is_none)]
pub struct ListRequest {
    /// The header above the body; empty for none.
    #[oai(validator(max_length = 60))]
    pub(super) title: String,
    /// The text above the button; defaults to `message`.
    #[oai(validator(max_length = 4096))]
    pub(super) body: Option<String>,
    /// The text below the body.
    #[oai(validator(max_length = 60))]
    pub(super) footer: Option<String>,
    /// The button's label.
    #[oai(validator(min_length = 1, max_length = 20))]
    pub(super) button_text: String,
    #[oai(validator(min_items = 1, max_items = 10))]
    pub(super) sections: Vec<ListSectionRequest>,
}

/// A message to send, as JSON.
#[derive(Debug, Object)]
#[oai(rename_all = "camelCase", skip_serializing_if_is_none)]
pub struct SendMessageRequest {
    /// A JID (`…@s.whatsapp.net`, `…@g.us`), a number with `country`, or 7–15 digits with
    /// country code.
    #[oai(validator(max_length = 128))]
    pub(super) recipient: Option<String>,
    /// The text, or the caption of media.
    #[oai(validator(max_length = 65536))]
    pub(super) message: Option<String>,
    /// ISO 3166 alpha-2 country of a national `recipient` number.
    #[oai(validator(pattern = "^[A-Za-z]{2}$"))]
    pub(super) country: Option<String>,
    /// A JID that overrides `recipient`.
    #[oai(validator(max_length = 128))]
    pub(super) jid: Option<String>,
    /// An http(s) URL of media to send; fetched by the server.
    #[oai(validator(max_length = 4096))]
    pub(super) media_link: Option<String>,
    /// Media to send, base64 or a `data:` URL (multipart uploads are more efficient).
    pub(super) media: Option<String>,
    // No doc comment: a described enum reference becomes `allOf`, which some SDK
    // generators reject. The enum's own description says what it is.
    pub(super) media_type: Option<MediaKind>,
    /// The file name shown for documents.
    #[oai(validator(max_length = 255))]
    pub(super) file_name: Option<String>,
    pub(super) list: Option<ListRequest>,
    pub(super) location: Option<LocationRequest>,
    /// Contact cards to send (1 to 10).
    #[oai(validator(min_items = 1, max_items = 10))]
    pub(super) contacts: Option<Vec<ContactCardRequest>>,
    pub(super) message_options: Option<MessageOptions>,
}

/// A place to share.
#[derive(Debug, Clone, Object)]
#[oai(rename_all = "camelCase", skip_serializing_if_is_none)]
pub struct LocationRequest {
    /// Degrees north, -90 to 90.
    #[oai(validator(minimum(value = "-90"), maximum(value = "90")))]
    pub(super) latitude: f64,
    /// Degrees east, -180 to 180.
    #[oai(validator(minimum(value = "-180"), maximum(value = "180")))]
    pub(super) longitude: f64,
    /// The place's name.
    #[oai(validator(max_length = 256))]
    pub(super) name: Option<String>,
    /// The place's address.
    #[oai(validator(max_length = 512))]
    pub(super) address: Option<String>,
}

/// A contact card to share: a name with phone numbers, or a vCard of your own.
#[derive(Debug, Clone, Object)]
#[oai(rename_all = "camelCase", skip_serializing_if_is_none)]
pub struct ContactCardRequest {
    /// The name the card shows.
    #[oai(validator(min_length = 1, max_length = 256))]
    pub(super) name: String,
    /// Phone numbers with country code (digits, or `+` and digits); the card is built from
    /// them and `name`.
    #[oai(validator(max_items = 10))]
    pub(super) phones: Option<Vec<String>>,
    /// A vCard (3.0) to send as it is, instead of `phones`.
    #[oai(validator(max_length = 16384))]
    pub(super) vcard: Option<String>,
}

/// A message to send, as multipart/form-data with the media file as `media`.
#[derive(Debug, Multipart)]
#[oai(rename_all = "camelCase")]
pub struct SendMessageForm {
    pub(super) recipient: Option<String>,
    pub(super) message: Option<String>,
    pub(super) country: Option<String>,
    pub(super) jid: Option<String>,
    pub(super) media_link: Option<String>,
    /// The media file.
    pub(super) media: Option<Upload>,
    /// image, video, audio, document or sticker.
    pub(super) media_type: Option<String>,
    pub(super) file_name: Option<String>,
    pub(super) list: Option<JsonField<ListRequest>>,
    pub(super) location: Option<JsonField<LocationRequest>>,
    pub(super) contacts: Option<JsonField<Vec<ContactCardRequest>>>,
    pub(super) message_options: Option<JsonField<MessageOptions>>,
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
    pub(super) id: String,
    pub(super) status: MessageStatus,
    /// The recipient's JID.
    pub(super) recipient: String,
    pub(super) r#type: MessageKind,
    /// When it was sent.
    pub(super) timestamp: DateTime<Utc>,
}

impl From<Message> for SentView {
    fn from(sent: Message) -> Self {
        Self {
            id: sent.id,
            status: sent.status,
            recipient: sent.chat,
            r#type: sent.kind,
            timestamp: sent.timestamp,
        }
    }
}

/// Who sees "typing…": the recipient (a number with `country`, digits, or `jid`).
#[derive(Debug, Object)]
#[oai(rename_all = "camelCase", skip_serializing_if_is_none)]
pub struct TypingRequest {
    /// The recipient: digits with country code, or a number with `country`.
    #[oai(validator(max_length = 128))]
    pub(super) recipient: Option<String>,
    /// true shows "typing…", false clears it.
    pub(super) is_typing: bool,
    /// ISO 3166 alpha-2 country for a national `recipient`.
    #[oai(validator(pattern = "^[A-Za-z]{2}$"))]
    pub(super) country: Option<String>,
    /// The chat's JID, instead of `recipient`.
    #[oai(validator(max_length = 128))]
    pub(super) jid: Option<String>,
}

/// The typing state now shown in a chat.
#[derive(Debug, Object)]
#[oai(rename_all = "camelCase", skip_serializing_if_is_none)]
pub struct TypingView {
    /// The chat (a JID).
    pub(super) recipient: String,
    /// composing or paused.
    pub(super) state: String,
}

/// The numbers to check: one `recipient`, or up to 50 `recipients`.
#[derive(Debug, Object)]
#[oai(rename_all = "camelCase", skip_serializing_if_is_none)]
pub struct HasWhatsappRequest {
    /// One number to check.
    #[oai(validator(max_length = 128))]
    pub(super) recipient: Option<String>,
    /// Several numbers to check at once (up to 50); the answer is then a list.
    #[oai(validator(max_items = 50))]
    pub(super) recipients: Option<Vec<String>>,
    /// ISO 3166 alpha-2 country for national numbers.
    #[oai(validator(pattern = "^[A-Za-z]{2}$"))]
    pub(super) country: Option<String>,
}

/// Whether one number has WhatsApp.
#[derive(Debug, Object)]
#[oai(rename_all = "camelCase", skip_serializing_if_is_none)]
pub struct NumberCheck {
    /// The number as asked.
    pub(super) recipient: String,
    /// Its WhatsApp JID.
    pub(super) jid: String,
    /// Whether the number has WhatsApp.
    pub(super) exists: bool,
    /// The account's LID, when WhatsApp tells it.
    pub(super) lid: Option<String>,
    /// Whether it is a WhatsApp Business account, when WhatsApp tells it.
    pub(super) is_business: Option<bool>,
}

/// The answers for several numbers, in the order asked.
#[derive(Debug, Object)]
#[oai(rename_all = "camelCase", skip_serializing_if_is_none)]
pub struct NumberCheckList {
    pub(super) data: Vec<NumberCheck>,
}

#[derive(Debug, Union)]
#[oai(one_of)]
pub enum HasWhatsappView {
    One(NumberCheck),
    Many(NumberCheckList),
}

/// A message the phone sent or received, as stored: the message as its events show it,
/// and when the gateway stored it.
#[derive(Debug, Object)]
#[oai(rename_all = "camelCase", skip_serializing_if_is_none)]
pub struct MessageView {
    #[oai(flatten)]
    message: MessageEventData,
    /// When the gateway stored it.
    stored_at: DateTime<Utc>,
}

impl From<Message> for MessageView {
    fn from(message: Message) -> Self {
        Self {
            stored_at: message.stored_at,
            message: message.into(),
        }
    }
}

/// A page of a phone's message history.
#[derive(Debug, Object)]
#[oai(rename_all = "camelCase", skip_serializing_if_is_none)]
pub struct MessagePage {
    /// Newest first.
    pub(super) data: Vec<MessageView>,
    pub(super) pagination: Pagination,
}
