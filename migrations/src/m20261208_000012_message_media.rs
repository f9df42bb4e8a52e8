//! Received media kept by the gateway: each message with a file says where its download
//! stands (`pending`, `stored`, `failed`, `skipped`), the file's SHA-256 once kept, the
//! attempts made and the last error. Files received before this version whose keys were
//! kept are `pending`, so they are downloaded at the next connect; others are `failed`.

use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        // One column per statement: SQLite alters a table one column at a time.
        for column in [
            ColumnDef::new(Messages::MediaStatus).text().null().to_owned(),
            ColumnDef::new(Messages::MediaSha256).text().null().to_owned(),
            integer(Messages::MediaAttempts).default(0).to_owned(),
            ColumnDef::new(Messages::MediaError).text().null().to_owned(),
        ] {
            manager
                .alter_table(
                    Table::alter()
                        .table(Messages::Table)
                        .add_column(column.clone())
                        .to_owned(),
                )
                .await?;
        }
        manager
            .get_connection()
            .execute_unprepared(
                "UPDATE messages SET \
                 media_status = CASE WHEN media_ref IS NOT NULL THEN 'pending' ELSE 'failed' END, \
                 media_error = CASE WHEN media_ref IS NULL THEN 'no file was kept for this message' END \
                 WHERE media_mime IS NOT NULL",
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("messages_phone_media_status")
                    .table(Messages::Table)
                    .col(Messages::Phone)
                    .col(Messages::MediaStatus)
                    .col(Messages::Seq)
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_index(
                Index::drop()
                    .name("messages_phone_media_status")
                    .table(Messages::Table)
                    .to_owned(),
            )
            .await?;
        for column in [
            Messages::MediaStatus,
            Messages::MediaSha256,
            Messages::MediaAttempts,
            Messages::MediaError,
        ] {
            manager
                .alter_table(Table::alter().table(Messages::Table).drop_column(column).to_owned())
                .await?;
        }
        Ok(())
    }
}

#[derive(DeriveIden, Clone, Copy)]
enum Messages {
    Table,
    Phone,
    Seq,
    MediaStatus,
    MediaSha256,
    MediaAttempts,
    MediaError,
}
