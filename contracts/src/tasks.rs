//! Tasks: what goes in and what must come out, typed by JSON Schema.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use uuid::Uuid;

use crate::AgentSummary;

/// A task as the API returns it, with the agents it is assigned to.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Task {
    pub id: Uuid,
    pub name: String,
    pub description: String,
    /// JSON Schema for run input; `null` accepts any JSON.
    pub request_schema: Option<Value>,
    /// JSON Schema every successful run's output matches.
    pub response_schema: Value,
    pub agents: Vec<AgentSummary>,
    pub revision: u64,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

/// Body of `POST /api/tasks`, and of `PUT /api/tasks/{id}` (which replaces the whole
/// configuration). Schemas are draft 2020-12 unless `$schema` names another supported draft;
/// at most 64 KiB and 32 levels deep each, with only local (`#…`) `$ref`s.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct CreateTask {
    /// Unique, 1–100 characters.
    pub name: String,
    #[serde(default)]
    pub description: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub request_schema: Option<Value>,
    pub response_schema: Value,
}

/// `PUT /api/tasks/{id}` replaces the configuration, so it takes the same body as create.
pub type UpdateTask = CreateTask;

/// The short form embedded in agents and assignment lists.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct TaskSummary {
    pub id: Uuid,
    pub name: String,
    pub description: String,
}
