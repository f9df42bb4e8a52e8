//! `CacheActor`: groups, group details and has-whatsapp answers, held in quick_cache with
//! a time to live. Concurrent misses for the same key share one engine call
//! (single-flight): the first starts the fetch, the rest wait for it. A group change
//! event invalidates a phone's entries, and a fetch that raced with the change is handed
//! to its waiters but not kept.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Instant;

use chrono::{DateTime, Utc};
use ractor::{Actor, ActorProcessingErr, ActorRef};

use super::{PhoneError, PhoneMsg, Reply, Shared};
use crate::domain::{Jid, PhoneNumber};
use crate::engine::{Group, Lookup};

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum CacheKey {
    Groups(PhoneNumber),
    Group(PhoneNumber, Jid),
}

impl CacheKey {
    fn phone(&self) -> &PhoneNumber {
        match self {
            CacheKey::Groups(phone) | CacheKey::Group(phone, _) => phone,
        }
    }
}

#[derive(Debug, Clone)]
pub enum CacheValue {
    Groups(Arc<Vec<Group>>),
    Group(Arc<Group>),
}

/// A value and where it came from.
#[derive(Debug, Clone)]
pub struct Cached<T = CacheValue> {
    pub value: T,
    /// When the value was fetched from WhatsApp.
    pub filled_at: DateTime<Utc>,
    /// Served from the cache rather than fetched for this request.
    pub from_cache: bool,
}

pub enum CacheMsg {
    /// A cached value, fetched on a miss or with `refresh`.
    Get {
        key: CacheKey,
        refresh: bool,
        reply: Reply<Cached>,
    },
    /// Has-whatsapp answers for numbers (digits), in the order asked.
    Lookup {
        phone: PhoneNumber,
        numbers: Vec<String>,
        reply: Reply<Vec<Lookup>>,
    },
    /// A phone's groups changed (one group, or any when `None`).
    Invalidate { phone: PhoneNumber, group: Option<Jid> },
    /// A fetch finished (internal).
    Filled {
        key: CacheKey,
        generation: u64,
        result: Result<CacheValue, PhoneError>,
    },
    /// Looked-up numbers to remember (internal).
    Looked { phone: PhoneNumber, found: Vec<Lookup> },
}

pub struct CacheActor;

struct Entry {
    value: CacheValue,
    filled_at: DateTime<Utc>,
    expires: Instant,
}

pub struct CacheState {
    shared: Arc<Shared>,
    entries: quick_cache::unsync::Cache<CacheKey, Entry>,
    lookups: quick_cache::unsync::Cache<(PhoneNumber, String), (Lookup, Instant)>,
    inflight: HashMap<CacheKey, Vec<Reply<Cached>>>,
    /// Bumped per phone on invalidation; a fetch started under an older one is not kept.
    generations: HashMap<PhoneNumber, u64>,
}

impl Actor for CacheActor {
    type Msg = CacheMsg;
    type State = CacheState;
    type Arguments = Arc<Shared>;

    async fn pre_start(
        &self,
        _myself: ActorRef<CacheMsg>,
        shared: Arc<Shared>,
    ) -> Result<CacheState, ActorProcessingErr> {
        let capacity = shared.config.cache.capacity;
        Ok(CacheState {
            shared,
            entries: quick_cache::unsync::Cache::new(capacity),
            lookups: quick_cache::unsync::Cache::new(capacity),
            inflight: HashMap::new(),
            generations: HashMap::new(),
        })
    }

    async fn handle(
        &self,
        myself: ActorRef<CacheMsg>,
        msg: CacheMsg,
        state: &mut CacheState,
    ) -> Result<(), ActorProcessingErr> {
        match msg {
            CacheMsg::Get { key, refresh, reply } => state.get(&myself, key, refresh, reply),
            CacheMsg::Filled {
                key,
                generation,
                result,
            } => state.filled(key, generation, result),
            CacheMsg::Invalidate { phone, group } => state.invalidate(&phone, group.as_ref()),
            CacheMsg::Lookup { phone, numbers, reply } => state.lookup(&myself, phone, numbers, reply),
            CacheMsg::Looked { phone, found } => {
                let expires = Instant::now() + state.shared.config.cache.lookup_ttl;
                for lookup in found {
                    state
                        .lookups
                        .insert((phone.clone(), lookup.number.clone()), (lookup, expires));
                }
            }
        }
        Ok(())
    }
}

