//! Phones: adding, listing and removing them, and [`PhoneHandle`], through which every
//! call to one phone goes (connect, send, typing, lookups, groups, its history and
//! contacts). Today a handle reaches the phone's local session actor; it is the one
//! place that would route a call to the instance owning the phone.

use std::sync::Arc;
use std::time::Duration;

use sea_orm::DatabaseConnection;

use super::{Cached, Error, Gateway};
use crate::actors::cache::{CacheKey, CacheMsg, CacheValue};
use crate::actors::{PhoneEntry, PhoneMsg, Phones, call};
use crate::db::{contacts, messages};
use crate::domain::contact::{self, Contact, Person};
use crate::domain::{Direction, Jid, MediaStatus, Message, MessageKind, MessageStatus, PhoneNumber};
use crate::engine::{Group, Lookup, MessageKey, OutgoingContent, OutgoingMessage, PairingMode};

impl Gateway {
    /// Every phone, oldest first.
    pub fn phones(&self) -> Vec<PhoneEntry> {
        self.phones.list()
    }

    /// A phone that has been added, to call through.
    pub fn phone(&self, phone: &PhoneNumber) -> Result<PhoneHandle, Error> {
        self.phones.get(phone)?;
        Ok(PhoneHandle {
            phone: phone.clone(),
            phones: Arc::clone(&self.phones),
            db: self.db.clone(),
        })
    }

    /// Adds a phone and starts its session (it waits to be paired).
    pub async fn add_phone(&self, phone: PhoneNumber, country: Option<String>) -> Result<PhoneEntry, Error> {
        Ok(self.phones.add(phone, country).await?)
    }

    /// Logs the phone out, stops its session and deletes its keys and data; webhooks
    /// hear `phone.status` "deleted".
    pub async fn remove_phone(&self, phone: &PhoneNumber) -> Result<(), Error> {
        Ok(self.phones.remove(phone).await?)
    }

    /// Contacts of every phone, merged by person: a page and the total.
    pub async fn all_contacts(&self, offset: u64, limit: Option<u64>) -> Result<(Vec<Person>, u64), Error> {
        let (rows, total) = contacts::merged_page(&self.db, offset, limit).await?;
        Ok((contact::merge(rows.into_iter().map(Contact::from).collect()), total))
    }
}

/// A kept media file, open.
#[derive(Debug)]
pub struct MediaFile {
    pub file: tokio::fs::File,
    pub size: u64,
    pub mime: String,
    pub file_name: Option<String>,
    pub sha256: Option<String>,
    pub kind: MessageKind,
    pub message_id: String,
}

/// One phone, to call. Cheap to clone.
#[derive(Clone)]
pub struct PhoneHandle {
    phone: PhoneNumber,
    phones: Arc<Phones>,
    db: DatabaseConnection,
}

impl PhoneHandle {
    pub fn number(&self) -> &PhoneNumber {
        &self.phone
    }

    /// The phone's state now.
    pub fn entry(&self) -> Result<PhoneEntry, Error> {
        Ok(self.phones.get(&self.phone)?)
    }

    /// Connects the phone, pairing it by `mode` if it is not linked yet; waits up to
    /// `phones.connect_wait` for a QR code, a pairing code or the connection.
    pub async fn connect(&self, mode: PairingMode) -> Result<PhoneEntry, Error> {
        Ok(self.phones.connect(&self.phone, mode).await?)
    }

    pub async fn disconnect(&self) -> Result<PhoneEntry, Error> {
        Ok(self.phones.disconnect(&self.phone).await?)
    }

    pub async fn logout(&self) -> Result<PhoneEntry, Error> {
        Ok(self.phones.logout(&self.phone).await?)
    }

    /// Sends a message, waiting at most `wait` (its turn in the phone's paced queue
    /// included). A message id sent before answers with the stored message instead:
    /// a retried request reaches the recipient once.
    pub async fn send(&self, message: OutgoingMessage, wait: Duration) -> Result<Message, Error> {
        if let Some(id) = &message.id
            && let Some(row) = messages::find(&self.db, &self.phone, id).await?
            && row.direction == Direction::Out
            && row.status != MessageStatus::Failed
        {
            return Ok(row.into());
        }
        let row = self
            .phones
            .ask_for(&self.phone, wait, |reply| PhoneMsg::Send { message, reply })
            .await?;
        Ok(row.into())
    }

