//! Message history (both directions) and contacts learnt from the network.
//! `messages.seq` numbers each phone's messages 1, 2, 3… in the order the gateway stored
//! them, without gaps, so that any page of history is an index range, not an OFFSET scan.
//! Redelivered inbound messages are recognised through `(phone, message_id)` by the phone's
//! actor, the only writer of its rows, so no wide unique index slows every insert.

use sea_orm_migration::{prelude::*, schema::*};

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
                    .col(big_integer(Messages::Id).auto_increment().primary_key())
                    .col(string_len(Messages::Phone, 20))
                    .col(big_integer(Messages::Seq))
                    .col(string_len(Messages::MessageId, 128))
                    .col(string_len(Messages::Direction, 3))
                    .col(string_len(Messages::Chat, 100))
                    .col(string_len(Messages::Sender, 100))
                    .col(string_len(Messages::Kind, 16))
                    .col(text_null(Messages::Body))
                    .col(string_len_null(Messages::MediaMime, 100))
                    .col(string_len_null(Messages::MediaFileName, 255))
                    .col(big_integer_null(Messages::MediaSize))
                    .col(string_len_null(Messages::QuotedId, 128))
                    .col(string_len_null(Messages::PushName, 200))
                    .col(string_len(Messages::Status, 12))
                    .col(timestamp_with_time_zone(Messages::Timestamp))
                    .col(timestamp_with_time_zone(Messages::CreatedAt))
                    .col(timestamp_with_time_zone(Messages::UpdatedAt))
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
                    .col(string_len(Contacts::Phone, 20))
                    .col(string_len(Contacts::Jid, 100))
                    .col(string_len(Contacts::ContactKey, 100))
                    .col(string_len_null(Contacts::Number, 20))
                    .col(string_len_null(Contacts::Lid, 100))
                    .col(string_len_null(Contacts::Name, 200))
                    .col(string_len_null(Contacts::PushName, 200))
                    .col(boolean_null(Contacts::OnWhatsapp))
                    .col(timestamp_with_time_zone(Contacts::CreatedAt))
                    .col(timestamp_with_time_zone(Contacts::UpdatedAt))
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
