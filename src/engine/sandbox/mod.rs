//! The sandbox engine: an in-process simulated WhatsApp network for tests and for building
//! against the API without risking a real number. It has virtual accounts and groups, QR
//! codes that rotate, pairing completed by a simulated scan, messages between gateway
//! phones and virtual accounts, and injected faults. A phone's link ("keys") is a file in
//! the data dir, so links survive restarts exactly like the real engine's key stores.

mod session;
mod store;

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::path::PathBuf;
use std::sync::atomic::AtomicU64;
use std::sync::{Arc, Mutex, Weak};

use async_trait::async_trait;
use bytes::Bytes;
use chrono::{DateTime, Utc};
use rand::Rng;
use serde::{Deserialize, Serialize};

use super::{
    Engine, EngineError, EventSink, Group, InboundContent, InboundMessage, Jid, MediaRef, OutgoingContent,
    OutgoingMessage, Participant, PhoneNumber, Session,
};
use crate::config::SandboxConfig;
use crate::domain::MessageKind;
use session::{SandboxSession, SessionInner};

/// How many received messages each virtual account keeps (oldest dropped first).
const INBOX_LIMIT: usize = 10_000;

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum SandboxError {
    #[error("no virtual account has the number {0}; register it with POST /api/v1/sandbox/accounts")]
    UnknownAccount(String),
    #[error("{0} is already registered")]
    AccountExists(String),
    #[error("the phone {0} has no session; add it and connect it first")]
    NoSession(String),
    #[error("the phone {0} is not pairing; call connect first and scan while the QR code is shown")]
    NotPairing(String),
    #[error("the phone {0} is not connected")]
    NotConnected(String),
    #[error("the phone {0} is not linked")]
    NotLinked(String),
    #[error("a group needs at least one member who is a gateway phone or a virtual account")]
    EmptyGroup,
    #[error("{0} is neither a virtual account nor a gateway phone")]
    UnknownMember(String),
    #[error("the gateway did not store the message in time; it stays queued")]
    NotStored,
    #[error("sandbox storage failed: {0}")]
    Storage(String),
}

/// A virtual WhatsApp account.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Account {
    pub phone: PhoneNumber,
    pub name: String,
    pub created_at: DateTime<Utc>,
}

/// A message a virtual account received from a gateway phone.
#[derive(Debug, Clone)]
pub struct Received {
    pub id: String,
    pub from: PhoneNumber,
    /// The group it was sent to, when it was a group message.
    pub group: Option<Jid>,
    pub message: OutgoingMessage,
    pub received_at: DateTime<Utc>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct GroupRecord {
    pub jid: Jid,
    pub subject: String,
    pub members: Vec<PhoneNumber>,
    pub created_at: DateTime<Utc>,
}

/// What an injected inbound message became.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Injected {
    pub id: String,
    /// True once the gateway stored it; false while it waits for the phone to connect.
    pub delivered: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fault {
    /// The network drops; the session reconnects by itself.
    Disconnect,
    /// The session fails; its supervisor must restart it.
    Crash,
    /// The device is unlinked from the phone.
    Logout,
    /// The phone's media downloads fail until `MediaUp`.
    MediaDown,
    /// The phone's media downloads work again.
    MediaUp,
}

#[derive(Default, Serialize, Deserialize)]
struct World {
    accounts: BTreeMap<PhoneNumber, Account>,
    groups: BTreeMap<Jid, GroupRecord>,
}

pub struct SandboxNetwork {
    config: SandboxConfig,
    store: store::Store,
    world: Mutex<World>,
    inboxes: Mutex<HashMap<PhoneNumber, VecDeque<Received>>>,
    /// The live session of each gateway phone.
    sessions: Mutex<HashMap<PhoneNumber, Weak<SessionInner>>>,
    /// Messages for gateway phones that were offline, oldest first.
    pending: Mutex<HashMap<PhoneNumber, Vec<InboundMessage>>>,
    /// Who shows "typing…" in which chat: (gateway phone, chat) → typing.
    typing: Mutex<HashMap<(PhoneNumber, String), bool>>,
    /// Media files sent on the network, by where they are kept (`direct_path`).
    media: Mutex<MediaFiles>,
    /// Messages of each virtual account that gateway phones read: account → (reader, id).
    reads: Mutex<HashMap<PhoneNumber, Vec<(PhoneNumber, String)>>>,
    /// Gateway phones whose media downloads fail ([`Fault::MediaDown`]).
    media_down: Mutex<std::collections::HashSet<PhoneNumber>>,
    stats: Stats,
}

/// How often gateway phones asked the network things, for tests of the gateway's caching.
#[derive(Debug, Default)]
pub struct Stats {
    pub group_queries: AtomicU64,
    pub lookups: AtomicU64,
    pub sends: AtomicU64,
}

impl SandboxNetwork {
    pub fn load(data_dir: PathBuf, config: SandboxConfig) -> Result<Arc<Self>, SandboxError> {
        let store = store::Store::new(data_dir.join("sandbox"))?;
        let world = store.load_world()?.unwrap_or_default();
        Ok(Arc::new(Self {
            config,
            store,
            world: Mutex::new(world),
            inboxes: Mutex::new(HashMap::new()),
            sessions: Mutex::new(HashMap::new()),
            pending: Mutex::new(HashMap::new()),
            typing: Mutex::new(HashMap::new()),
            media: Mutex::new(MediaFiles::default()),
            media_down: Mutex::new(std::collections::HashSet::new()),
            reads: Mutex::new(HashMap::new()),
            stats: Stats::default(),
        }))
    }

