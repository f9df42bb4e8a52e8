//! Received media files: downloaded by the phone's session after the message is stored
//! (the row first, so a failed download loses nothing), kept in the media store, and
//! announced as `message.media`. Downloads run on tasks, `media.concurrency` at a time; a
//! failure is retried with a doubling backoff up to `media.attempts`, and downloads still
//! pending when the phone goes offline or the server stops resume at the next connect.

use std::collections::{HashSet, VecDeque};
use std::sync::Arc;

use ractor::ActorRef;
use sea_orm::TransactionTrait;

use super::{PhoneMsg, PhoneState};
use crate::config::MediaConfig;
use crate::db::messages::{self, MediaState, Model as StoredMessage};
use crate::domain::{MediaStatus, PhoneNumber, PhoneStatus, Service};
use crate::engine::{EngineError, MediaRef, Session};
use crate::media::store::{Kept, MediaStore};

/// How many pending downloads are read from the database at a connect.
const RESUME_BATCH: u64 = 1_000;

/// The downloads of one phone, by message row: each is in one place at a time.
#[derive(Default)]
pub struct MediaQueue {
    /// Waiting for a free slot (or for the phone to come online), oldest first.
    waiting: VecDeque<i64>,
    queued: HashSet<i64>,
    running: HashSet<i64>,
    /// Failed, with a retry scheduled.
    retrying: HashSet<i64>,
    /// Where the next read of pending downloads starts (a `seq`), when the last one
    /// filled a whole batch: it is read once these ran.
    more: Option<i64>,
    /// A download found the session offline: none starts until the next connect.
    offline: bool,
}

impl MediaQueue {
    fn holds(&self, id: i64) -> bool {
        self.queued.contains(&id) || self.running.contains(&id) || self.retrying.contains(&id)
    }
}

/// How a download went.
pub struct Fetched {
    /// The message's row.
    pub id: i64,
    /// Attempts made before this one.
    pub attempts: i32,
    pub result: Result<Kept, FetchError>,
}

pub enum FetchError {
    /// Worth another attempt later.
    Retry(String),
    /// Not attempted (the message could not be read): try again later, uncounted.
    NotAttempted(String),
    /// Not to be downloaded by the settings (`media.download`, `media.max_download_bytes`).
    Skip(String),
    /// Asking again cannot help (WhatsApp no longer has the file, its keys are unreadable).
    Permanent(String),
    /// The phone went offline: tried again at the next connect, not counted.
    Offline,
    /// The message changed meanwhile (already kept, or gone): nothing to do.
    Moot,
}

impl PhoneState {
    /// Queues the download of a stored message's file, unless it is already under way.
    pub(super) fn fetch_media(&mut self, myself: &ActorRef<PhoneMsg>, id: i64) {
        if !self.media.holds(id) {
            self.media.queued.insert(id);
            self.media.waiting.push_back(id);
        }
        self.pump_media(myself);
    }

    /// A scheduled retry is due.
    pub(super) fn retry_media(&mut self, myself: &ActorRef<PhoneMsg>, id: i64) {
        self.media.retrying.remove(&id);
        self.fetch_media(myself, id);
    }

    /// Queues the downloads still pending, from the message after `seq` (0 at a connect),
    /// a batch at a time.
    pub(super) async fn resume_media(&mut self, myself: &ActorRef<PhoneMsg>, after: i64) {
        if after == 0 {
            self.media.offline = false;
        }
        match messages::media_pending(&self.shared.db, &self.phone, after, RESUME_BATCH).await {
            Ok(rows) => {
                self.media.more = rows
                    .last()
                    .filter(|_| rows.len() as u64 == RESUME_BATCH)
                    .map(|last| last.seq);
                for row in rows {
                    self.fetch_media(myself, row.id);
                }
            }
            Err(err) => {
                tracing::warn!(phone = %self.phone, error = %err, "cannot read the pending media downloads");
                // Read again later rather than leave them until the next connect.
                let wait = self.shared.config.media.retry_backoff_max;
                myself.send_after(wait, move || PhoneMsg::ResumeMedia(after));
            }
        }
    }

