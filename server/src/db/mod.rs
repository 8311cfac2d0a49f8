//! Database access: sea-orm entities and plain query functions over `&impl ConnectionTrait`, so
//! they work inside and outside transactions, on SQLite and PostgreSQL alike.

pub mod agents;
pub mod assignments;
pub mod connect;
pub mod providers;
pub mod tasks;
pub mod views;

use sea_orm::DbErr;

/// A stored value that does not fit the wire type (e.g. an unknown enum string): data
/// corruption or a newer schema, reported as a 500.
pub fn corrupt(what: &str, value: impl std::fmt::Display) -> DbErr {
    DbErr::Type(format!("stored {what} has an unexpected value `{value}`"))
}

/// Stored counters are i64 (portable), wire counters unsigned.
pub fn to_u64(value: i64) -> u64 {
    u64::try_from(value).unwrap_or(0)
}
