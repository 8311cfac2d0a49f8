//! OpenAI and OpenAI-compatible servers (vLLM, llama.cpp, LM Studio, …): `GET /models`, and
//! `POST /chat/completions` with `response_format: json_schema`.

use async_trait::async_trait;
use contracts::ProviderKind;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::http::Endpoint;
use super::{
    ChatMessage, ErrorClass, JsonCompletion, JsonRequest, LlmProvider, Probe, ProviderError, Usage,
    chat_messages, count,
};

pub struct OpenAi {
    endpoint: Endpoint,
}

impl OpenAi {
    pub fn new(endpoint: Endpoint) -> OpenAi {
        OpenAi { endpoint }
    }
}

#[async_trait]
impl LlmProvider for OpenAi {
    fn kind(&self) -> ProviderKind {
        self.endpoint.kind
    }

    async fn probe(&self) -> Result<Probe, ProviderError> {
        let list: ModelList = self
            .endpoint
            .get_json(
                self.endpoint.url("models"),
                "the model list (is this an OpenAI-compatible API?)",
            )
            .await?;
        Ok(Probe {
            models: list.data.into_iter().filter_map(|m| m.id).collect(),
        })
    }

    async fn complete_json(&self, request: &JsonRequest) -> Result<JsonCompletion, ProviderError> {
        let body = ChatRequest {
            model: &request.model,
            messages: chat_messages(request),
            response_format: ResponseFormat {
                kind: "json_schema",
                json_schema: JsonSchemaFormat {
                    name: &request.schema_name,
                    schema: &request.schema,
                    strict: qualifies_for_strict(&request.schema),
                },
            },
            temperature: request.temperature,
            max_tokens: request.max_tokens,
        };
        let answer: ChatResponse = self
            .endpoint
            .post_json(self.endpoint.url("chat/completions"), &body, "the answer")
            .await?;
        let usage = answer.usage.unwrap_or_default();
        let message = answer.choices.into_iter().next().and_then(|c| c.message);
        let text = match message {
            Some(ChoiceMessage {
                content: Some(text),
                ..
            }) => text,
            Some(ChoiceMessage {
                refusal: Some(refusal),
                ..
            }) => {
                return Err(self.endpoint.error(
                    ErrorClass::UnexpectedResponse,
                    &format!("the model refused: {refusal}"),
                ));
            }
            _ => {
                return Err(self.endpoint.error(
                    ErrorClass::UnexpectedResponse,
                    "the answer has no choices[0].message.content",
                ));
            }
        };
        Ok(JsonCompletion {
            text,
            value: None,
            usage: Usage {
                prompt_tokens: usage.prompt_tokens,
                completion_tokens: usage.completion_tokens,
            },
        })
    }
}

// The wire: what is sent, and the parts of the answers that are read. Unknown fields are
// ignored and optional ones may be missing: llama.cpp, vLLM and LM Studio each omit or add
// some.

#[derive(Deserialize)]
struct ModelList {
    data: Vec<ModelEntry>,
}

#[derive(Deserialize)]
struct ModelEntry {
    #[serde(default)]
    id: Option<String>,
}

#[derive(Serialize)]
struct ChatRequest<'a> {
    model: &'a str,
    messages: Vec<ChatMessage<'a>>,
    response_format: ResponseFormat<'a>,
    #[serde(skip_serializing_if = "Option::is_none")]
    temperature: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    max_tokens: Option<u32>,
}

#[derive(Serialize)]
struct ResponseFormat<'a> {
    #[serde(rename = "type")]
    kind: &'static str,
    json_schema: JsonSchemaFormat<'a>,
}

#[derive(Serialize)]
struct JsonSchemaFormat<'a> {
    name: &'a str,
    schema: &'a Value,
    strict: bool,
}

#[derive(Deserialize)]
struct ChatResponse {
    #[serde(default)]
    choices: Vec<Choice>,
    #[serde(default)]
    usage: Option<ChatUsage>,
}

#[derive(Deserialize)]
struct Choice {
    #[serde(default)]
    message: Option<ChoiceMessage>,
}

#[derive(Deserialize)]
struct ChoiceMessage {
    #[serde(default)]
    content: Option<String>,
    #[serde(default)]
    refusal: Option<String>,
}

#[derive(Deserialize, Default)]
struct ChatUsage {
    #[serde(default, deserialize_with = "count")]
    prompt_tokens: Option<u64>,
    #[serde(default, deserialize_with = "count")]
    completion_tokens: Option<u64>,
}

/// OpenAI's strict mode accepts only schemas where every object lists all its properties as
/// required and forbids additional ones; anything else is sent non-strict (and validated by
/// us either way).
pub fn qualifies_for_strict(schema: &Value) -> bool {
    match schema {
        Value::Object(map) => {
            let is_object = map.get("type").and_then(Value::as_str) == Some("object")
                || map.contains_key("properties");
            if is_object {
                let Some(properties) = map.get("properties").and_then(Value::as_object) else {
                    return false;
                };
                let required: Vec<&str> = map
                    .get("required")
                    .and_then(Value::as_array)
                    .map(|r| r.iter().filter_map(Value::as_str).collect())
                    .unwrap_or_default();
                if map.get("additionalProperties") != Some(&Value::Bool(false))
                    || !properties.keys().all(|k| required.contains(&k.as_str()))
                {
                    return false;
                }
            }
            map.iter()
                .filter(|(k, _)| *k != "enum" && *k != "const" && *k != "default")
                .all(|(_, v)| qualifies_for_strict(v))
        }
        Value::Array(items) => items.iter().all(qualifies_for_strict),
        _ => true,
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn strict_only_for_closed_fully_required_objects() {
        let closed = json!({"type": "object", "properties": {"a": {"type": "string"}},
            "required": ["a"], "additionalProperties": false});
        assert!(qualifies_for_strict(&closed));
        let optional = json!({"type": "object", "properties": {"a": {"type": "string"}},
            "additionalProperties": false});
        assert!(!qualifies_for_strict(&optional));
        let open =
            json!({"type": "object", "properties": {"a": {"type": "string"}}, "required": ["a"]});
        assert!(!qualifies_for_strict(&open));
        let nested_open = json!({"type": "object", "properties": {"a": {"type": "object",
            "properties": {"b": {"type": "number"}}}}, "required": ["a"], "additionalProperties": false});
        assert!(!qualifies_for_strict(&nested_open));
        assert!(qualifies_for_strict(&json!({"type": "string"})));
    }
}