    /// Starts queued downloads while there is room and the phone is online.
    fn pump_media(&mut self, myself: &ActorRef<PhoneMsg>) {
        while self.state.status == PhoneStatus::Connected
            && !self.media.offline
            && self.media.running.len() < self.shared.config.media.concurrency
            && let Some(id) = self.media.waiting.pop_front()
        {
            self.media.queued.remove(&id);
            self.media.running.insert(id);
            let session = Arc::clone(&self.session);
            let db = self.shared.db.clone();
            let store = self.shared.media.clone();
            let phone = self.phone.clone();
            let config = Arc::clone(&self.shared.config);
            let me = myself.clone();
            tokio::spawn(async move {
                let fetched = fetch(&db, session, store, &config.media, phone, id).await;
                let _ = me.cast(PhoneMsg::MediaFetched(fetched));
            });
        }
        let idle = self.media.waiting.is_empty() && self.media.running.is_empty();
        if idle
            && self.state.status == PhoneStatus::Connected
            && let Some(after) = self.media.more.take()
        {
            let _ = myself.cast(PhoneMsg::ResumeMedia(after));
        }
    }

    /// Records how a download went, and announces the file kept or given up.
    pub(super) async fn media_fetched(&mut self, myself: &ActorRef<PhoneMsg>, fetched: Fetched) {
        self.media.running.remove(&fetched.id);
        let config = Arc::clone(&self.shared.config);
        let config = &config.media;
        let attempts = fetched.attempts + 1;
        let (state, retry) = match fetched.result {
            Ok(kept) => (
                MediaState {
                    status: MediaStatus::Stored,
                    sha256: Some(kept.sha256),
                    size: i64::try_from(kept.size).ok(),
                    attempts,
                    error: None,
                },
                None,
            ),
            Err(FetchError::Moot) => return self.pump_media(myself),
            Err(FetchError::Offline) => {
                // First in line at the next connect; nothing starts until then.
                self.media.offline = true;
                if self.media.queued.insert(fetched.id) {
                    self.media.waiting.push_front(fetched.id);
                }
                return;
            }
            Err(FetchError::NotAttempted(error)) => {
                tracing::warn!(phone = %self.phone, %error, "a media download could not start");
                self.retry_later(myself, fetched.id, config.retry_backoff_max);
                return self.pump_media(myself);
            }
            Err(FetchError::Skip(reason)) => (
                MediaState {
                    status: MediaStatus::Skipped,
                    sha256: None,
                    size: None,
                    attempts: fetched.attempts,
                    error: Some(reason),
                },
                None,
            ),
            Err(FetchError::Retry(error)) if attempts < i32::try_from(config.attempts).unwrap_or(i32::MAX) => {
                let wait = config.backoff(u32::try_from(attempts).unwrap_or(u32::MAX));
                (
                    MediaState {
                        status: MediaStatus::Pending,
                        sha256: None,
                        size: None,
                        attempts,
                        error: Some(error),
                    },
                    Some(wait),
                )
            }
            Err(FetchError::Retry(error) | FetchError::Permanent(error)) => (
                MediaState {
                    status: MediaStatus::Failed,
                    sha256: None,
                    size: None,
                    attempts,
                    error: Some(error),
                },
                None,
            ),
        };
        let announce = matches!(state.status, MediaStatus::Stored | MediaStatus::Failed);
        match self.record_media(fetched.id, state, announce).await {
            Ok(()) => {
                if let Some(wait) = retry {
                    self.retry_later(myself, fetched.id, wait);
                }
            }
            Err(err) => {
                // The row still says pending: try the whole download again later.
                tracing::warn!(phone = %self.phone, error = %err, "cannot record a media download");
                self.retry_later(myself, fetched.id, retry.unwrap_or(config.retry_backoff_max));
            }
        }
        self.pump_media(myself);
    }

