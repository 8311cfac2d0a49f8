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
    /// How long a run may wait in the queue for a worker before it fails.
    pub queue_timeout_secs: u32,
    /// Routing: worker names (any of them; empty: any worker).
    pub workers: Vec<String>,
    /// Routing: tags the worker must all carry.
    pub required_tags: Vec<String>,
    /// The concurrency group whose limit the agent's runs count against.
    pub concurrency_group_id: Option<Uuid>,
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
    /// Unique, 1–100 characters, no control characters, not blank; stored trimmed.
    #[cfg_attr(
        feature = "openapi",
        schema(
            max_length = 100,
            pattern = r"^[^\x00-\x1F\x7F-\x9F]*[^\x00-\x20\x7F-\xA0\u1680\u2000-\u200A\u2028\u2029\u202F\u205F\u3000][^\x00-\x1F\x7F-\x9F]*$"
        )
    )]
    pub name: String,
    /// At most 2,000 characters.
    #[serde(default)]
    #[cfg_attr(
        feature = "openapi",
        schema(max_length = 2000, pattern = r"^[^\x00]*$")
    )]
    pub description: String,
    /// An active provider (or the agent's current one, even if it was deleted since).
    pub provider_id: Uuid,
    /// The provider's model id: 1–200 characters, no control characters, not blank; stored
    /// trimmed.
    #[cfg_attr(
        feature = "openapi",
        schema(
            max_length = 200,
            pattern = r"^[^\x00-\x1F\x7F-\x9F]*[^\x00-\x20\x7F-\xA0\u1680\u2000-\u200A\u2028\u2029\u202F\u205F\u3000][^\x00-\x1F\x7F-\x9F]*$"
        )
    )]
    pub model: String,
    /// Required, not blank, at most 65,536 characters.
    #[cfg_attr(
        feature = "openapi",
        schema(
            max_length = 65536,
            pattern = r"^[^\x00]*[^\x00\t\n\x0B\x0C\r \x85\xA0\u1680\u2000-\u200A\u2028\u2029\u202F\u205F\u3000][^\x00]*$"
        )
    )]
    pub system_prompt: String,
    /// A minijinja template rendered with the run input, at most 65,536 characters; its syntax
    /// is checked when saved (422 on `/user_prompt` when it does not compile).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(
        feature = "openapi",
        schema(max_length = 65536, pattern = r"^[^\x00]*$")
    )]
    pub user_prompt: Option<String>,
    /// 0–2; absent uses the provider's default.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "openapi", schema(minimum = 0, maximum = 2))]
    pub temperature: Option<f64>,
    /// 1–1,000,000; absent uses the provider's default.
    #[serde(
        default,
        deserialize_with = "crate::rules::int::opt_u32",
        skip_serializing_if = "Option::is_none"
    )]
    #[cfg_attr(feature = "openapi", schema(minimum = 1, maximum = 1000000))]
    pub max_tokens: Option<u32>,
    /// Repair attempts after invalid output, 0–10 (default 2).
    #[serde(
        default = "default_max_retries",
        deserialize_with = "crate::rules::int::u32"
    )]
    #[cfg_attr(feature = "openapi", schema(minimum = 0, maximum = 10))]
    pub max_retries: u32,
    /// Bound on a whole run, 1–3600 seconds (default 120).
    #[serde(
        default = "default_timeout_secs",
        deserialize_with = "crate::rules::int::u32"
    )]
    #[cfg_attr(feature = "openapi", schema(minimum = 1, maximum = 3600))]
    pub timeout_secs: u32,
    /// How long a run may wait for a worker before it fails with `no worker available`,
    /// 1–86,400 seconds (default 300).
    #[serde(
        default = "default_queue_timeout_secs",
        deserialize_with = "crate::rules::int::u32"
    )]
    #[cfg_attr(feature = "openapi", schema(minimum = 1, maximum = 86400))]
    pub queue_timeout_secs: u32,
    /// Routing: the agent's runs execute only on a worker with one of these names (empty:
    /// any worker). A name no worker has yet is allowed; its runs wait, saying why.
    #[serde(default)]
    #[cfg_attr(feature = "openapi", schema(max_items = 32))]
    pub workers: Vec<String>,
    /// Routing: the worker must carry every one of these tags (existing tags, see
    /// `/api/tags`).
    #[serde(default)]
    #[cfg_attr(feature = "openapi", schema(max_items = 32))]
    pub required_tags: Vec<String>,
    /// A concurrency group (`/api/concurrency-groups`): at most its limit of runs of all its
    /// agents run at once, across every worker. Absent or `null`: no limit but the workers'
    /// slots.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub concurrency_group_id: Option<Uuid>,
}

/// `PUT /api/agents/{id}` replaces the configuration, so it takes the same body as create.
pub type UpdateAgent = CreateAgent;

pub const DEFAULT_MAX_RETRIES: u32 = 2;
pub const DEFAULT_TIMEOUT_SECS: u32 = 120;
pub const DEFAULT_QUEUE_TIMEOUT_SECS: u32 = 300;

fn default_max_retries() -> u32 {
    DEFAULT_MAX_RETRIES
}

fn default_timeout_secs() -> u32 {
    DEFAULT_TIMEOUT_SECS
}

fn default_queue_timeout_secs() -> u32 {
    DEFAULT_QUEUE_TIMEOUT_SECS
}

/// The short form embedded in tasks.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct AgentSummary {
    pub id: Uuid,
    pub name: String,
    pub model: String,
}
