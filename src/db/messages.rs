//! Message history of every phone, both directions. Rows of one phone are numbered by
//! `seq` without gaps (the phone's actor is their only writer), so a page of history is a
//! range lookup on `(phone, seq)` however deep it is.

use chrono::{DateTime, Utc};
use sea_orm::entity::prelude::*;
use sea_orm::sea_query::Expr;
use sea_orm::{ConnectionTrait, QueryOrder, QuerySelect, Set};

use crate::domain::{Details, Direction, MediaInfo, MediaStatus, Message, MessageKind, MessageStatus, PhoneNumber};

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "messages")]
pub struct Model {
    #[sea_orm(primary_key)]
    pub id: i64,
    pub phone: String,
    pub seq: i64,
    pub message_id: String,
    pub direction: Direction,
    pub chat: String,
    pub sender: String,
    pub kind: MessageKind,
    pub body: Option<String>,
    pub media_mime: Option<String>,
    pub media_file_name: Option<String>,
    pub media_size: Option<i64>,
    pub quoted_id: Option<String>,
    pub push_name: Option<String>,
    pub status: MessageStatus,
    pub timestamp: DateTimeUtc,
    /// For an `unsupported` message: the kind WhatsApp gave it.
    pub raw_kind: Option<String>,
    /// The sender's LID, when WhatsApp addresses them by one (`sender` is their number).
    pub sender_lid: Option<String>,
    /// The message this one acts on: for a reaction, the message reacted to.
    pub target_id: Option<String>,
    /// For a list reply: the id of the row picked.
    pub selected_id: Option<String>,
    /// For received media: where WhatsApp keeps the file and its keys (JSON of
    /// [`crate::engine::MediaRef`]); never shown through the API.
    pub media_ref: Option<String>,
    /// Where the message's file stands; `None` when it has none.
    pub media_status: Option<MediaStatus>,
    /// SHA-256 of the kept file, hex.
    pub media_sha256: Option<String>,
    /// Download attempts made.
    pub media_attempts: i32,
    /// Why the file is not kept, or why the last attempt failed.
    pub media_error: Option<String>,
    /// A shared place or contact cards: JSON of [`Details`].
    pub details: Option<String>,
    pub created_at: DateTimeUtc,
    pub updated_at: DateTimeUtc,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}

impl From<Model> for Message {
    fn from(row: Model) -> Self {
        Message {
            media: row.media_mime.map(|mime| MediaInfo {
                mime,
                file_name: row.media_file_name,
                size: row.media_size,
                status: row.media_status.unwrap_or(MediaStatus::Failed),
                sha256: row.media_sha256,
                error: row.media_error,
            }),
            phone: row.phone,
            details: row.details.as_deref().and_then(|d| serde_json::from_str(d).ok()),
            id: row.message_id,
            direction: row.direction,
            chat: row.chat,
            sender: row.sender,
            sender_lid: row.sender_lid,
            push_name: row.push_name,
            kind: row.kind,
            raw_kind: row.raw_kind,
            text: row.body,
            status: row.status,
            quoted_id: row.quoted_id,
            target_id: row.target_id,
            selected_id: row.selected_id,
            timestamp: row.timestamp,
            stored_at: row.created_at,
        }
    }
}

/// A message about to be stored.
#[derive(Debug, Clone)]
pub struct NewMessage {
    pub message_id: String,
    pub direction: Direction,
    pub chat: String,
    pub sender: String,
    pub kind: MessageKind,
    pub body: Option<String>,
    pub media_mime: Option<String>,
    pub media_file_name: Option<String>,
    pub media_size: Option<i64>,
    pub quoted_id: Option<String>,
    pub push_name: Option<String>,
    pub status: MessageStatus,
    pub timestamp: DateTime<Utc>,
    pub raw_kind: Option<String>,
    pub sender_lid: Option<String>,
    pub target_id: Option<String>,
    pub selected_id: Option<String>,
    pub media_ref: Option<String>,
    pub media_status: Option<MediaStatus>,
    pub media_sha256: Option<String>,
    pub media_error: Option<String>,
    pub details: Option<Details>,
}

/// The highest `seq` stored for the phone (0 when it has none).
pub async fn last_seq(db: &impl ConnectionTrait, phone: &PhoneNumber) -> Result<i64, DbErr> {
    let last: Option<Option<i64>> = Entity::find()
        .select_only()
        .column_as(Column::Seq.max(), "last")
        .filter(Column::Phone.eq(phone.as_str()))
        .into_tuple()
        .one(db)
        .await?;
    Ok(last.flatten().unwrap_or(0))
}

