//! Workers: the built-in worker and remote `agentry worker` processes, their registration
//! tokens, and the pool's counts.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::Run;
use crate::wire::wire_enum;

wire_enum! {
    /// Where a worker stands. `online`: connected and taking work; `unhealthy`: connected
    /// but it stopped accepting assignments (it gets none until it accepts a probe);
    /// `offline`: not connected; `disabled`: switched off (it gets no work, even connected).
    pub enum WorkerStatus {
        Online = "online",
        Unhealthy = "unhealthy",
        Offline = "offline",
        Disabled = "disabled",
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Worker {
    pub id: Uuid,
    pub name: String,
    /// The worker inside the server (it can be disabled, not deleted).
    pub builtin: bool,
    pub enabled: bool,
    pub status: WorkerStatus,
    /// The `agentry` version it runs, as it reported it.
    pub version: Option<String>,
    pub os: Option<String>,
    pub arch: Option<String>,
    /// The address it connected from (remote workers).
    pub address: Option<String>,
    /// Runs it executes at once.
    pub slots: u32,
    /// Runs offered to it or executing on it now.
    pub slots_in_use: u32,
    pub current_runs: Vec<Uuid>,
    /// Its tags, sorted (set with `PUT /api/workers/{id}/tags` or by its registration token).
    pub tags: Vec<String>,
    /// The providers (names) whose keys the worker holds in its own store, as it last
    /// reported them; never the keys.
    pub credentials: Vec<String>,
    /// The provider kinds it serves, as it reported them (empty until it connects).
    pub capabilities: Vec<String>,
    /// Whether its own outbound policy lets it call providers on loopback and private
    /// networks (`false`: only those on its allow-list); absent until it connects.
    pub local_networks: Option<bool>,
    /// Its health as it last reported it (with each heartbeat), and when.
    pub health: Option<WorkerHealth>,
    pub health_at: Option<DateTime<Utc>>,
    /// Why it is `unhealthy` (its disk is full, or it stopped accepting assignments).
    pub unhealthy_reason: Option<String>,
    pub last_seen_at: Option<DateTime<Utc>>,
    pub created_at: DateTime<Utc>,
}

/// A worker's health, as it reports it with each heartbeat. A value it cannot measure on its
/// platform is absent.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct WorkerHealth {
    /// CPU busy since the previous report, 0–100 (all cores together).
    #[serde(default)]
    pub cpu_percent: Option<f32>,
    /// Memory in use, 0–100.
    #[serde(default)]
    pub memory_percent: Option<f32>,
    /// Free and total bytes of the disk the worker keeps its data on.
    #[serde(default)]
    pub disk_free_bytes: Option<u64>,
    #[serde(default)]
    pub disk_total_bytes: Option<u64>,
    /// Load average over the last minute.
    #[serde(default)]
    pub load_1m: Option<f32>,
}

/// One health report and when it arrived.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct WorkerHealthSample {
    pub at: DateTime<Utc>,
    pub health: WorkerHealth,
}

/// `GET /api/workers/{id}`: the worker and its most recent runs.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct WorkerDetail {
    pub worker: Worker,
    /// Newest first, at most 20.
    pub recent_runs: Vec<Run>,
    /// Its health reports of the last hour, oldest first.
    pub health_history: Vec<WorkerHealthSample>,
}

/// Body of `PATCH /api/workers/{id}`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct UpdateWorker {
    /// `false` disconnects the worker and requeues its runs; `true` lets it work again.
    pub enabled: Option<bool>,
    /// 1–64 letters, digits, `.`, `_` or `-`; unique.
    #[cfg_attr(
        feature = "openapi",
        schema(min_length = 1, max_length = 64, pattern = r"^[A-Za-z0-9._-]+$")
    )]
    pub name: Option<String>,
}

