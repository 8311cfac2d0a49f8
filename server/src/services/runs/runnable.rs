//! Prepared agents: what the server needs to accept a run and turn it into a job for a
//! worker, built once per configuration and shared by every run of it — the compiled request
//! validator, the checked prompt template, the parameters, how to reach the provider (its key
//! decrypted) and the snapshot runs record. Kept in a weak-reference registry keyed by agent,
//! task and provider revisions, so an edit makes a new instance. (Workers keep their own
//! registry of what executes a job: `crate::worker::runnable`.)

use std::sync::Arc;
use std::time::Duration;

use contracts::worker::{Job, ProviderEndpoint};
use contracts::{FieldError, RunSnapshot};
use jsonschema::Validator;
use serde_json::Value;
use uuid::Uuid;

use crate::db::{agents, assignments, providers, tasks, to_u64};
use crate::llm::{self, ClientError};
use crate::outbound::GuardedClient;
use crate::prompt::{RenderError, Renderer, UserPrompt};
use crate::registry::Registry;
use crate::schema;
use crate::secrets::Keyring;

/// Identity of a configuration: any edit bumps a revision and so makes a new key.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Key {
    pub agent: (Uuid, i64),
    pub task: (Uuid, i64),
    pub provider: (Uuid, i64),
}

impl Key {
    pub fn of(agent: &agents::Model, task: &tasks::Model, provider: &providers::Model) -> Key {
        Key {
            agent: (agent.id, agent.revision),
            task: (task.id, task.revision),
            provider: (provider.id, provider.revision),
        }
    }

    /// The key of the configuration a pair's stored revisions name.
    pub fn current(agent_id: Uuid, task_id: Uuid, found: &assignments::Revisions) -> Key {
        Key {
            agent: (agent_id, found.agent_revision),
            task: (task_id, found.task_revision),
            provider: (found.provider_id, found.provider_revision),
        }
    }
}

/// The provider's URL when it is on a loopback or private network (which only workers whose
/// own policy allows it may reach); `None` for a public one.
fn local_endpoint(provider: &providers::Model) -> Option<&str> {
    let raw = provider.base_url.as_deref()?;
    let url = url::Url::parse(raw).ok()?;
    crate::outbound::is_local_url(&url).then_some(raw)
}

/// Why an agent could not be made runnable.
#[derive(Debug, thiserror::Error)]
pub enum BuildError {
    #[error(transparent)]
    Client(#[from] ClientError),
    #[error("the task's schema no longer compiles: {0}")]
    Schema(String),
    #[error("the user prompt template no longer compiles: {0}")]
    Template(String),
}

/// An agent ready to run one task. Immutable; shared by every run of its configuration.
pub struct RunnableAgent {
    /// How a worker reaches the provider, with its key.
    pub endpoint: ProviderEndpoint,
    request_validator: Option<Validator>,
    pub response_schema: Value,
    /// The `user_prompt` template, if there is one; it compiled when this was built.
    user_prompt: Option<String>,
    pub system_prompt: String,
    pub model: String,
    pub temperature: Option<f64>,
    pub max_tokens: Option<u32>,
    pub max_retries: u32,
    pub timeout: Duration,
    /// How long a run waits in the queue for a worker.
    pub queue_timeout: Duration,
    /// Which workers may execute its runs.
    pub route: super::routing::Route,
    /// The concurrency group its runs count against.
    pub concurrency_group: Option<Uuid>,
    pub snapshot: RunSnapshot,
}

impl RunnableAgent {
    /// Problems of `input` against the task's request schema (none when it has none).
    pub fn check_input(&self, input: &Value) -> Vec<FieldError> {
        match &self.request_validator {
            Some(validator) => schema::problems(validator, input, "/input"),
            None => Vec::new(),
        }
    }

    /// The user message: the template rendered with `input` (as `input` and, for objects,
    /// its top-level fields) by a render helper process, or the input as JSON when there is no
    /// template. An undefined variable is an error, never an empty string.
    pub async fn render(&self, renderer: &Renderer, input: &Value) -> Result<String, RenderError> {
        match &self.user_prompt {
            Some(template) => renderer.render(template, input).await,
            None => serde_json::to_string_pretty(input)
                .map_err(|e| RenderError::Template(e.to_string())),
        }
    }

    /// The agent's system prompt plus the schema: even with native structured output, models
    /// answer better when they can read what is expected.
    pub fn system_message(&self) -> String {
        format!(
            "{}\n\nRespond with only a JSON value that matches this JSON Schema:\n{}",
            self.system_prompt.trim_end(),
            self.response_schema
        )
    }

