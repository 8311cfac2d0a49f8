//! Business rules for configuration objects: what a valid provider, agent or task is, how ids
//! and timestamps are made. No HTTP or database types here.

pub mod agents;
pub mod credentials;
pub mod fields;
pub mod providers;
pub mod tasks;
pub mod urls;

pub use fields::Invalid;

use chrono::{DateTime, SubsecRound, Utc};
use uuid::Uuid;

/// New ids are UUID v7: time-ordered, so lists sorted by id are in creation order.
pub fn new_id() -> Uuid {
    Uuid::now_v7()
}

/// Timestamps are stored with microsecond precision (PostgreSQL's), so truncate before use to
/// return the same value on create as on a later read.
pub fn now() -> DateTime<Utc> {
    Utc::now().trunc_subsecs(6)
}
