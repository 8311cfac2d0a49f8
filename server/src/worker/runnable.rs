//! Runnable agents on a worker: what the attempt loop needs for a job — the provider client,
//! the compiled response validator and the agent's parameters — built once per configuration
//! and shared by every run of it. Kept in a weak-reference registry keyed by the agent, task
//! and provider revisions the job's snapshot names, so an edit makes a new instance while
//! runs in flight keep theirs, and an instance no run holds is swept.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use contracts::FieldError;
use contracts::RunSnapshot;
use contracts::worker::{Job, ProbeOutcome, ProviderEndpoint};
use jsonschema::Validator;
use serde_json::Value;
use uuid::Uuid;

use super::credentials::CredentialStore;
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
    /// Changes of the worker's own credentials: a key set again makes a new instance.
    pub credentials: u64,
}

impl Key {
    pub fn of(snapshot: &RunSnapshot) -> Key {
        Key {
            agent: (snapshot.agent_id, snapshot.agent_revision),
            task: (snapshot.task_id, snapshot.task_revision),
            provider: (snapshot.provider_id, snapshot.provider_revision),
            credentials: 0,
        }
    }
}

/// Why a job cannot be executed.
#[derive(Debug, thiserror::Error)]
pub enum BuildError {
    #[error("the provider cannot be used: {0}")]
    Provider(#[from] ProviderError),
    #[error(
        "this worker holds no key for provider {0} (set one with `agentry worker credentials set`)"
    )]
    NoCredential(String),
    #[error("this worker's key for provider {provider} cannot be read: {why}")]
    Credential { provider: String, why: String },
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

    fn build(
        job: &Job,
        client: GuardedClient,
        credentials: Option<&CredentialStore>,
    ) -> Result<RunnableAgent, BuildError> {
        let provider = provider_client(&job.provider, client, credentials)?;
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

/// The client for an endpoint: with the key it carries, or the one this worker holds when
/// the key lives on workers.
fn provider_client(
    endpoint: &ProviderEndpoint,
    client: GuardedClient,
    credentials: Option<&CredentialStore>,
) -> Result<Arc<dyn LlmProvider>, BuildError> {
    let Some(name) = &endpoint.credential else {
        return Ok(llm::from_endpoint(endpoint, client)?);
    };
    let key = credentials
        .map(|store| store.get(name))
        .transpose()
        .map_err(|e| BuildError::Credential {
            provider: name.clone(),
            why: format!("{e:#}"),
        })?
        .flatten()
        .ok_or_else(|| BuildError::NoCredential(name.clone()))?;
    let mut endpoint = endpoint.clone();
    endpoint.api_key = Some(key.as_str().to_owned());
    Ok(llm::from_endpoint(&endpoint, client)?)
}

/// Longest a connectivity check the server asks for may take.
const PROBE_TIMEOUT: Duration = Duration::from_secs(20);

/// The registry of runnable agents, with the outbound client they call providers through
/// and the keys the worker holds itself (remote workers).
pub struct Runnables {
    registry: Registry<Key, RunnableAgent>,
    client: GuardedClient,
    credentials: Option<Arc<CredentialStore>>,
    /// Bumped whenever the held credentials change.
    generation: AtomicU64,
}

impl Runnables {
    pub fn new(client: GuardedClient) -> Runnables {
        Runnables {
            registry: Registry::new(),
            client,
            credentials: None,
            generation: AtomicU64::new(0),
        }
    }

    /// Uses the keys in `store` for providers whose key lives on workers.
    #[must_use]
    pub fn with_credentials(mut self, store: Arc<CredentialStore>) -> Runnables {
        self.credentials = Some(store);
        self
    }

    /// The providers whose keys this worker holds (names).
    pub fn credential_names(&self) -> Vec<String> {
        self.credentials
            .as_ref()
            .map(|store| store.names())
            .unwrap_or_default()
    }

    /// Reads the held credentials again; the providers held now when they changed.
    pub fn credentials_changed(&self) -> Option<Vec<String>> {
        let store = self.credentials.as_ref()?;
        match store.refresh() {
            Ok(true) => {
                self.generation.fetch_add(1, Ordering::Relaxed);
                Some(store.names())
            }
            Ok(false) => None,
            Err(err) => {
                tracing::warn!(error = %format!("{err:#}"), "cannot read the worker's credentials");
                None
            }
        }
    }

    /// Checks that the provider answers (what the server's validator does, here with the
    /// key this worker holds).
    pub async fn probe(&self, endpoint: &ProviderEndpoint) -> ProbeOutcome {
        let client =
            match provider_client(endpoint, self.client.clone(), self.credentials.as_deref()) {
                Ok(client) => client,
                Err(err) => {
                    return ProbeOutcome::Failed {
                        error: err.to_string(),
                    };
                }
            };
        let started = std::time::Instant::now();
        match tokio::time::timeout(PROBE_TIMEOUT, client.probe()).await {
            Ok(Ok(probe)) => ProbeOutcome::Connected {
                models: probe.models,
                latency_ms: u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX),
            },
            Ok(Err(err)) => ProbeOutcome::Failed {
                error: err.summary(),
            },
            Err(_) => ProbeOutcome::Failed {
                error: format!(
                    "timeout: no complete answer within {} s",
                    PROBE_TIMEOUT.as_secs()
                ),
            },
        }
    }

    /// The live instance for the job's configuration, or a new one.
    pub async fn get(&self, job: &Job) -> Result<Arc<RunnableAgent>, BuildError> {
        let mut key = Key::of(&job.snapshot);
        if job.provider.credential.is_some() {
            key.credentials = self.generation.load(Ordering::Relaxed);
        }
        self.registry
            .get_or_try_build(key, || {
                RunnableAgent::build(job, self.client.clone(), self.credentials.as_deref())
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
                credential: None,
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