    /// The job a worker executes for `prompt` (the rendered user message); the provider's key
    /// is left out when `with_key` is false (the stored copy).
    pub fn job(&self, prompt: String, with_key: bool) -> Job {
        let mut provider = self.endpoint.clone();
        if !with_key {
            provider.api_key = None;
        }
        Job {
            system_prompt: self.system_message(),
            prompt,
            response_schema: self.response_schema.clone(),
            model: self.model.clone(),
            temperature: self.temperature,
            max_tokens: self.max_tokens,
            max_retries: self.max_retries,
            timeout_secs: self.snapshot.timeout_secs,
            provider,
            snapshot: self.snapshot.clone(),
        }
    }

    fn build(
        agent: &agents::Model,
        task: &tasks::Model,
        provider: &providers::Model,
        keyring: &Keyring,
        client: GuardedClient,
    ) -> Result<RunnableAgent, BuildError> {
        // Building the client checks that the provider is usable (a URL it needs, a key that
        // decrypts) before a run is queued; the worker builds its own.
        let endpoint = llm::endpoint_of(provider, keyring)?;
        llm::from_endpoint(&endpoint, client).map_err(ClientError::from)?;
        let request_validator = match &task.request_schema {
            Some(schema) => {
                Some(schema::compile(schema).map_err(|e| BuildError::Schema(e.to_string()))?)
            }
            None => None,
        };
        schema::compile(&task.response_schema).map_err(|e| BuildError::Schema(e.to_string()))?;
        if let Some(template) = &agent.user_prompt {
            UserPrompt::compile(template).map_err(BuildError::Template)?;
        }
        let max_tokens = agent.max_tokens.and_then(|v| u32::try_from(v).ok());
        let max_retries = u32::try_from(agent.max_retries).unwrap_or(0);
        let timeout_secs = u32::try_from(agent.timeout_secs).unwrap_or(1).max(1);
        Ok(RunnableAgent {
            endpoint,
            request_validator,
            response_schema: task.response_schema.clone(),
            user_prompt: agent.user_prompt.clone(),
            system_prompt: agent.system_prompt.clone(),
            model: agent.model.clone(),
            temperature: agent.temperature,
            max_tokens,
            max_retries,
            timeout: Duration::from_secs(u64::from(timeout_secs)),
            queue_timeout: Duration::from_secs(
                u64::try_from(agent.queue_timeout_secs).unwrap_or(1).max(1),
            ),
            route: super::routing::Route::new(&agent.workers(), &agent.tags())
                .with_provider(
                    &provider.key_workers(),
                    provider.key_on_workers().then_some(provider.name.as_str()),
                )
                .reaching(local_endpoint(provider))
                .serving(provider.kind.as_str()),
            concurrency_group: agent.concurrency_group_id,
            snapshot: RunSnapshot {
                agent_id: agent.id,
                agent_name: agent.name.clone(),
                agent_revision: to_u64(agent.revision),
                model: agent.model.clone(),
                temperature: agent.temperature,
                max_tokens,
                max_retries,
                timeout_secs,
                task_id: task.id,
                task_name: task.name.clone(),
                task_revision: to_u64(task.revision),
                provider_id: provider.id,
                provider_name: provider.name.clone(),
                provider_kind: *provider.kind,
                provider_revision: to_u64(provider.revision),
            },
        })
    }
}

/// The registry of runnable agents, with what building one needs.
pub struct Runnables {
    registry: Registry<Key, RunnableAgent>,
    keyring: Arc<Keyring>,
    client: GuardedClient,
}

impl Runnables {
    pub fn new(keyring: Arc<Keyring>, client: GuardedClient) -> Runnables {
        Runnables {
            registry: Registry::new(),
            keyring,
            client,
        }
    }

    /// The live instance for this configuration, or a new one.
    pub async fn get(
        &self,
        agent: &agents::Model,
        task: &tasks::Model,
        provider: &providers::Model,
    ) -> Result<Arc<RunnableAgent>, BuildError> {
        self.registry
            .get_or_try_build(Key::of(agent, task, provider), || {
                RunnableAgent::build(agent, task, provider, &self.keyring, self.client.clone())
            })
            .await
    }

    pub fn keyring(&self) -> &Keyring {
        &self.keyring
    }

    pub fn registry(&self) -> &Registry<Key, RunnableAgent> {
        &self.registry
    }
}

#[cfg(test)]
mod tests {
    use chrono::Utc;
    use contracts::{ProviderKind, ValidationStatus};
    use serde_json::json;

    use super::*;
    use crate::db::Wire;
    use crate::outbound::{OutboundPolicy, Timeouts};

