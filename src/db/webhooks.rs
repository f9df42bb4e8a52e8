//! Webhooks, their services, and the outbox of deliveries.

use chrono::{DateTime, Utc};
use sea_orm::entity::prelude::*;
use sea_orm::sea_query::Expr;
use sea_orm::{ConnectionTrait, QueryOrder, QuerySelect, Set};

use crate::domain::{Delivery, DeliveryStatus, EventKind, Service, Webhook};

pub mod webhook {
    use sea_orm::entity::prelude::*;

    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "webhooks")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub id: String,
        pub url: String,
        pub secret: String,
        pub created_at: DateTimeUtc,
        pub updated_at: DateTimeUtc,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

pub mod service {
    use sea_orm::entity::prelude::*;

    use crate::domain::Service;

    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "webhook_services")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub service: Service,
        pub webhook_id: String,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

pub mod delivery {
    use sea_orm::entity::prelude::*;

    use crate::domain::DeliveryStatus;

    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "webhook_deliveries")]
    pub struct Model {
        #[sea_orm(primary_key)]
        pub id: i64,
        pub event_id: String,
        pub webhook_id: String,
        pub event: String,
        pub phone: Option<String>,
        pub payload: String,
        pub status: DeliveryStatus,
        pub attempts: i32,
        pub next_attempt_at: DateTimeUtc,
        pub last_status_code: Option<i32>,
        pub last_error: Option<String>,
        pub created_at: DateTimeUtc,
        pub updated_at: DateTimeUtc,
        pub delivered_at: Option<DateTimeUtc>,
        /// When the current run of attempts began: `None` means at `created_at`.
        pub retry_since: Option<DateTimeUtc>,
    }

    impl Model {
        /// Since when this delivery has been tried (for `webhooks.give_up_after`).
        pub fn tried_since(&self) -> DateTimeUtc {
            self.retry_since.unwrap_or(self.created_at)
        }
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

/// A webhook with the services it receives.
#[derive(Debug, Clone)]
pub struct WebhookWithServices {
    pub webhook: webhook::Model,
    pub services: Vec<Service>,
}

/// The webhook without its secret.
impl From<WebhookWithServices> for Webhook {
    fn from(hook: WebhookWithServices) -> Self {
        Webhook {
            id: hook.webhook.id,
            url: hook.webhook.url,
            services: hook.services,
            created_at: hook.webhook.created_at,
            updated_at: hook.webhook.updated_at,
        }
    }
}

impl From<delivery::Model> for Delivery {
    fn from(row: delivery::Model) -> Self {
        let pending = row.status == DeliveryStatus::Pending;
        Delivery {
            id: row.event_id,
            event: row.event,
            phone: row.phone,
            status: row.status,
            attempts: row.attempts,
            last_status_code: row.last_status_code,
            last_error: row.last_error,
            next_attempt_at: pending.then_some(row.next_attempt_at),
            created_at: row.created_at,
            updated_at: row.updated_at,
            delivered_at: row.delivered_at,
        }
    }
}

pub async fn all(db: &impl ConnectionTrait) -> Result<Vec<WebhookWithServices>, DbErr> {
    let hooks = webhook::Entity::find()
        .order_by_asc(webhook::Column::CreatedAt)
        .all(db)
        .await?;
    let services = service::Entity::find()
        .order_by_asc(service::Column::Service)
        .all(db)
        .await?;
    Ok(hooks
        .into_iter()
        .map(|webhook| WebhookWithServices {
            services: services
                .iter()
                .filter(|s| s.webhook_id == webhook.id)
                .map(|s| s.service)
                .collect(),
            webhook,
        })
        .collect())
}

pub async fn find(db: &impl ConnectionTrait, id: &str) -> Result<Option<WebhookWithServices>, DbErr> {
    Ok(all(db).await?.into_iter().find(|w| w.webhook.id == id))
}

/// Which webhook, other than `except`, already receives one of `services`.
pub async fn taken(
    db: &impl ConnectionTrait,
    services: &[Service],
    except: Option<&str>,
) -> Result<Option<service::Model>, DbErr> {
    let mut query = service::Entity::find().filter(service::Column::Service.is_in(services.iter().copied()));
    if let Some(id) = except {
        query = query.filter(service::Column::WebhookId.ne(id));
    }
    query.one(db).await
}

pub async fn insert(
    db: &impl ConnectionTrait,
    id: &str,
    url: &str,
    secret: &str,
    services: &[Service],
) -> Result<webhook::Model, DbErr> {
    let now = Utc::now();
    let row = webhook::ActiveModel {
        id: Set(id.to_owned()),
        url: Set(url.to_owned()),
        secret: Set(secret.to_owned()),
        created_at: Set(now),
        updated_at: Set(now),
    }
    .insert(db)
    .await?;
    set_services(db, id, services).await?;
    Ok(row)
}

pub async fn update(db: &impl ConnectionTrait, id: &str, url: &str, services: &[Service]) -> Result<(), DbErr> {
    webhook::Entity::update_many()
        .col_expr(webhook::Column::Url, Expr::value(url))
        .col_expr(webhook::Column::UpdatedAt, Expr::value(Utc::now()))
        .filter(webhook::Column::Id.eq(id))
        .exec(db)
        .await?;
    set_services(db, id, services).await
}

async fn set_services(db: &impl ConnectionTrait, id: &str, services: &[Service]) -> Result<(), DbErr> {
    service::Entity::delete_many()
        .filter(service::Column::WebhookId.eq(id))
        .exec(db)
        .await?;
    for service in services {
        service::ActiveModel {
            service: Set(*service),
            webhook_id: Set(id.to_owned()),
        }
        .insert(db)
        .await?;
    }
    Ok(())
}

pub async fn set_secret(db: &impl ConnectionTrait, id: &str, secret: &str) -> Result<(), DbErr> {
    webhook::Entity::update_many()
        .col_expr(webhook::Column::Secret, Expr::value(secret))
        .col_expr(webhook::Column::UpdatedAt, Expr::value(Utc::now()))
        .filter(webhook::Column::Id.eq(id))
        .exec(db)
        .await?;
    Ok(())
}

pub async fn delete(db: &impl ConnectionTrait, id: &str) -> Result<bool, DbErr> {
    // Services and deliveries go with it (ON DELETE CASCADE); delete them explicitly too,
    // for databases opened without foreign keys enforced.
    service::Entity::delete_many()
        .filter(service::Column::WebhookId.eq(id))
        .exec(db)
        .await?;
    delivery::Entity::delete_many()
        .filter(delivery::Column::WebhookId.eq(id))
        .exec(db)
        .await?;
    Ok(webhook::Entity::delete_by_id(id).exec(db).await?.rows_affected > 0)
}

/// A delivery about to be written to the outbox.
pub struct NewDelivery<'a> {
    pub event_id: &'a str,
    pub webhook_id: &'a str,
    pub event: &'a str,
    pub phone: Option<&'a str>,
    pub payload: &'a str,
    pub status: DeliveryStatus,
}