impl CacheState {
    fn get(&mut self, myself: &ActorRef<CacheMsg>, key: CacheKey, refresh: bool, reply: Reply<Cached>) {
        if !refresh && let Some(entry) = self.entries.get(&key) {
            if entry.expires > Instant::now() {
                let _ = reply.send(Ok(Cached {
                    value: entry.value.clone(),
                    filled_at: entry.filled_at,
                    from_cache: true,
                }));
                return;
            }
            self.entries.remove(&key);
        }
        if let Some(waiters) = self.inflight.get_mut(&key) {
            waiters.push(reply);
            return;
        }
        self.inflight.insert(key.clone(), vec![reply]);
        let generation = self.generation(key.phone());
        let shared = Arc::clone(&self.shared);
        let myself = myself.clone();
        tokio::spawn(async move {
            let result = match &key {
                CacheKey::Groups(phone) => shared
                    .ask(phone, |reply| PhoneMsg::Groups { reply })
                    .await
                    .map(|groups| CacheValue::Groups(Arc::new(groups))),
                CacheKey::Group(phone, jid) => shared
                    .ask(phone, |reply| PhoneMsg::Group {
                        jid: jid.clone(),
                        reply,
                    })
                    .await
                    .map(|group| CacheValue::Group(Arc::new(group))),
            };
            let _ = myself.cast(CacheMsg::Filled {
                key,
                generation,
                result,
            });
        });
    }

    fn filled(&mut self, key: CacheKey, generation: u64, result: Result<CacheValue, PhoneError>) {
        let waiters = self.inflight.remove(&key).unwrap_or_default();
        let filled_at = Utc::now();
        if let Ok(value) = &result
            && generation == self.generation(key.phone())
        {
            let expires = Instant::now() + self.shared.config.cache.groups_ttl;
            self.entries.insert(
                key,
                Entry {
                    value: value.clone(),
                    filled_at,
                    expires,
                },
            );
        }
        for waiter in waiters {
            let _ = waiter.send(result.clone().map(|value| Cached {
                value,
                filled_at,
                from_cache: false,
            }));
        }
    }

    fn invalidate(&mut self, phone: &PhoneNumber, group: Option<&Jid>) {
        *self.generations.entry(phone.clone()).or_default() += 1;
        self.entries.remove(&CacheKey::Groups(phone.clone()));
        match group {
            Some(jid) => {
                self.entries.remove(&CacheKey::Group(phone.clone(), jid.clone()));
            }
            None => {
                let stale: Vec<CacheKey> = self
                    .entries
                    .iter()
                    .filter(|(key, _)| matches!(key, CacheKey::Group(p, _) if p == phone))
                    .map(|(key, _)| key.clone())
                    .collect();
                for key in stale {
                    self.entries.remove(&key);
                }
            }
        }
    }

    fn generation(&self, phone: &PhoneNumber) -> u64 {
        self.generations.get(phone).copied().unwrap_or(0)
    }

    fn lookup(
        &mut self,
        myself: &ActorRef<CacheMsg>,
        phone: PhoneNumber,
        numbers: Vec<String>,
        reply: Reply<Vec<Lookup>>,
    ) {
        let now = Instant::now();
        let mut known = HashMap::new();
        let mut missing = Vec::new();
        for number in &numbers {
            match self.lookups.get(&(phone.clone(), number.clone())) {
                Some((lookup, expires)) if *expires > now => {
                    known.insert(number.clone(), lookup.clone());
                }
                _ if !missing.contains(number) => missing.push(number.clone()),
                _ => {}
            }
        }
        if missing.is_empty() {
            let _ = reply.send(Ok(numbers.iter().filter_map(|n| known.get(n).cloned()).collect()));
            return;
        }
        let shared = Arc::clone(&self.shared);
        let myself = myself.clone();
        tokio::spawn(async move {
            let result = shared
                .ask(&phone, |reply| PhoneMsg::Lookup {
                    numbers: missing,
                    reply,
                })
                .await;
            let answer = result.map(|found| {
                let _ = myself.cast(CacheMsg::Looked {
                    phone: phone.clone(),
                    found: found.clone(),
                });
                known.extend(found.into_iter().map(|l| (l.number.clone(), l)));
                numbers.iter().filter_map(|n| known.get(n).cloned()).collect()
            });
            let _ = reply.send(answer);
        });
    }
}
