//! Scoped permanent tokens: what a token may do (comma-separated scopes) and on which
//! phones (comma-separated E.164 numbers). NULL scopes: a token from before scopes, which
//! may do everything; NULL phones: every phone.

use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        // One column per statement: SQLite adds columns one at a time.
        for column in [ApiTokens::Scopes, ApiTokens::Phones] {
            manager
                .alter_table(
                    Table::alter()
                        .table(ApiTokens::Table)
                        .add_column(text_null(column))
                        .to_owned(),
                )
                .await?;
        }
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        for column in [ApiTokens::Scopes, ApiTokens::Phones] {
            manager
                .alter_table(Table::alter().table(ApiTokens::Table).drop_column(column).to_owned())
                .await?;
        }
        Ok(())
    }
}

#[derive(DeriveIden, Clone, Copy)]
enum ApiTokens {
    Table,
    Scopes,
    Phones,
}
