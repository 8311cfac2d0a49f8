//! Ollama's native API: `GET /api/tags`, and `POST /api/chat` with `format: <schema>`
//! (grammar-constrained output).

use async_trait::async_trait;
use contracts::ProviderKind;
use reqwest::Method;
use serde_json::{Value, json};

use super::http::Endpoint;
use super::{
    ErrorClass, JsonCompletion, JsonRequest, LlmProvider, Probe, ProviderError, Usage,
    chat_messages,
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
        let url = self.endpoint.url("api/tags");
        let body = self
            .endpoint
            .send_json(
                self.endpoint
                    .bearer(self.endpoint.request(Method::GET, url)),
                None,
            )
            .await?;
        let models = body["models"].as_array().ok_or_else(|| {
            self.endpoint.error(
                ErrorClass::UnexpectedResponse,
                "the answer to /api/tags has no `models` array (is this an Ollama server?)",
            )
        })?;
        Ok(Probe {
            models: models
                .iter()
                .filter_map(|m| {
                    m["name"]
                        .as_str()
                        .or(m["model"].as_str())
                        .map(str::to_owned)
                })
                .collect(),
        })
    }

    async fn complete_json(&self, request: &JsonRequest) -> Result<JsonCompletion, ProviderError> {
        let messages = chat_messages(request);
        let mut options = json!({});
        if let Some(t) = request.temperature {
            options["temperature"] = json!(t);
        }
        if let Some(max) = request.max_tokens {
            options["num_predict"] = json!(max);
        }
        let body = json!({
            "model": request.model,
            "messages": messages,
            "format": request.schema,
            "stream": false,
            "options": options,
        });
        let url = self.endpoint.url("api/chat");
        let answer = self
            .endpoint
            .send_json(
                self.endpoint
                    .bearer(self.endpoint.request(Method::POST, url).json(&body)),
                None,
            )
            .await?;
        let text = answer
            .pointer("/message/content")
            .and_then(Value::as_str)
            .ok_or_else(|| {
                self.endpoint.error(
                    ErrorClass::UnexpectedResponse,
                    "the answer has no message.content",
                )
            })?
            .to_owned();
        Ok(JsonCompletion {
            text,
            value: None,
            usage: Usage {
                prompt_tokens: answer["prompt_eval_count"].as_u64(),
                completion_tokens: answer["eval_count"].as_u64(),
            },
        })
    }
}
