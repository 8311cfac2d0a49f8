//! Opening the database (SQLite or PostgreSQL by URL) and bringing its schema up to date.

use std::time::Duration;

use migration::{Migrator, sea_orm_migration::MigratorTrait};
use sea_orm::sqlx::sqlite::{SqliteJournalMode, SqliteSynchronous};
use sea_orm::{ConnectOptions, Database, DatabaseConnection, DbErr};

/// Connects with pool settings suited to each backend.
pub async fn connect(url: &str) -> Result<DatabaseConnection, DbErr> {
    connect_with(url, None).await
}

/// Connects with at most `max_connections` pooled connections (`None`: the backend's default).
pub async fn connect_with(
    url: &str,
    max_connections: Option<u32>,
) -> Result<DatabaseConnection, DbErr> {
    let mut options = ConnectOptions::new(url.to_owned());
    options
        .sqlx_logging(false)
        .connect_timeout(Duration::from_secs(10))
        // A request waits at most this long for a connection, then answers 503.
        .acquire_timeout(Duration::from_secs(5))
        // WAL lets readers proceed during a write; the busy timeout makes concurrent writers
        // wait for the lock instead of failing with SQLITE_BUSY.
        .map_sqlx_sqlite_opts(|opts| {
            opts.journal_mode(SqliteJournalMode::Wal)
                .synchronous(SqliteSynchronous::Normal)
                .busy_timeout(Duration::from_secs(10))
                .foreign_keys(true)
                // The server checkpoints in the background (db/checkpoint.rs).
                .pragma(
                    "wal_autocheckpoint",
                    super::checkpoint::AUTOCHECKPOINT_PAGES.to_string(),
                )
        });
    let default = if url.starts_with("sqlite:") { 8 } else { 16 };
    options.max_connections(max_connections.unwrap_or(default));
    Database::connect(options).await
}

/// Applies every pending migration.
pub async fn migrate(db: &DatabaseConnection) -> Result<(), DbErr> {
    Migrator::up(db, None).await
}

/// True when every migration this binary knows is applied.
pub async fn migrations_current(db: &DatabaseConnection) -> Result<bool, DbErr> {
    Ok(Migrator::get_pending_migrations(db).await?.is_empty())
}
