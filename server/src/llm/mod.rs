//! The provider abstraction: one object-safe trait, built from a provider row, with one short
//! file per API family describing its wire format. Everything goes out through the guarded
//! outbound client.

mod anthropic;
mod error;
mod gemini;
mod http;
mod ollama;
mod openai;

use std::sync::Arc;

use async_trait::async_trait;
use contracts::ProviderKind;
use serde_json::Value;

pub use error::{ErrorClass, ProviderError, truncate};
pub use http::Endpoint;

use crate::outbound::GuardedClient;

/// What a successful connectivity check learned.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Probe {
    /// Model ids as the provider names them (what an agent's `model` should be).
    pub models: Vec<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    User,
    Assistant,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Message {
    pub role: Role,
    pub content: String,
}

/// A request for output matching `schema`, asked for in the strongest way the provider
/// supports. The caller still validates the answer: no provider's promise is trusted.
#[derive(Debug, Clone)]
pub struct JsonRequest {
    pub model: String,
    pub system: String,
    pub messages: Vec<Message>,
    pub schema: Value,
    /// A short identifier for the schema (`[a-zA-Z0-9_-]`, ≤ 64), where the wire needs one.
    pub schema_name: String,
    pub temperature: Option<f64>,
    pub max_tokens: Option<u32>,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Usage {
    pub prompt_tokens: Option<u64>,
    pub completion_tokens: Option<u64>,
}

/// The provider's answer: the raw text it produced (for the run record) and, when it returned
/// structured data directly (Anthropic's tool input), that value.
#[derive(Debug, Clone, PartialEq)]
pub struct JsonCompletion {
    pub text: String,
    pub value: Option<Value>,
    pub usage: Usage,
}

/// One provider, ready to call. Object-safe so state can hold `Arc<dyn LlmProvider>`.
#[async_trait]
pub trait LlmProvider: Send + Sync {
    fn kind(&self) -> ProviderKind;

    /// A free call that proves the endpoint is reachable, accepts the credentials and lists
    /// models. Never a billed completion.
    async fn probe(&self) -> Result<Probe, ProviderError>;

    /// A completion constrained to `request.schema`.
    async fn complete_json(&self, request: &JsonRequest) -> Result<JsonCompletion, ProviderError>;
}

/// Builds the provider for a configuration. `api_key` is the decrypted key, if any.
pub fn build(
    kind: ProviderKind,
    base_url: Option<&str>,
    api_key: Option<String>,
    client: GuardedClient,
) -> Result<Arc<dyn LlmProvider>, ProviderError> {
    let endpoint = Endpoint::new(kind, base_url, api_key, client)?;
    Ok(match kind {
        ProviderKind::Ollama => Arc::new(ollama::Ollama::new(endpoint)),
        ProviderKind::Openai | ProviderKind::OpenaiCompatible => {
            Arc::new(openai::OpenAi::new(endpoint))
        }
        ProviderKind::Anthropic => Arc::new(anthropic::Anthropic::new(endpoint)),
        ProviderKind::Gemini => Arc::new(gemini::Gemini::new(endpoint)),
    })
}

/// `[system, user, assistant, …]` in the chat-completions message shape that OpenAI-style
/// servers and Ollama's `/api/chat` share.
fn chat_messages(request: &JsonRequest) -> Vec<Value> {
    let mut messages = vec![serde_json::json!({"role": "system", "content": request.system})];
    messages.extend(request.messages.iter().map(|m| {
        serde_json::json!({
            "role": match m.role {
                Role::User => "user",
                Role::Assistant => "assistant",
            },
            "content": m.content,
        })
    }));
    messages
}
