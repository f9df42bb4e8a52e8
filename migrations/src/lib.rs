//! Database migrations for wagate, applied at start-up and by `wagate migrate`.
//! A migration describes tables with sea-query only; it never imports the app's entities,
//! so old migrations keep compiling as the entities evolve.

pub use sea_orm_migration::prelude::*;

mod m20261126_000001_auth;
mod m20261126_000002_phones;
mod m20261126_000003_messages;
mod m20261126_000004_webhooks;
mod m20261202_000005_delivery_retry_since;
mod m20261202_000006_delivery_lane_index;
mod m20261202_000007_token_scopes;
mod m20261203_000008_message_raw_kind;
mod m20261204_000009_message_references;
mod m20261204_000010_lid_chats_by_number;
mod m20261208_000011_known_message_kinds;
mod m20261208_000012_message_media;
mod m20261208_000013_message_details;

/// Every migration in the order it must run.
pub struct Migrator;

#[async_trait::async_trait]
impl MigratorTrait for Migrator {
    fn migrations() -> Vec<Box<dyn MigrationTrait>> {
        vec![
            Box::new(m20261126_000001_auth::Migration),
            Box::new(m20261126_000002_phones::Migration),
            Box::new(m20261126_000003_messages::Migration),
            Box::new(m20261126_000004_webhooks::Migration),
            Box::new(m20261202_000005_delivery_retry_since::Migration),
            Box::new(m20261202_000006_delivery_lane_index::Migration),
            Box::new(m20261202_000007_token_scopes::Migration),
            Box::new(m20261203_000008_message_raw_kind::Migration),
            Box::new(m20261204_000009_message_references::Migration),
            Box::new(m20261204_000010_lid_chats_by_number::Migration),
            Box::new(m20261208_000011_known_message_kinds::Migration),
            Box::new(m20261208_000012_message_media::Migration),
            Box::new(m20261208_000013_message_details::Migration),
        ]
    }
}