    pub fn config(&self) -> &SandboxConfig {
        &self.config
    }

    pub fn stats(&self) -> &Stats {
        &self.stats
    }

    /// The simulated round trip to WhatsApp's servers (`sandbox.latency`).
    async fn delay(&self) {
        if !self.config.latency.is_zero() {
            tokio::time::sleep(self.config.latency).await;
        }
    }

    pub fn register(&self, phone: PhoneNumber, name: String) -> Result<Account, SandboxError> {
        let mut world = lock(&self.world);
        if world.accounts.contains_key(&phone) {
            return Err(SandboxError::AccountExists(phone.to_string()));
        }
        let account = Account {
            phone: phone.clone(),
            name,
            created_at: Utc::now(),
        };
        world.accounts.insert(phone, account.clone());
        self.store.save_world(&*world)?;
        Ok(account)
    }

    pub fn account(&self, phone: &PhoneNumber) -> Option<Account> {
        lock(&self.world).accounts.get(phone).cloned()
    }

    /// What a virtual account received, oldest first.
    pub fn received(&self, phone: &PhoneNumber) -> Result<Vec<Received>, SandboxError> {
        if self.account(phone).is_none() {
            return Err(SandboxError::UnknownAccount(phone.to_string()));
        }
        Ok(lock(&self.inboxes)
            .get(phone)
            .map(|inbox| inbox.iter().cloned().collect())
            .unwrap_or_default())
    }

    /// A gateway phone shows (or clears) "typing…" in `chat`.
    pub fn set_typing(&self, from: &PhoneNumber, chat: &Jid, typing: bool) {
        lock(&self.typing).insert((from.clone(), chat.to_string()), typing);
    }

    /// The gateway phones showing "typing…" to this account now.
    pub fn typing_to(&self, account: &PhoneNumber) -> Vec<PhoneNumber> {
        let chat = account.jid().to_string();
        let mut typing: Vec<PhoneNumber> = lock(&self.typing)
            .iter()
            .filter(|((_, c), on)| **on && *c == chat)
            .map(|((from, _), _)| from.clone())
            .collect();
        typing.sort();
        typing
    }

    pub fn create_group(&self, subject: String, members: Vec<PhoneNumber>) -> Result<GroupRecord, SandboxError> {
        if members.is_empty() {
            return Err(SandboxError::EmptyGroup);
        }
        for member in &members {
            if !self.is_on_whatsapp(member) {
                return Err(SandboxError::UnknownMember(member.to_string()));
            }
        }
        let id: u64 = rand::rng().random_range(10u64.pow(17)..10u64.pow(18));
        let record = GroupRecord {
            jid: Jid::new(&format!("120363{id}"), crate::domain::GROUP_SERVER),
            subject,
            members,
            created_at: Utc::now(),
        };
        let mut world = lock(&self.world);
        world.groups.insert(record.jid.clone(), record.clone());
        self.store.save_world(&*world)?;
        drop(world);
        for member in &record.members {
            if let Some(session) = self.session(member) {
                session.emit_groups_changed(None);
            }
        }
        Ok(record)
    }

