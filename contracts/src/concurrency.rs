//! Concurrency groups: a cap on how many runs of the agents in a group run at once, across
//! every worker.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

/// A concurrency group as the API returns it, with its live counts.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ConcurrencyGroup {
    pub id: Uuid,
    pub name: String,
    /// At most this many runs of the group's agents are offered to or running on workers at
    /// once; queued runs hold no slot.
    pub limit: u32,
    pub note: String,
    /// Runs of the group offered to or running on a worker now.
    pub active: u32,
    /// Runs of the group waiting in the queue.
    pub queued: u32,
    /// Agents in the group.
    pub agents: u32,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

/// Body of `POST /api/concurrency-groups`, and of `PUT /api/concurrency-groups/{id}` (which
/// replaces name, limit and note; a new limit holds from the next dispatch on).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct CreateConcurrencyGroup {
    /// 1–64 lowercase letters, digits, `.`, `_`, `-`, `:` or `=`, starting with a letter or a
    /// digit (`openai-key`); unique.
    #[cfg_attr(
        feature = "openapi",
        schema(min_length = 1, max_length = 64, pattern = r"^[a-z0-9][a-z0-9._:=-]*$")
    )]
    pub name: String,
    /// 1–10,000 runs at once.
    #[serde(deserialize_with = "crate::rules::int::u32")]
    #[cfg_attr(feature = "openapi", schema(minimum = 1, maximum = 10000))]
    pub limit: u32,
    /// What the group protects (a rate-limited key, a small GPU); at most 200 characters.
    #[serde(default)]
    #[cfg_attr(feature = "openapi", schema(max_length = 200, pattern = r"^[^\x00]*$"))]
    pub note: Option<String>,
}

/// `PUT /api/concurrency-groups/{id}` takes the same body as create.
pub type UpdateConcurrencyGroup = CreateConcurrencyGroup;

/// Most runs a group may allow at once.
pub const MAX_GROUP_LIMIT: u32 = 10_000;
