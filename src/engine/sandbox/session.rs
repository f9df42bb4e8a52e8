//! One gateway phone's session on the sandbox network: its connection state machine,
//! QR rotation, reconnection after a dropped connection, and the messages it carries.

use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex, Weak};
use std::time::Duration;

use async_trait::async_trait;
use chrono::Utc;
use rand::Rng;
use tokio::task::JoinHandle;

use super::store::Link;
use super::{SandboxError, SandboxNetwork, lock, message_id, random_code};
use crate::engine::{
    Ack, EngineError, EngineEvent, EventSink, Group, Identity, InboundMessage, Jid, Lookup, MediaKind, MediaRef,
    MessageStatus, OutgoingMessage, PairingMode, PhoneNumber, Receipt, SentMessage, Session,
};

/// How long an injected message waits for the gateway to store it.
const STORE_TIMEOUT: Duration = Duration::from_secs(10);

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Conn {
    Offline,
    Pairing(PairingMode),
    Connecting,
    Online,
    Reconnecting,
}

struct State {
    conn: Conn,
    link: Option<Link>,
    task: Option<JoinHandle<()>>,
    closed: bool,
}

pub struct SessionInner {
    phone: PhoneNumber,
    network: Weak<SandboxNetwork>,
    sink: EventSink,
    state: Mutex<State>,
}

impl SessionInner {
    pub fn new(phone: PhoneNumber, network: Weak<SandboxNetwork>, sink: EventSink, link: Option<Link>) -> Arc<Self> {
        Arc::new(Self {
            phone,
            network,
            sink,
            state: Mutex::new(State {
                conn: Conn::Offline,
                link,
                task: None,
                closed: false,
            }),
        })
    }

    pub fn phone(&self) -> &PhoneNumber {
        &self.phone
    }

    pub fn push_name(&self) -> Option<String> {
        lock(&self.state).link.as_ref().map(|l| l.push_name.clone())
    }

    pub fn is_online(&self) -> bool {
        lock(&self.state).conn == Conn::Online
    }

    fn emit(&self, event: EngineEvent) {
        if !lock(&self.state).closed {
            (self.sink)(event);
        }
    }

    fn network(&self) -> Result<Arc<SandboxNetwork>, EngineError> {
        self.network.upgrade().ok_or(EngineError::NotConnected)
    }

    /// Replaces the background task (pairing, connecting, reconnecting) with a new one.
    fn set_task(&self, state: &mut State, task: Option<JoinHandle<()>>) {
        if let Some(old) = state.task.take() {
            old.abort();
        }
        state.task = task;
    }

    fn connect(self: &Arc<Self>, mode: PairingMode) -> Result<(), EngineError> {
        let network = self.network()?;
        let mut state = lock(&self.state);
        if state.closed {
            return Err(EngineError::NotConnected);
        }
        match state.conn {
            Conn::Online | Conn::Connecting | Conn::Reconnecting => return Ok(()),
            Conn::Pairing(current) if current == mode => return Ok(()),
            _ => {}
        }
        let me = Arc::clone(self);
        if state.link.is_some() {
            state.conn = Conn::Connecting;
            let delay = network.config.connect_delay;
            let task = tokio::spawn(async move {
                tokio::time::sleep(delay).await;
                me.go_online(Conn::Connecting);
            });
            self.set_task(&mut state, Some(task));
        } else {
            state.conn = Conn::Pairing(mode);
            let config = network.config.clone();
            let task = tokio::spawn(async move {
                let reason = match mode {
                    PairingMode::Qr => {
                        for _ in 0..config.qr_count {
                            me.emit(EngineEvent::QrCode {
                                code: qr_code(),
                                valid_for: config.qr_period,
                            });
                            tokio::time::sleep(config.qr_period).await;
                        }
                        "the QR code was not scanned in time"
                    }
                    PairingMode::Code => {
                        let code = random_code(8);
                        me.emit(EngineEvent::PairingCode {
                            code: format!("{}-{}", &code[..4], &code[4..]),
                            valid_for: config.pairing_code_ttl,
                        });
                        tokio::time::sleep(config.pairing_code_ttl).await;
                        "the pairing code was not entered in time"
                    }
                };
                let expired = {
                    let mut state = lock(&me.state);
                    let expired = matches!(state.conn, Conn::Pairing(_));
                    if expired {
                        state.conn = Conn::Offline;
                        state.task = None;
                    }
                    expired
                };
                if expired {
                    me.emit(EngineEvent::PairingFailed { reason: reason.into() });
                }
            });
            self.set_task(&mut state, Some(task));
        }
        Ok(())
    }