    /// Completes pairing of a gateway phone, as if its owner scanned the QR code.
    pub fn scan(&self, phone: &PhoneNumber) -> Result<(), SandboxError> {
        let session = self
            .session(phone)
            .ok_or_else(|| SandboxError::NoSession(phone.to_string()))?;
        let name = self.account(phone).map(|a| a.name);
        session.complete_pairing(name)
    }

    pub fn inject_fault(&self, phone: &PhoneNumber, fault: Fault) -> Result<(), SandboxError> {
        let session = || {
            self.session(phone)
                .ok_or_else(|| SandboxError::NoSession(phone.to_string()))
        };
        match fault {
            Fault::Disconnect => session()?.drop_connection(),
            Fault::Crash => {
                session()?.crash();
                Ok(())
            }
            Fault::Logout => session()?.unlink_from_phone(),
            Fault::MediaDown => {
                lock(&self.media_down).insert(phone.clone());
                Ok(())
            }
            Fault::MediaUp => {
                lock(&self.media_down).remove(phone);
                Ok(())
            }
        }
    }

    /// A gateway phone read messages a virtual account (`author`) sent it.
    fn record_read(&self, reader: &PhoneNumber, author: &Jid, ids: &[String]) {
        let Some(account) = author
            .phone_digits()
            .and_then(|digits| PhoneNumber::parse(digits, None).ok())
            .filter(|p| self.account(p).is_some())
        else {
            return;
        };
        let mut reads = lock(&self.reads);
        let read = reads.entry(account).or_default();
        for id in ids {
            if !read.iter().any(|(r, i)| r == reader && i == id) {
                read.push((reader.clone(), id.clone()));
            }
        }
    }

    /// The account's messages gateway phones read: (reader, message id), in read order.
    pub fn read_by(&self, account: &PhoneNumber) -> Vec<(PhoneNumber, String)> {
        lock(&self.reads).get(account).cloned().unwrap_or_default()
    }

    /// Keeps a media file on the network, as WhatsApp's media servers do, and says where.
    pub fn keep_media(&self, data: Bytes) -> MediaRef {
        use sha2::{Digest, Sha256};
        let sha256 = Sha256::digest(&data).to_vec();
        let direct_path = format!("/sandbox/media/{}", uuid::Uuid::new_v4());
        lock(&self.media).keep(direct_path.clone(), data);
        MediaRef {
            direct_path,
            media_key: rand::rng().random::<[u8; 32]>().to_vec(),
            file_enc_sha256: sha256.clone(),
            file_sha256: sha256,
            media_key_timestamp: Some(Utc::now().timestamp()),
        }
    }

    /// A media file, for a gateway phone to download.
    fn media_file(&self, phone: &PhoneNumber, media: &MediaRef) -> Result<Bytes, EngineError> {
        if lock(&self.media_down).contains(phone) {
            return Err(EngineError::Protocol(
                "the media server did not answer (sandbox fault)".into(),
            ));
        }
        lock(&self.media)
            .files
            .get(&media.direct_path)
            .cloned()
            .ok_or_else(|| EngineError::NotFound("the file is no longer on the media server".into()))
    }

    /// A virtual account sends a message to a gateway phone. Waits until the gateway has
    /// stored it when the phone is online; otherwise it is queued until the phone connects.
    pub async fn inject_inbound(
        &self,
        to: &PhoneNumber,
        from: &PhoneNumber,
        content: InboundContent,
    ) -> Result<Injected, SandboxError> {
        let account = self
            .account(from)
            .ok_or_else(|| SandboxError::UnknownAccount(from.to_string()))?;
        let message = InboundMessage {
            id: message_id(),
            chat: from.jid(),
            sender: from.jid(),
            sender_lid: None,
            push_name: Some(account.name),
            timestamp: Utc::now(),
            from_me: false,
            content,
            quoted_id: None,
        };
        self.deliver(to, message).await
    }