    /// Shows "typing…" in `chat`, or clears it.
    pub async fn typing(&self, chat: Jid, typing: bool) -> Result<(), Error> {
        Ok(self
            .phones
            .ask(&self.phone, |reply| PhoneMsg::Typing { chat, typing, reply })
            .await?)
    }

    /// Whether numbers (digits) have WhatsApp, through the cache.
    pub async fn lookup(&self, numbers: Vec<String>) -> Result<Vec<Lookup>, Error> {
        let cache = self.phones.cache()?;
        let phone = self.phone.clone();
        let timeout = self.phones.shared().config.phones.call_timeout;
        Ok(call(&cache, timeout, |reply| CacheMsg::Lookup { phone, numbers, reply }).await??)
    }

    /// The groups the phone is in, cached (`refresh` fetches anew).
    pub async fn groups(&self, refresh: bool) -> Result<Cached<Arc<Vec<Group>>>, Error> {
        let cached = self.cached(CacheKey::Groups(self.phone.clone()), refresh).await?;
        Ok(Cached {
            value: match cached.value {
                CacheValue::Groups(groups) => groups,
                CacheValue::Group(group) => Arc::new(vec![group.as_ref().clone()]),
            },
            filled_at: cached.filled_at,
            from_cache: cached.from_cache,
        })
    }

    /// One group's details, cached like the list.
    pub async fn group(&self, jid: Jid, refresh: bool) -> Result<Cached<Arc<Group>>, Error> {
        let cached = self.cached(CacheKey::Group(self.phone.clone(), jid), refresh).await?;
        let CacheValue::Group(group) = cached.value else {
            return Err(Error::GroupNotFound);
        };
        Ok(Cached {
            value: group,
            filled_at: cached.filled_at,
            from_cache: cached.from_cache,
        })
    }

    async fn cached(&self, key: CacheKey, refresh: bool) -> Result<Cached, Error> {
        let cache = self.phones.cache()?;
        // The cache waits on the phone, which has its own timeout; allow for both.
        let timeout = self.phones.shared().config.phones.call_timeout * 2;
        Ok(call(&cache, timeout, |reply| CacheMsg::Get { key, refresh, reply }).await??)
    }

    /// Reacts to a message of this phone's history with an emoji (an empty one takes the
    /// reaction back), sent like any message, waiting at most `wait`.
    pub async fn react(&self, id: &str, emoji: String, wait: Duration) -> Result<Message, Error> {
        let target: Message = messages::find(&self.db, &self.phone, id)
            .await?
            .ok_or_else(|| Error::MessageNotFound(id.to_owned()))?
            .into();
        if matches!(target.kind, MessageKind::Reaction | MessageKind::ReactionRemoved) {
            return Err(Error::CannotAct("a reaction cannot be reacted to".into()));
        }
        let chat: Jid = target
            .chat
            .parse()
            .map_err(|_| Error::CannotAct(format!("the chat {} cannot be written to", target.chat)))?;
        let from_me = target.direction == Direction::Out;
        let participant = (chat.is_group() && !from_me)
            .then(|| target.sender.parse().ok())
            .flatten();
        let message = OutgoingMessage {
            id: None,
            to: chat,
            content: OutgoingContent::Reaction {
                target: MessageKey {
                    id: target.id,
                    from_me,
                    participant,
                },
                emoji,
            },
            quoted_id: None,
            quoted: None,
            mentions: Vec::new(),
            link_preview: false,
        };
        self.send(message, wait).await
    }

    /// Marks a received message read: its sender sees blue ticks. Answers how many
    /// messages were marked (0 when it already was).
    pub async fn mark_read(&self, id: &str) -> Result<u64, Error> {
        let row = messages::find(&self.db, &self.phone, id)
            .await?
            .ok_or_else(|| Error::MessageNotFound(id.to_owned()))?;
        if row.direction != Direction::In {
            return Err(Error::CannotAct("only received messages are marked read".into()));
        }
        self.read(vec![row]).await
    }

