//! A message's kind is one of a known set, which the app reads as an enum: a row of any
//! other kind (none should exist, but a database written by an early build could hold
//! one) becomes `unsupported`, its old kind kept as the raw kind when it had none. Plain
//! SQL that SQLite and PostgreSQL both run; `down` leaves the data as it is.

use sea_orm_migration::prelude::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

/// The kinds as of this migration. Later kinds are added to the app's enum, not here.
const KNOWN: [&str; 14] = [
    "text",
    "image",
    "video",
    "audio",
    "document",
    "sticker",
    "list",
    "list_reply",
    "reaction",
    "reaction_removed",
    "location",
    "contact",
    "poll",
    "unsupported",
];

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        let known = KNOWN.map(|kind| format!("'{kind}'")).join(", ");
        manager
            .get_connection()
            .execute_unprepared(&format!(
                "UPDATE messages SET raw_kind = COALESCE(raw_kind, kind), kind = 'unsupported' \
                 WHERE kind NOT IN ({known})"
            ))
            .await?;
        Ok(())
    }

    async fn down(&self, _manager: &SchemaManager) -> Result<(), DbErr> {
        Ok(())
    }
}
