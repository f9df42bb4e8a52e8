//! What a stored message is: the message as its history keeps it, and its kind,
//! direction and delivery status. Each of those is one enum, the same in the database,
//! in events and in the API spec.

use chrono::{DateTime, Utc};
use sea_orm::entity::prelude::StringLen;
use sea_orm::{DeriveActiveEnum, EnumIter};
use serde::Serialize;

use super::{MediaKind, MediaStatus};

/// Which way a message went: `in` (received) or `out` (sent).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, EnumIter, DeriveActiveEnum, poem_openapi::Enum, Serialize)]
#[sea_orm(rs_type = "String", db_type = "String(StringLen::None)")]
#[oai(rename_all = "lowercase")]
#[serde(rename_all = "lowercase")]
pub enum Direction {
    /// Received by the phone.
    #[sea_orm(string_value = "in")]
    In,
    /// Sent by the phone (through the API, or from the phone itself).
    #[sea_orm(string_value = "out")]
    Out,
}

/// A message's delivery state, in the order it can advance.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, EnumIter, DeriveActiveEnum, poem_openapi::Enum, Serialize,
)]
#[sea_orm(rs_type = "String", db_type = "String(StringLen::None)")]
#[oai(rename_all = "lowercase")]
#[serde(rename_all = "lowercase")]
pub enum MessageStatus {
    /// WhatsApp refused it, or it could not be sent.
    #[sea_orm(string_value = "failed")]
    Failed,
    /// A message the phone received.
    #[sea_orm(string_value = "received")]
    Received,
    /// Accepted by WhatsApp's server.
    #[sea_orm(string_value = "sent")]
    Sent,
    /// On the recipient's phone.
    #[sea_orm(string_value = "delivered")]
    Delivered,
    /// Read by the recipient.
    #[sea_orm(string_value = "read")]
    Read,
}

impl MessageStatus {
    /// The states a receipt may move a message out of to reach `self`.
    pub fn predecessors(self) -> &'static [MessageStatus] {
        match self {
            MessageStatus::Failed | MessageStatus::Delivered => &[MessageStatus::Sent],
            MessageStatus::Read => &[MessageStatus::Sent, MessageStatus::Delivered],
            MessageStatus::Received | MessageStatus::Sent => &[],
        }
    }
}

/// Where a webhook delivery stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, EnumIter, DeriveActiveEnum, poem_openapi::Enum, Serialize)]
#[sea_orm(rs_type = "String", db_type = "String(StringLen::None)")]
#[oai(rename_all = "lowercase")]
#[serde(rename_all = "lowercase")]
pub enum DeliveryStatus {
    /// Waiting to be sent, or to be retried.
    #[sea_orm(string_value = "pending")]
    Pending,
    /// The receiver answered 2xx.
    #[sea_orm(string_value = "delivered")]
    Delivered,
    /// Given up after `webhooks.give_up_after` of failed attempts; redeliver it by hand.
    #[sea_orm(string_value = "failed")]
    Failed,
}

/// What a stored message is. Messages the gateway cannot read yet are `unsupported`, with
/// WhatsApp's own name for their kind beside (`rawType`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, EnumIter, DeriveActiveEnum, poem_openapi::Enum, Serialize)]
#[sea_orm(rs_type = "String", db_type = "String(StringLen::None)")]
#[oai(rename = "MessageType", rename_all = "snake_case")]
#[serde(rename_all = "snake_case")]
pub enum MessageKind {
    /// Text only.
    #[sea_orm(string_value = "text")]
    Text,
    /// A photo, with its caption as the text.
    #[sea_orm(string_value = "image")]
    Image,
    /// A video, with its caption as the text.
    #[sea_orm(string_value = "video")]
    Video,
    /// An audio file or voice note.
    #[sea_orm(string_value = "audio")]
    Audio,
    /// A document, with its caption as the text.
    #[sea_orm(string_value = "document")]
    Document,
    /// A sticker.
    #[sea_orm(string_value = "sticker")]
    Sticker,
    /// A list of rows to pick from; the text is its body.
    #[sea_orm(string_value = "list")]
    List,
    /// The row someone picked from a list (`selectedId`; the text is its title).
    #[sea_orm(string_value = "list_reply")]
    ListReply,
    /// An emoji reaction to another message (`targetId`; the text is the emoji).
    #[sea_orm(string_value = "reaction")]
    Reaction,
    /// A reaction taken back (`targetId`).
    #[sea_orm(string_value = "reaction_removed")]
    ReactionRemoved,
    /// A shared location, with its name or address as the text when it has one.
    #[sea_orm(string_value = "location")]
    Location,
    /// A shared contact card, with its name as the text.
    #[sea_orm(string_value = "contact")]
    Contact,
    /// A poll, with its question as the text.
    #[sea_orm(string_value = "poll")]
    Poll,
    /// A message the gateway cannot read yet (`rawType` names it).
    #[sea_orm(string_value = "unsupported")]
    Unsupported,
}

impl MessageKind {
    /// The kind of file a message of this kind carries.
    pub fn media(self) -> Option<MediaKind> {
        match self {
            MessageKind::Image => Some(MediaKind::Image),
            MessageKind::Video => Some(MediaKind::Video),
            MessageKind::Audio => Some(MediaKind::Audio),
            MessageKind::Document => Some(MediaKind::Document),
            MessageKind::Sticker => Some(MediaKind::Sticker),
            _ => None,
        }
    }
}

impl From<MediaKind> for MessageKind {
    fn from(kind: MediaKind) -> Self {
        match kind {
            MediaKind::Image => MessageKind::Image,
            MediaKind::Video => MessageKind::Video,
            MediaKind::Audio => MessageKind::Audio,
            MediaKind::Document => MessageKind::Document,
            MediaKind::Sticker => MessageKind::Sticker,
        }
    }
}

