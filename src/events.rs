//! Gateway events: what happened to phones and messages, as one JSON-able shape. Every
//! event goes to the live bus (the WebSocket stream subscribes to it); webhooks read the
//! durable outbox instead.

use std::sync::Arc;

use chrono::{DateTime, Utc};
use poem_openapi::Object;
use serde::Serialize;
use tokio::sync::broadcast;
use uuid::Uuid;

use crate::domain::{
    ContactCard, Details, Direction, EventKind, Location, MediaKind, MediaStatus, Message, MessageKind, MessageStatus,
    PhoneNumber,
};

/// The `data` of a webhook's test ping.
#[derive(Debug, Serialize, Object)]
#[serde(rename_all = "camelCase")]
#[oai(rename_all = "camelCase")]
pub struct PingData {
    /// "a test ping from wagate".
    pub message: String,
    /// The webhook pinged.
    pub webhook_id: String,
}

/// One event: `{id, event, phone, timestamp, data}` on the wire.
#[derive(Debug, Clone, Serialize)]
pub struct GatewayEvent {
    pub id: Uuid,
    pub event: EventKind,
    pub phone: Option<PhoneNumber>,
    pub timestamp: DateTime<Utc>,
    pub data: serde_json::Value,
}

impl GatewayEvent {
    pub fn new(event: impl Into<EventKind>, phone: Option<PhoneNumber>, data: serde_json::Value) -> Self {
        Self {
            id: Uuid::now_v7(),
            event: event.into(),
            phone,
            timestamp: Utc::now(),
            data,
        }
    }
}

/// Fan-out of live events. Slow subscribers miss events (they are told how many); the
/// bus never blocks a publisher.
#[derive(Clone)]
pub struct EventBus {
    tx: broadcast::Sender<Arc<GatewayEvent>>,
}

impl EventBus {
    pub fn new(capacity: usize) -> Self {
        let (tx, _) = broadcast::channel(capacity);
        Self { tx }
    }

    pub fn publish(&self, event: GatewayEvent) {
        let _ = self.tx.send(Arc::new(event));
    }

    pub fn subscribe(&self) -> broadcast::Receiver<Arc<GatewayEvent>> {
        self.tx.subscribe()
    }
}

/// The `data` of a message event: the message as history shows it. The webhook payload
/// is this type serialised, and the spec documents this same type.
#[derive(Debug, Serialize, Object)]
#[serde(rename_all = "camelCase")]
#[oai(rename_all = "camelCase", skip_serializing_if_is_none)]
pub struct MessageEventData {
    /// The WhatsApp message id.
    id: String,
    direction: Direction,
    /// The chat's JID: the other person, or the group.
    chat: String,
    /// Who wrote it: their phone-number JID when known.
    sender: String,
    /// The sender's LID, when WhatsApp addresses them by one.
    #[serde(skip_serializing_if = "Option::is_none")]
    sender_lid: Option<String>,
    /// The sender's chosen name, for received messages.
    #[serde(skip_serializing_if = "Option::is_none")]
    push_name: Option<String>,
    r#type: MessageKind,
    /// For type `unsupported`: WhatsApp's kind of the message, which the gateway cannot
    /// read yet (e.g. `ptvMessage`, `pollCreationMessageV3`).
    #[serde(skip_serializing_if = "Option::is_none")]
    raw_type: Option<String>,
    /// The text, or the media's caption (for a reaction, its emoji).
    #[serde(skip_serializing_if = "Option::is_none")]
    text: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    media: Option<MediaView>,
    /// The message this one replies to.
    #[serde(skip_serializing_if = "Option::is_none")]
    quoted_id: Option<String>,
    /// For a reaction (`reaction`, `reaction_removed`): the message reacted to.
    #[serde(skip_serializing_if = "Option::is_none")]
    target_id: Option<String>,
    /// For a list reply: the id of the row picked (`text` is its title).
    #[serde(skip_serializing_if = "Option::is_none")]
    selected_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    location: Option<Location>,
    #[serde(skip_serializing_if = "Option::is_none")]
    contacts: Option<Vec<ContactCard>>,
    status: MessageStatus,
    /// When it was sent.
    timestamp: DateTime<Utc>,
}

