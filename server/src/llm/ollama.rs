//! Ollama's native API: `GET /api/tags`, and `POST /api/chat` with `format: <schema>`
//! (grammar-constrained output).

use async_trait::async_trait;
use contracts::ProviderKind;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::http::Endpoint;
use super::{
    ChatMessage, ErrorClass, JsonCompletion, JsonRequest, LlmProvider, Probe, ProviderError, Usage,
    chat_messages, count,
};

pub struct Ollama {
    endpoint: Endpoint,
}

impl Ollama {
    pub fn new(endpoint: Endpoint) -> Ollama {
        Ollama { endpoint }
    }
}

#[async_trait]
impl LlmProvider for Ollama {
    fn kind(&self) -> ProviderKind {
        ProviderKind::Ollama
    }

    async fn probe(&self) -> Result<Probe, ProviderError> {
        let tags: Tags = self
            .endpoint
            .get_json(
                self.endpoint.url("api/tags"),
                "the answer to /api/tags (is this an Ollama server?)",
            )
            .await?;
        Ok(Probe {
            models: tags
                .models
                .into_iter()
                .filter_map(|m| m.name.or(m.model))
                .collect(),
        })
    }

    async fn complete_json(&self, request: &JsonRequest) -> Result<JsonCompletion, ProviderError> {
        let body = ChatRequest {
            model: &request.model,
            messages: chat_messages(request),
            format: &request.schema,
            stream: false,
            options: Options {
                temperature: request.temperature,
                num_predict: request.max_tokens,
            },
        };
        let answer: ChatResponse = self
            .endpoint
            .post_json(self.endpoint.url("api/chat"), &body, "the answer")
            .await?;
        let text = answer.message.and_then(|m| m.content).ok_or_else(|| {
            self.endpoint.error(
                ErrorClass::UnexpectedResponse,
                "the answer has no message.content",
            )
        })?;
        Ok(JsonCompletion {
            text,
            value: None,
            usage: Usage {
                prompt_tokens: answer.prompt_eval_count,
                completion_tokens: answer.eval_count,
            },
        })
    }
}

// The wire. Unknown fields are ignored; Ollama adds timing fields and omits counts when a
// prompt was cached.

#[derive(Deserialize)]
struct Tags {
    models: Vec<Tag>,
}

#[derive(Deserialize)]
struct Tag {
    #[serde(default)]
    name: Option<String>,
    #[serde(default)]
    model: Option<String>,
}

#[derive(Serialize)]
struct ChatRequest<'a> {
    model: &'a str,
    messages: Vec<ChatMessage<'a>>,
    format: &'a Value,
    stream: bool,
    options: Options,
}

#[derive(Serialize)]
struct Options {
    #[serde(skip_serializing_if = "Option::is_none")]
    temperature: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    num_predict: Option<u32>,
}

#[derive(Deserialize)]
struct ChatResponse {
    #[serde(default)]
    message: Option<AnswerMessage>,
    #[serde(default, deserialize_with = "count")]
    prompt_eval_count: Option<u64>,
    #[serde(default, deserialize_with = "count")]
    eval_count: Option<u64>,
}

#[derive(Deserialize)]
struct AnswerMessage {
    #[serde(default)]
    content: Option<String>,
}
