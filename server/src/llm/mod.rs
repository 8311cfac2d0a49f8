//! The provider abstraction: one object-safe trait, built from a provider row by one factory
//! (`from_row`), with one short file per API family describing its typed wire format.
//! Everything goes out through the guarded outbound client (`outbound::GuardedClient`).
//!
//! Why not the crates the product's design card names (checked against their sources on this
//! toolchain; details in docs/development.md):
//! - **ollama-rs** builds on reqwest 0.12 (everything here is on 0.13) and takes only a 0.12
//!   client, so our guarded client cannot be passed: a second HTTP/TLS stack whose requests
//!   skip the URL policy. Errors lose the HTTP status and `Retry-After`; bodies are unbounded.
//! - **async-openai** expects OpenAI's exact shapes: llama.cpp and vLLM send an integer error
//!   `code`, which fails to parse and loses the status; it retries 429/5xx by itself behind
//!   our own retry policy, and panics on a key with a newline.
//! - **rig-core** (=0.44, the last for rustc 1.95) could sit on the guarded client through its
//!   `HttpClientExt` trait, but rewrites schemas for OpenAI strict mode and puts Gemini keys in
//!   URLs, and costs a 117k-line compile. Adopting it is a later issue's decision.
//! - **schemars** derives schemas from Rust types; task schemas are user data known only at
//!   run time. It becomes useful for typed tool arguments and plans.
//!
//! The wire code here is ~700 lines for four families.

mod anthropic;
mod error;
mod factory;
mod gemini;
mod http;
mod ollama;
mod openai;

use std::sync::Arc;

use async_trait::async_trait;
use contracts::ProviderKind;
use serde::{Deserialize, Deserializer, Serialize};
use serde_json::Value;

pub use error::{ErrorClass, ProviderError, truncate};
pub use factory::{ClientError, endpoint_of, from_endpoint, from_row};
use http::Endpoint;

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

/// Builds the provider for a configuration. `api_key` is the decrypted key, if any. Callers
/// outside `llm` go through `from_row` or `from_endpoint`.
fn build(
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

/// One message in the chat-completions shape that OpenAI-style servers and Ollama's
/// `/api/chat` share.
#[derive(Serialize)]
struct ChatMessage<'a> {
    role: &'static str,
    content: &'a str,
}

/// `[system, user, assistant, …]` in that shape.
fn chat_messages(request: &JsonRequest) -> Vec<ChatMessage<'_>> {
    let mut messages = vec![ChatMessage {
        role: "system",
        content: &request.system,
    }];
    messages.extend(request.messages.iter().map(|m| ChatMessage {
        role: match m.role {
            Role::User => "user",
            Role::Assistant => "assistant",
        },
        content: &m.content,
    }));
    messages
}

/// A token count as servers send it: a whole number, or anything else (a float, `null`, a
/// string), which counts as unknown rather than failing the whole answer.
fn count<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Option<u64>, D::Error> {
    Ok(Value::deserialize(deserializer)?.as_u64())
}
