//! Permanent API tokens (by id; the token itself is never stored or shown again) and
//! revoked session tokens (kept until they would have expired anyway).

use chrono::{DateTime, Utc};
use sea_orm::entity::prelude::*;
use sea_orm::{ConnectionTrait, QueryOrder, Set};

pub mod api_token {
    use sea_orm::entity::prelude::*;

    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "api_tokens")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub id: String,
        pub name: String,
        pub created_at: DateTimeUtc,
        pub revoked_at: Option<DateTimeUtc>,
        /// Comma-separated scopes; NULL: a token from before scopes (it may do everything).
        pub scopes: Option<String>,
        /// Comma-separated E.164 phones it is limited to; NULL: every phone.
        pub phones: Option<String>,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

pub mod revoked_session {
    use sea_orm::entity::prelude::*;

    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "revoked_sessions")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub jti: String,
        pub expires_at: DateTimeUtc,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

pub async fn insert_api_token(
    db: &impl ConnectionTrait,
    id: &str,
    name: &str,
    scopes: String,
    phones: Option<String>,
) -> Result<api_token::Model, DbErr> {
    api_token::ActiveModel {
        id: Set(id.to_owned()),
        name: Set(name.to_owned()),
        created_at: Set(Utc::now()),
        revoked_at: Set(None),
        scopes: Set(Some(scopes)),
        phones: Set(phones),
    }
    .insert(db)
    .await
}

/// Tokens that still work, oldest first.
pub async fn active_api_tokens(db: &impl ConnectionTrait) -> Result<Vec<api_token::Model>, DbErr> {
    api_token::Entity::find()
        .filter(api_token::Column::RevokedAt.is_null())
        .order_by_asc(api_token::Column::CreatedAt)
        .all(db)
        .await
}

/// Marks an active token revoked; false when no active token has that id.
pub async fn revoke_api_token(db: &impl ConnectionTrait, id: &str) -> Result<bool, DbErr> {
    let result = api_token::Entity::update_many()
        .col_expr(api_token::Column::RevokedAt, Expr::value(Utc::now()))
        .filter(api_token::Column::Id.eq(id))
        .filter(api_token::Column::RevokedAt.is_null())
        .exec(db)
        .await?;
    Ok(result.rows_affected > 0)
}

pub async fn revoke_session(db: &impl ConnectionTrait, jti: &str, expires_at: DateTime<Utc>) -> Result<(), DbErr> {
    revoked_session::Entity::insert(revoked_session::ActiveModel {
        jti: Set(jti.to_owned()),
        expires_at: Set(expires_at),
    })
    .on_conflict_do_nothing()
    .exec(db)
    .await?;
    Ok(())
}

/// Revoked sessions that have not expired yet; expired ones are deleted on the way.
pub async fn live_revoked_sessions(db: &impl ConnectionTrait) -> Result<Vec<revoked_session::Model>, DbErr> {
    let now = Utc::now();
    revoked_session::Entity::delete_many()
        .filter(revoked_session::Column::ExpiresAt.lt(now))
        .exec(db)
        .await?;
    revoked_session::Entity::find().all(db).await
}