pub async fn insert(
    db: &impl ConnectionTrait,
    phone: &PhoneNumber,
    seq: i64,
    message: NewMessage,
) -> Result<Model, DbErr> {
    let now = Utc::now();
    // PostgreSQL's text cannot hold NUL; it carries nothing a person reads anyway.
    let clean = |s: Option<String>| s.map(|s| s.replace('\0', ""));
    ActiveModel {
        phone: Set(phone.to_string()),
        seq: Set(seq),
        message_id: Set(message.message_id),
        direction: Set(message.direction),
        chat: Set(message.chat),
        sender: Set(message.sender),
        kind: Set(message.kind),
        body: Set(clean(message.body)),
        media_mime: Set(clean(message.media_mime)),
        media_file_name: Set(clean(message.media_file_name)),
        media_size: Set(message.media_size),
        quoted_id: Set(clean(message.quoted_id)),
        push_name: Set(clean(message.push_name)),
        status: Set(message.status),
        timestamp: Set(message.timestamp),
        raw_kind: Set(message.raw_kind),
        sender_lid: Set(message.sender_lid),
        target_id: Set(clean(message.target_id)),
        selected_id: Set(clean(message.selected_id)),
        media_ref: Set(message.media_ref),
        media_status: Set(message.media_status),
        media_sha256: Set(message.media_sha256),
        media_error: Set(message.media_error),
        details: Set(message
            .details
            .and_then(|d| serde_json::to_string(&d).ok())
            .map(|d| d.replace('\0', ""))),
        created_at: Set(now),
        updated_at: Set(now),
        ..Default::default()
    }
    .insert(db)
    .await
}

pub async fn by_id(db: &impl ConnectionTrait, id: i64) -> Result<Option<Model>, DbErr> {
    Entity::find_by_id(id).one(db).await
}

/// The phone's messages after `seq` whose file waits to be downloaded, oldest first.
pub async fn media_pending(
    db: &impl ConnectionTrait,
    phone: &PhoneNumber,
    after: i64,
    limit: u64,
) -> Result<Vec<Model>, DbErr> {
    Entity::find()
        .filter(Column::Phone.eq(phone.as_str()))
        .filter(Column::MediaStatus.eq(MediaStatus::Pending))
        .filter(Column::Seq.gt(after))
        .order_by_asc(Column::Seq)
        .limit(limit)
        .all(db)
        .await
}

/// Where a message's file stands now.
#[derive(Debug, Clone)]
pub struct MediaState {
    pub status: MediaStatus,
    pub sha256: Option<String>,
    pub size: Option<i64>,
    pub attempts: i32,
    pub error: Option<String>,
}

/// Records where a message's file stands, and answers the message as it is now.
pub async fn set_media(db: &impl ConnectionTrait, id: i64, media: MediaState) -> Result<Option<Model>, DbErr> {
    let mut update = Entity::update_many()
        .col_expr(Column::MediaStatus, Expr::value(media.status))
        .col_expr(Column::MediaSha256, Expr::value(media.sha256))
        .col_expr(Column::MediaAttempts, Expr::value(media.attempts))
        .col_expr(Column::MediaError, Expr::value(media.error))
        .col_expr(Column::UpdatedAt, Expr::value(Utc::now()));
    if let Some(size) = media.size {
        update = update.col_expr(Column::MediaSize, Expr::value(size));
    }
    update.filter(Column::Id.eq(id)).exec(db).await?;
    Entity::find_by_id(id).one(db).await
}

/// A message of the phone by its WhatsApp id (the newest, should ids repeat across chats).
pub async fn find(db: &impl ConnectionTrait, phone: &PhoneNumber, message_id: &str) -> Result<Option<Model>, DbErr> {
    Entity::find()
        .filter(Column::Phone.eq(phone.as_str()))
        .filter(Column::MessageId.eq(message_id))
        .order_by_desc(Column::Seq)
        .one(db)
        .await
}

