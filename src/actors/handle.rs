//! [`Phones`]: the gateway's handle on the phone actors; every call goes to an actor, with
//! a timeout.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use ractor::{ActorRef, RpcReplyPort};
use sea_orm::{DatabaseConnection, DbErr, TransactionTrait};

use super::phone::PhoneMsg;
use super::supervisor::SupervisorMsg;
use super::{Directory, PhoneEntry, Shared};
use super::{PhoneError, Reply, SupervisorSlot, cache, call, current, read};
use crate::db::phones;
use crate::domain::{PhoneNumber, PhoneStatus, Service};
use crate::engine::PairingMode;
use crate::events::{GatewayEvent, PhoneStatusData};

/// The gateway's handle on the phones: every call goes to an actor, with a timeout.
pub struct Phones {
    shared: Arc<Shared>,
    supervisor: SupervisorSlot,
    /// Serialises adds so the quota check and the insert cannot interleave.
    add_lock: tokio::sync::Mutex<()>,
}

impl Phones {
    pub fn new(shared: Arc<Shared>, supervisor: SupervisorSlot) -> Self {
        Self {
            shared,
            supervisor,
            add_lock: tokio::sync::Mutex::new(()),
        }
    }

    /// Loads every phone's last state into the directory (before the supervisor starts).
    pub async fn load_directory(db: &DatabaseConnection, directory: &Directory) -> Result<(), DbErr> {
        for row in phones::all(db).await? {
            if let Some(entry) = PhoneEntry::from_row(&row) {
                directory.insert(entry);
            } else {
                tracing::warn!(phone = %row.phone, "skipping a stored phone that no longer parses");
            }
        }
        Ok(())
    }

    pub fn shared(&self) -> &Arc<Shared> {
        &self.shared
    }

    pub fn list(&self) -> Vec<PhoneEntry> {
        let mut all = self.shared.directory.all();
        all.sort_by_key(|e| e.created_at);
        all
    }

    pub fn get(&self, phone: &PhoneNumber) -> Result<PhoneEntry, PhoneError> {
        self.shared
            .directory
            .get(phone)
            .ok_or_else(|| PhoneError::NotFound(phone.clone()))
    }

    pub fn counts(&self) -> BTreeMap<PhoneStatus, u64> {
        self.shared.directory.counts()
    }

    pub fn running(&self) -> usize {
        read(&self.shared.registry.0).len()
    }

    pub fn restarts(&self) -> u64 {
        self.shared.restarts.load(Ordering::Relaxed)
    }

    pub async fn add(&self, phone: PhoneNumber, country: Option<String>) -> Result<PhoneEntry, PhoneError> {
        let _serialised = self.add_lock.lock().await;
        if self.shared.directory.get(&phone).is_some() {
            return Err(PhoneError::Exists(phone));
        }
        let limit = self.shared.config.limits.max_phones;
        if phones::count(&self.shared.db).await? >= u64::from(limit) {
            return Err(PhoneError::QuotaExceeded(limit));
        }
        let row = phones::insert(&self.shared.db, &phone, country.or_else(|| phone.country())).await?;
        let entry = PhoneEntry::from_row(&row).ok_or_else(|| PhoneError::NotFound(phone.clone()))?;
        self.shared.directory.insert(entry.clone());
        self.start(&phone).await?;
        Ok(entry)
    }

    /// Logs the phone out, stops its session and deletes its keys and data.
    pub async fn remove(&self, phone: &PhoneNumber) -> Result<(), PhoneError> {
        self.get(phone)?;
        if let Some(actor) = self.shared.registry.get(phone) {
            // Best effort: unlink from WhatsApp while the session still exists.
            let _ = self.call(&actor, |reply| PhoneMsg::Logout { reply }).await;
        }
        self.call(&self.supervisor()?, |reply| SupervisorMsg::Stop {
            phone: phone.clone(),
            reply,
        })
        .await?;
        self.shared.engine.forget(phone).await?;
        // The phone goes and its last `phone.status` is recorded for webhooks in one
        // transaction, like every other event: a webhook hears that it was deleted.
        let event = GatewayEvent::new(
            Service::PhoneStatus,
            Some(phone.clone()),
            crate::events::data(&PhoneStatusData {
                status: "deleted".into(),
                ..Default::default()
            }),
        );
        let txn = self.shared.db.begin().await?;
        phones::delete(&txn, phone).await?;
        let delivery = self.shared.outbox.record(&txn, &event).await?;
        txn.commit().await?;
        self.shared.directory.remove(phone);
        self.shared.outbox.dispatch(delivery.into_iter().collect());
        self.shared.events.publish(event);
        // Its messages went with it (the database deleted them); so do their files.
        let (media, gone) = (self.shared.media.clone(), phone.clone());
        match tokio::task::spawn_blocking(move || media.remove_phone(&gone)).await {
            Ok(Ok(())) => {}
            Ok(Err(err)) => tracing::warn!(%phone, error = %err, "cannot delete the phone's media files"),
            Err(err) => tracing::warn!(%phone, error = %err, "cannot delete the phone's media files"),
        }
        Ok(())
    }