pub async fn insert_delivery(db: &impl ConnectionTrait, new: NewDelivery<'_>) -> Result<delivery::Model, DbErr> {
    let now = Utc::now();
    delivery::ActiveModel {
        event_id: Set(new.event_id.to_owned()),
        webhook_id: Set(new.webhook_id.to_owned()),
        event: Set(new.event.to_owned()),
        phone: Set(new.phone.map(str::to_owned)),
        payload: Set(new.payload.to_owned()),
        status: Set(new.status),
        attempts: Set(0),
        next_attempt_at: Set(now),
        last_status_code: Set(None),
        last_error: Set(None),
        created_at: Set(now),
        updated_at: Set(now),
        delivered_at: Set(None),
        retry_since: Set(None),
        ..Default::default()
    }
    .insert(db)
    .await
}

/// The lanes (webhook, phone) with pending deliveries, each with its oldest one's id.
pub async fn pending_lanes(db: &impl ConnectionTrait) -> Result<Vec<(String, Option<String>, i64)>, DbErr> {
    delivery::Entity::find()
        .select_only()
        .column(delivery::Column::WebhookId)
        .column(delivery::Column::Phone)
        .column_as(delivery::Column::Id.min(), "first")
        .filter(delivery::Column::Status.eq(DeliveryStatus::Pending))
        .group_by(delivery::Column::WebhookId)
        .group_by(delivery::Column::Phone)
        .into_tuple()
        .all(db)
        .await
}

/// One lane's pending deliveries, oldest first, after `after` (by id).
pub async fn pending_in_lane(
    db: &impl ConnectionTrait,
    webhook_id: &str,
    phone: Option<&str>,
    after: i64,
    limit: u64,
) -> Result<Vec<delivery::Model>, DbErr> {
    let phone = match phone {
        Some(phone) => delivery::Column::Phone.eq(phone),
        None => delivery::Column::Phone.is_null(),
    };
    delivery::Entity::find()
        .filter(delivery::Column::Status.eq(DeliveryStatus::Pending))
        .filter(delivery::Column::WebhookId.eq(webhook_id))
        .filter(phone)
        .filter(delivery::Column::Id.gt(after))
        .order_by_asc(delivery::Column::Id)
        .limit(limit)
        .all(db)
        .await
}

