//! Google's Gemini API: `GET /v1beta/models`, and `generateContent` with
//! `responseMimeType: application/json` and `responseJsonSchema`. The key travels in the
//! `x-goog-api-key` header, never in a URL.

use async_trait::async_trait;
use contracts::ProviderKind;
use reqwest::Method;
use serde_json::{Value, json};

use super::http::Endpoint;
use super::{
    ErrorClass, JsonCompletion, JsonRequest, LlmProvider, Probe, ProviderError, Role, Usage,
};

const MAX_PAGES: usize = 10;

pub struct Gemini {
    endpoint: Endpoint,
}

impl Gemini {
    pub fn new(endpoint: Endpoint) -> Gemini {
        Gemini { endpoint }
    }

    fn request(&self, method: Method, url: url::Url) -> reqwest::RequestBuilder {
        let request = self.endpoint.request(method, url);
        match self.endpoint.api_key() {
            Some(key) => request.header("x-goog-api-key", key),
            None => request,
        }
    }
}

#[async_trait]
impl LlmProvider for Gemini {
    fn kind(&self) -> ProviderKind {
        ProviderKind::Gemini
    }

    async fn probe(&self) -> Result<Probe, ProviderError> {
        let mut models = Vec::new();
        let mut token: Option<String> = None;
        for _ in 0..MAX_PAGES {
            let mut url = self.endpoint.url("v1beta/models");
            url.query_pairs_mut().append_pair("pageSize", "1000");
            if let Some(token) = &token {
                url.query_pairs_mut().append_pair("pageToken", token);
            }
            let body = self
                .endpoint
                .send_json(self.request(Method::GET, url), None)
                .await
                .map_err(key_errors)?;
            let page = body["models"].as_array().ok_or_else(|| {
                self.endpoint.error(
                    ErrorClass::UnexpectedResponse,
                    "the model list has no `models` array",
                )
            })?;
            models.extend(
                page.iter()
                    .filter(|m| generates_content(m))
                    .filter_map(|m| m["name"].as_str())
                    .map(|name| name.trim_start_matches("models/").to_owned()),
            );
            match body["nextPageToken"].as_str() {
                Some(next) if !next.is_empty() => token = Some(next.to_owned()),
                _ => break,
            }
        }
        Ok(Probe { models })
    }

    async fn complete_json(&self, request: &JsonRequest) -> Result<JsonCompletion, ProviderError> {
        let contents: Vec<Value> = request
            .messages
            .iter()
            .map(|m| {
                json!({
                    "role": match m.role { Role::User => "user", Role::Assistant => "model" },
                    "parts": [{"text": m.content}],
                })
            })
            .collect();
        let mut generation = json!({
            "responseMimeType": "application/json",
            "responseJsonSchema": request.schema,
        });
        if let Some(t) = request.temperature {
            generation["temperature"] = json!(t);
        }
        if let Some(max) = request.max_tokens {
            generation["maxOutputTokens"] = json!(max);
        }
        let body = json!({
            "systemInstruction": {"parts": [{"text": request.system}]},
            "contents": contents,
            "generationConfig": generation,
        });
        let model = request.model.trim_start_matches("models/");
        let url = self
            .endpoint
            .url(&format!("v1beta/models/{model}:generateContent"));
        let answer = self
            .endpoint
            .send_json(self.request(Method::POST, url).json(&body), None)
            .await
            .map_err(key_errors)?;
        let parts = answer
            .pointer("/candidates/0/content/parts")
            .and_then(Value::as_array)
            .ok_or_else(|| {
                let reason = answer
                    .pointer("/candidates/0/finishReason")
                    .or(answer.pointer("/promptFeedback/blockReason"))
                    .and_then(Value::as_str)
                    .unwrap_or("none given");
                self.endpoint.error(
                    ErrorClass::UnexpectedResponse,
                    &format!("the answer has no content (finish reason: {reason})"),
                )
            })?;
        let text = parts
            .iter()
            .filter_map(|p| p["text"].as_str())
            .collect::<Vec<_>>()
            .join("");
        Ok(JsonCompletion {
            text,
            value: None,
            usage: Usage {
                prompt_tokens: answer
                    .pointer("/usageMetadata/promptTokenCount")
                    .and_then(Value::as_u64),
                completion_tokens: answer
                    .pointer("/usageMetadata/candidatesTokenCount")
                    .and_then(Value::as_u64),
            },
        })
    }
}

/// Embedding-only models cannot serve an agent; list only those that generate content.
fn generates_content(model: &Value) -> bool {
    match model["supportedGenerationMethods"].as_array() {
        Some(methods) => methods.iter().any(|m| m == "generateContent"),
        None => true,
    }
}

/// Google answers an invalid key with 400 INVALID_ARGUMENT (reason `API_KEY_INVALID`), not
/// 401: recognise it so it reads as the credentials problem it is.
fn key_errors(mut err: ProviderError) -> ProviderError {
    if err.status == Some(400)
        && (err.message.contains("API key not valid") || err.message.contains("API_KEY_INVALID"))
    {
        err.class = ErrorClass::CredentialsRejected;
    }
    err
}
