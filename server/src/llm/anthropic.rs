//! Anthropic's Messages API: `GET /v1/models`, and `POST /v1/messages` with one forced tool
//! whose `input_schema` is the response schema, so the answer arrives as the tool's input.

use async_trait::async_trait;
use contracts::ProviderKind;
use reqwest::Method;
use serde_json::{Value, json};

use super::http::Endpoint;
use super::{
    ErrorClass, JsonCompletion, JsonRequest, LlmProvider, Probe, ProviderError, Role, Usage,
};

/// The API version header Anthropic requires on every request.
const API_VERSION: &str = "2023-06-01";
/// `max_tokens` is mandatory on Anthropic; used when the agent sets none.
const DEFAULT_MAX_TOKENS: u32 = 4_096;
/// Model pages fetched at most (1,000 models), so a misbehaving server cannot loop us.
const MAX_PAGES: usize = 10;
const TOOL_NAME: &str = "emit_result";

pub struct Anthropic {
    endpoint: Endpoint,
}

impl Anthropic {
    pub fn new(endpoint: Endpoint) -> Anthropic {
        Anthropic { endpoint }
    }

    fn request(&self, method: Method, url: url::Url) -> reqwest::RequestBuilder {
        let request = self
            .endpoint
            .request(method, url)
            .header("anthropic-version", API_VERSION);
        match self.endpoint.api_key() {
            Some(key) => request.header("x-api-key", key),
            None => request,
        }
    }
}

#[async_trait]
impl LlmProvider for Anthropic {
    fn kind(&self) -> ProviderKind {
        ProviderKind::Anthropic
    }

    async fn probe(&self) -> Result<Probe, ProviderError> {
        let mut models = Vec::new();
        let mut after: Option<String> = None;
        for _ in 0..MAX_PAGES {
            let mut url = self.endpoint.url("v1/models");
            url.query_pairs_mut().append_pair("limit", "100");
            if let Some(after) = &after {
                url.query_pairs_mut().append_pair("after_id", after);
            }
            let body = self
                .endpoint
                .send_json(self.request(Method::GET, url), None)
                .await?;
            let page = body["data"].as_array().ok_or_else(|| {
                self.endpoint.error(
                    ErrorClass::UnexpectedResponse,
                    "the model list has no `data` array",
                )
            })?;
            models.extend(
                page.iter()
                    .filter_map(|m| m["id"].as_str().map(str::to_owned)),
            );
            match (body["has_more"].as_bool(), body["last_id"].as_str()) {
                (Some(true), Some(last)) => after = Some(last.to_owned()),
                _ => break,
            }
        }
        Ok(Probe { models })
    }

    async fn complete_json(&self, request: &JsonRequest) -> Result<JsonCompletion, ProviderError> {
        let messages: Vec<Value> = request
            .messages
            .iter()
            .map(|m| {
                json!({
                    "role": match m.role { Role::User => "user", Role::Assistant => "assistant" },
                    "content": m.content,
                })
            })
            .collect();
        let mut body = json!({
            "model": request.model,
            "max_tokens": request.max_tokens.unwrap_or(DEFAULT_MAX_TOKENS),
            "system": request.system,
            "messages": messages,
            "tools": [{
                "name": TOOL_NAME,
                "description": "Return the result. Its input must match the schema exactly.",
                "input_schema": tool_schema(&request.schema),
            }],
            "tool_choice": {"type": "tool", "name": TOOL_NAME},
        });
        if let Some(t) = request.temperature {
            // Anthropic accepts 0–1; the agent's 0–2 range is clamped rather than refused.
            body["temperature"] = json!(t.min(1.0));
        }
        let url = self.endpoint.url("v1/messages");
        let answer = self
            .endpoint
            .send_json(self.request(Method::POST, url).json(&body), None)
            .await?;
        let content = answer["content"].as_array().cloned().unwrap_or_default();
        let tool_input = content
            .iter()
            .find(|c| c["type"] == "tool_use" && c["name"] == TOOL_NAME)
            .map(|c| c["input"].clone());
        let usage = Usage {
            prompt_tokens: answer
                .pointer("/usage/input_tokens")
                .and_then(Value::as_u64),
            completion_tokens: answer
                .pointer("/usage/output_tokens")
                .and_then(Value::as_u64),
        };
        match tool_input {
            Some(input) => {
                // Undo the `{result: …}` wrapper `tool_schema` put around non-object schemas.
                let value = if is_object_schema(&request.schema) {
                    input
                } else {
                    input.get("result").cloned().unwrap_or(input)
                };
                Ok(JsonCompletion {
                    text: value.to_string(),
                    value: Some(value),
                    usage,
                })
            }
            None => {
                // No tool call: keep whatever text came back so the run shows what went wrong.
                let text: String = content
                    .iter()
                    .filter_map(|c| c["text"].as_str())
                    .collect::<Vec<_>>()
                    .join("");
                if text.is_empty() {
                    return Err(self.endpoint.error(
                        ErrorClass::UnexpectedResponse,
                        "the answer has neither a tool call nor text",
                    ));
                }
                Ok(JsonCompletion {
                    text,
                    value: None,
                    usage,
                })
            }
        }
    }
}

/// Tool input schemas must describe an object; other schemas are wrapped in `{result: …}` —
/// undone by the caller, who validates against the original schema.
fn tool_schema(schema: &Value) -> Value {
    if is_object_schema(schema) {
        schema.clone()
    } else {
        json!({"type": "object", "properties": {"result": schema}, "required": ["result"]})
    }
}

fn is_object_schema(schema: &Value) -> bool {
    schema.get("type").and_then(Value::as_str) == Some("object")
}
