//! Phones: one row per linked (or to-be-linked) WhatsApp account, with the state its
//! session last reported, so a restart knows which phones to resume.

use sea_orm_migration::prelude::*;

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
                    .col(ColumnDef::new(Phones::Phone).string_len(20).not_null().primary_key())
                    .col(ColumnDef::new(Phones::Country).string_len(2).null())
                    .col(ColumnDef::new(Phones::Status).string_len(20).not_null())
                    .col(ColumnDef::new(Phones::Jid).string_len(100).null())
                    .col(ColumnDef::new(Phones::Lid).string_len(100).null())
                    .col(ColumnDef::new(Phones::PushName).string_len(200).null())
                    .col(ColumnDef::new(Phones::ConnectedAt).timestamp_with_time_zone().null())
                    .col(ColumnDef::new(Phones::LastError).text().null())
                    .col(ColumnDef::new(Phones::CreatedAt).timestamp_with_time_zone().not_null())
                    .col(ColumnDef::new(Phones::UpdatedAt).timestamp_with_time_zone().not_null())
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
