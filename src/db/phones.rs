//! The phones table: what each phone's session last reported, kept so that the API can
//! list phones without asking their actors and a restart knows which phones to resume.

use chrono::{DateTime, Utc};
use sea_orm::entity::prelude::*;
use sea_orm::{ConnectionTrait, QueryOrder, Set};

use crate::domain::{PhoneNumber, PhoneStatus};

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "phones")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub phone: String,
    pub country: Option<String>,
    pub status: String,
    pub jid: Option<String>,
    pub lid: Option<String>,
    pub push_name: Option<String>,
    pub connected_at: Option<DateTimeUtc>,
    pub last_error: Option<String>,
    pub created_at: DateTimeUtc,
    pub updated_at: DateTimeUtc,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}

/// The part of a phone's row its session owns.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionState {
    pub status: PhoneStatus,
    pub jid: Option<String>,
    pub lid: Option<String>,
    pub push_name: Option<String>,
    pub connected_at: Option<DateTime<Utc>>,
    pub last_error: Option<String>,
}

impl Model {
    pub fn status(&self) -> PhoneStatus {
        // A value this build does not know (written by a newer one) reads as disconnected.
        self.status.parse().unwrap_or(PhoneStatus::Disconnected)
    }

    pub fn session_state(&self) -> SessionState {
        SessionState {
            status: self.status(),
            jid: self.jid.clone(),
            lid: self.lid.clone(),
            push_name: self.push_name.clone(),
            connected_at: self.connected_at,
            last_error: self.last_error.clone(),
        }
    }
}

pub async fn insert(db: &impl ConnectionTrait, phone: &PhoneNumber, country: Option<String>) -> Result<Model, DbErr> {
    let now = Utc::now();
    ActiveModel {
        phone: Set(phone.to_string()),
        country: Set(country),
        status: Set(PhoneStatus::Disconnected.as_str().to_owned()),
        jid: Set(None),
        lid: Set(None),
        push_name: Set(None),
        connected_at: Set(None),
        last_error: Set(None),
        created_at: Set(now),
        updated_at: Set(now),
    }
    .insert(db)
    .await
}

pub async fn all(db: &impl ConnectionTrait) -> Result<Vec<Model>, DbErr> {
    Entity::find().order_by_asc(Column::CreatedAt).all(db).await
}

pub async fn find(db: &impl ConnectionTrait, phone: &PhoneNumber) -> Result<Option<Model>, DbErr> {
    Entity::find_by_id(phone.as_str()).one(db).await
}

pub async fn count(db: &impl ConnectionTrait) -> Result<u64, DbErr> {
    Entity::find().count(db).await
}

pub async fn save_state(db: &impl ConnectionTrait, phone: &PhoneNumber, state: &SessionState) -> Result<(), DbErr> {
    Entity::update_many()
        .col_expr(Column::Status, Expr::value(state.status.as_str()))
        .col_expr(Column::Jid, Expr::value(state.jid.clone()))
        .col_expr(Column::Lid, Expr::value(state.lid.clone()))
        .col_expr(Column::PushName, Expr::value(state.push_name.clone()))
        .col_expr(Column::ConnectedAt, Expr::value(state.connected_at))
        .col_expr(Column::LastError, Expr::value(state.last_error.clone()))
        .col_expr(Column::UpdatedAt, Expr::value(Utc::now()))
        .filter(Column::Phone.eq(phone.as_str()))
        .exec(db)
        .await?;
    Ok(())
}

pub async fn delete(db: &impl ConnectionTrait, phone: &PhoneNumber) -> Result<bool, DbErr> {
    let result = Entity::delete_by_id(phone.as_str()).exec(db).await?;
    Ok(result.rows_affected > 0)
}
