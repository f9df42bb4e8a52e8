//! The engine boundary: the only door to WhatsApp. [`Engine`] opens one [`Session`] per
//! phone; a session connects, pairs, sends and looks things up, and reports what happens
//! as [`EngineEvent`]s through the sink it was opened with. Nothing outside this folder
//! names a WhatsApp library type, so the gateway runs the same on the real engine and on
//! the [`sandbox`].

pub mod sandbox;
pub mod whatsapp;

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use bytes::Bytes;
use chrono::{DateTime, Utc};
use tokio::sync::oneshot;

pub use crate::domain::MediaKind;
pub use crate::domain::{ContactCard, Jid, Location, MessageKind, MessageStatus, PhoneNumber};

/// How a phone without a stored link pairs: by scanning a QR code, or by typing a code
/// into WhatsApp ("Link with phone number instead").
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PairingMode {
    Qr,
    Code,
}

/// The linked account, as WhatsApp reports it once connected.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Identity {
    pub jid: Jid,
    pub lid: Option<Jid>,
    pub push_name: Option<String>,
}

/// What a session reports. Sent to the phone's actor; never blocks the engine.
#[derive(Debug)]
pub enum EngineEvent {
    /// A new QR code to show; it replaces the previous one.
    QrCode { code: String, valid_for: Duration },
    /// The code to type on the phone in pairing-code mode.
    PairingCode { code: String, valid_for: Duration },
    /// Pairing ended without a link (codes ran out, the code was refused). Nothing runs
    /// until the next connect.
    PairingFailed { reason: String },
    /// The QR code was scanned or the code entered: the device is linked and logs in next.
    Paired,
    /// Logged in and online.
    Connected(Identity),
    /// The connection dropped; the session reconnects by itself and keeps its link.
    Disconnected { reason: String },
    /// The session stopped by itself and does not reconnect (another client took over,
    /// a ban, an outdated client); the link is kept. `failed` when connecting again cannot
    /// help until something changes (the ban ends, wagate is updated).
    Stopped { reason: String, failed: bool },
    /// The link is gone (unlinked on the phone or by WhatsApp): the keys are deleted and
    /// the next connect pairs anew.
    LoggedOut { reason: String },
    /// The session is broken beyond repair in place: its actor must be restarted.
    Fatal { reason: String },
    /// A message arrived. The engine acknowledges it to WhatsApp only after `ack` fires,
    /// which the gateway does once the message is stored.
    Message(Box<InboundMessage>, Ack),
    /// Delivery or read receipts for messages this phone sent.
    Receipt(Receipt),
    /// Names learnt from the network (push names, the address book, senders).
    Contacts(Vec<ContactInfo>),
    /// Group metadata changed; `None` means any group may have changed.
    GroupsChanged { group: Option<Jid> },
}

/// Completes when the gateway has stored an inbound message. Dropping it un-fired tells
/// the engine the message was not stored (it will be delivered again).
#[derive(Debug)]
pub struct Ack(Option<oneshot::Sender<()>>);

impl Ack {
    pub fn new() -> (Self, oneshot::Receiver<()>) {
        let (tx, rx) = oneshot::channel();
        (Self(Some(tx)), rx)
    }

    /// An ack nobody waits for.
    pub fn none() -> Self {
        Self(None)
    }

    pub fn done(mut self) {
        if let Some(tx) = self.0.take() {
            let _ = tx.send(());
        }
    }
}

/// A message id shaped like WhatsApp's: `3EB0` and 16 hex digits.
pub fn new_message_id() -> String {
    use rand::Rng;
    format!("3EB0{:016X}", rand::rng().random::<u64>())
}

