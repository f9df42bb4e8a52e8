//! [`Shared`]: what every actor of the tree shares, and how a phone's new state is
//! recorded and announced.

use std::sync::Arc;
use std::sync::atomic::AtomicU64;
use std::time::Duration;

use ractor::ActorRef;
use sea_orm::{DatabaseConnection, DbErr, TransactionTrait};

use super::outbox::Outbox;
use super::phone::PhoneMsg;
use super::{Directory, Pairing, PhoneEntry, Registry};
use super::{PhoneError, Reply, Slot, cache, call, current};
use crate::config::Config;
use crate::db::phones::{self, SessionState};
use crate::domain::{PhoneNumber, PhoneStatus, Service};
use crate::engine::Engine;
use crate::events::{EventBus, GatewayEvent, PairingCodeEventData, PhoneStatusData, QrEventData};

/// What every actor of the tree shares.
pub struct Shared {
    pub db: DatabaseConnection,
    pub engine: Arc<dyn Engine>,
    pub config: Arc<Config>,
    pub directory: Directory,
    pub registry: Registry,
    pub events: EventBus,
    /// Session restarts performed by the phone supervisor since start-up.
    pub restarts: AtomicU64,
    /// The cache actor, published by the root supervisor.
    pub cache: Slot<cache::CacheMsg>,
    /// Webhook routing and the dispatcher it feeds.
    pub outbox: Arc<Outbox>,
    pub metrics: Arc<crate::metrics::Metrics>,
    /// Slots for sessions logging in by themselves (`phones.resume_concurrency`).
    pub logins: Arc<tokio::sync::Semaphore>,
    /// Where messages' media files are kept.
    pub media: crate::media::store::MediaStore,
}

impl Shared {
    /// Sends a request to a phone's session and waits for its answer.
    pub async fn ask<T: Send + 'static>(
        &self,
        phone: &PhoneNumber,
        msg: impl FnOnce(Reply<T>) -> PhoneMsg,
    ) -> Result<T, PhoneError> {
        let actor = self.session(phone).await?;
        call(&actor, self.config.phones.call_timeout, msg).await?
    }

    /// The phone's running session. While the supervisor restarts it (a backoff of
    /// `phones.restart_backoff_*`), waits for the new one rather than failing the caller.
    pub async fn session(&self, phone: &PhoneNumber) -> Result<ActorRef<PhoneMsg>, PhoneError> {
        let deadline = tokio::time::Instant::now() + self.config.phones.call_timeout;
        loop {
            let entry = self
                .directory
                .get(phone)
                .ok_or_else(|| PhoneError::NotFound(phone.clone()))?;
            if let Some(actor) = self.registry.get(phone) {
                return Ok(actor);
            }
            if entry.state.status == PhoneStatus::Failed {
                return Err(PhoneError::NotConnected);
            }
            if tokio::time::Instant::now() >= deadline {
                return Err(PhoneError::Restarting);
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }

    /// Tells the cache that a phone's groups changed.
    pub fn invalidate_groups(&self, phone: &PhoneNumber, group: Option<crate::domain::Jid>) {
        if let Ok(cache) = current(&self.cache) {
            let _ = cache.cast(cache::CacheMsg::Invalidate {
                phone: phone.clone(),
                group,
            });
        }
    }

    /// Records a phone's new state: directory, database, and a `phone.status` event for
    /// the live stream and (in the same transaction as the state) the webhook outbox.
    pub async fn publish(&self, phone: &PhoneNumber, state: SessionState, pairing: Option<Pairing>) {
        let Some(mut entry) = self.directory.get(phone) else {
            return;
        };
        let status_changed = entry.state.status != state.status;
        let persist = entry.state != state;
        entry.state = state;
        entry.pairing = pairing;
        self.directory.insert(entry.clone());
        let event = (status_changed || entry.pairing.is_some())
            .then(|| GatewayEvent::new(Service::PhoneStatus, Some(phone.clone()), status_event(&entry)));
        if persist || event.is_some() {
            match self.save_with_event(phone, &entry.state, persist, event.as_ref()).await {
                Ok(delivery) => self.outbox.dispatch(delivery.into_iter().collect()),
                Err(err) => tracing::warn!(%phone, error = %err, "cannot save the phone's state"),
            }
        }
        if let Some(event) = event {
            self.events.publish(event);
        }
    }

    async fn save_with_event(
        &self,
        phone: &PhoneNumber,
        state: &SessionState,
        persist: bool,
        event: Option<&GatewayEvent>,
    ) -> Result<Option<crate::db::webhooks::delivery::Model>, DbErr> {
        let txn = self.db.begin().await?;
        if persist {
            phones::save_state(&txn, phone, state).await?;
        }
        let delivery = match event {
            Some(event) => self.outbox.record(&txn, event).await?,
            None => None,
        };
        txn.commit().await?;
        Ok(delivery)
    }
}

/// The `data` of a `phone.status` event.
pub fn status_event(entry: &PhoneEntry) -> serde_json::Value {
    let state = &entry.state;
    let mut data = PhoneStatusData {
        status: state.status.as_str().to_owned(),
        jid: state.jid.clone(),
        lid: state.lid.clone(),
        push_name: state.push_name.clone(),
        last_error: state.last_error.clone(),
        ..Default::default()
    };
    match &entry.pairing {
        Some(Pairing::Qr {
            code,
            expires_at,
            count,
        }) => {
            data.qr = Some(QrEventData {
                code: code.clone(),
                expires_at: *expires_at,
                count: *count,
            });
        }
        Some(Pairing::Code { code, expires_at }) => {
            data.pairing_code = Some(PairingCodeEventData {
                code: code.clone(),
                expires_at: *expires_at,
            });
        }
        None => {}
    }
    crate::events::data(&data)
}
