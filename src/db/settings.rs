//! Key/value settings owned by the server: the password hash, the JWT signing secret and
//! the session epoch. Keys are a closed set, named by [`Key`].

use chrono::Utc;
use sea_orm::entity::prelude::*;
use sea_orm::sea_query::OnConflict;
use sea_orm::{ConnectionTrait, Set};

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "settings")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub key: String,
    pub value: String,
    pub updated_at: DateTimeUtc,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}

/// The settings the server stores.
#[derive(Copy, Clone, Debug)]
pub enum Key {
    /// The owner's argon2id password hash (PHC string).
    PasswordHash,
    /// The HS256 signing secret for every token, hex encoded.
    JwtSecret,
    /// Bumped on password change: session tokens from an older epoch are void.
    SessionEpoch,
}

impl Key {
    fn as_str(self) -> &'static str {
        match self {
            Key::PasswordHash => "password_hash",
            Key::JwtSecret => "jwt_secret",
            Key::SessionEpoch => "session_epoch",
        }
    }
}

pub async fn get(db: &impl ConnectionTrait, key: Key) -> Result<Option<String>, DbErr> {
    Ok(Entity::find_by_id(key.as_str()).one(db).await?.map(|row| row.value))
}

pub async fn put(db: &impl ConnectionTrait, key: Key, value: &str) -> Result<(), DbErr> {
    let row = ActiveModel {
        key: Set(key.as_str().to_owned()),
        value: Set(value.to_owned()),
        updated_at: Set(Utc::now()),
    };
    Entity::insert(row)
        .on_conflict(
            OnConflict::column(Column::Key)
                .update_columns([Column::Value, Column::UpdatedAt])
                .to_owned(),
        )
        .exec(db)
        .await?;
    Ok(())
}

/// Inserts the value only when the key is absent; returns the value that is stored now.
/// Two servers starting on one database agree on a single JWT secret this way.
pub async fn put_if_absent(db: &impl ConnectionTrait, key: Key, value: &str) -> Result<String, DbErr> {
    let row = ActiveModel {
        key: Set(key.as_str().to_owned()),
        value: Set(value.to_owned()),
        updated_at: Set(Utc::now()),
    };
    Entity::insert(row).on_conflict_do_nothing().exec(db).await?;
    get(db, key)
        .await?
        .ok_or_else(|| DbErr::RecordNotFound(format!("setting {}", key.as_str())))
}
