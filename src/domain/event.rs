//! What an event is about. A webhook subscribes to [`Service`]s; every event names one,
//! except a webhook's test ping. One enum, the same in the database, on the wire and in
//! the API spec.

use sea_orm::entity::prelude::StringLen;
use sea_orm::{DeriveActiveEnum, EnumIter};
use serde::Serialize;

/// An event a webhook can receive.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, EnumIter, DeriveActiveEnum, poem_openapi::Enum, Serialize,
)]
#[sea_orm(rs_type = "String", db_type = "String(StringLen::None)")]
pub enum Service {
    /// A message arrived at one of the phones.
    #[sea_orm(string_value = "message.received")]
    #[oai(rename = "message.received")]
    #[serde(rename = "message.received")]
    MessageReceived,
    /// A phone sent a message (through the API or from the phone itself).
    #[sea_orm(string_value = "message.sent")]
    #[oai(rename = "message.sent")]
    #[serde(rename = "message.sent")]
    MessageSent,
    /// A sent message was delivered or read, or failed.
    #[sea_orm(string_value = "message.status")]
    #[oai(rename = "message.status")]
    #[serde(rename = "message.status")]
    MessageStatus,
    /// A received file was downloaded and kept, or could not be.
    #[sea_orm(string_value = "message.media")]
    #[oai(rename = "message.media")]
    #[serde(rename = "message.media")]
    MessageMedia,
    /// A phone's connection changed: QR code (with a count), pairing code, connected,
    /// reconnecting, disconnected, logged out, failed, deleted.
    #[sea_orm(string_value = "phone.status")]
    #[oai(rename = "phone.status")]
    #[serde(rename = "phone.status")]
    PhoneStatus,
}

impl Service {
    pub const ALL: [Service; 5] = [
        Service::MessageReceived,
        Service::MessageSent,
        Service::MessageStatus,
        Service::MessageMedia,
        Service::PhoneStatus,
    ];

    /// The event's name: the `event` of its envelope and its `X-Wagate-Event` header.
    pub fn as_str(self) -> &'static str {
        match self {
            Service::MessageReceived => "message.received",
            Service::MessageSent => "message.sent",
            Service::MessageStatus => "message.status",
            Service::MessageMedia => "message.media",
            Service::PhoneStatus => "phone.status",
        }
    }
}

/// What an event envelope names: a service's event, or a webhook's test ping (sent on
/// request to one webhook, never subscribed to).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum EventKind {
    Service(Service),
    Ping,
}

impl EventKind {
    /// Every kind of event the gateway emits.
    pub fn all() -> impl Iterator<Item = EventKind> {
        Service::ALL
            .into_iter()
            .map(EventKind::Service)
            .chain([EventKind::Ping])
    }

    pub fn as_str(self) -> &'static str {
        match self {
            EventKind::Service(service) => service.as_str(),
            EventKind::Ping => "ping",
        }
    }
}

impl From<Service> for EventKind {
    fn from(service: Service) -> Self {
        EventKind::Service(service)
    }
}

impl Serialize for EventKind {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use sea_orm::ActiveEnum;

    use super::*;

    #[test]
    fn a_service_has_one_name_in_the_database_on_the_wire_and_in_the_envelope() {
        for service in Service::ALL {
            assert_eq!(service.to_value(), service.as_str());
            assert_eq!(serde_json::to_value(service).unwrap(), service.as_str());
            assert_eq!(
                serde_json::to_value(EventKind::from(service)).unwrap(),
                service.as_str()
            );
            let poem = poem_openapi::types::ToJSON::to_json(&service).unwrap();
            assert_eq!(poem, service.as_str());
        }
        assert_eq!(serde_json::to_value(EventKind::Ping).unwrap(), "ping");
        assert_eq!(EventKind::all().count(), 6);
    }
}