    fn runnables() -> Runnables {
        let policy = Arc::new(OutboundPolicy::new(false, &[]).unwrap());
        let timeouts = Timeouts {
            connect: Duration::from_secs(1),
            total: Duration::from_secs(1),
        };
        let client = GuardedClient::new(policy, timeouts).unwrap();
        Runnables::new(Arc::new(Keyring::new([7; 32], Vec::new())), client)
    }

    fn rows(revision: i64) -> (agents::Model, tasks::Model, providers::Model) {
        let now = Utc::now();
        let provider = providers::Model {
            id: Uuid::nil(),
            name: "p".into(),
            kind: Wire(ProviderKind::Ollama),
            base_url: Some("http://127.0.0.1:9".into()),
            api_key_ciphertext: None,
            api_key_hint: None,
            credential_location: Wire(contracts::CredentialLocation::Server),
            credential_workers: "[]".into(),
            checked_by: None,
            validation_status: Wire(ValidationStatus::Pending),
            validation_error: None,
            validated_at: None,
            latency_ms: None,
            models: json!([]),
            is_active: true,
            revision: 1,
            created_at: now,
            updated_at: now,
        };
        let agent = agents::Model {
            id: Uuid::from_u128(1),
            name: "a".into(),
            description: String::new(),
            provider_id: provider.id,
            model: "m".into(),
            system_prompt: "s".into(),
            user_prompt: Some("Text: {{ text }}".into()),
            temperature: None,
            max_tokens: None,
            max_retries: 1,
            timeout_secs: 5,
            queue_timeout_secs: 300,
            worker_names: "[]".into(),
            required_tags: "[]".into(),
            concurrency_group_id: None,
            revision,
            created_at: now,
            updated_at: now,
        };
        let task = tasks::Model {
            id: Uuid::from_u128(2),
            name: "t".into(),
            description: String::new(),
            request_schema: Some(json!({"type": "object", "required": ["text"]})),
            response_schema: json!({"type": "string"}),
            revision: 1,
            created_at: now,
            updated_at: now,
        };
        (agent, task, provider)
    }

    #[tokio::test]
    async fn equal_configurations_share_one_instance_and_a_new_revision_gets_another() {
        let runnables = runnables();
        let (agent, task, provider) = rows(1);
        let a = runnables.get(&agent, &task, &provider).await.unwrap();
        let b = runnables.get(&agent, &task, &provider).await.unwrap();
        assert!(Arc::ptr_eq(&a, &b));
        assert_eq!(runnables.registry().builds(), 1);
        let (edited, _, _) = rows(2);
        let c = runnables.get(&edited, &task, &provider).await.unwrap();
        assert!(!Arc::ptr_eq(&a, &c));
        assert_eq!(c.snapshot.agent_revision, 2);
        assert_eq!(
            a.snapshot.agent_revision, 1,
            "holders keep their configuration"
        );
        assert_eq!(runnables.registry().live_instances(), 2);
    }

    #[tokio::test]
    async fn input_checks_and_jobs_use_the_compiled_configuration() {
        let runnables = runnables();
        let (agent, task, provider) = rows(1);
        let runnable = runnables.get(&agent, &task, &provider).await.unwrap();
        assert!(runnable.check_input(&json!({"text": "hi"})).is_empty());
        let problems = runnable.check_input(&json!({"other": 1}));
        assert_eq!(problems[0].path, "/input");
        let job = runnable.job("Text: hi".into(), false);
        assert_eq!(job.response_schema, json!({"type": "string"}));
        assert!(job.system_prompt.contains(r#"{"type":"string"}"#));
    }

    #[tokio::test]
    async fn without_a_template_the_input_is_sent_as_json() {
        let runnables = runnables();
        let (mut agent, task, provider) = rows(1);
        agent.user_prompt = None;
        let runnable = runnables.get(&agent, &task, &provider).await.unwrap();
        // No template, no helper: a renderer that could not start one is never asked.
        let renderer = Renderer::new("/nonexistent/agentry".into(), 1);
        let rendered = runnable
            .render(&renderer, &json!({"text": "hi"}))
            .await
            .unwrap();
        assert_eq!(
            serde_json::from_str::<Value>(&rendered).unwrap(),
            json!({"text": "hi"})
        );
    }

    #[tokio::test]
    async fn a_task_whose_schema_no_longer_compiles_is_not_runnable() {
        let runnables = runnables();
        let (agent, mut task, provider) = rows(1);
        task.response_schema = json!({"type": 5});
        let err = runnables.get(&agent, &task, &provider).await.err();
        assert!(matches!(err, Some(BuildError::Schema(_))), "{err:?}");
    }
}
