//! Agents: a provider, a model, prompts and generation parameters.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::{ProviderSummary, TaskSummary};

/// An agent as the API returns it, with its provider and assigned tasks.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Agent {
    pub id: Uuid,
    pub name: String,
    pub description: String,
    pub provider_id: Uuid,
    pub provider: ProviderSummary,
    pub model: String,
    pub system_prompt: String,
    /// A minijinja template rendered with the run input; `null` sends the input as JSON.
    pub user_prompt: Option<String>,
    pub temperature: Option<f64>,
    pub max_tokens: Option<u32>,
    pub max_retries: u32,
    pub timeout_secs: u32,
    pub tasks: Vec<TaskSummary>,
    pub revision: u64,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

/// Body of `POST /api/agents`, and of `PUT /api/agents/{id}` (which replaces the whole
/// configuration).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct CreateAgent {
    /// Unique, 1–100 characters.
    pub name: String,
    #[serde(default)]
    pub description: String,
    /// An active provider.
    pub provider_id: Uuid,
    pub model: String,
    /// Required, not blank.
    pub system_prompt: String,
    /// minijinja template; its syntax is checked when saved.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user_prompt: Option<String>,
    /// 0–2; absent uses the provider's default.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub temperature: Option<f64>,
    /// Greater than 0; absent uses the provider's default.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_tokens: Option<u32>,
    /// Repair attempts after invalid output, 0–10 (default 2).
    #[serde(default = "default_max_retries")]
    pub max_retries: u32,
    /// Bound on a whole run, 1–3600 seconds (default 120).
    #[serde(default = "default_timeout_secs")]
    pub timeout_secs: u32,
}

/// `PUT /api/agents/{id}` replaces the configuration, so it takes the same body as create.
pub type UpdateAgent = CreateAgent;

pub const DEFAULT_MAX_RETRIES: u32 = 2;
pub const DEFAULT_TIMEOUT_SECS: u32 = 120;

fn default_max_retries() -> u32 {
    DEFAULT_MAX_RETRIES
}

fn default_timeout_secs() -> u32 {
    DEFAULT_TIMEOUT_SECS
}

/// The short form embedded in tasks.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct AgentSummary {
    pub id: Uuid,
    pub name: String,
    pub model: String,
}
