//! Assignments: which tasks an agent may run.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::TaskSummary;

/// Body of `POST /api/agents/{id}/tasks`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct CreateAssignment {
    pub task_id: Uuid,
}

/// An agent–task assignment.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Assignment {
    pub agent_id: Uuid,
    pub task_id: Uuid,
    pub task: TaskSummary,
    pub created_at: DateTime<Utc>,
}