    /// Moves from `from` to online, announces it and hands over queued messages.
    fn go_online(self: &Arc<Self>, from: Conn) {
        let identity = {
            let mut state = lock(&self.state);
            if state.conn != from || state.closed {
                return;
            }
            let Some(link) = state.link.clone() else {
                return;
            };
            state.conn = Conn::Online;
            state.task = None;
            Identity {
                jid: link.jid,
                lid: Some(link.lid),
                push_name: Some(link.push_name),
            }
        };
        self.emit(EngineEvent::Connected(identity));
        let Some(network) = self.network.upgrade() else {
            return;
        };
        let pending = network.take_pending(&self.phone);
        if !pending.is_empty() {
            let me = Arc::clone(self);
            tokio::spawn(async move {
                for message in pending {
                    if !me.deliver(message.clone()).await {
                        network.queue(&me.phone, message);
                    }
                }
            });
        }
    }

    pub fn complete_pairing(self: &Arc<Self>, name: Option<String>) -> Result<(), SandboxError> {
        let network = self
            .network
            .upgrade()
            .ok_or_else(|| SandboxError::NoSession(self.phone.to_string()))?;
        let link = {
            let mut state = lock(&self.state);
            if !matches!(state.conn, Conn::Pairing(_)) || state.closed {
                return Err(SandboxError::NotPairing(self.phone.to_string()));
            }
            let lid: u64 = rand::rng().random_range(10u64.pow(13)..10u64.pow(14));
            let link = Link {
                jid: self.phone.jid(),
                lid: Jid::new(&lid.to_string(), crate::domain::LID_SERVER),
                push_name: name.unwrap_or_else(|| format!("Sandbox {}", self.phone.digits())),
                linked_at: Utc::now(),
            };
            network.store.save_link(&self.phone, &link)?;
            state.link = Some(link.clone());
            state.conn = Conn::Connecting;
            self.set_task(&mut state, None);
            link
        };
        drop(link);
        self.emit(EngineEvent::Paired);
        self.go_online(Conn::Connecting);
        Ok(())
    }

    pub fn drop_connection(self: &Arc<Self>) -> Result<(), SandboxError> {
        let network = self
            .network
            .upgrade()
            .ok_or_else(|| SandboxError::NoSession(self.phone.to_string()))?;
        {
            let mut state = lock(&self.state);
            if state.conn != Conn::Online {
                return Err(SandboxError::NotConnected(self.phone.to_string()));
            }
            state.conn = Conn::Reconnecting;
            let me = Arc::clone(self);
            let delay = network.config.reconnect_delay;
            let task = tokio::spawn(async move {
                tokio::time::sleep(delay).await;
                me.go_online(Conn::Reconnecting);
            });
            self.set_task(&mut state, Some(task));
        }
        self.emit(EngineEvent::Disconnected {
            reason: "the connection to WhatsApp was lost (sandbox fault)".into(),
        });
        Ok(())
    }

    pub fn crash(&self) {
        self.emit(EngineEvent::Fatal {
            reason: "the session crashed (sandbox fault)".into(),
        });
    }

    pub fn unlink_from_phone(&self) -> Result<(), SandboxError> {
        {
            let mut state = lock(&self.state);
            if state.link.is_none() {
                return Err(SandboxError::NotLinked(self.phone.to_string()));
            }
            self.unlink(&mut state)?;
        }
        self.emit(EngineEvent::LoggedOut {
            reason: "the device was unlinked on the phone".into(),
        });
        Ok(())
    }

    fn unlink(&self, state: &mut State) -> Result<(), SandboxError> {
        if let Some(network) = self.network.upgrade() {
            network.store.delete_link(&self.phone)?;
        }
        state.link = None;
        state.conn = Conn::Offline;
        self.set_task(state, None);
        Ok(())
    }

    /// Hands a message to the gateway; true once it confirmed storing it.
    pub async fn deliver(&self, message: InboundMessage) -> bool {
        let (ack, stored) = Ack::new();
        self.emit(EngineEvent::Message(Box::new(message), ack));
        matches!(tokio::time::timeout(STORE_TIMEOUT, stored).await, Ok(Ok(())))
    }

    pub fn emit_groups_changed(&self, group: Option<Jid>) {
        if self.is_online() {
            self.emit(EngineEvent::GroupsChanged { group });
        }
    }

    pub fn shut_down(&self) {
        let mut state = lock(&self.state);
        state.closed = true;
        state.conn = Conn::Offline;
        self.set_task(&mut state, None);
    }

    fn require_online(&self) -> Result<Arc<SandboxNetwork>, EngineError> {
        if self.is_online() {
            self.network()
        } else {
            Err(EngineError::NotConnected)
        }
    }
}

/// [`Session`] for the sandbox: a thin handle on the shared [`SessionInner`].
pub struct SandboxSession {
    inner: Arc<SessionInner>,
}

impl SandboxSession {
    pub fn new(inner: Arc<SessionInner>) -> Self {
        Self { inner }
    }
}

#[async_trait]
impl Session for SandboxSession {
    fn is_linked(&self) -> bool {
        lock(&self.inner.state).link.is_some()
    }

    async fn connect(&self, mode: PairingMode) -> Result<(), EngineError> {
        self.inner.connect(mode)
    }

