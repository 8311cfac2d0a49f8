//! What the migration tests share: schema inspection and databases of their own (a temp-file
//! SQLite database, or a PostgreSQL database with a random name, dropped afterwards).
#![expect(clippy::expect_used, reason = "a test stops at the first broken step")]
#![expect(
    clippy::disallowed_methods,
    reason = "each scenario runs on its own task so a panic still drops its database"
)]

use std::future::Future;
use std::hash::{BuildHasher, RandomState};
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};

use sea_orm::{ConnectionTrait, Database, DatabaseConnection, DbBackend, Statement};

/// Admin URL of the test server; `AGENTRY_TEST_PG_URL` overrides it, as in `scripts/test`.
const DEFAULT_PG_ADMIN_URL: &str = "postgres://postgres@127.0.0.1:5432/postgres";

// ---------------------------------------------------------------------------------------------
// Schema inspection

/// Our tables (not sea-orm's bookkeeping table), sorted.
pub async fn our_tables(db: &DatabaseConnection) -> Vec<String> {
    let sql = match db.get_database_backend() {
        DbBackend::Sqlite => "SELECT name FROM sqlite_master WHERE type = 'table'",
        _ => {
            "SELECT table_name AS name FROM information_schema.tables \
             WHERE table_schema = current_schema() AND table_type = 'BASE TABLE'"
        }
    };
    names(db, sql)
        .await
        .into_iter()
        .filter(|n| n != "seaql_migrations" && !n.starts_with("sqlite_"))
        .collect()
}

/// Our explicitly named indexes, sorted (primary keys and sea-orm's own left out).
pub async fn our_indexes(db: &DatabaseConnection) -> Vec<String> {
    let sql = match db.get_database_backend() {
        DbBackend::Sqlite => "SELECT name FROM sqlite_master WHERE type = 'index'",
        _ => "SELECT indexname AS name FROM pg_indexes WHERE schemaname = current_schema()",
    };
    names(db, sql)
        .await
        .into_iter()
        .filter(|n| n.starts_with("ix_") || n.starts_with("ux_"))
        .collect()
}

async fn names(db: &DatabaseConnection, sql: &str) -> Vec<String> {
    let rows = db
        .query_all_raw(Statement::from_string(db.get_database_backend(), sql))
        .await
        .expect("catalog query");
    let mut names: Vec<String> = rows
        .iter()
        .map(|row| row.try_get::<String>("", "name").expect("name column"))
        .collect();
    names.sort();
    names
}

// ---------------------------------------------------------------------------------------------
// Database fixtures

fn unique_suffix() -> String {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    // RandomState is seeded from the OS, so names differ across processes as well as calls.
    let n =
        RandomState::new().hash_one((std::process::id(), COUNTER.fetch_add(1, Ordering::Relaxed)));
    format!("{n:016x}")
}

/// Runs `body` against a fresh SQLite file that is removed afterwards, even if `body` panics.
pub async fn with_sqlite<F, Fut>(body: F)
where
    F: FnOnce(DatabaseConnection) -> Fut,
    Fut: Future<Output = ()> + Send + 'static,
{
    let path: PathBuf =
        std::env::temp_dir().join(format!("agentry-migration-{}.db", unique_suffix()));
    let url = format!("sqlite://{}?mode=rwc", path.display());
    let db = Database::connect(&url).await.expect("open sqlite file");
    let outcome = tokio::spawn(body(db)).await;
    for suffix in ["", "-wal", "-shm", "-journal"] {
        let _ = std::fs::remove_file(format!("{}{suffix}", path.display()));
    }
    if let Err(e) = outcome {
        std::panic::resume_unwind(e.into_panic());
    }
}

/// `admin_url` with its database name replaced by `name` (any `?query` is kept).
fn with_database(admin_url: &str, name: &str) -> String {
    let (base, query) = match admin_url.split_once('?') {
        Some((base, query)) => (base, format!("?{query}")),
        None => (admin_url, String::new()),
    };
    // The database is the path after `scheme://authority`; the URL may have none.
    let authority = base.find("://").map_or(0, |i| i + 3);
    let server = base[authority..]
        .find('/')
        .map_or(base, |slash| &base[..authority + slash]);
    format!("{server}/{name}{query}")
}

/// Runs `body` against a new PostgreSQL database that is dropped afterwards, even if `body`
/// panics.
pub async fn with_postgres<F, Fut>(body: F)
where
    F: FnOnce(DatabaseConnection) -> Fut,
    Fut: Future<Output = ()> + Send + 'static,
{
    let admin_url =
        std::env::var("AGENTRY_TEST_PG_URL").unwrap_or_else(|_| DEFAULT_PG_ADMIN_URL.to_owned());
    let admin = Database::connect(&admin_url).await.unwrap_or_else(|e| {
        panic!("PostgreSQL must be reachable for these tests (AGENTRY_TEST_PG_URL): {e}")
    });
    let name = format!("agentry_migration_{}", unique_suffix());
    admin
        .execute_unprepared(&format!("CREATE DATABASE \"{name}\""))
        .await
        .expect("create test database");

    let db = Database::connect(with_database(&admin_url, &name))
        .await
        .expect("connect to test database");
    let outcome = tokio::spawn(body(db)).await;

    // FORCE ends the test's own pool connections too (the body dropped its handle, but pooled
    // connections may still be closing).
    admin
        .execute_unprepared(&format!("DROP DATABASE \"{name}\" WITH (FORCE)"))
        .await
        .expect("drop test database");
    if let Err(e) = outcome {
        std::panic::resume_unwind(e.into_panic());
    }
}
