//! OpenAI and OpenAI-compatible servers (vLLM, llama.cpp, LM Studio, …): `GET /models`, and
//! `POST /chat/completions` with `response_format: json_schema`.

use async_trait::async_trait;
use contracts::ProviderKind;
use reqwest::Method;
use serde_json::{Value, json};

use super::http::Endpoint;
use super::{JsonCompletion, JsonRequest, LlmProvider, Probe, ProviderError, Usage, chat_messages};

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
        let url = self.endpoint.url("models");
        let body = self
            .endpoint
            .send_json(
                self.endpoint
                    .bearer(self.endpoint.request(Method::GET, url)),
                None,
            )
            .await?;
        let data = body["data"].as_array().ok_or_else(|| {
            self.endpoint.error(
                super::ErrorClass::UnexpectedResponse,
                "the model list has no `data` array (is this an OpenAI-compatible API?)",
            )
        })?;
        let models = data
            .iter()
            .filter_map(|m| m["id"].as_str().map(str::to_owned))
            .collect();
        Ok(Probe { models })
    }

    async fn complete_json(&self, request: &JsonRequest) -> Result<JsonCompletion, ProviderError> {
        let messages = chat_messages(request);
        let mut body = json!({
            "model": request.model,
            "messages": messages,
            "response_format": {
                "type": "json_schema",
                "json_schema": {
                    "name": request.schema_name,
                    "schema": request.schema,
                    "strict": qualifies_for_strict(&request.schema),
                },
            },
        });
        if let Some(t) = request.temperature {
            body["temperature"] = json!(t);
        }
        if let Some(max) = request.max_tokens {
            body["max_tokens"] = json!(max);
        }
        let url = self.endpoint.url("chat/completions");
        let answer = self
            .endpoint
            .send_json(
                self.endpoint
                    .bearer(self.endpoint.request(Method::POST, url).json(&body)),
                None,
            )
            .await?;
        let text = answer
            .pointer("/choices/0/message/content")
            .and_then(Value::as_str)
            .ok_or_else(|| {
                let refusal = answer
                    .pointer("/choices/0/message/refusal")
                    .and_then(Value::as_str);
                self.endpoint.error(
                    super::ErrorClass::UnexpectedResponse,
                    &match refusal {
                        Some(refusal) => format!("the model refused: {refusal}"),
                        None => "the answer has no choices[0].message.content".to_owned(),
                    },
                )
            })?
            .to_owned();
        Ok(JsonCompletion {
            text,
            value: None,
            usage: Usage {
                prompt_tokens: answer
                    .pointer("/usage/prompt_tokens")
                    .and_then(Value::as_u64),
                completion_tokens: answer
                    .pointer("/usage/completion_tokens")
                    .and_then(Value::as_u64),
            },
        })
    }
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