/// Where a session sends its events.
pub type EventSink = Arc<dyn Fn(EngineEvent) + Send + Sync>;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InboundMessage {
    pub id: String,
    /// The chat: the other person for a direct message, the group for a group message.
    /// A person is named by their phone-number JID whenever it is known (WhatsApp may
    /// address them by LID), so one person is one chat.
    pub chat: Jid,
    /// Who wrote it: their phone-number JID when known, else their LID.
    pub sender: Jid,
    /// The sender's LID, when WhatsApp told it.
    pub sender_lid: Option<Jid>,
    pub push_name: Option<String>,
    pub timestamp: DateTime<Utc>,
    /// Sent by this phone from another device.
    pub from_me: bool,
    pub content: InboundContent,
    pub quoted_id: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum InboundContent {
    Text(String),
    Media {
        kind: MediaKind,
        mime: String,
        file_name: Option<String>,
        caption: Option<String>,
        size: Option<u64>,
        /// Where WhatsApp keeps the file and the keys to decrypt it, so it can be
        /// downloaded later.
        stored: Option<MediaRef>,
    },
    /// A reaction to message `target_id`; `emoji` is `None` when the sender removed theirs.
    Reaction {
        target_id: String,
        emoji: Option<String>,
    },
    /// The row a person picked from a list message: its id, and its title as shown.
    ListReply {
        row_id: Option<String>,
        title: Option<String>,
    },
    /// A shared place.
    Location(Location),
    /// One or more contact cards.
    Contacts(Vec<ContactCard>),
    /// A poll… kept by kind with a text rendering when there is one.
    Other {
        kind: MessageKind,
        text: Option<String>,
    },
    /// A message the gateway cannot read yet, named by WhatsApp's kind for it
    /// (`ptvMessage`, `pollCreationMessageV3`, `protocolMessage:REVOKE`, …).
    Unsupported {
        kind: String,
    },
}

/// A received media file as WhatsApp keeps it: encrypted on its media servers at
/// `direct_path`, decrypted with `media_key`.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct MediaRef {
    pub direct_path: String,
    #[serde(with = "base64_bytes")]
    pub media_key: Vec<u8>,
    /// SHA-256 of the decrypted file.
    #[serde(with = "base64_bytes")]
    pub file_sha256: Vec<u8>,
    /// SHA-256 of the encrypted file, which WhatsApp's download checks.
    #[serde(with = "base64_bytes")]
    pub file_enc_sha256: Vec<u8>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub media_key_timestamp: Option<i64>,
}