    async fn deliver(&self, to: &PhoneNumber, message: InboundMessage) -> Result<Injected, SandboxError> {
        let id = message.id.clone();
        match self.session(to).filter(|s| s.is_online()) {
            Some(session) => {
                let delivered = session.deliver(message.clone()).await;
                if !delivered {
                    self.queue(to, message);
                }
                Ok(Injected { id, delivered })
            }
            None => {
                self.queue(to, message);
                Ok(Injected { id, delivered: false })
            }
        }
    }

    fn queue(&self, to: &PhoneNumber, message: InboundMessage) {
        lock(&self.pending).entry(to.clone()).or_default().push(message);
    }

    fn take_pending(&self, phone: &PhoneNumber) -> Vec<InboundMessage> {
        lock(&self.pending).remove(phone).unwrap_or_default()
    }

    /// On WhatsApp: a virtual account, or a gateway phone that has been linked.
    pub fn is_on_whatsapp(&self, phone: &PhoneNumber) -> bool {
        lock(&self.world).accounts.contains_key(phone) || self.store.load_link(phone).ok().flatten().is_some()
    }

    fn session(&self, phone: &PhoneNumber) -> Option<Arc<SessionInner>> {
        lock(&self.sessions).get(phone).and_then(Weak::upgrade)
    }

    /// Carries a message sent by a gateway phone to its recipients.
    async fn route(&self, from: &SessionInner, message: &OutgoingMessage, id: &str) -> Result<(), EngineError> {
        let recipients: Vec<(PhoneNumber, Option<Jid>)> = if message.to.is_group() {
            let world = lock(&self.world);
            let group = world
                .groups
                .get(&message.to)
                .ok_or_else(|| EngineError::NotFound(format!("group {}", message.to)))?;
            if !group.members.contains(from.phone()) {
                return Err(EngineError::Rejected("this phone is not a member of the group".into()));
            }
            group
                .members
                .iter()
                .filter(|m| *m != from.phone())
                .map(|m| (m.clone(), Some(group.jid.clone())))
                .collect()
        } else {
            let digits = message
                .to
                .phone_digits()
                .ok_or_else(|| EngineError::Rejected(format!("cannot deliver to {}", message.to)))?;
            let phone = PhoneNumber::parse(digits, None)
                .map_err(|_| EngineError::Rejected(format!("{} is not on WhatsApp", message.to)))?;
            if !self.is_on_whatsapp(&phone) {
                return Err(EngineError::Rejected(format!("{} is not on WhatsApp", message.to)));
            }
            vec![(phone, None)]
        };
        for (recipient, group) in recipients {
            if self.account(&recipient).is_some() {
                let mut inboxes = lock(&self.inboxes);
                let inbox = inboxes.entry(recipient).or_default();
                if inbox.len() >= INBOX_LIMIT {
                    inbox.pop_front();
                }
                inbox.push_back(Received {
                    id: id.to_owned(),
                    from: from.phone().clone(),
                    group,
                    message: message.clone(),
                    received_at: Utc::now(),
                });
            } else {
                // Another gateway phone: it receives the message as inbound.
                let inbound = InboundMessage {
                    id: id.to_owned(),
                    chat: group.clone().unwrap_or_else(|| from.phone().jid()),
                    sender: from.phone().jid(),
                    sender_lid: None,
                    push_name: from.push_name(),
                    timestamp: Utc::now(),
                    from_me: false,
                    content: inbound_content(self, &message.content),
                    quoted_id: message.quoted_id.clone(),
                };
                let _ = self.deliver(&recipient, inbound).await;
            }
        }
        Ok(())
    }

