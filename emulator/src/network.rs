//! The emulated WhatsApp network's state: accounts (each a person's primary phone with its
//! identity key), their linked devices, the live connections, and pairings in progress.
//! One lock guards it all and is never held across an await, so a connection task, a
//! control request and a pairing can each read and change it in short steps.

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use chrono::{DateTime, Utc};
use tokio::sync::{mpsc, oneshot};
use wacore::libsignal::protocol::KeyPair;
use wacore_binary::node::Node;

use crate::noise::ServerKeys;

/// Timings a test may shorten.
#[derive(Debug, Clone)]
pub struct Config {
    /// QR references offered to a device that needs pairing (WhatsApp: 6).
    pub qr_refs: usize,
    /// How long a linking step waits for the device's answer.
    pub answer_timeout: Duration,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            qr_refs: 6,
            answer_timeout: Duration::from_secs(30),
        }
    }
}

pub struct Network {
    pub keys: ServerKeys,
    pub config: Config,
    /// Where the emulator listens, once it does: the accounts' phones connect there.
    pub addr: std::sync::OnceLock<std::net::SocketAddr>,
    pub media: crate::media::Store,
    state: Mutex<State>,
    next_conn: AtomicU64,
    next_id: AtomicU64,
}

#[derive(Default)]
pub struct State {
    pub accounts: BTreeMap<String, Account>,
    pub conns: HashMap<u64, Arc<Conn>>,
    /// QR references shown by devices that need pairing → their connection.
    pub refs: HashMap<String, u64>,
    /// Pair-code requests, by the phone number they want to link to.
    pub codes: HashMap<String, CodeFlow>,
    /// Times a device logged in while another connection of the same device was open.
    pub double_connections: u64,
    /// Groups, by their id (the user part of `…@g.us`).
    pub groups: BTreeMap<String, crate::groups::Group>,
}

/// How WhatsApp addresses an account's messages to others: by phone number, or (as for
/// most accounts since 2025) by its LID with the phone number beside it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Deserialize, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Addressing {
    #[default]
    Pn,
    Lid,
}

/// A WhatsApp account: the person's primary phone (device 0) and its linked devices.
pub struct Account {
    pub phone: String,
    pub name: String,
    pub lid: String,
    /// The primary phone's identity key: it signs every linked device.
    pub identity: KeyPair,
    pub raw_id: u32,
    pub next_device: u16,
    pub next_key_index: u32,
    pub devices: BTreeMap<u16, Device>,
    /// Temporarily banned until then, with WhatsApp's reason code.
    pub banned: Option<(DateTime<Utc>, u32)>,
    pub addressing: Addressing,
    /// The server refuses the next messages sent to this account: the error code, and how
    /// many more.
    pub refuse: Option<(u16, u32)>,
    /// The person's primary phone (device 0), a Signal participant, when it runs.
    pub primary: Option<Arc<crate::phone::Phone>>,
    /// What others show this account now (`composing`, `recording`, `paused`), by the
    /// sender's account.
    pub chatstates: BTreeMap<String, String>,
}

/// A linked (companion) device.
pub struct Device {
    pub id: u16,
    /// What the device registered as (its `DeviceProps.os`), shown under Linked devices.
    pub name: String,
    pub platform: String,
    pub noise_key: [u8; 32],
    pub identity_key: [u8; 32],
    pub registration_id: u32,
    /// Its `ADVSignedDeviceIdentity`, signed by the account and the device.
    pub signed_identity: Vec<u8>,
    pub key_index: u32,
    pub linked_at: DateTime<Utc>,
    pub last_seen_at: Option<DateTime<Utc>>,
    /// The Signal keys it uploaded, served to those who write to it.
    pub keys: Option<crate::prekeys::Bundle>,
    /// Stanzas for it that it has not acknowledged: sent when it is online, again
    /// when it logs in.
    pub inbox: Vec<Pending>,
    /// The last presence it sent ("available" or "unavailable"), and how often it said
    /// "available".
    pub presence: Option<String>,
    pub available_count: u32,
    /// It has been told its account's device list (the usync every client sends after
    /// logging in). Until then a device linked meanwhile could be lost: the answer it
    /// gets, written before the link, would replace what the link notification added.
    pub knows_own_devices: bool,
    /// Its live connection.
    pub conn: Option<u64>,
}

/// Who a device is, as it registered: what [`Device::new`] needs.
pub struct Registered {
    pub name: String,
    pub platform: String,
    pub noise_key: [u8; 32],
    pub identity_key: [u8; 32],
    pub registration_id: u32,
    pub signed_identity: Vec<u8>,
    pub key_index: u32,
}

