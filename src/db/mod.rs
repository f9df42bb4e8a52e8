//! Persistence: the connection (SQLite with WAL by default, PostgreSQL by URL), migrations,
//! and one module of entities and query functions per aggregate. Query functions take
//! `&impl ConnectionTrait` so callers can run them inside a transaction.

pub mod contacts;
pub mod messages;
pub mod phones;
pub mod settings;
pub mod tokens;
pub mod webhooks;

use std::time::Duration;

use sea_orm::sqlx::sqlite::{SqliteJournalMode, SqliteSynchronous};
use sea_orm::{ConnectOptions, Database, DatabaseConnection, DbErr};
use sea_orm_migration::MigratorTrait;
use wagate_migrations::Migrator;

use crate::config::Config;

/// Connects to the configured database, creating the SQLite file and data dir if needed.
pub async fn connect(config: &Config) -> Result<DatabaseConnection, DbErr> {
    let url = config.database_url();
    if config.database_url.is_empty() {
        std::fs::create_dir_all(config.data_dir()).map_err(|err| {
            DbErr::Custom(format!(
                "cannot create data directory {}: {err}",
                config.data_dir().display()
            ))
        })?;
    }
    let mut options = ConnectOptions::new(url.clone());
    options
        .sqlx_logging(false)
        .connect_timeout(Duration::from_secs(10))
        .acquire_timeout(Duration::from_secs(10));
    let busy = config.database_busy_timeout;
    if url.starts_with("sqlite:") {
        // One writer at a time is SQLite's rule; WAL lets readers run beside it and the
        // busy timeout makes writers queue instead of failing with SQLITE_BUSY.
        options
            .max_connections(8)
            .min_connections(1)
            .map_sqlx_sqlite_opts(move |opts| {
                opts.journal_mode(SqliteJournalMode::Wal)
                    .synchronous(SqliteSynchronous::Normal)
                    .busy_timeout(busy)
                    .foreign_keys(true)
                    .create_if_missing(true)
            });
    } else {
        options.max_connections(16).min_connections(1);
    }
    Database::connect(options).await
}

/// Applies every pending migration.
pub async fn migrate(db: &DatabaseConnection) -> Result<(), DbErr> {
    Migrator::up(db, None).await
}

/// Each migration's name and whether it has been applied.
pub async fn migration_status(db: &DatabaseConnection) -> Result<Vec<(String, bool)>, DbErr> {
    let migrations = Migrator::get_migration_with_status(db).await?;
    Ok(migrations
        .iter()
        .map(|m| {
            (
                m.name().to_owned(),
                m.status() == sea_orm_migration::MigrationStatus::Applied,
            )
        })
        .collect())
}