/// `GET /api/workers/pool`: how many workers are in each state and how much work waits.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Pool {
    /// Connected and taking work (idle + busy).
    pub online: u32,
    /// Online with no run.
    pub idle: u32,
    /// Online with at least one run.
    pub busy: u32,
    pub unhealthy: u32,
    pub offline: u32,
    pub disabled: u32,
    /// Runs workers hold: offered (`assigned`) or `running`.
    pub runs_running: u64,
    pub runs_queued: u64,
}

/// Body of `POST /api/worker-tokens`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct CreateWorkerToken {
    /// Lifetime, 60 s to 30 days (default: one hour).
    #[serde(default, deserialize_with = "crate::rules::int::opt_u32")]
    #[cfg_attr(feature = "openapi", schema(minimum = 60, maximum = 2592000))]
    pub ttl_secs: Option<u32>,
    /// What the token is for; at most 200 characters.
    #[cfg_attr(feature = "openapi", schema(max_length = 200, pattern = r"^[^\x00]*$"))]
    pub note: Option<String>,
    /// Tags (existing ones) the worker it registers gets.
    #[serde(default)]
    #[cfg_attr(feature = "openapi", schema(max_items = 32))]
    pub tags: Vec<String>,
}

wire_enum! {
    pub enum WorkerTokenStatus {
        /// Can still register a worker.
        Unused = "unused",
        /// Registered a worker (`worker_id`).
        Used = "used",
        Expired = "expired",
    }
}

/// A registration token as listed: never the token itself.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct WorkerToken {
    pub id: Uuid,
    pub note: String,
    pub status: WorkerTokenStatus,
    pub expires_at: DateTime<Utc>,
    pub used_at: Option<DateTime<Utc>>,
    /// The worker it registered.
    pub worker_id: Option<Uuid>,
    /// Tags the worker it registers gets, sorted.
    pub tags: Vec<String>,
    pub created_at: DateTime<Utc>,
}

/// `POST /api/worker-tokens` → the token, shown this once.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct CreatedWorkerToken {
    /// Give it to `agentry worker --token`; it registers one worker, once.
    pub token: String,
    pub details: WorkerToken,
}

/// Body of `POST /api/workers/register` (authenticated by the token, not the API token).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct RegisterWorker {
    pub token: String,
    /// 1–64 letters, digits, `.`, `_` or `-`; unique (default: `worker-` and a short id).
    #[cfg_attr(
        feature = "openapi",
        schema(min_length = 1, max_length = 64, pattern = r"^[A-Za-z0-9._-]+$")
    )]
    pub name: Option<String>,
}

/// `POST /api/workers/register` → the worker's key, shown to the worker only, once.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct RegisteredWorker {
    pub worker_id: Uuid,
    pub name: String,
    /// Authenticates the worker's connections (`Authorization: Bearer`).
    pub key: String,
}

/// A tag: a label that workers carry and that agents can require of the worker that runs
/// them. Set on a worker by the API or by its registration token, never by the worker.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Tag {
    pub id: Uuid,
    pub name: String,
    pub note: String,
    /// How many workers carry it.
    pub workers: u32,
    pub created_at: DateTime<Utc>,
}

/// Body of `POST /api/tags`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct CreateTag {
    /// 1–64 lowercase letters, digits, `.`, `_`, `-`, `:` or `=`, starting with a letter or a
    /// digit (`gpu`, `region=eu`); unique.
    #[cfg_attr(
        feature = "openapi",
        schema(min_length = 1, max_length = 64, pattern = r"^[a-z0-9][a-z0-9._:=-]*$")
    )]
    pub name: String,
    /// What the tag means; at most 200 characters.
    #[cfg_attr(feature = "openapi", schema(max_length = 200, pattern = r"^[^\x00]*$"))]
    pub note: Option<String>,
}

/// Body of `PUT /api/workers/{id}/tags`: the worker's whole set of tags (existing ones).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct SetWorkerTags {
    #[cfg_attr(feature = "openapi", schema(max_items = 32))]
    pub tags: Vec<String>,
}