/// Bytes as standard base64 text in JSON.
mod base64_bytes {
    use base64::Engine as _;
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(bytes: &[u8], s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&base64::engine::general_purpose::STANDARD.encode(bytes))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<u8>, D::Error> {
        let text = String::deserialize(d)?;
        base64::engine::general_purpose::STANDARD
            .decode(text)
            .map_err(serde::de::Error::custom)
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Receipt {
    pub chat: Jid,
    pub message_ids: Vec<String>,
    /// Delivered or read; failed when WhatsApp's server refused the message after it was
    /// sent.
    pub status: MessageStatus,
    pub timestamp: DateTime<Utc>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ContactInfo {
    pub jid: Jid,
    /// The name this phone's owner saved, if any.
    pub name: Option<String>,
    /// The name the contact chose for themselves.
    pub push_name: Option<String>,
    pub lid: Option<Jid>,
}

/// A message to send.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutgoingMessage {
    /// The id to send it under (the caller's); the engine picks one when absent.
    pub id: Option<String>,
    pub to: Jid,
    pub content: OutgoingContent,
    /// Reply to this message id (in the same chat).
    pub quoted_id: Option<String>,
    /// What the gateway knows of the quoted message, so recipients see the quote.
    pub quoted: Option<Quoted>,
    pub mentions: Vec<Jid>,
    pub link_preview: bool,
}

/// A quoted message as stored in the history.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Quoted {
    pub sender: Option<Jid>,
    /// Its type as stored, so the quote shows what kind it was.
    pub kind: MessageKind,
    /// Its text, or its media's caption.
    pub text: Option<String>,
    pub mime: Option<String>,
    pub file_name: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OutgoingContent {
    Text(String),
    Media(Media),
    List(ListMessage),
    /// An emoji reaction to a message of the chat; an empty emoji takes it back.
    Reaction {
        target: MessageKey,
        emoji: String,
    },
    /// A shared place.
    Location(Location),
    /// One or more contact cards.
    Contacts(Vec<ContactCard>),
}

/// Which message of a chat: its id, whether this phone sent it, and in a group who did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MessageKey {
    pub id: String,
    pub from_me: bool,
    /// The author, for a group message someone else sent.
    pub participant: Option<Jid>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Media {
    pub kind: MediaKind,
    pub data: Bytes,
    pub mime: String,
    pub file_name: Option<String>,
    pub caption: Option<String>,
    /// Audio only: send as a voice note (push-to-talk).
    pub voice_note: bool,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListMessage {
    pub title: String,
    pub body: String,
    pub footer: Option<String>,
    pub button_text: String,
    pub sections: Vec<ListSection>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListSection {
    pub title: String,
    pub rows: Vec<ListRow>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListRow {
    pub id: String,
    pub title: String,
    pub description: Option<String>,
}

/// What WhatsApp accepted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SentMessage {
    pub id: String,
    pub timestamp: DateTime<Utc>,
}

/// Whether a number is on WhatsApp.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Lookup {
    /// The digits that were asked about.
    pub number: String,
    pub jid: Jid,
    pub exists: bool,
    pub lid: Option<Jid>,
    pub is_business: Option<bool>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Group {
    pub jid: Jid,
    pub subject: String,
    pub description: Option<String>,
    pub owner: Option<Jid>,
    pub created_at: Option<DateTime<Utc>>,
    pub participants: Vec<Participant>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Participant {
    pub jid: Jid,
    pub admin: bool,
    pub super_admin: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EngineError {
    #[error("the phone is not connected to WhatsApp")]
    NotConnected,
    #[error("WhatsApp did not answer in time")]
    Timeout,
    #[error("not found: {0}")]
    NotFound(String),
    #[error("WhatsApp refused the request: {0}")]
    Rejected(String),
    #[error("protocol error: {0}")]
    Protocol(String),
    #[error("storage error: {0}")]
    Storage(String),
}

/// A WhatsApp implementation: the real network or the sandbox.
#[async_trait]
pub trait Engine: Send + Sync + 'static {
    /// A session for the phone, with its stored link if it has one. It does not connect.
    /// Opening a phone again replaces its previous session.
    async fn open(&self, phone: &PhoneNumber, events: EventSink) -> Result<Arc<dyn Session>, EngineError>;

    /// Deletes everything stored for the phone (its keys): the next connect pairs anew.
    async fn forget(&self, phone: &PhoneNumber) -> Result<(), EngineError>;
}

/// One phone's connection to WhatsApp.
#[async_trait]
pub trait Session: Send + Sync + 'static {
    /// Whether the phone has a stored link, so connecting needs no pairing.
    fn is_linked(&self) -> bool;

    /// Starts connecting and returns; progress arrives as events (`QrCode`/`PairingCode`
    /// when pairing is needed, then `Connected`).
    async fn connect(&self, mode: PairingMode) -> Result<(), EngineError>;

    /// Goes offline and stops reconnecting; the link is kept.
    async fn disconnect(&self) -> Result<(), EngineError>;

    /// Unlinks the device from the account and deletes the stored link.
    async fn logout(&self) -> Result<(), EngineError>;

    async fn send(&self, message: OutgoingMessage) -> Result<SentMessage, EngineError>;

    /// Shows or clears "typing…" in a chat.
    async fn set_typing(&self, chat: &Jid, typing: bool) -> Result<(), EngineError>;

    /// Tells the senders these received messages of `chat` were read (blue ticks). In a
    /// group, `sender` is the author of all of them.
    async fn mark_read(&self, chat: &Jid, sender: Option<&Jid>, ids: &[String]) -> Result<(), EngineError>;

    /// Downloads a received media file from where WhatsApp keeps it, decrypted, into
    /// `into` (emptied first). `size` is the size the message declared, when it did.
    async fn download(
        &self,
        media: &MediaRef,
        kind: MediaKind,
        size: Option<u64>,
        into: std::fs::File,
    ) -> Result<(), EngineError>;

    /// Which of these numbers (digits with country code) are on WhatsApp.
    async fn lookup(&self, numbers: &[String]) -> Result<Vec<Lookup>, EngineError>;

    /// The groups this phone is a member of.
    async fn groups(&self) -> Result<Vec<Group>, EngineError>;

    async fn group(&self, jid: &Jid) -> Result<Group, EngineError>;

    /// Stops background work for good; called when the phone's actor stops.
    async fn close(&self);
}