/// Marks deliveries delivered, with the attempt count and the receiver's status code.
pub async fn mark_delivered(db: &impl ConnectionTrait, done: &[(i64, i32, u16)]) -> Result<(), DbErr> {
    let now = Utc::now();
    for (id, attempts, code) in done {
        delivery::Entity::update_many()
            .col_expr(delivery::Column::Status, Expr::value(DeliveryStatus::Delivered))
            .col_expr(delivery::Column::Attempts, Expr::value(*attempts))
            .col_expr(delivery::Column::LastStatusCode, Expr::value(i32::from(*code)))
            .col_expr(delivery::Column::LastError, Expr::value(Option::<String>::None))
            .col_expr(delivery::Column::DeliveredAt, Expr::value(now))
            .col_expr(delivery::Column::UpdatedAt, Expr::value(now))
            .filter(delivery::Column::Id.eq(*id))
            .exec(db)
            .await?;
    }
    Ok(())
}

/// Records a failed attempt: the next try, or `failed` when `next` is `None`.
pub async fn record_failure(
    db: &impl ConnectionTrait,
    id: i64,
    attempts: i32,
    code: Option<u16>,
    error: &str,
    next: Option<DateTime<Utc>>,
) -> Result<(), DbErr> {
    let now = Utc::now();
    let mut update = delivery::Entity::update_many()
        .col_expr(delivery::Column::Attempts, Expr::value(attempts))
        .col_expr(delivery::Column::LastStatusCode, Expr::value(code.map(i32::from)))
        .col_expr(delivery::Column::LastError, Expr::value(error))
        .col_expr(delivery::Column::UpdatedAt, Expr::value(now));
    update = match next {
        Some(at) => update.col_expr(delivery::Column::NextAttemptAt, Expr::value(at)),
        None => update.col_expr(delivery::Column::Status, Expr::value(DeliveryStatus::Failed)),
    };
    update.filter(delivery::Column::Id.eq(id)).exec(db).await?;
    Ok(())
}

/// Puts a delivery back in the queue for a new run of attempts; returns it, or `None`
/// when the webhook has no such delivery.
pub async fn requeue(
    db: &impl ConnectionTrait,
    webhook_id: &str,
    event_id: &str,
) -> Result<Option<delivery::Model>, DbErr> {
    let rows = requeue_where(db, webhook_id, delivery::Column::EventId.eq(event_id)).await?;
    Ok(rows.into_iter().next())
}

/// Puts every delivery of the webhook in `status` back in the queue, oldest first. Test
/// pings are never sent again.
pub async fn requeue_all(
    db: &impl ConnectionTrait,
    webhook_id: &str,
    status: DeliveryStatus,
) -> Result<Vec<delivery::Model>, DbErr> {
    let which = sea_orm::Condition::all()
        .add(delivery::Column::Status.eq(status))
        .add(delivery::Column::Event.ne(EventKind::Ping.as_str()));
    let mut rows = requeue_where(db, webhook_id, which).await?;
    rows.sort_by_key(|row| row.id);
    Ok(rows)
}

async fn requeue_where(
    db: &impl ConnectionTrait,
    webhook_id: &str,
    which: impl sea_orm::sea_query::IntoCondition,
) -> Result<Vec<delivery::Model>, DbErr> {
    let now = Utc::now();
    delivery::Entity::update_many()
        .col_expr(delivery::Column::Status, Expr::value(DeliveryStatus::Pending))
        .col_expr(delivery::Column::Attempts, Expr::value(0))
        .col_expr(delivery::Column::NextAttemptAt, Expr::value(now))
        .col_expr(delivery::Column::RetrySince, Expr::value(now))
        .col_expr(delivery::Column::UpdatedAt, Expr::value(now))
        .filter(delivery::Column::WebhookId.eq(webhook_id))
        .filter(which)
        .exec_with_returning(db)
        .await
}

/// One page of a webhook's deliveries, newest first, and the total.
pub async fn page(
    db: &impl ConnectionTrait,
    webhook_id: &str,
    status: Option<DeliveryStatus>,
    offset: u64,
    limit: u64,
) -> Result<(Vec<delivery::Model>, u64), DbErr> {
    let query = || {
        let mut q = delivery::Entity::find().filter(delivery::Column::WebhookId.eq(webhook_id));
        if let Some(status) = status {
            q = q.filter(delivery::Column::Status.eq(status));
        }
        q
    };
    let total = query().count(db).await?;
    let rows = query()
        .order_by_desc(delivery::Column::Id)
        .offset(offset)
        .limit(limit)
        .all(db)
        .await?;
    Ok((rows, total))
}

/// Deliveries waiting, for the health report.
pub async fn count_pending(db: &impl ConnectionTrait) -> Result<u64, DbErr> {
    delivery::Entity::find()
        .filter(delivery::Column::Status.eq(DeliveryStatus::Pending))
        .count(db)
        .await
}
