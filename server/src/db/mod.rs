//! Database access: sea-orm entities and plain query functions over `&impl ConnectionTrait`, so
//! they work inside and outside transactions, on SQLite and PostgreSQL alike.

pub mod agents;
pub mod assignments;
pub mod connect;
pub mod providers;
pub mod runs;
pub mod tasks;
pub mod views;
mod wire;

pub use wire::Wire;

use sea_orm::{
    ConnectionTrait, DbErr, EntityTrait, FromQueryResult, PaginatorTrait, QueryOrder, QuerySelect,
    Select,
};

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