    fn retry_later(&mut self, myself: &ActorRef<PhoneMsg>, id: i64, wait: std::time::Duration) {
        self.media.retrying.insert(id);
        myself.send_after(wait, move || PhoneMsg::FetchMedia(id));
    }

    async fn record_media(&self, id: i64, state: MediaState, announce: bool) -> Result<(), sea_orm::DbErr> {
        let db = &self.shared.db;
        if !announce {
            messages::set_media(db, id, state).await?;
            return Ok(());
        }
        let txn = db.begin().await?;
        let Some(row) = messages::set_media(&txn, id, state).await? else {
            return Ok(());
        };
        let event = self.event(Service::MessageMedia, &row);
        let delivery = self.shared.outbox.record(&txn, &event).await?;
        txn.commit().await?;
        self.announce(vec![event], delivery.into_iter().collect());
        Ok(())
    }
}

/// Downloads one message's file into the store.
async fn fetch(
    db: &sea_orm::DatabaseConnection,
    session: Arc<dyn Session>,
    store: MediaStore,
    config: &MediaConfig,
    phone: PhoneNumber,
    id: i64,
) -> Fetched {
    let row = match messages::by_id(db, id).await {
        Ok(Some(row)) if row.media_status == Some(MediaStatus::Pending) => row,
        Ok(_) => return moot(id),
        Err(err) => {
            return Fetched {
                id,
                attempts: 0,
                result: Err(FetchError::NotAttempted(format!("cannot read the message: {err}"))),
            };
        }
    };
    let attempts = row.media_attempts;
    let result = match tokio::time::timeout(config.timeout, download(&session, &store, config, &phone, &row)).await {
        Ok(result) => result,
        Err(_) => Err(FetchError::Retry(format!(
            "the download took longer than media.timeout ({})",
            humantime::format_duration(config.timeout)
        ))),
    };
    Fetched { id, attempts, result }
}

fn moot(id: i64) -> Fetched {
    Fetched {
        id,
        attempts: 0,
        result: Err(FetchError::Moot),
    }
}

async fn download(
    session: &Arc<dyn Session>,
    store: &MediaStore,
    config: &MediaConfig,
    phone: &PhoneNumber,
    row: &StoredMessage,
) -> Result<Kept, FetchError> {
    let Some(kind) = row.kind.media() else {
        return Err(FetchError::Permanent(format!("a {:?} message has no file", row.kind)));
    };
    // Settings may have changed since the message was stored (or it predates them).
    let size = row.media_size.and_then(|s| u64::try_from(s).ok());
    if let Some(reason) = config.skips(kind, size) {
        return Err(FetchError::Skip(reason));
    }
    let media: MediaRef = row
        .media_ref
        .as_deref()
        .and_then(|r| serde_json::from_str(r).ok())
        .ok_or_else(|| FetchError::Permanent("the message carries no readable file keys".into()))?;
    let temp = {
        let store = store.clone();
        tokio::task::spawn_blocking(move || store.temp())
            .await
            .map_err(|e| FetchError::Retry(e.to_string()))?
            .map_err(|e| FetchError::Retry(format!("cannot create a file in the media folder: {e}")))?
    };
    let into = temp
        .reopen()
        .map_err(|e| FetchError::Retry(format!("cannot open a file in the media folder: {e}")))?;
    match session.download(&media, kind, size, into).await {
        Ok(()) => {}
        Err(EngineError::NotConnected) => return Err(FetchError::Offline),
        Err(err @ EngineError::NotFound(_)) => return Err(FetchError::Permanent(err.to_string())),
        Err(err) => return Err(FetchError::Retry(err.to_string())),
    }
    let (store, phone, message_id) = (store.clone(), phone.clone(), row.message_id.clone());
    let expected = Some(media.file_sha256).filter(|sha| sha.len() == 32);
    tokio::task::spawn_blocking(move || store.keep(&phone, &message_id, temp, expected.as_deref()))
        .await
        .map_err(|e| FetchError::Retry(e.to_string()))?
        .map_err(|e| FetchError::Retry(format!("cannot keep the file: {e}")))
}