    /// Marks every received message of a chat read (at most `limit` at once, oldest
    /// first). Answers how many.
    pub async fn mark_chat_read(&self, chat: &Jid, limit: u64) -> Result<u64, Error> {
        let rows = messages::unread(&self.db, &self.phone, &chat.to_string(), limit).await?;
        self.read(rows).await
    }

    async fn read(&self, rows: Vec<messages::Model>) -> Result<u64, Error> {
        // One receipt per chat and, in a group, per author.
        let mut batches: std::collections::BTreeMap<(String, Option<String>), Vec<&messages::Model>> =
            std::collections::BTreeMap::new();
        for row in &rows {
            let group = row.chat.ends_with(&format!("@{}", crate::domain::GROUP_SERVER));
            let author = group.then(|| row.sender.clone());
            batches.entry((row.chat.clone(), author)).or_default().push(row);
        }
        let mut marked = 0;
        for ((chat, author), batch) in batches {
            let (Ok(chat), sender) = (chat.parse::<Jid>(), author.and_then(|a| a.parse::<Jid>().ok())) else {
                continue;
            };
            let ids: Vec<String> = batch.iter().map(|r| r.message_id.clone()).collect();
            self.phones
                .ask(&self.phone, |reply| PhoneMsg::MarkRead {
                    chat,
                    sender,
                    ids,
                    reply,
                })
                .await?;
            let rows: Vec<i64> = batch.iter().map(|r| r.id).collect();
            marked += messages::mark_read(&self.db, &self.phone, &rows).await?;
        }
        Ok(marked)
    }

    /// The file of a message of this phone (received or sent), opened to be read.
    pub async fn media(&self, id: &str) -> Result<MediaFile, Error> {
        let message: Message = messages::find(&self.db, &self.phone, id)
            .await?
            .ok_or_else(|| Error::MessageNotFound(id.to_owned()))?
            .into();
        let media = message.media.ok_or_else(|| Error::NoMedia(id.to_owned()))?;
        let not_kept = |reason: String| Error::MediaNotKept {
            id: id.to_owned(),
            reason,
        };
        match media.status {
            MediaStatus::Stored => {}
            MediaStatus::Pending => return Err(Error::MediaPending(id.to_owned())),
            MediaStatus::Failed | MediaStatus::Skipped => {
                return Err(not_kept(media.error.unwrap_or_else(|| "its download failed".into())));
            }
        }
        let store = self.phones.shared().media.clone();
        let (phone, message_id) = (self.phone.clone(), message.id.clone());
        let file = tokio::task::spawn_blocking(move || store.open_file(&phone, &message_id))
            .await
            .map_err(|e| not_kept(e.to_string()))?
            .map_err(|e| not_kept(format!("the file cannot be read: {e}")))?
            .ok_or_else(|| not_kept("the file is missing from the media folder".into()))?;
        let size = file.metadata().map_err(|e| not_kept(e.to_string()))?.len();
        Ok(MediaFile {
            file: tokio::fs::File::from_std(file),
            size,
            mime: media.mime,
            file_name: media.file_name,
            sha256: media.sha256,
            kind: message.kind,
            message_id: message.id,
        })
    }

    /// A message of this phone's history, by id.
    pub async fn message(&self, id: &str) -> Result<Option<Message>, Error> {
        Ok(messages::find(&self.db, &self.phone, id).await?.map(Message::from))
    }

    /// The history, newest first: a page (from 1) and the total.
    pub async fn history(&self, chat: Option<&str>, page: u64, limit: u64) -> Result<(Vec<Message>, u64), Error> {
        let (rows, total) = messages::page(&self.db, &self.phone, chat, page, limit).await?;
        Ok((rows.into_iter().map(Message::from).collect(), total))
    }

    /// The phone's contacts, at most `limit`.
    pub async fn contacts(&self, limit: u64) -> Result<Vec<Contact>, Error> {
        let rows = contacts::of_phone(&self.db, &self.phone, limit).await?;
        Ok(rows.into_iter().map(Contact::from).collect())
    }
}
