//! Database access: sea-orm entities and plain query functions over `&impl ConnectionTrait`, so
//! they work inside and outside transactions, on SQLite and PostgreSQL alike.

pub mod agents;
pub mod assignments;
pub mod checkpoint;
pub mod concurrency;
pub mod connect;
pub mod health;
pub mod providers;
pub mod queue;
pub mod runs;
pub mod schedules;
pub mod tags;
pub mod tasks;
pub mod views;
mod wire;
pub mod worker_tokens;
pub mod workers;

pub use wire::Wire;

use sea_orm::{
    ConnectionTrait, DbErr, EntityTrait, FromQueryResult, PaginatorTrait, QueryOrder, QuerySelect,
    Select,
};

/// Inserts one row and returns it as stored. The whole answer is read, not just its first row:
/// SQLite commits a statement's implicit transaction when the statement finishes, so stopping
/// after the first row of `INSERT … RETURNING` (what sea-orm's single-row insert does) loses a
/// failed commit — a full disk answered with a row that was never stored.
pub async fn insert_returning<E>(
    db: &impl ConnectionTrait,
    row: E::ActiveModel,
) -> Result<E::Model, DbErr>
where
    E: EntityTrait,
    E::Model: sea_orm::IntoActiveModel<E::ActiveModel>,
{
    E::insert_many([row])
        .exec_with_returning(db)
        .await?
        .pop()
        .ok_or(DbErr::RecordNotInserted)
}

/// A stored value that does not fit the wire type (a snapshot that does not parse, a row a
/// view needs that is missing): data corruption or a newer schema, reported as a 500.
pub fn corrupt(what: &str, value: impl std::fmt::Display) -> DbErr {
    DbErr::Type(format!("stored {what} has an unexpected value `{value}`"))
}

/// Text that came from outside (a provider's answer, its model names) as both databases can
/// store it: PostgreSQL refuses U+0000 in text and JSON, so it becomes U+FFFD. Input from API
/// clients is refused instead (422); this is for what must be recorded anyway.
pub fn storable(text: String) -> String {
    if text.contains('\0') {
        text.replace('\0', "\u{FFFD}")
    } else {
        text
    }
}

/// `storable` for every string and key in a JSON value.
pub fn storable_json(value: serde_json::Value) -> serde_json::Value {
    use serde_json::Value;
    match value {
        Value::String(text) => Value::String(storable(text)),
        Value::Array(items) => Value::Array(items.into_iter().map(storable_json).collect()),
        Value::Object(map) => Value::Object(
            map.into_iter()
                .map(|(key, item)| (storable(key), storable_json(item)))
                .collect(),
        ),
        other @ (Value::Null | Value::Bool(_) | Value::Number(_)) => other,
    }
}

/// Stored counters are i64 (portable), wire counters unsigned.
pub fn to_u64(value: i64) -> u64 {
    u64::try_from(value).unwrap_or(0)
}

/// One page of `query` ordered by `order` (ids are time-ordered, so creation order), with the
/// total count across pages.
pub async fn paginate<E>(
    db: &impl ConnectionTrait,
    query: Select<E>,
    order: E::Column,
    limit: u64,
    offset: u64,
) -> Result<(Vec<E::Model>, u64), DbErr>
where
    E: EntityTrait,
    E::Model: FromQueryResult + Send + Sync,
{
    let total = query.clone().count(db).await?;
    let items = query
        .order_by_asc(order)
        .limit(limit)
        .offset(offset)
        .all(db)
        .await?;
    Ok((items, total))
}

/// A constraint a write broke, as the caller maps it (409, 404, 422).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Violation {
    Unique,
    ForeignKey,
}

/// Which constraint `err` reports, on SQLite and PostgreSQL alike (`DbErr::sql_err` classifies
/// both), so services map violations at the query site.
pub fn violation(err: &DbErr) -> Option<Violation> {
    match err.sql_err()? {
        sea_orm::SqlErr::UniqueConstraintViolation(_) => Some(Violation::Unique),
        sea_orm::SqlErr::ForeignKeyConstraintViolation(_) => Some(Violation::ForeignKey),
        _ => None,
    }
}

/// Why the database cannot serve right now, when that is what `err` says: it is unreachable
/// (connections refused, dropped, pool exhausted) or cannot take writes (disk full,
/// read-only). Such errors are the environment's, not the request's: the API answers 503 and
/// the request can be retried once it is fixed.
pub fn unavailable(err: &DbErr) -> Option<Unavailable> {
    use sea_orm::sqlx::Error as Sqlx;
    use sea_orm::{ConnAcquireErr, RuntimeErr};
    let runtime = match err {
        // Failing to get or open a connection is about the database, whatever it said
        // (refused, not accepting connections, authentication).
        DbErr::ConnectionAcquire(ConnAcquireErr::Timeout | ConnAcquireErr::ConnectionClosed)
        | DbErr::Conn(_) => return Some(Unavailable::Unreachable),
        DbErr::Exec(runtime) | DbErr::Query(runtime) => runtime,
        _ => return None,
    };
    let RuntimeErr::SqlxError(sqlx) = runtime else {
        return None;
    };
    match sqlx.as_ref() {
        Sqlx::Io(_) | Sqlx::PoolTimedOut | Sqlx::PoolClosed | Sqlx::WorkerCrashed => {
            Some(Unavailable::Unreachable)
        }
        Sqlx::Database(db) => {
            let code = db.code().unwrap_or_default();
            match code.as_ref() {
                // SQLite (primary result codes, and the extended ones built on them):
                // FULL, READONLY, IOERR, CANTOPEN; PostgreSQL: disk_full, out_of_memory,
                // insufficient_resources, read_only_sql_transaction.
                "13" | "53100" | "53200" | "53000" => Some(Unavailable::Full),
                "8" | "25006" => Some(Unavailable::ReadOnly),
                c if c.parse::<u32>().is_ok_and(|n| n & 0xff == 8) => Some(Unavailable::ReadOnly),
                c if c
                    .parse::<u32>()
                    .is_ok_and(|n| n & 0xff == 10 || n & 0xff == 14) =>
                {
                    Some(Unavailable::Unreachable)
                }
                // PostgreSQL connection exceptions and shutdowns (admin_shutdown,
                // crash_shutdown, cannot_connect_now, database_dropped).
                c if c.starts_with("08") || c.starts_with("57P") => Some(Unavailable::Unreachable),
                _ => None,
            }
        }
        _ => None,
    }
}

/// See [`unavailable`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Unavailable {
    Unreachable,
    Full,
    ReadOnly,
}

impl Unavailable {
    pub fn message(self) -> &'static str {
        match self {
            Unavailable::Unreachable => "the database is unreachable; try again shortly",
            Unavailable::Full => "the database cannot store more: its disk is full",
            Unavailable::ReadOnly => "the database is read-only",
        }
    }
}
