//! Runnable agents on a worker: what the attempt loop needs for a job — the provider client,
//! the compiled response validator and the agent's parameters — built once per configuration
//! and shared by every run of it. Kept in a weak-reference registry keyed by the agent, task
//! and provider revisions the job's snapshot names, so an edit makes a new instance while
//! runs in flight keep theirs, and an instance no run holds is swept.

use std::sync::Arc;
use std::time::Duration;

use contracts::FieldError;
use contracts::RunSnapshot;
use contracts::worker::Job;
use jsonschema::Validator;
use serde_json::Value;
use uuid::Uuid;

use crate::llm::{self, LlmProvider, ProviderError};
use crate::outbound::GuardedClient;
use crate::registry::Registry;
use crate::schema;

/// Identity of a configuration: any edit bumps a revision and so makes a new key.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Key {
    pub agent: (Uuid, u64),
    pub task: (Uuid, u64),
    pub provider: (Uuid, u64),
}

impl Key {
    pub fn of(snapshot: &RunSnapshot) -> Key {
        Key {
            agent: (snapshot.agent_id, snapshot.agent_revision),
            task: (snapshot.task_id, snapshot.task_revision),
            provider: (snapshot.provider_id, snapshot.provider_revision),
        }
    }
}

/// Why a job cannot be executed.
#[derive(Debug, thiserror::Error)]
pub enum BuildError {
    #[error("the provider cannot be used: {0}")]
    Provider(#[from] ProviderError),
    #[error("the response schema does not compile: {0}")]
    Schema(String),
}

/// An agent ready to run one task. Immutable; shared by every run of its configuration.
pub struct RunnableAgent {
    pub provider: Arc<dyn LlmProvider>,
    response_validator: Validator,
    pub response_schema: Value,
    pub system_prompt: String,
    pub model: String,
    pub temperature: Option<f64>,
    pub max_tokens: Option<u32>,
    pub max_retries: u32,
    pub timeout: Duration,
}

impl RunnableAgent {
    /// Problems of an answer against the task's response schema.
    pub fn check_output(&self, output: &Value) -> Vec<FieldError> {
        schema::problems(&self.response_validator, output, "")
    }

    fn build(job: &Job, client: GuardedClient) -> Result<RunnableAgent, BuildError> {
        let provider = llm::from_endpoint(&job.provider, client)?;
        let response_validator =
            schema::compile(&job.response_schema).map_err(|e| BuildError::Schema(e.to_string()))?;
        Ok(RunnableAgent {
            provider,
            response_validator,
            response_schema: job.response_schema.clone(),
            system_prompt: job.system_prompt.clone(),
            model: job.model.clone(),
            temperature: job.temperature,
            max_tokens: job.max_tokens,
            max_retries: job.max_retries,
            timeout: Duration::from_secs(u64::from(job.timeout_secs.max(1))),
        })
    }
}

/// The registry of runnable agents, with the outbound client they call providers through.
pub struct Runnables {
    registry: Registry<Key, RunnableAgent>,
    client: GuardedClient,
}

impl Runnables {
    pub fn new(client: GuardedClient) -> Runnables {
        Runnables {
            registry: Registry::new(),
            client,
        }
    }

    /// The live instance for the job's configuration, or a new one.
    pub async fn get(&self, job: &Job) -> Result<Arc<RunnableAgent>, BuildError> {
        self.registry
            .get_or_try_build(Key::of(&job.snapshot), || {
                RunnableAgent::build(job, self.client.clone())
            })
            .await
    }

    pub fn registry(&self) -> &Registry<Key, RunnableAgent> {
        &self.registry
    }
}

#[cfg(test)]
mod tests {
    use contracts::ProviderKind;
    use contracts::worker::ProviderEndpoint;
    use serde_json::json;

    use super::*;
    use crate::outbound::{OutboundPolicy, Timeouts};

    fn runnables() -> Runnables {
        let policy = Arc::new(OutboundPolicy::new(false, &[]).unwrap());
        let timeouts = Timeouts {
            connect: Duration::from_secs(1),
            total: Duration::from_secs(1),
        };
        Runnables::new(GuardedClient::new(policy, timeouts).unwrap())
    }

    fn job(agent_revision: u64) -> Job {
        Job {
            system_prompt: "s".into(),
            prompt: "p".into(),
            response_schema: json!({"type": "string"}),
            model: "m".into(),
            temperature: None,
            max_tokens: None,
            max_retries: 1,
            timeout_secs: 5,
            provider: ProviderEndpoint {
                kind: ProviderKind::Ollama,
                base_url: Some("http://127.0.0.1:9".into()),
                api_key: None,
            },
            snapshot: RunSnapshot {
                agent_id: Uuid::from_u128(1),
                agent_name: "a".into(),
                agent_revision,
                model: "m".into(),
                temperature: None,
                max_tokens: None,
                max_retries: 1,
                timeout_secs: 5,
                task_id: Uuid::from_u128(2),
                task_name: "t".into(),
                task_revision: 1,
                provider_id: Uuid::nil(),
                provider_name: "p".into(),
                provider_kind: ProviderKind::Ollama,
                provider_revision: 1,
            },
        }
    }

    #[tokio::test]
    async fn equal_configurations_share_one_instance_and_a_new_revision_gets_another() {
        let runnables = runnables();
        let a = runnables.get(&job(1)).await.unwrap();
        let b = runnables.get(&job(1)).await.unwrap();
        assert!(Arc::ptr_eq(&a, &b));
        assert_eq!(runnables.registry().builds(), 1);
        let mut edited = job(2);
        edited.max_retries = 4;
        let c = runnables.get(&edited).await.unwrap();
        assert!(!Arc::ptr_eq(&a, &c));
        assert_eq!(c.max_retries, 4);
        assert_eq!(a.max_retries, 1, "holders keep their configuration");
        assert_eq!(runnables.registry().live_instances(), 2);
        drop((a, b));
        runnables.registry().sweep();
        assert_eq!(runnables.registry().live_instances(), 1);
        assert_eq!(
            runnables.registry().entries(),
            1,
            "the unheld entry is swept"
        );
    }

    #[tokio::test]
    async fn output_checks_use_the_compiled_schema() {
        let runnable = runnables().get(&job(1)).await.unwrap();
        assert!(runnable.check_output(&json!("ok")).is_empty());
        assert!(!runnable.check_output(&json!(5)).is_empty());
    }

    #[tokio::test]
    async fn a_job_whose_schema_does_not_compile_is_refused() {
        let mut bad = job(1);
        bad.response_schema = json!({"type": 5});
        let err = runnables().get(&bad).await.err();
        assert!(matches!(err, Some(BuildError::Schema(_))), "{err:?}");
    }
}
