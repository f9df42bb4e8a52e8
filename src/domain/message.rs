//! What a stored message is: its direction and its delivery status. Each is one enum, the
//! same in the database (the same strings as before), in events and in the API spec.

use sea_orm::entity::prelude::StringLen;
use sea_orm::{DeriveActiveEnum, EnumIter};
use serde::Serialize;

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
