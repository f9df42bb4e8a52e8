//! Message history (both directions) and contacts learnt from the network.
//! `messages.seq` numbers each phone's messages 1, 2, 3… in the order the gateway stored
//! them, without gaps, so that any page of history is an index range, not an OFFSET scan.
//! Redelivered inbound messages are recognised through `(phone, message_id)` by the phone's
//! actor, the only writer of its rows, so no wide unique index slows every insert.

use sea_orm_migration::prelude::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(Messages::Table)
                    .if_not_exists()
                    .col(
                        ColumnDef::new(Messages::Id)
                            .big_integer()
                            .not_null()
                            .auto_increment()
                            .primary_key(),
                    )
                    .col(ColumnDef::new(Messages::Phone).string_len(20).not_null())
                    .col(ColumnDef::new(Messages::Seq).big_integer().not_null())
                    .col(ColumnDef::new(Messages::MessageId).string_len(128).not_null())
                    .col(ColumnDef::new(Messages::Direction).string_len(3).not_null())
                    .col(ColumnDef::new(Messages::Chat).string_len(100).not_null())
                    .col(ColumnDef::new(Messages::Sender).string_len(100).not_null())
                    .col(ColumnDef::new(Messages::Kind).string_len(16).not_null())
                    .col(ColumnDef::new(Messages::Body).text().null())
                    .col(ColumnDef::new(Messages::MediaMime).string_len(100).null())
                    .col(ColumnDef::new(Messages::MediaFileName).string_len(255).null())
                    .col(ColumnDef::new(Messages::MediaSize).big_integer().null())
                    .col(ColumnDef::new(Messages::QuotedId).string_len(128).null())
                    .col(ColumnDef::new(Messages::PushName).string_len(200).null())
                    .col(ColumnDef::new(Messages::Status).string_len(12).not_null())
                    .col(
                        ColumnDef::new(Messages::Timestamp)
                            .timestamp_with_time_zone()
                            .not_null(),
                    )
                    .col(
                        ColumnDef::new(Messages::CreatedAt)
                            .timestamp_with_time_zone()
                            .not_null(),
                    )
                    .col(
                        ColumnDef::new(Messages::UpdatedAt)
                            .timestamp_with_time_zone()
                            .not_null(),
                    )
                    .foreign_key(
                        ForeignKey::create()
                            .from(Messages::Table, Messages::Phone)
                            .to(Phones::Table, Phones::Phone)
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .to_owned(),
            )
            .await?;
        for (name, columns, unique) in [
            ("ux_messages_phone_seq", vec![Messages::Phone, Messages::Seq], true),
            (
                "ix_messages_phone_chat_seq",
                vec![Messages::Phone, Messages::Chat, Messages::Seq],
                false,
            ),
            (
                "ix_messages_phone_message_id",
                vec![Messages::Phone, Messages::MessageId],
                false,
            ),
        ] {
            let mut index = Index::create();
            index.name(name).table(Messages::Table).if_not_exists();
            for column in columns {
                index.col(column);
            }
            if unique {
                index.unique();
            }
            manager.create_index(index.to_owned()).await?;
        }

        manager
            .create_table(
                Table::create()
                    .table(Contacts::Table)
                    .if_not_exists()
                    .col(ColumnDef::new(Contacts::Phone).string_len(20).not_null())
                    .col(ColumnDef::new(Contacts::Jid).string_len(100).not_null())
                    .col(ColumnDef::new(Contacts::ContactKey).string_len(100).not_null())
                    .col(ColumnDef::new(Contacts::Number).string_len(20).null())
                    .col(ColumnDef::new(Contacts::Lid).string_len(100).null())
                    .col(ColumnDef::new(Contacts::Name).string_len(200).null())
                    .col(ColumnDef::new(Contacts::PushName).string_len(200).null())
                    .col(ColumnDef::new(Contacts::OnWhatsapp).boolean().null())
                    .col(
                        ColumnDef::new(Contacts::CreatedAt)
                            .timestamp_with_time_zone()
                            .not_null(),
                    )
                    .col(
                        ColumnDef::new(Contacts::UpdatedAt)
                            .timestamp_with_time_zone()
                            .not_null(),
                    )
                    .primary_key(Index::create().col(Contacts::Phone).col(Contacts::Jid))
                    .foreign_key(
                        ForeignKey::create()
                            .from(Contacts::Table, Contacts::Phone)
                            .to(Phones::Table, Phones::Phone)
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("ix_contacts_key")
                    .table(Contacts::Table)
                    .col(Contacts::ContactKey)
                    .if_not_exists()
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_table(Table::drop().table(Contacts::Table).to_owned())
            .await?;
        manager
            .drop_table(Table::drop().table(Messages::Table).to_owned())
            .await
    }
}

#[derive(DeriveIden)]
enum Phones {
    Table,
    Phone,
}

#[derive(DeriveIden, Clone, Copy)]
enum Messages {
    Table,
    Id,
    Phone,
    Seq,
    MessageId,
    Direction,
    Chat,
    Sender,
    Kind,
    Body,
    MediaMime,
    MediaFileName,
    MediaSize,
    QuotedId,
    PushName,
    Status,
    Timestamp,
    CreatedAt,
    UpdatedAt,
}

#[derive(DeriveIden)]
enum Contacts {
    Table,
    Phone,
    Jid,
    ContactKey,
    Number,
    Lid,
    Name,
    PushName,
    OnWhatsapp,
    CreatedAt,
    UpdatedAt,
}
