//! The actor tree and the gateway's door into it.
//!
//! ```text
//! RootSupervisor
//! └── PhoneSupervisor ── PhoneSession(+12015550123), PhoneSession(+4479…), …
//! ```
//! [`Phones`] (`handle.rs`) turns the gateway's calls into actor messages, always with a
//! timeout. The [`Directory`] (`directory.rs`) holds every phone's last reported state, so
//! listing phones never waits on an actor, and the [`Registry`] maps phones to their
//! running session actors. [`Shared`] (`shared.rs`) is what every actor holds; the
//! webhook outbox and its dispatcher are `outbox.rs` and `webhook.rs`.

pub mod cache;
mod directory;
mod handle;
pub mod outbox;
pub mod phone;
pub mod root;
mod shared;
pub mod supervisor;
pub mod webhook;

use std::sync::{Arc, RwLock};
use std::time::Duration;

use ractor::rpc::CallResult;
use ractor::{ActorRef, RpcReplyPort};
use sea_orm::DbErr;

use crate::domain::PhoneNumber;
use crate::engine::EngineError;
pub use directory::{Directory, Pairing, PhoneEntry, Registry};
pub use handle::Phones;
pub use phone::PhoneMsg;
pub use shared::{Shared, status_event};
pub use supervisor::SupervisorMsg;

#[derive(Debug, Clone, thiserror::Error)]
pub enum PhoneError {
    #[error("no phone {0} has been added")]
    NotFound(PhoneNumber),
    #[error("the phone {0} has already been added")]
    Exists(PhoneNumber),
    #[error("the phone quota of {0} is used up")]
    QuotaExceeded(u32),
    #[error("the phone's session is restarting")]
    Restarting,
    #[error("the phone's session did not answer in time")]
    Timeout,
    #[error("the phone is not connected to WhatsApp")]
    NotConnected,
    #[error("the phone's send queue is full")]
    QueueFull(Duration),
    #[error(transparent)]
    Engine(#[from] EngineError),
    #[error(transparent)]
    Db(Arc<DbErr>),
}

impl From<DbErr> for PhoneError {
    fn from(err: DbErr) -> Self {
        Self::Db(Arc::new(err))
    }
}

pub type Reply<T> = RpcReplyPort<Result<T, PhoneError>>;

/// Where the root supervisor publishes the current instance of a child actor.
pub type Slot<M> = Arc<RwLock<Option<ActorRef<M>>>>;
pub type SupervisorSlot = Slot<SupervisorMsg>;

pub(crate) fn current<M>(slot: &Slot<M>) -> Result<ActorRef<M>, PhoneError> {
    read(slot).clone().ok_or(PhoneError::Restarting)
}

/// Calls an actor and waits for its answer, at most `timeout`.
pub async fn call<M: ractor::Message, T: Send + 'static>(
    actor: &ActorRef<M>,
    timeout: Duration,
    msg: impl FnOnce(RpcReplyPort<T>) -> M,
) -> Result<T, PhoneError> {
    match actor.call(msg, Some(timeout)).await {
        Ok(CallResult::Success(value)) => Ok(value),
        Ok(CallResult::Timeout) => Err(PhoneError::Timeout),
        // The actor stopped (crashed) before answering.
        Ok(CallResult::SenderError) | Err(_) => Err(PhoneError::Restarting),
    }
}

pub(crate) fn read<T>(l: &RwLock<T>) -> std::sync::RwLockReadGuard<'_, T> {
    l.read().unwrap_or_else(std::sync::PoisonError::into_inner)
}

pub(crate) fn write<T>(l: &RwLock<T>) -> std::sync::RwLockWriteGuard<'_, T> {
    l.write().unwrap_or_else(std::sync::PoisonError::into_inner)
}