impl Device {
    /// Device `id`, linked now, offline, with no keys uploaded and nothing waiting.
    pub fn new(id: u16, registered: Registered) -> Self {
        Self {
            id,
            name: registered.name,
            platform: registered.platform,
            noise_key: registered.noise_key,
            identity_key: registered.identity_key,
            registration_id: registered.registration_id,
            signed_identity: registered.signed_identity,
            key_index: registered.key_index,
            linked_at: Utc::now(),
            last_seen_at: None,
            keys: None,
            inbox: Vec::new(),
            presence: None,
            available_count: 0,
            knows_own_devices: false,
            conn: None,
        }
    }
}

/// A stanza waiting for a device's acknowledgement.
#[derive(Debug, Clone)]
pub struct Pending {
    /// What acknowledges it: `message` (a receipt or an ack of that class), `receipt` or
    /// `notification` (an ack of that class).
    pub class: &'static str,
    pub id: String,
    pub node: Node,
}

impl Account {
    /// A new account with its own identity key and LID.
    pub fn new(phone: &str, name: &str) -> Self {
        Self::with_identity(phone, name, wacore::crypto::generate_curve_key_pair())
    }

    /// A new account whose primary phone has this identity key.
    pub fn with_identity(phone: &str, name: &str, identity: KeyPair) -> Self {
        use rand::Rng;
        let mut rng = rand::rng();
        Self {
            phone: digits(phone),
            name: name.to_owned(),
            lid: rng
                .random_range(100_000_000_000_000u64..1_000_000_000_000_000)
                .to_string(),
            identity,
            raw_id: rng.random(),
            next_device: 1,
            next_key_index: 1,
            devices: BTreeMap::new(),
            banned: None,
            addressing: Addressing::Pn,
            refuse: None,
            primary: None,
            chatstates: BTreeMap::new(),
        }
    }

    /// The linked devices `device` names: that one, or all of them (never the primary).
    pub fn chosen(&self, device: Option<u16>) -> Vec<u16> {
        self.devices
            .keys()
            .copied()
            .filter(|id| *id != 0 && device.is_none_or(|d| d == *id))
            .collect()
    }

    pub fn jid(&self) -> String {
        format!("{}@s.whatsapp.net", self.phone)
    }

    pub fn lid_jid(&self) -> String {
        format!("{}@lid", self.lid)
    }

    /// The account's user JID on `server` (`s.whatsapp.net` or `lid`).
    pub fn user_on(&self, server: &str) -> String {
        if server == "lid" { self.lid_jid() } else { self.jid() }
    }

    /// One of its devices on `server`: `user:3@server`, or `user@server` for the primary.
    pub fn device_on(&self, server: &str, device: u16) -> String {
        let user = if server == "lid" { &self.lid } else { &self.phone };
        let server = if server == "lid" { "lid" } else { "s.whatsapp.net" };
        if device == 0 {
            format!("{user}@{server}")
        } else {
            format!("{user}:{device}@{server}")
        }
    }
}

/// What a device that wants to pair told us at registration.
#[derive(Debug, Clone)]
pub struct Registration {
    pub identity_key: [u8; 32],
    pub registration_id: u32,
    pub name: String,
    pub platform: String,
    pub push_name: Option<String>,
}

/// Who is on the other end of a connection.
#[derive(Debug, Clone)]
pub enum Role {
    /// A device that needs pairing.
    Registering(Registration),
    /// A linked device that logged in.
    Device { phone: String, id: u16 },
    /// Pairing finished; the connection is about to close.
    Paired,
}

pub enum Command {
    Send(Node),
    /// Send `last` (if any), then close the WebSocket; `abrupt` drops the TCP connection
    /// without a goodbye, as a network failure would.
    Close {
        last: Option<Node>,
        abrupt: bool,
    },
}

/// A live connection, as the rest of the emulator sees it.
pub struct Conn {
    pub id: u64,
    pub client_static: [u8; 32],
    pub role: Mutex<Role>,
    tx: mpsc::UnboundedSender<Command>,
    waiters: Mutex<HashMap<String, oneshot::Sender<Node>>>,
}

impl Conn {
    pub fn new(id: u64, client_static: [u8; 32], role: Role, tx: mpsc::UnboundedSender<Command>) -> Self {
        Self {
            id,
            client_static,
            role: Mutex::new(role),
            tx,
            waiters: Mutex::default(),
        }
    }

    pub fn role(&self) -> Role {
        lock(&self.role).clone()
    }

    pub fn set_role(&self, role: Role) {
        *lock(&self.role) = role;
    }

    pub fn send(&self, node: Node) {
        let _ = self.tx.send(Command::Send(node));
    }

    pub fn close(&self, last: Option<Node>) {
        let _ = self.tx.send(Command::Close { last, abrupt: false });
    }