/// A shared place.
#[derive(Debug, Clone, PartialEq, serde::Deserialize, Serialize, poem_openapi::Object)]
#[serde(rename_all = "camelCase")]
#[oai(rename_all = "camelCase", skip_serializing_if_is_none)]
pub struct Location {
    /// Degrees north, -90 to 90.
    pub latitude: f64,
    /// Degrees east, -180 to 180.
    pub longitude: f64,
    /// The place's name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// The place's address.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub address: Option<String>,
}

/// Coordinates are checked finite wherever a location is made, so equality is total.
impl Eq for Location {}

impl Location {
    /// The place as a line of text: its name, its address, or its coordinates.
    pub fn text(&self) -> String {
        match (&self.name, &self.address) {
            (Some(name), Some(address)) => format!("{name}, {address}"),
            (Some(one), None) | (None, Some(one)) => one.clone(),
            (None, None) => format!("{}, {}", self.latitude, self.longitude),
        }
    }
}

/// A shared contact card.
#[derive(Debug, Clone, PartialEq, Eq, serde::Deserialize, Serialize, poem_openapi::Object)]
#[serde(rename_all = "camelCase")]
#[oai(rename_all = "camelCase")]
pub struct ContactCard {
    /// The name the card shows.
    pub name: String,
    /// The card itself (vCard 3.0).
    pub vcard: String,
}

impl ContactCard {
    /// A card for a person by name and phone numbers (digits with country code).
    pub fn of(name: &str, phones: &[String]) -> Self {
        let escaped: String = name
            .chars()
            .flat_map(|c| match c {
                '\\' | ',' | ';' => vec!['\\', c],
                '\n' | '\r' => vec![' '],
                c => vec![c],
            })
            .collect();
        let mut vcard = format!("BEGIN:VCARD\nVERSION:3.0\nFN:{escaped}\n");
        for digits in phones {
            vcard.push_str(&format!("TEL;type=CELL;waid={digits}:+{digits}\n"));
        }
        vcard.push_str("END:VCARD");
        Self {
            name: name.to_owned(),
            vcard,
        }
    }
}

/// What a message carries beyond its text and file, kept as JSON beside it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Deserialize, Serialize)]
#[serde(rename_all = "camelCase")]
pub enum Details {
    Location(Location),
    Contacts(Vec<ContactCard>),
}

impl Details {
    /// The details as a line of text, for history's `text`.
    pub fn text(&self) -> String {
        match self {
            Details::Location(location) => location.text(),
            Details::Contacts(cards) => cards.iter().map(|c| c.name.as_str()).collect::<Vec<_>>().join(", "),
        }
    }
}

/// A message a phone sent or received, as its history keeps it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Message {
    /// The WhatsApp message id.
    pub id: String,
    pub direction: Direction,
    /// The chat's JID: the other person, or the group.
    pub chat: String,
    /// Who wrote it: their phone-number JID when known.
    pub sender: String,
    /// The sender's LID, when WhatsApp addresses them by one.
    pub sender_lid: Option<String>,
    /// The sender's chosen name, for received messages.
    pub push_name: Option<String>,
    pub kind: MessageKind,
    /// For an `unsupported` message: WhatsApp's kind of it.
    pub raw_kind: Option<String>,
    /// The text, or the media's caption (for a reaction its emoji, for a list reply the
    /// row's title).
    pub text: Option<String>,
    pub media: Option<MediaInfo>,
    pub status: MessageStatus,
    /// The message this one replies to.
    pub quoted_id: Option<String>,
    /// The message this one acts on: for a reaction, the message reacted to.
    pub target_id: Option<String>,
    /// For a list reply: the id of the row picked.
    pub selected_id: Option<String>,
    /// When it was sent.
    pub timestamp: DateTime<Utc>,
    /// When the gateway stored it.
    pub stored_at: DateTime<Utc>,
    /// The gateway phone whose history holds it.
    pub phone: String,
    /// A shared place or contact cards.
    pub details: Option<Details>,
}

/// A message's media file: what it is and whether the gateway keeps it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MediaInfo {
    pub mime: String,
    pub file_name: Option<String>,
    /// Size in bytes, when known.
    pub size: Option<i64>,
    pub status: MediaStatus,
    /// SHA-256 of the file (hex), once kept.
    pub sha256: Option<String>,
    /// Why the file is not kept (`failed`, `skipped`), or why the last attempt failed.
    pub error: Option<String>,
}

#[cfg(test)]
mod tests {
    use sea_orm::{ActiveEnum, Iterable};

    use super::*;

    #[test]
    fn a_message_kind_has_one_name_in_the_database_on_the_wire_and_in_the_spec() {
        for kind in MessageKind::iter() {
            let stored = kind.to_value();
            assert_eq!(serde_json::to_value(kind).unwrap(), stored.as_str());
            assert_eq!(poem_openapi::types::ToJSON::to_json(&kind).unwrap(), stored.as_str());
        }
        let card = ContactCard::of("Ana, \"A\"; Pérez", &["12015550150".into()]);
        assert_eq!(
            card.vcard,
            "BEGIN:VCARD\nVERSION:3.0\nFN:Ana\\, \"A\"\\; Pérez\nTEL;type=CELL;waid=12015550150:+12015550150\nEND:VCARD"
        );
        for media in MediaKind::ALL {
            assert_eq!(MessageKind::from(media).to_value(), media.as_str());
            assert_eq!(MessageKind::from(media).media(), Some(media));
        }
    }
}