    fn group_view(&self, jid: &Jid, asker: &PhoneNumber) -> Result<Group, EngineError> {
        let world = lock(&self.world);
        let record = world
            .groups
            .get(jid)
            .filter(|g| g.members.contains(asker))
            .ok_or_else(|| EngineError::NotFound(format!("group {jid}")))?;
        Ok(Group {
            jid: record.jid.clone(),
            subject: record.subject.clone(),
            description: None,
            owner: record.members.first().map(PhoneNumber::jid),
            created_at: Some(record.created_at),
            participants: record
                .members
                .iter()
                .enumerate()
                .map(|(i, m)| Participant {
                    jid: m.jid(),
                    admin: i == 0,
                    super_admin: i == 0,
                })
                .collect(),
        })
    }

    fn groups_of(&self, phone: &PhoneNumber) -> Vec<Jid> {
        lock(&self.world)
            .groups
            .values()
            .filter(|g| g.members.contains(phone))
            .map(|g| g.jid.clone())
            .collect()
    }
}

/// The sandbox as an [`Engine`].
pub struct SandboxEngine {
    network: Arc<SandboxNetwork>,
}

impl SandboxEngine {
    pub fn new(network: Arc<SandboxNetwork>) -> Self {
        Self { network }
    }
}

#[async_trait]
impl Engine for SandboxEngine {
    async fn open(&self, phone: &PhoneNumber, events: EventSink) -> Result<Arc<dyn Session>, EngineError> {
        let link = self
            .network
            .store
            .load_link(phone)
            .map_err(|e| EngineError::Storage(e.to_string()))?;
        let inner = SessionInner::new(phone.clone(), Arc::downgrade(&self.network), events, link);
        let previous = lock(&self.network.sessions).insert(phone.clone(), Arc::downgrade(&inner));
        if let Some(previous) = previous.and_then(|w| w.upgrade()) {
            previous.shut_down();
        }
        Ok(Arc::new(SandboxSession::new(inner)))
    }

    async fn forget(&self, phone: &PhoneNumber) -> Result<(), EngineError> {
        if let Some(session) = self.network.session(phone) {
            session.shut_down();
        }
        lock(&self.network.sessions).remove(phone);
        lock(&self.network.pending).remove(phone);
        self.network
            .store
            .delete_link(phone)
            .map_err(|e| EngineError::Storage(e.to_string()))
    }
}

/// Media files kept on the network, the oldest dropped beyond [`MEDIA_LIMIT`].
#[derive(Default)]
struct MediaFiles {
    files: HashMap<String, Bytes>,
    order: VecDeque<String>,
}

/// How many media files the network keeps.
const MEDIA_LIMIT: usize = 1_000;

impl MediaFiles {
    fn keep(&mut self, path: String, data: Bytes) {
        if self.order.len() >= MEDIA_LIMIT
            && let Some(oldest) = self.order.pop_front()
        {
            self.files.remove(&oldest);
        }
        self.order.push_back(path.clone());
        self.files.insert(path, data);
    }
}

fn inbound_content(network: &SandboxNetwork, content: &OutgoingContent) -> InboundContent {
    match content {
        OutgoingContent::Text(text) => InboundContent::Text(text.clone()),
        OutgoingContent::Media(media) => InboundContent::Media {
            kind: media.kind,
            mime: media.mime.clone(),
            file_name: media.file_name.clone(),
            caption: media.caption.clone(),
            size: Some(media.data.len() as u64),
            stored: Some(network.keep_media(media.data.clone())),
        },
        OutgoingContent::Reaction { target, emoji } => InboundContent::Reaction {
            target_id: target.id.clone(),
            emoji: Some(emoji.clone()).filter(|e| !e.is_empty()),
        },
        OutgoingContent::Location(place) => InboundContent::Location(place.clone()),
        OutgoingContent::Contacts(cards) => InboundContent::Contacts(cards.clone()),
        OutgoingContent::List(list) => InboundContent::Other {
            kind: MessageKind::List,
            text: Some(list.body.clone()),
        },
    }
}

pub use crate::engine::new_message_id as message_id;

fn random_code(len: usize) -> String {
    const ALPHABET: &[u8] = b"ABCDEFGHJKLMNPQRSTVWXYZ0123456789";
    let mut rng = rand::rng();
    (0..len)
        .map(|_| char::from(ALPHABET[rng.random_range(0..ALPHABET.len())]))
        .collect()
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}
