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

/// What a database error means for the caller, read from the driver's error kind and
/// SQLSTATE / SQLite result code (never from the message text).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Failure {
    /// The database is down, saturated or busy: retrying shortly may succeed.
    Unavailable,
    /// The value cannot be stored as text (PostgreSQL refuses NUL characters).
    UnstorableText,
    /// Anything else: a bug, or a database in a state the gateway does not expect.
    Other,
}

impl Failure {
    pub fn of(err: &DbErr) -> Self {
        use sea_orm::{RuntimeErr, sqlx};
        let runtime = match err {
            DbErr::ConnectionAcquire(_) | DbErr::Conn(_) => return Self::Unavailable,
            DbErr::Exec(runtime) | DbErr::Query(runtime) => runtime,
            _ => return Self::Other,
        };
        let RuntimeErr::SqlxError(sqlx_err) = runtime else {
            return Self::Other;
        };
        match sqlx_err.as_ref() {
            sqlx::Error::PoolTimedOut | sqlx::Error::PoolClosed | sqlx::Error::Io(_) | sqlx::Error::Tls(_) => {
                Self::Unavailable
            }
            sqlx::Error::Database(db) => {
                let code = db.code().unwrap_or_default();
                if db.try_downcast_ref::<sqlx::sqlite::SqliteError>().is_some() {
                    Self::of_sqlite_code(&code)
                } else {
                    Self::of_sqlstate(&code)
                }
            }
            _ => Self::Other,
        }
    }

    /// A SQLite result code (its primary code is the low byte of an extended one).
    fn of_sqlite_code(code: &str) -> Self {
        match code.parse::<u32>().map(|c| c & 0xff) {
            // SQLITE_BUSY and SQLITE_LOCKED, with their extended codes.
            Ok(5 | 6) => Self::Unavailable,
            _ => Self::Other,
        }
    }

    /// A PostgreSQL SQLSTATE.
    fn of_sqlstate(code: &str) -> Self {
        match code {
            // character_not_in_repertoire, untranslatable_character: NUL in text.
            "22021" | "22P05" => Self::UnstorableText,
            // Connection exceptions (08…), insufficient resources (53…), operator
            // intervention such as a shutting-down server (57…), lock timeouts and
            // serialization failures and deadlocks (55P03, 40001, 40P01).
            _ if ["08", "53", "57"].iter().any(|class| code.starts_with(class)) => Self::Unavailable,
            "55P03" | "40001" | "40P01" => Self::Unavailable,
            _ => Self::Other,
        }
    }
}

#[cfg(test)]
mod failure_tests {
    use super::Failure;

    #[test]
    fn codes_are_classified() {
        assert_eq!(Failure::of_sqlite_code("5"), Failure::Unavailable);
        assert_eq!(
            Failure::of_sqlite_code("517"),
            Failure::Unavailable,
            "SQLITE_BUSY_SNAPSHOT"
        );
        assert_eq!(
            Failure::of_sqlite_code("262"),
            Failure::Unavailable,
            "SQLITE_LOCKED_SHAREDCACHE"
        );
        assert_eq!(
            Failure::of_sqlite_code("2067"),
            Failure::Other,
            "SQLITE_CONSTRAINT_UNIQUE"
        );
        assert_eq!(Failure::of_sqlstate("22021"), Failure::UnstorableText);
        assert_eq!(Failure::of_sqlstate("57P01"), Failure::Unavailable);
        assert_eq!(Failure::of_sqlstate("08006"), Failure::Unavailable);
        assert_eq!(Failure::of_sqlstate("23505"), Failure::Other);
        assert_eq!(Failure::of_sqlstate(""), Failure::Other);
        assert_eq!(Failure::of_sqlite_code(""), Failure::Other);
    }
}