    pub async fn connect(&self, phone: &PhoneNumber, mode: PairingMode) -> Result<PhoneEntry, PhoneError> {
        let actor = self.session_or_start(phone).await?;
        let wait = self.shared.config.phones.connect_wait;
        self.call_for(&actor, wait + self.timeout(), |reply| PhoneMsg::Connect { mode, reply })
            .await?
    }

    pub async fn disconnect(&self, phone: &PhoneNumber) -> Result<PhoneEntry, PhoneError> {
        let entry = self.get(phone)?;
        if entry.state.status == PhoneStatus::Failed && self.shared.registry.get(phone).is_none() {
            // A failed phone has no session: it is already offline.
            return Ok(entry);
        }
        let actor = self.shared.session(phone).await?;
        self.call(&actor, |reply| PhoneMsg::Disconnect { reply }).await?
    }

    pub async fn logout(&self, phone: &PhoneNumber) -> Result<PhoneEntry, PhoneError> {
        let actor = self.session_or_start(phone).await?;
        self.call(&actor, |reply| PhoneMsg::Logout { reply }).await?
    }

    /// Sends a request to a phone's session and waits for its answer.
    pub async fn ask<T: Send + 'static>(
        &self,
        phone: &PhoneNumber,
        msg: impl FnOnce(Reply<T>) -> PhoneMsg,
    ) -> Result<T, PhoneError> {
        self.shared.ask(phone, msg).await
    }

    /// Like [`Phones::ask`], with its own timeout (sends wait in the phone's queue).
    pub async fn ask_for<T: Send + 'static>(
        &self,
        phone: &PhoneNumber,
        timeout: Duration,
        msg: impl FnOnce(Reply<T>) -> PhoneMsg,
    ) -> Result<T, PhoneError> {
        let actor = self.shared.session(phone).await?;
        call(&actor, timeout, msg).await?
    }

    /// The cache actor, for cached lookups.
    pub fn cache(&self) -> Result<ActorRef<cache::CacheMsg>, PhoneError> {
        current(&self.shared.cache)
    }

    fn supervisor(&self) -> Result<ActorRef<SupervisorMsg>, PhoneError> {
        current(&self.supervisor)
    }

    /// The phone's session; a failed phone (whose session was given up) is started anew.
    async fn session_or_start(&self, phone: &PhoneNumber) -> Result<ActorRef<PhoneMsg>, PhoneError> {
        let entry = self.get(phone)?;
        if entry.state.status == PhoneStatus::Failed && self.shared.registry.get(phone).is_none() {
            self.start(phone).await?;
        }
        self.shared.session(phone).await
    }

    async fn start(&self, phone: &PhoneNumber) -> Result<(), PhoneError> {
        self.call(&self.supervisor()?, |reply| SupervisorMsg::Start {
            phone: phone.clone(),
            reply: Some(reply),
        })
        .await?
    }

    fn timeout(&self) -> Duration {
        self.shared.config.phones.call_timeout
    }

    async fn call<M: ractor::Message, T: Send + 'static>(
        &self,
        actor: &ActorRef<M>,
        msg: impl FnOnce(RpcReplyPort<T>) -> M,
    ) -> Result<T, PhoneError> {
        call(actor, self.timeout(), msg).await
    }

    async fn call_for<M: ractor::Message, T: Send + 'static>(
        &self,
        actor: &ActorRef<M>,
        timeout: Duration,
        msg: impl FnOnce(RpcReplyPort<T>) -> M,
    ) -> Result<T, PhoneError> {
        call(actor, timeout, msg).await
    }
}
