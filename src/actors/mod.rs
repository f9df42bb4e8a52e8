//! The actor tree and the gateway's door into it.
//!
//! ```text
//! RootSupervisor
//! └── PhoneSupervisor ── PhoneSession(+12015550123), PhoneSession(+4479…), …
//! ```
//! [`Phones`] turns API calls into actor messages, always with a timeout. The
//! [`Directory`] holds every phone's last reported state, so listing phones never waits on
//! an actor, and the [`Registry`] maps phones to their running session actors.

pub mod cache;
pub mod outbox;
pub mod phone;
pub mod root;
pub mod supervisor;
pub mod webhook;

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, RwLock};
use std::time::Duration;

use chrono::{DateTime, Utc};
use ractor::rpc::CallResult;
use ractor::{ActorRef, RpcReplyPort};
use sea_orm::{DatabaseConnection, DbErr, TransactionTrait};

use crate::config::Config;
use crate::db::phones::{self, SessionState};
use crate::domain::{PhoneNumber, PhoneStatus};
use crate::engine::{Engine, EngineError, PairingMode};
use crate::events::{EventBus, EventKind, GatewayEvent, PairingCodeEventData, PhoneStatusData, QrEventData};
use outbox::Outbox;
pub use phone::PhoneMsg;
pub use supervisor::SupervisorMsg;

/// The pairing in progress: the QR code to show, or the code to type.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Pairing {
    Qr {
        code: String,
        expires_at: DateTime<Utc>,
        /// How many QR codes this pairing attempt has shown so far.
        count: u32,
    },
    Code {
        code: String,
        expires_at: DateTime<Utc>,
    },
}

/// What the API shows about a phone.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PhoneEntry {
    pub phone: PhoneNumber,
    pub country: Option<String>,
    pub created_at: DateTime<Utc>,
    pub state: SessionState,
    pub pairing: Option<Pairing>,
}

impl PhoneEntry {
    fn from_row(row: &phones::Model) -> Option<Self> {
        Some(Self {
            phone: PhoneNumber::parse(&row.phone, None).ok()?,
            country: row.country.clone(),
            created_at: row.created_at,
            state: row.session_state(),
            pairing: None,
        })
    }
}

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

fn current<M>(slot: &Slot<M>) -> Result<ActorRef<M>, PhoneError> {
    read(slot).clone().ok_or(PhoneError::Restarting)
}

/// Every phone's last reported state.
#[derive(Clone, Default)]
pub struct Directory(Arc<RwLock<BTreeMap<PhoneNumber, PhoneEntry>>>);

impl Directory {
    pub fn get(&self, phone: &PhoneNumber) -> Option<PhoneEntry> {
        read(&self.0).get(phone).cloned()
    }

    pub fn all(&self) -> Vec<PhoneEntry> {
        read(&self.0).values().cloned().collect()
    }

    pub fn len(&self) -> usize {
        read(&self.0).len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    pub fn phones(&self) -> Vec<PhoneNumber> {
        read(&self.0).keys().cloned().collect()
    }

    pub fn insert(&self, entry: PhoneEntry) {
        write(&self.0).insert(entry.phone.clone(), entry);
    }

    pub fn remove(&self, phone: &PhoneNumber) {
        write(&self.0).remove(phone);
    }

    /// Phones per status, every status present.
    pub fn counts(&self) -> BTreeMap<PhoneStatus, u64> {
        let mut counts: BTreeMap<PhoneStatus, u64> = PhoneStatus::ALL.iter().map(|s| (*s, 0)).collect();
        for entry in read(&self.0).values() {
            *counts.entry(entry.state.status).or_default() += 1;
        }
        counts
    }
}

/// The running session actor of each phone.
#[derive(Clone, Default)]
pub struct Registry(Arc<RwLock<HashMap<PhoneNumber, ActorRef<PhoneMsg>>>>);

impl Registry {
    pub fn get(&self, phone: &PhoneNumber) -> Option<ActorRef<PhoneMsg>> {
        read(&self.0).get(phone).cloned()
    }

    fn insert(&self, phone: PhoneNumber, actor: ActorRef<PhoneMsg>) {
        write(&self.0).insert(phone, actor);
    }

    /// Removes the entry only if it still belongs to `actor`, so a late exit of an old
    /// actor never unregisters its replacement.
    fn remove_if(&self, phone: &PhoneNumber, actor: ractor::ActorId) {
        let mut map = write(&self.0);
        if map.get(phone).is_some_and(|a| a.get_id() == actor) {
            map.remove(phone);
        }
    }
}

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
            .then(|| GatewayEvent::new(EventKind::PhoneStatus, Some(phone.clone()), status_event(&entry)));
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
            EventKind::PhoneStatus,
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

fn read<T>(l: &RwLock<T>) -> std::sync::RwLockReadGuard<'_, T> {
    l.read().unwrap_or_else(std::sync::PoisonError::into_inner)
}

fn write<T>(l: &RwLock<T>) -> std::sync::RwLockWriteGuard<'_, T> {
    l.write().unwrap_or_else(std::sync::PoisonError::into_inner)
}
