//! Gateway events: what happened to phones and messages, as one JSON-able shape. Every
//! event goes to the live bus (the WebSocket stream subscribes to it); webhooks read the
//! durable outbox instead.

use std::sync::Arc;

use chrono::{DateTime, Utc};
use serde::Serialize;
use tokio::sync::broadcast;
use uuid::Uuid;

use crate::domain::PhoneNumber;

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
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|k| k.as_str() == s)
    }
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

/// The `data` of a message event: the message as history shows it.
pub fn message_data(row: &crate::db::messages::Model) -> serde_json::Value {
    let media = row
        .media_mime
        .as_ref()
        .map(|mime| serde_json::json!({"mimeType": mime, "fileName": row.media_file_name, "size": row.media_size}));
    serde_json::json!({
        "id": row.message_id,
        "direction": row.direction,
        "chat": row.chat,
        "sender": row.sender,
        "pushName": row.push_name,
        "type": row.kind,
        "text": row.body,
        "media": media,
        "quotedId": row.quoted_id,
        "status": row.status,
        "timestamp": row.timestamp,
    })
}