/// A message's file: what it is, and whether the gateway keeps it. A kept file
/// (`status: stored`) is served at `url`, received and sent files alike.
#[derive(Debug, Serialize, Object)]
#[serde(rename_all = "camelCase")]
#[oai(rename = "MessageMedia", rename_all = "camelCase", skip_serializing_if_is_none)]
pub struct MediaView {
    kind: Option<MediaKind>,
    /// The file's MIME type.
    mime_type: String,
    /// The file's name, when it has one.
    #[serde(skip_serializing_if = "Option::is_none")]
    file_name: Option<String>,
    /// Size in bytes, when known.
    #[serde(skip_serializing_if = "Option::is_none")]
    size: Option<i64>,
    /// SHA-256 of the file (hex), once kept.
    #[serde(skip_serializing_if = "Option::is_none")]
    sha256: Option<String>,
    status: MediaStatus,
    /// Why the file is not kept (`failed`, `skipped`), or why the last download attempt
    /// failed while it is `pending`.
    #[serde(skip_serializing_if = "Option::is_none")]
    error: Option<String>,
    /// Where the API serves the file (`GET`, with a token), once `stored`.
    #[serde(skip_serializing_if = "Option::is_none")]
    url: Option<String>,
}

impl MediaView {
    /// The view of a message's file, if it has one.
    pub fn of(message: &Message) -> Option<Self> {
        let media = message.media.as_ref()?;
        let url = (media.status == MediaStatus::Stored).then(|| media_url(&message.phone, &message.id));
        Some(Self {
            kind: message.kind.media(),
            mime_type: media.mime.clone(),
            file_name: media.file_name.clone(),
            size: media.size,
            sha256: media.sha256.clone(),
            status: media.status,
            error: media.error.clone(),
            url,
        })
    }
}

/// The API path of a message's file: the phone by its digits, the id percent-encoded.
pub fn media_url(phone: &str, message_id: &str) -> String {
    /// What a path segment keeps as it is: RFC 3986's unreserved characters.
    const SEGMENT: &percent_encoding::AsciiSet = &percent_encoding::NON_ALPHANUMERIC
        .remove(b'-')
        .remove(b'.')
        .remove(b'_')
        .remove(b'~');
    let digits: String = phone.chars().filter(char::is_ascii_digit).collect();
    let id = percent_encoding::utf8_percent_encode(message_id, SEGMENT);
    format!("/api/v1/user/phones/{digits}/messages/{id}/media")
}

/// A message's details as the views show them: a place, or contact cards.
fn split_details(details: Option<Details>) -> (Option<Location>, Option<Vec<ContactCard>>) {
    match details {
        Some(Details::Location(place)) => (Some(place), None),
        Some(Details::Contacts(cards)) => (None, Some(cards)),
        None => (None, None),
    }
}

impl From<Message> for MessageEventData {
    fn from(message: Message) -> Self {
        let media = MediaView::of(&message);
        let (location, contacts) = split_details(message.details.clone());
        Self {
            location,
            contacts,
            id: message.id,
            direction: message.direction,
            chat: message.chat,
            sender: message.sender,
            sender_lid: message.sender_lid,
            push_name: message.push_name,
            r#type: message.kind,
            raw_type: message.raw_kind,
            text: message.text,
            media,
            quoted_id: message.quoted_id,
            target_id: message.target_id,
            selected_id: message.selected_id,
            status: message.status,
            timestamp: message.timestamp,
        }
    }
}

/// The `data` of a `phone.status` event.
#[derive(Debug, Default, Serialize, Object)]
#[serde(rename_all = "camelCase")]
#[oai(rename_all = "camelCase", skip_serializing_if_is_none)]
pub struct PhoneStatusData {
    /// disconnected, connecting, pairing, connected, reconnecting, logged_out, failed
    /// (or deleted).
    pub status: String,
    /// The linked account's JID, once connected.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub jid: Option<String>,
    /// The linked account's LID (hidden-number identity), once connected.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub lid: Option<String>,
    /// The name the account shows to others.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub push_name: Option<String>,
    /// Why the phone is not connected, in words, when something went wrong.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_error: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub qr: Option<QrEventData>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pairing_code: Option<PairingCodeEventData>,
}

/// The QR code to scan now.
#[derive(Debug, Serialize, Object)]
#[serde(rename_all = "camelCase")]
#[oai(rename_all = "camelCase", skip_serializing_if_is_none)]
pub struct QrEventData {
    /// The QR code's content, to render as a QR code.
    pub code: String,
    /// When this code stops working (a new one follows).
    pub expires_at: DateTime<Utc>,
    /// How many codes this pairing attempt has shown.
    pub count: u32,
}

/// The code to type on the phone now.
#[derive(Debug, Serialize, Object)]
#[serde(rename_all = "camelCase")]
#[oai(rename_all = "camelCase", skip_serializing_if_is_none)]
pub struct PairingCodeEventData {
    /// The code to type on the phone (Linked devices → Link with phone number).
    pub code: String,
    /// When this code stops working.
    pub expires_at: DateTime<Utc>,
}

/// An event's `data` as JSON.
pub fn data(value: &impl Serialize) -> serde_json::Value {
    serde_json::to_value(value).unwrap_or_default()
}