    async fn disconnect(&self) -> Result<(), EngineError> {
        let mut state = lock(&self.inner.state);
        state.conn = Conn::Offline;
        self.inner.set_task(&mut state, None);
        Ok(())
    }

    async fn logout(&self) -> Result<(), EngineError> {
        let mut state = lock(&self.inner.state);
        self.inner
            .unlink(&mut state)
            .map_err(|e| EngineError::Storage(e.to_string()))
    }

    async fn send(&self, message: OutgoingMessage) -> Result<SentMessage, EngineError> {
        let network = self.inner.require_online()?;
        network.stats.sends.fetch_add(1, Ordering::Relaxed);
        network.delay().await;
        let id = message.id.clone().unwrap_or_else(message_id);
        network.route(&self.inner, &message, &id).await?;
        let delay = network.config.receipt_delay;
        if !delay.is_zero() {
            let inner = Arc::clone(&self.inner);
            let chat = message.to.clone();
            let receipt_id = id.clone();
            tokio::spawn(async move {
                for status in [MessageStatus::Delivered, MessageStatus::Read] {
                    tokio::time::sleep(delay).await;
                    inner.emit(EngineEvent::Receipt(Receipt {
                        chat: chat.clone(),
                        message_ids: vec![receipt_id.clone()],
                        status,
                        timestamp: Utc::now(),
                    }));
                }
            });
        }
        Ok(SentMessage {
            id,
            timestamp: Utc::now(),
        })
    }

    async fn download(
        &self,
        media: &MediaRef,
        _kind: MediaKind,
        _size: Option<u64>,
        into: std::fs::File,
    ) -> Result<(), EngineError> {
        let network = self.inner.require_online()?;
        network.delay().await;
        let data = network.media_file(&self.inner.phone, media)?;
        tokio::task::spawn_blocking(move || {
            use std::io::Write as _;
            let mut into = into;
            into.set_len(0)?;
            into.write_all(&data)?;
            into.sync_all()
        })
        .await
        .map_err(|e| EngineError::Storage(e.to_string()))?
        .map_err(|e| EngineError::Storage(e.to_string()))
    }

    async fn mark_read(&self, chat: &Jid, sender: Option<&Jid>, ids: &[String]) -> Result<(), EngineError> {
        let network = self.inner.require_online()?;
        network.delay().await;
        let author = sender.unwrap_or(chat);
        network.record_read(&self.inner.phone, author, ids);
        Ok(())
    }

    async fn set_typing(&self, chat: &Jid, typing: bool) -> Result<(), EngineError> {
        let network = self.inner.require_online()?;
        network.set_typing(&self.inner.phone, chat, typing);
        Ok(())
    }

    async fn lookup(&self, numbers: &[String]) -> Result<Vec<Lookup>, EngineError> {
        let network = self.inner.require_online()?;
        network.stats.lookups.fetch_add(1, Ordering::Relaxed);
        network.delay().await;
        Ok(numbers
            .iter()
            .map(|digits| {
                let phone = PhoneNumber::parse(digits, None).ok();
                let exists = phone.as_ref().is_some_and(|p| network.is_on_whatsapp(p));
                Lookup {
                    number: digits.clone(),
                    jid: Jid::user(digits),
                    exists,
                    lid: exists.then(|| Jid::new(&lid_for(digits), crate::domain::LID_SERVER)),
                    is_business: exists.then_some(false),
                }
            })
            .collect())
    }

    async fn groups(&self) -> Result<Vec<Group>, EngineError> {
        let network = self.inner.require_online()?;
        network.stats.group_queries.fetch_add(1, Ordering::Relaxed);
        network.delay().await;
        network
            .groups_of(&self.inner.phone)
            .iter()
            .map(|jid| network.group_view(jid, &self.inner.phone))
            .collect()
    }

    async fn group(&self, jid: &Jid) -> Result<Group, EngineError> {
        let network = self.inner.require_online()?;
        network.stats.group_queries.fetch_add(1, Ordering::Relaxed);
        network.delay().await;
        network.group_view(jid, &self.inner.phone)
    }

    async fn close(&self) {
        self.inner.shut_down();
    }
}

/// A stable fake LID for a number, so repeated lookups agree.
fn lid_for(digits: &str) -> String {
    let hash = digits.bytes().fold(1469598103934665603u64, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(1099511628211)
    });
    format!(
        "{}",
        10u64.pow(13) + hash % 9 * 10u64.pow(13) / 9 + hash % 10u64.pow(12)
    )
}

/// A QR payload shaped like WhatsApp's: ref, noise key, identity key, secret.
fn qr_code() -> String {
    use base64::Engine as _;
    let mut rng = rand::rng();
    let mut part = |n: usize| {
        let bytes: Vec<u8> = (0..n).map(|_| rng.random()).collect();
        base64::engine::general_purpose::STANDARD.encode(bytes)
    };
    format!("2@{},{},{},{}", part(24), part(32), part(32), part(32))
}
