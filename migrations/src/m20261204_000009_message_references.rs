//! What a message points at beyond its text: the sender's LID beside their phone number,
//! the message a reaction is on, the row picked from a list, and where a received media
//! file is kept with the keys to decrypt it (JSON), so it can be downloaded later.

use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

const COLUMNS: [Messages; 4] = [
    Messages::SenderLid,
    Messages::TargetId,
    Messages::SelectedId,
    Messages::MediaRef,
];

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        // One column per statement: SQLite alters a table one column at a time.
        for column in COLUMNS {
            manager
                .alter_table(
                    Table::alter()
                        .table(Messages::Table)
                        .add_column(text_null(column))
                        .to_owned(),
                )
                .await?;
        }
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        for column in COLUMNS {
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
    SenderLid,
    TargetId,
    SelectedId,
    MediaRef,
}
