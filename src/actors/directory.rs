//! What is known of the phones without asking an actor: each phone's last reported state
//! ([`Directory`]) and its running session actor ([`Registry`]).

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, RwLock};

use chrono::{DateTime, Utc};
use ractor::ActorRef;

use super::phone::PhoneMsg;
use super::{read, write};
use crate::db::phones::{self, SessionState};
use crate::domain::{PhoneNumber, PhoneStatus};

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
    pub(super) fn from_row(row: &phones::Model) -> Option<Self> {
        Some(Self {
            phone: PhoneNumber::parse(&row.phone, None).ok()?,
            country: row.country.clone(),
            created_at: row.created_at,
            state: row.session_state(),
            pairing: None,
        })
    }
}

/// Every phone's last reported state.
#[derive(Clone, Default)]
pub struct Directory(pub(super) Arc<RwLock<BTreeMap<PhoneNumber, PhoneEntry>>>);

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
pub struct Registry(pub(super) Arc<RwLock<HashMap<PhoneNumber, ActorRef<PhoneMsg>>>>);

impl Registry {
    pub fn get(&self, phone: &PhoneNumber) -> Option<ActorRef<PhoneMsg>> {
        read(&self.0).get(phone).cloned()
    }

    pub(super) fn insert(&self, phone: PhoneNumber, actor: ActorRef<PhoneMsg>) {
        write(&self.0).insert(phone, actor);
    }

    /// Removes the entry only if it still belongs to `actor`, so a late exit of an old
    /// actor never unregisters its replacement.
    pub(super) fn remove_if(&self, phone: &PhoneNumber, actor: ractor::ActorId) {
        let mut map = write(&self.0);
        if map.get(phone).is_some_and(|a| a.get_id() == actor) {
            map.remove(phone);
        }
    }
}
