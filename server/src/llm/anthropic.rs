//! Anthropic's Messages API: `GET /v1/models`, and `POST /v1/messages` with one forced tool
//! whose `input_schema` is the response schema, so the answer arrives as the tool's input.

use async_trait::async_trait;
use contracts::ProviderKind;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use super::http::Endpoint;
use super::{
    ErrorClass, JsonCompletion, JsonRequest, LlmProvider, Probe, ProviderError, Role, Usage, count,
};

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
            let page: ModelPage = self.endpoint.get_json(url, "the model list").await?;
            models.extend(page.data.into_iter().filter_map(|m| m.id));
            match (page.has_more, page.last_id) {
                (Some(true), Some(last)) => after = Some(last),
                _ => break,
            }
        }
        Ok(Probe { models })
    }

    async fn complete_json(&self, request: &JsonRequest) -> Result<JsonCompletion, ProviderError> {
        let tool_schema = tool_schema(&request.schema);
        let body = MessagesRequest {
            model: &request.model,
            max_tokens: request.max_tokens.unwrap_or(DEFAULT_MAX_TOKENS),
            system: &request.system,
            messages: request
                .messages
                .iter()
                .map(|m| Message {
                    role: match m.role {
                        Role::User => "user",
                        Role::Assistant => "assistant",
                    },
                    content: &m.content,
                })
                .collect(),
            tools: [Tool {
                name: TOOL_NAME,
                description: "Return the result. Its input must match the schema exactly.",
                input_schema: &tool_schema,
            }],
            tool_choice: ToolChoice {
                kind: "tool",
                name: TOOL_NAME,
            },
            // Anthropic accepts 0–1; the agent's 0–2 range is clamped rather than refused.
            temperature: request.temperature.map(|t| t.min(1.0)),
        };
        let answer: MessagesResponse = self
            .endpoint
            .post_json(self.endpoint.url("v1/messages"), &body, "the answer")
            .await?;
        let usage = Usage {
            prompt_tokens: answer.usage.as_ref().and_then(|u| u.input_tokens),
            completion_tokens: answer.usage.as_ref().and_then(|u| u.output_tokens),
        };
        let tool_input = answer
            .content
            .iter()
            .find(|c| c.kind.as_deref() == Some("tool_use") && c.name.as_deref() == Some(TOOL_NAME))
            .map(|c| c.input.clone().unwrap_or(Value::Null));
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
                let text: String = answer
                    .content
                    .iter()
                    .filter_map(|c| c.text.as_deref())
                    .collect();
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

// The wire. Unknown fields (stop reasons, ids, cache counters) are ignored.

#[derive(Deserialize)]
struct ModelPage {
    data: Vec<ModelEntry>,
    #[serde(default)]
    has_more: Option<bool>,
    #[serde(default)]
    last_id: Option<String>,
}

#[derive(Deserialize)]
struct ModelEntry {
    #[serde(default)]
    id: Option<String>,
}

#[derive(Serialize)]
struct MessagesRequest<'a> {
    model: &'a str,
    max_tokens: u32,
    system: &'a str,
    messages: Vec<Message<'a>>,
    tools: [Tool<'a>; 1],
    tool_choice: ToolChoice,
    #[serde(skip_serializing_if = "Option::is_none")]
    temperature: Option<f64>,
}

#[derive(Serialize)]
struct Message<'a> {
    role: &'static str,
    content: &'a str,
}

#[derive(Serialize)]
struct Tool<'a> {
    name: &'static str,
    description: &'static str,
    input_schema: &'a Value,
}

#[derive(Serialize)]
struct ToolChoice {
    #[serde(rename = "type")]
    kind: &'static str,
    name: &'static str,
}

#[derive(Deserialize)]
struct MessagesResponse {
    #[serde(default)]
    content: Vec<ContentBlock>,
    #[serde(default)]
    usage: Option<MessagesUsage>,
}

#[derive(Deserialize)]
struct ContentBlock {
    #[serde(rename = "type", default)]
    kind: Option<String>,
    #[serde(default)]
    name: Option<String>,
    #[serde(default)]
    input: Option<Value>,
    #[serde(default)]
    text: Option<String>,
}

#[derive(Deserialize)]
struct MessagesUsage {
    #[serde(default, deserialize_with = "count")]
    input_tokens: Option<u64>,
    #[serde(default, deserialize_with = "count")]
    output_tokens: Option<u64>,
}