/// Whether an inbound message with this identity is already stored (a redelivery): the
/// same id from the same sender, whichever address the sender had when it was stored (a
/// message first kept under a LID comes again under the number once it is known).
pub async fn is_stored(
    db: &impl ConnectionTrait,
    phone: &PhoneNumber,
    senders: &[&str],
    message_id: &str,
) -> Result<bool, DbErr> {
    let found = Entity::find()
        .select_only()
        .column(Column::Id)
        .filter(Column::Phone.eq(phone.as_str()))
        .filter(Column::MessageId.eq(message_id))
        .filter(
            sea_orm::Condition::any()
                .add(Column::Sender.is_in(senders.iter().copied()))
                .add(Column::SenderLid.is_in(senders.iter().copied())),
        )
        .into_tuple::<i64>()
        .one(db)
        .await?;
    Ok(found.is_some())
}

/// Moves sent messages forward to `status` (never backwards); returns the rows changed.
pub async fn advance_status(
    db: &impl ConnectionTrait,
    phone: &PhoneNumber,
    ids: &[String],
    status: MessageStatus,
) -> Result<Vec<Model>, DbErr> {
    Entity::update_many()
        .col_expr(Column::Status, Expr::value(status))
        .col_expr(Column::UpdatedAt, Expr::value(Utc::now()))
        .filter(Column::Phone.eq(phone.as_str()))
        .filter(Column::Direction.eq(Direction::Out))
        .filter(Column::MessageId.is_in(ids.iter().map(String::as_str)))
        .filter(Column::Status.is_in(status.predecessors().iter().copied()))
        .exec_with_returning(db)
        .await
}

/// The received messages of a chat not yet marked read, oldest first (at most `limit`).
pub async fn unread(
    db: &impl ConnectionTrait,
    phone: &PhoneNumber,
    chat: &str,
    limit: u64,
) -> Result<Vec<Model>, DbErr> {
    Entity::find()
        .filter(Column::Phone.eq(phone.as_str()))
        .filter(Column::Chat.eq(chat))
        .filter(Column::Direction.eq(Direction::In))
        .filter(Column::Status.eq(MessageStatus::Received))
        .order_by_asc(Column::Seq)
        .limit(limit)
        .all(db)
        .await
}

/// Marks received messages read by this phone.
pub async fn mark_read(db: &impl ConnectionTrait, phone: &PhoneNumber, ids: &[i64]) -> Result<u64, DbErr> {
    let result = Entity::update_many()
        .col_expr(Column::Status, Expr::value(MessageStatus::Read))
        .col_expr(Column::UpdatedAt, Expr::value(Utc::now()))
        .filter(Column::Phone.eq(phone.as_str()))
        .filter(Column::Direction.eq(Direction::In))
        .filter(Column::Id.is_in(ids.iter().copied()))
        .exec(db)
        .await?;
    Ok(result.rows_affected)
}

/// One page of a phone's history, newest first, and the number of messages in total.
pub async fn page(
    db: &impl ConnectionTrait,
    phone: &PhoneNumber,
    chat: Option<&str>,
    page: u64,
    limit: u64,
) -> Result<(Vec<Model>, u64), DbErr> {
    let skip = page.saturating_sub(1).saturating_mul(limit);
    match chat {
        None => {
            // Gap-free numbering: the page is the seq range just below `last - skip`.
            let last = last_seq(db, phone).await?;
            let first = Entity::find()
                .select_only()
                .column_as(Column::Seq.min(), "first")
                .filter(Column::Phone.eq(phone.as_str()))
                .into_tuple::<Option<i64>>()
                .one(db)
                .await?
                .flatten()
                .unwrap_or(1);
            let total = if last == 0 {
                0
            } else {
                u64::try_from(last - first + 1).unwrap_or(0)
            };
            let top = last - i64::try_from(skip).unwrap_or(i64::MAX);
            if top < first {
                return Ok((Vec::new(), total));
            }
            let rows = Entity::find()
                .filter(Column::Phone.eq(phone.as_str()))
                .filter(Column::Seq.lte(top))
                .order_by_desc(Column::Seq)
                .limit(limit)
                .all(db)
                .await?;
            Ok((rows, total))
        }
        Some(chat) => {
            let query = || {
                Entity::find()
                    .filter(Column::Phone.eq(phone.as_str()))
                    .filter(Column::Chat.eq(chat))
            };
            let total = query().count(db).await?;
            let rows = query()
                .order_by_desc(Column::Seq)
                .offset(skip)
                .limit(limit)
                .all(db)
                .await?;
            Ok((rows, total))
        }
    }
}