    pub fn drop_now(&self) {
        let _ = self.tx.send(Command::Close {
            last: None,
            abrupt: true,
        });
    }

    /// Sends a server-originated request and waits for the device's answer.
    pub async fn request(&self, node: Node, timeout: Duration) -> Option<Node> {
        let id = crate::wire::attr(&node, "id").unwrap_or_default().into_owned();
        let (tx, rx) = oneshot::channel();
        lock(&self.waiters).insert(id.clone(), tx);
        self.send(node);
        let answer = tokio::time::timeout(timeout, rx).await.ok().and_then(Result::ok);
        lock(&self.waiters).remove(&id);
        answer
    }

    /// Hands an answer (an `iq` result or error) to the request waiting for it; gives it
    /// back when none waits.
    pub fn answered(&self, node: Node) -> Option<Node> {
        let id = crate::wire::attr(&node, "id").unwrap_or_default().into_owned();
        match lock(&self.waiters).remove(&id) {
            Some(waiter) => {
                let _ = waiter.send(node);
                None
            }
            None => Some(node),
        }
    }
}

/// A pair-code request in progress.
pub struct CodeFlow {
    pub conn: u64,
    pub pairing_ref: Vec<u8>,
    pub wrapped_companion_ephemeral: Vec<u8>,
    /// The person typed a code: the device's `companion_finish` goes there.
    pub finish: Option<oneshot::Sender<Finish>>,
}

/// The device's answer to the primary's hello in the pair-code flow.
pub struct Finish {
    pub wrapped_key_bundle: Vec<u8>,
    pub companion_identity: Vec<u8>,
}

pub fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

impl Network {
    pub fn new(config: Config) -> Arc<Self> {
        Arc::new(Self {
            keys: ServerKeys::generate(),
            config,
            addr: std::sync::OnceLock::new(),
            media: crate::media::Store::default(),
            state: Mutex::default(),
            next_conn: AtomicU64::new(1),
            next_id: AtomicU64::new(1),
        })
    }

    pub fn state(&self) -> MutexGuard<'_, State> {
        lock(&self.state)
    }

    pub fn next_conn_id(&self) -> u64 {
        self.next_conn.fetch_add(1, Ordering::Relaxed)
    }

    /// An id for a server-originated stanza, never one a client would choose.
    pub fn next_stanza_id(&self) -> String {
        format!("emu.{}", self.next_id.fetch_add(1, Ordering::Relaxed))
    }

    pub fn conn(&self, id: u64) -> Option<Arc<Conn>> {
        self.state().conns.get(&id).cloned()
    }

    /// Forgets a closed connection and everything that pointed at it.
    pub fn closed(&self, id: u64) {
        let mut state = self.state();
        state.conns.remove(&id);
        state.refs.retain(|_, conn| *conn != id);
        state.codes.retain(|_, flow| flow.conn != id);
        for account in state.accounts.values_mut() {
            for device in account.devices.values_mut() {
                if device.conn == Some(id) {
                    device.conn = None;
                    device.last_seen_at = Some(Utc::now());
                }
            }
        }
    }
}

impl State {
    /// The account a user JID names (`digits@s.whatsapp.net`, `lid@lid`, with or without a
    /// device), by its phone number or its LID.
    pub fn account_of(&self, jid: &str) -> Option<&Account> {
        let (user, server) = split_jid(jid);
        if server == "lid" {
            self.accounts.values().find(|a| a.lid == user)
        } else {
            self.accounts.get(&user)
        }
    }

    pub fn account_of_mut(&mut self, jid: &str) -> Option<&mut Account> {
        let (user, server) = split_jid(jid);
        if server == "lid" {
            self.accounts.values_mut().find(|a| a.lid == user)
        } else {
            self.accounts.get_mut(&user)
        }
    }
}

/// A JID's user (without device) and server: `("15551234567", "s.whatsapp.net")`.
pub fn split_jid(jid: &str) -> (String, String) {
    let (user, server) = jid.split_once('@').unwrap_or((jid, "s.whatsapp.net"));
    let user = user.split(':').next().unwrap_or(user);
    (user.to_owned(), server.to_owned())
}

/// The device number in `15551234567:3@s.whatsapp.net` (0 when there is none).
pub fn device_of(jid: &str) -> u16 {
    jid.split('@')
        .next()
        .and_then(|user| user.split(':').nth(1))
        .and_then(|d| d.parse().ok())
        .unwrap_or(0)
}

/// Digits of a phone number as written by a person (`+1 201-555…`) or in a JID.
pub fn digits(phone: &str) -> String {
    phone
        .split('@')
        .next()
        .unwrap_or_default()
        .split(':')
        .next()
        .unwrap_or_default()
        .chars()
        .filter(char::is_ascii_digit)
        .collect()
}
