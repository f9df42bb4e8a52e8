//! Gateway events: what happened to phones and messages, as one JSON-able shape. Every
//! event goes to the live bus (the WebSocket stream subscribes to it); webhooks read the
//! durable outbox instead.

use std::sync::Arc;

use chrono::{DateTime, Utc};
use poem_openapi::Object;
use serde::Serialize;
use tokio::sync::broadcast;
use uuid::Uuid;

use crate::db::messages::Model as StoredMessage;
use crate::domain::{Direction, MessageStatus, PhoneNumber};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
pub enum EventKind {
    #[serde(rename = "phone.status")]
    PhoneStatus,
    #[serde(rename = "message.received")]
    MessageReceived,
    #[serde(rename = "message.sent")]
    MessageSent,
    #[serde(rename = "message.status")]
    MessageStatus,
    /// A webhook's test ping: sent on request to one webhook, never subscribed to.
    #[serde(rename = "ping")]
    Ping,
}

impl EventKind {
    pub const ALL: [EventKind; 4] = [
        EventKind::MessageReceived,
        EventKind::MessageSent,
        EventKind::MessageStatus,
        EventKind::PhoneStatus,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            EventKind::PhoneStatus => "phone.status",
            EventKind::MessageReceived => "message.received",
            EventKind::MessageSent => "message.sent",
            EventKind::MessageStatus => "message.status",
            EventKind::Ping => crate::db::webhooks::PING,
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|k| k.as_str() == s)
    }
}

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
    pub fn new(event: EventKind, phone: Option<PhoneNumber>, data: serde_json::Value) -> Self {
        Self {
            id: Uuid::now_v7(),
            event,
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
    chat: String,
    sender: String,
    /// The sender's LID, when WhatsApp addresses them by one.
    #[serde(skip_serializing_if = "Option::is_none")]
    sender_lid: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    push_name: Option<String>,
    r#type: String,
    /// For type `unsupported`: WhatsApp's kind of the message, which the gateway cannot
    /// read yet (e.g. `ptvMessage`, `pollCreationMessageV3`).
    #[serde(skip_serializing_if = "Option::is_none")]
    raw_type: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    text: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    media: Option<MediaEventData>,
    #[serde(skip_serializing_if = "Option::is_none")]
    quoted_id: Option<String>,
    /// For a reaction (`reaction`, `reaction_removed`): the message reacted to.
    #[serde(skip_serializing_if = "Option::is_none")]
    target_id: Option<String>,
    /// For a list reply: the id of the row picked (`text` is its title).
    #[serde(skip_serializing_if = "Option::is_none")]
    selected_id: Option<String>,
    status: MessageStatus,
    timestamp: DateTime<Utc>,
}

/// What a message's media file is.
#[derive(Debug, Serialize, Object)]
#[serde(rename_all = "camelCase")]
#[oai(rename_all = "camelCase", skip_serializing_if_is_none)]
pub struct MediaEventData {
    /// The file's MIME type.
    mime_type: String,
    /// The file's name, when it has one.
    #[serde(skip_serializing_if = "Option::is_none")]
    file_name: Option<String>,
    /// Size in bytes, when known.
    #[serde(skip_serializing_if = "Option::is_none")]
    size: Option<i64>,
}

impl From<&StoredMessage> for MessageEventData {
    fn from(row: &StoredMessage) -> Self {
        Self {
            id: row.message_id.clone(),
            direction: row.direction,
            chat: row.chat.clone(),
            sender: row.sender.clone(),
            sender_lid: row.sender_lid.clone(),
            push_name: row.push_name.clone(),
            r#type: row.kind.clone(),
            raw_type: row.raw_kind.clone(),
            text: row.body.clone(),
            media: row.media_mime.clone().map(|mime_type| MediaEventData {
                mime_type,
                file_name: row.media_file_name.clone(),
                size: row.media_size,
            }),
            quoted_id: row.quoted_id.clone(),
            target_id: row.target_id.clone(),
            selected_id: row.selected_id.clone(),
            status: row.status,
            timestamp: row.timestamp,
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
    #[serde(skip_serializing_if = "Option::is_none")]
    pub jid: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub lid: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub push_name: Option<String>,
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
