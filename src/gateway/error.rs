//! The one error type of the use cases; the API maps it to responses in one place.

use sea_orm::DbErr;

use crate::actors::PhoneError;
use crate::domain::Service;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A phone, its session or WhatsApp failed the call.
    #[error(transparent)]
    Phone(#[from] PhoneError),
    #[error(transparent)]
    Db(#[from] DbErr),
    #[error("no webhook has the id {0}")]
    WebhookNotFound(String),
    #[error("this webhook has no delivery with that id")]
    DeliveryNotFound,
    /// "One webhook per service": another webhook already receives `service`.
    #[error("webhook {webhook_id} already receives {}", service.as_str())]
    WebhookTaken { webhook_id: String, service: Service },
    #[error("{0}")]
    InvalidWebhookUrl(String),
    #[error("no such group")]
    GroupNotFound,
    #[error("this phone has no message with the id {0}")]
    MessageNotFound(String),
    #[error("the message {0} carries no file")]
    NoMedia(String),
    /// The message cannot take this action (a reaction to a reaction, …).
    #[error("{0}")]
    CannotAct(String),
    /// The file is being downloaded, or waits for a retry.
    #[error("the file of message {0} is still being downloaded; retry shortly")]
    MediaPending(String),
    /// The file was not kept: skipped by the settings, or its download failed.
    #[error("the file of message {id} is not kept: {reason}")]
    MediaNotKept { id: String, reason: String },
    /// The webhook dispatcher is restarting, or did not answer in time.
    #[error("the webhook dispatcher is not available right now; retry shortly")]
    DispatcherUnavailable,
}
