//! The weak-reference registry of runnable agents. A `RunnableAgent` holds everything a run
//! needs, built once per configuration: the provider client, compiled request and response
//! validators, the compiled prompt template and the parameters. The registry keeps only
//! `Weak` references: an instance lives exactly as long as some run holds it, concurrent
//! callers for one key share one build, and an edit (a new revision) is a new key, so runs in
//! flight keep the instance they started with.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, Weak};
use std::time::Duration;

use contracts::{FieldError, RunSnapshot};
use jsonschema::Validator;
use serde_json::Value;
use uuid::Uuid;

use crate::db::{agents, providers, tasks, to_u64};
use crate::llm::{self, LlmProvider, ProviderError};
use crate::outbound::GuardedClient;
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
}

/// Why an agent could not be made runnable.
#[derive(Debug, thiserror::Error)]
pub enum BuildError {
    #[error("the stored API key cannot be decrypted: {0}")]
    Key(#[from] crate::secrets::SecretError),
    #[error("the provider cannot be used: {0}")]
    Provider(#[from] ProviderError),
    #[error("the task's schema no longer compiles: {0}")]
    Schema(String),
    #[error("the user prompt template no longer compiles: {0}")]
    Template(String),
    #[error("stored configuration is corrupt: {0}")]
    Corrupt(#[from] sea_orm::DbErr),
}

/// An agent ready to run one task. Immutable; shared by every run of its configuration.
pub struct RunnableAgent {
    pub key: Key,
    pub provider: Arc<dyn LlmProvider>,
    request_validator: Option<Validator>,
    response_validator: Validator,
    pub response_schema: Value,
    /// Holds the compiled `user_prompt` as template `"user"`, if there is one.
    templates: minijinja::Environment<'static>,
    pub system_prompt: String,
    pub model: String,
    pub temperature: Option<f64>,
    pub max_tokens: Option<u32>,
    pub max_retries: u32,
    pub timeout: Duration,
    pub snapshot: RunSnapshot,
}

impl RunnableAgent {
    /// Problems of `input` against the task's request schema (none when it has none).
    pub fn check_input(&self, input: &Value) -> Vec<FieldError> {
        match &self.request_validator {
            Some(validator) => errors_of(validator, input, "/input"),
            None => Vec::new(),
        }
    }

    /// Problems of an answer against the task's response schema.
    pub fn check_output(&self, output: &Value) -> Vec<FieldError> {
        errors_of(&self.response_validator, output, "")
    }

    /// The user message: the template rendered with `input` (as `input` and, for objects,
    /// its top-level fields), or the input as JSON when there is no template. An undefined
    /// variable is an error, never an empty string.
    pub fn render(&self, input: &Value) -> Result<String, String> {
        let Ok(template) = self.templates.get_template("user") else {
            return serde_json::to_string_pretty(input).map_err(|e| e.to_string());
        };
        let mut context = match input {
            Value::Object(map) => map.clone(),
            _ => serde_json::Map::new(),
        };
        context.insert("input".to_owned(), input.clone());
        template
            .render(minijinja::Value::from_serialize(&context))
            .map_err(|e| e.to_string())
    }
}

fn errors_of(validator: &Validator, value: &Value, prefix: &str) -> Vec<FieldError> {
    validator
        .iter_errors(value)
        .map(|e| FieldError {
            path: format!("{prefix}{}", e.instance_path().as_str()),
            message: e.to_string(),
        })
        .collect()
}

/// One key's entry: an async lock so concurrent callers wait for a single build.
type Slot = Arc<tokio::sync::Mutex<Weak<RunnableAgent>>>;

pub struct Registry {
    keyring: Arc<Keyring>,
    client: GuardedClient,
    slots: Mutex<HashMap<Key, Slot>>,
    builds: AtomicU64,
    lookups: AtomicU64,
}

/// Dead entries are swept on every this-many lookups (and by `sweep`).
const SWEEP_EVERY: u64 = 64;

impl Registry {
    pub fn new(keyring: Arc<Keyring>, client: GuardedClient) -> Registry {
        Registry {
            keyring,
            client,
            slots: Mutex::new(HashMap::new()),
            builds: AtomicU64::new(0),
            lookups: AtomicU64::new(0),
        }
    }

    /// The live instance for this configuration, or a new one. Concurrent callers for one
    /// key share one build.
    pub async fn get_or_create(
        &self,
        agent: &agents::Model,
        task: &tasks::Model,
        provider: &providers::Model,
    ) -> Result<Arc<RunnableAgent>, BuildError> {
        let key = Key::of(agent, task, provider);
        if self.lookups.fetch_add(1, Ordering::Relaxed) % SWEEP_EVERY == SWEEP_EVERY - 1 {
            self.sweep();
        }
        let slot = {
            let Ok(mut slots) = self.slots.lock() else {
                return self.build(key, agent, task, provider);
            };
            Arc::clone(slots.entry(key).or_default())
        };
        let mut current = slot.lock().await;
        if let Some(live) = current.upgrade() {
            return Ok(live);
        }
        let built = self.build(key, agent, task, provider)?;
        *current = Arc::downgrade(&built);
        Ok(built)
    }

    /// Instances alive right now (held by at least one run).
    pub fn live_instances(&self) -> usize {
        self.slots
            .lock()
            .map(|slots| {
                slots
                    .values()
                    .filter(|slot| slot.try_lock().is_ok_and(|weak| weak.strong_count() > 0))
                    .count()
            })
            .unwrap_or(0)
    }

    /// Instances built since start (a measure of reuse).
    pub fn builds(&self) -> u64 {
        self.builds.load(Ordering::Relaxed)
    }

    /// Forgets entries whose instance is gone and that no caller is building.
    pub fn sweep(&self) {
        if let Ok(mut slots) = self.slots.lock() {
            slots.retain(|_, slot| {
                Arc::strong_count(slot) > 1
                    || slot.try_lock().map_or(true, |weak| weak.strong_count() > 0)
            });
        }
    }

    /// Entries currently kept (live or being built).
    pub fn entries(&self) -> usize {
        self.slots.lock().map(|s| s.len()).unwrap_or(0)
    }

    fn build(
        &self,
        key: Key,
        agent: &agents::Model,
        task: &tasks::Model,
        provider: &providers::Model,
    ) -> Result<Arc<RunnableAgent>, BuildError> {
        self.builds.fetch_add(1, Ordering::Relaxed);
        let kind = provider.kind()?;
        let api_key = match &provider.api_key_ciphertext {
            Some(blob) => Some(
                self.keyring
                    .decrypt(blob, &providers::api_key_context(provider.id))?,
            ),
            None => None,
        };
        let client = llm::build(
            kind,
            provider.base_url.as_deref(),
            api_key,
            self.client.clone(),
        )?;
        let request_validator = match &task.request_schema {
            Some(schema) => {
                Some(schema::compile(schema).map_err(|e| BuildError::Schema(e.to_string()))?)
            }
            None => None,
        };
        let response_validator = schema::compile(&task.response_schema)
            .map_err(|e| BuildError::Schema(e.to_string()))?;
        let mut templates = minijinja::Environment::new();
        templates.set_undefined_behavior(minijinja::UndefinedBehavior::Strict);
        if let Some(source) = &agent.user_prompt {
            templates
                .add_template_owned("user", source.clone())
                .map_err(|e| BuildError::Template(e.to_string()))?;
        }
        let max_tokens = agent.max_tokens.and_then(|v| u32::try_from(v).ok());
        let max_retries = u32::try_from(agent.max_retries).unwrap_or(0);
        let timeout_secs = u32::try_from(agent.timeout_secs).unwrap_or(1).max(1);
        Ok(Arc::new(RunnableAgent {
            key,
            provider: client,
            request_validator,
            response_validator,
            response_schema: task.response_schema.clone(),
            templates,
            system_prompt: agent.system_prompt.clone(),
            model: agent.model.clone(),
            temperature: agent.temperature,
            max_tokens,
            max_retries,
            timeout: Duration::from_secs(u64::from(timeout_secs)),
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
                provider_kind: kind,
                provider_revision: to_u64(provider.revision),
            },
        }))
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, reason = "tests")]
mod tests {
    use super::*;
    use crate::outbound::{OutboundPolicy, Timeouts};
    use chrono::Utc;
    use serde_json::json;

    fn registry() -> Registry {
        let policy = Arc::new(OutboundPolicy::new(false, &[]).unwrap());
        let timeouts = Timeouts {
            connect: Duration::from_secs(1),
            total: Duration::from_secs(1),
        };
        let client = GuardedClient::new(policy, timeouts).unwrap();
        Registry::new(Arc::new(Keyring::new([7; 32], Vec::new())), client)
    }

    fn rows(revision: i64) -> (agents::Model, tasks::Model, providers::Model) {
        let now = Utc::now();
        let provider = providers::Model {
            id: Uuid::nil(),
            name: "p".into(),
            kind: "ollama".into(),
            base_url: Some("http://127.0.0.1:9".into()),
            api_key_ciphertext: None,
            api_key_hint: None,
            validation_status: "pending".into(),
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
    async fn equal_keys_share_one_instance_and_a_new_revision_gets_another() {
        let registry = registry();
        let (agent, task, provider) = rows(1);
        let a = registry
            .get_or_create(&agent, &task, &provider)
            .await
            .unwrap();
        let b = registry
            .get_or_create(&agent, &task, &provider)
            .await
            .unwrap();
        assert!(Arc::ptr_eq(&a, &b));
        assert_eq!(registry.builds(), 1);
        let (edited, _, _) = rows(2);
        let c = registry
            .get_or_create(&edited, &task, &provider)
            .await
            .unwrap();
        assert!(!Arc::ptr_eq(&a, &c));
        assert_eq!(c.snapshot.agent_revision, 2);
        assert_eq!(
            a.snapshot.agent_revision, 1,
            "holders keep their configuration"
        );
        assert_eq!(registry.live_instances(), 2);
    }

    #[tokio::test]
    async fn an_instance_lives_exactly_as_long_as_someone_holds_it() {
        let registry = registry();
        let (agent, task, provider) = rows(1);
        let held = registry
            .get_or_create(&agent, &task, &provider)
            .await
            .unwrap();
        assert_eq!(registry.live_instances(), 1);
        drop(held);
        assert_eq!(registry.live_instances(), 0);
        registry.sweep();
        assert_eq!(registry.entries(), 0, "dead entries are swept");
        let _again = registry
            .get_or_create(&agent, &task, &provider)
            .await
            .unwrap();
        assert_eq!(
            registry.builds(),
            2,
            "rebuilt after the last holder went away"
        );
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn concurrent_callers_share_one_build() {
        let registry = Arc::new(registry());
        let (agent, task, provider) = rows(1);
        let calls: Vec<_> = (0..100)
            .map(|_| {
                let (registry, agent, task, provider) = (
                    Arc::clone(&registry),
                    agent.clone(),
                    task.clone(),
                    provider.clone(),
                );
                tokio::spawn(async move {
                    registry
                        .get_or_create(&agent, &task, &provider)
                        .await
                        .unwrap()
                })
            })
            .collect();
        let mut instances = Vec::new();
        for call in calls {
            instances.push(call.await.unwrap());
        }
        assert_eq!(registry.builds(), 1);
        assert!(instances.iter().all(|i| Arc::ptr_eq(i, &instances[0])));
    }

    #[tokio::test]
    async fn input_checks_and_rendering_use_the_compiled_configuration() {
        let registry = registry();
        let (agent, task, provider) = rows(1);
        let runnable = registry
            .get_or_create(&agent, &task, &provider)
            .await
            .unwrap();
        assert!(runnable.check_input(&json!({"text": "hi"})).is_empty());
        let problems = runnable.check_input(&json!({"other": 1}));
        assert_eq!(problems[0].path, "/input");
        assert_eq!(runnable.render(&json!({"text": "hi"})).unwrap(), "Text: hi");
        assert!(
            runnable.render(&json!({"other": 1})).is_err(),
            "undefined is an error"
        );
        assert!(runnable.check_output(&json!("ok")).is_empty());
        assert!(!runnable.check_output(&json!(5)).is_empty());
    }

    #[tokio::test]
    async fn without_a_template_the_input_is_sent_as_json() {
        let registry = registry();
        let (mut agent, task, provider) = rows(1);
        agent.user_prompt = None;
        let runnable = registry
            .get_or_create(&agent, &task, &provider)
            .await
            .unwrap();
        let rendered = runnable.render(&json!({"text": "hi"})).unwrap();
        assert_eq!(
            serde_json::from_str::<Value>(&rendered).unwrap(),
            json!({"text": "hi"})
        );
    }
}
