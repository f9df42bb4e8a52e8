//! Domain types that are valid by construction: a [`PhoneNumber`] is always E.164 and
//! valid for its country, a [`Jid`] always has a user and a known server.

pub mod contact;
mod event;
mod jid;
mod media;
mod message;
mod phone;
pub mod recipient;
mod status;
mod webhook;

pub use event::{EventKind, Service};
pub use jid::{GROUP_SERVER, Jid, JidError, LID_SERVER, USER_SERVER};
pub use media::{MediaKind, MediaStatus};
pub use message::{
    ContactCard, DeliveryStatus, Details, Direction, Location, MediaInfo, Message, MessageKind, MessageStatus,
};
pub use phone::{PhoneNumber, PhoneNumberError};
pub use recipient::RecipientError;
pub use status::PhoneStatus;
pub use webhook::{Delivery, Webhook};
