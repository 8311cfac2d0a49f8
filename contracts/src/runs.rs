//! Runs: one execution of a task by an agent, with its schema-checked output or the reasons it
//! failed, and its append-only event history.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use uuid::Uuid;

use crate::ProviderKind;
use crate::wire::wire_enum;

wire_enum! {
    /// Where a run is. Moves forward: `queued → assigned → running → succeeded | failed |
    /// canceled` (an unfinished run can also be canceled or failed directly). The queue alone
    /// moves an assigned or running run back to `queued`, when its worker lost it.
    pub enum RunStatus {
        Queued = "queued",
        /// Offered to a worker that has not accepted it yet.
        Assigned = "assigned",
        Running = "running",
        Succeeded = "succeeded",
        Failed = "failed",
        Canceled = "canceled",
    }
}

impl RunStatus {
    /// The states a run may be in for a move to `self`.
    pub fn predecessors(self) -> &'static [RunStatus] {
        match self {
            RunStatus::Queued => &[],
            RunStatus::Assigned => &[RunStatus::Queued],
            RunStatus::Running => &[RunStatus::Queued, RunStatus::Assigned],
            RunStatus::Succeeded => &[RunStatus::Running],
            RunStatus::Failed | RunStatus::Canceled => {
                &[RunStatus::Queued, RunStatus::Assigned, RunStatus::Running]
            }
        }
    }

    pub fn is_finished(self) -> bool {
        match self {
            RunStatus::Succeeded | RunStatus::Failed | RunStatus::Canceled => true,
            RunStatus::Queued | RunStatus::Assigned | RunStatus::Running => false,
        }
    }
}

wire_enum! {
    /// `sync` answers when the run has finished; `async` answers at once with the queued run.
    #[derive(Default)]
    pub enum RunMode {
        #[default]
        Sync = "sync",
        Async = "async",
    }
}

/// Body of `POST /api/agents/{agent_id}/tasks/{task_id}/runs`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct CreateRun {
    /// Must match the task's `request_schema`.
    pub input: Value,
    #[serde(default)]
    pub mode: RunMode,
}

/// The configuration a run used, frozen when it was created: later edits or deletions of the
/// agent, task or provider do not change it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct RunSnapshot {
    pub agent_id: Uuid,
    pub agent_name: String,
    pub agent_revision: u64,
    pub model: String,
    pub temperature: Option<f64>,
    pub max_tokens: Option<u32>,
    pub max_retries: u32,
    pub timeout_secs: u32,
    pub task_id: Uuid,
    pub task_name: String,
    pub task_revision: u64,
    pub provider_id: Uuid,
    pub provider_name: String,
    pub provider_kind: ProviderKind,
    pub provider_revision: u64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Run {
    pub id: Uuid,
    pub agent_id: Uuid,
    pub task_id: Uuid,
    pub status: RunStatus,
    pub input: Value,
    /// Present only on success, and then always valid against the task's response schema.
    pub output: Option<Value>,
    /// What the model returned on the last attempt, verbatim.
    pub raw_output: Option<String>,
    /// Why the run failed or was canceled.
    pub error: Option<String>,
    /// Model calls made (repairs included, transient retries not).
    pub attempts: u32,
    pub prompt_tokens: Option<u64>,
    pub completion_tokens: Option<u64>,
    /// From start to finish.
    pub latency_ms: Option<u64>,
    pub snapshot: RunSnapshot,
    /// The worker executing the run, or that executed it last.
    pub worker_id: Option<Uuid>,
    /// Times a worker accepted the run: more than one when a worker was lost and the run
    /// was queued again.
    pub deliveries: u32,
    pub created_at: DateTime<Utc>,
    /// When it was last put in the queue.
    pub queued_at: DateTime<Utc>,
    /// When it was last offered to a worker.
    pub assigned_at: Option<DateTime<Utc>>,
    pub started_at: Option<DateTime<Utc>>,
    pub finished_at: Option<DateTime<Utc>>,
    /// The run this one repeats, when it was started with `POST /api/runs/{id}/retry`.
    pub retry_of: Option<Uuid>,
    /// Why no worker can take the queued run (its agent's routing rules match no enabled
    /// worker: "no worker has tag gpu"); it fails with this reason after its queue timeout
    /// unless a worker that matches appears. `null` while some worker could take it.
    pub waiting_reason: Option<String>,
    /// The concurrency group the run counts against (its agent's when it was created).
    pub concurrency_group_id: Option<Uuid>,
    /// The schedule that started the run (a fire, or "run now").
    pub schedule_id: Option<Uuid>,
}

/// `?agent_id&task_id&worker_id&status&limit&offset` for `GET /api/runs`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::IntoParams))]
#[cfg_attr(feature = "openapi", into_params(parameter_in = Query))]
#[serde(deny_unknown_fields)]
pub struct RunQuery {
    pub agent_id: Option<Uuid>,
    pub task_id: Option<Uuid>,
    pub worker_id: Option<Uuid>,
    pub status: Option<RunStatus>,
    /// Items per page, 1–200 (default 50).
    #[cfg_attr(feature = "openapi", param(minimum = 1, maximum = 200))]
    pub limit: Option<u64>,
    /// Items to skip, 0–1,000,000,000 (default 0).
    #[cfg_attr(feature = "openapi", param(minimum = 0, maximum = 1000000000))]
    pub offset: Option<u64>,
}

wire_enum! {
    /// What a run event records.
    pub enum RunEventKind {
        /// The run moved to `data.status`.
        Status = "status",
        /// A model call answered (`data.attempt`, `data.raw_output`).
        Attempt = "attempt",
        /// An answer did not parse or validate (`data.attempt`, `data.errors`).
        ValidationError = "validation_error",
        /// A provider call failed (`data.error`, `data.class`, `data.retry_in_ms` when retried).
        ProviderError = "provider_error",
    }
}

/// One entry of a run's append-only history, in order of `seq`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct RunEvent {
    pub seq: u64,
    pub run_id: Uuid,
    pub kind: RunEventKind,
    pub data: Value,
    pub created_at: DateTime<Utc>,
}
