//! Phones: one row per linked (or to-be-linked) WhatsApp account, with the state its
//! session last reported, so a restart knows which phones to resume.

use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(Phones::Table)
                    .if_not_exists()
                    .col(string_len(Phones::Phone, 20).primary_key())
                    .col(string_len_null(Phones::Country, 2))
                    .col(string_len(Phones::Status, 20))
                    .col(string_len_null(Phones::Jid, 100))
                    .col(string_len_null(Phones::Lid, 100))
                    .col(string_len_null(Phones::PushName, 200))
                    .col(timestamp_with_time_zone_null(Phones::ConnectedAt))
                    .col(text_null(Phones::LastError))
                    .col(timestamp_with_time_zone(Phones::CreatedAt))
                    .col(timestamp_with_time_zone(Phones::UpdatedAt))
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager.drop_table(Table::drop().table(Phones::Table).to_owned()).await
    }
}

#[derive(DeriveIden)]
enum Phones {
    Table,
    Phone,
    Country,
    Status,
    Jid,
    Lid,
    PushName,
    ConnectedAt,
    LastError,
    CreatedAt,
    UpdatedAt,
}
