//! Where events go: a [`Webhook`] receives the events of its services, and each event
//! sent to it is a [`Delivery`] with its attempts.

use chrono::{DateTime, Utc};

use super::{DeliveryStatus, Service};

/// A webhook as its owner sees it: its signing secret is shown only when issued.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Webhook {
    pub id: String,
    pub url: String,
    /// The events it receives, in name order.
    pub services: Vec<Service>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

/// One event sent, or to be sent, to a webhook.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Delivery {
    /// The event id: the `X-Wagate-Delivery` header, the same on every attempt.
    pub id: String,
    /// The event's name (`ping` for a test ping).
    pub event: String,
    /// The phone the event is about.
    pub phone: Option<String>,
    pub status: DeliveryStatus,
    pub attempts: i32,
    /// The receiver's HTTP status on the last attempt, if it answered.
    pub last_status_code: Option<i32>,
    /// Why the last attempt failed.
    pub last_error: Option<String>,
    /// When the next attempt is due, while pending.
    pub next_attempt_at: Option<DateTime<Utc>>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub delivered_at: Option<DateTime<Utc>>,
}
