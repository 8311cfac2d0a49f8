//! A fake Gemini API (Google AI, `generativelanguage.googleapis.com`): `GET /v1beta/models`,
//! `GET /v1beta/models/{id}`, `POST /v1beta/models/{id}:generateContent` (also under `/v1`),
//! keyed by the `x-goog-api-key` header, with Google's error envelope
//! (`{"error":{"code","message","status","details"}}`).
//!
//! Google answers an invalid key with **400 INVALID_ARGUMENT** (reason `API_KEY_INVALID`),
//! not 401, and a missing key or a key without access with **403 PERMISSION_DENIED**; the fake
//! does the same. A key in the URL (`?key=`), which Google accepts but which ends up in logs
//! and proxies, is recorded as a violation (the fake panics when dropped) and refused.

use std::sync::Arc;

use axum::response::Response;
use serde_json::{Value, json};

use super::core::{
    Dialect, Fake, FakeState, Options, Recorded, Reply, all_text, default_message, json,
    requested_tool, tokens,
};

/// The key the fake accepts by default.
pub const KEY: &str = "AIzaSyFakeTestKey0123456789abcdefghijk";

/// Models listed by default: (id, display name).
const MODELS: [(&str, &str); 3] = [
    ("gemini-2.5-flash", "Gemini 2.5 Flash"),
    ("gemini-2.5-pro", "Gemini 2.5 Pro"),
    ("gemini-embedding-001", "Gemini Embedding 001"),
];

/// Default options: [`KEY`] and the default models (ids without the `models/` prefix).
pub fn options() -> Options {
    Options {
        api_key: Some(KEY.to_owned()),
        forbidden_key: None,
        models: MODELS.iter().map(|(id, _)| (*id).to_owned()).collect(),
    }
}

pub async fn start() -> Fake {
    start_with(options()).await
}

pub async fn start_with(options: Options) -> Fake {
    Fake::start(Gemini, options).await
}

struct Gemini;

/// An embedding model: listed, but not usable with generateContent.
fn is_embedding(id: &str) -> bool {
    id.contains("embedding")
}

impl Gemini {
    fn error(&self, status: u16, message: &str) -> Response {
        json(status, &self.error_body(status, message))
    }

    fn model(&self, id: &str) -> Value {
        let display_name = MODELS
            .iter()
            .find(|(known, _)| *known == id)
            .map_or(id, |(_, name)| *name);
        if is_embedding(id) {
            return json!({
                "name": format!("models/{id}"),
                "version": "001",
                "displayName": display_name,
                "description": "Obtain a distributed representation of a text.",
                "inputTokenLimit": 2048,
                "outputTokenLimit": 1,
                "supportedGenerationMethods": ["embedContent", "countTextTokens", "countTokens", "asyncBatchEmbedContent"],
            });
        }
        json!({
            "name": format!("models/{id}"),
            "version": "001",
            "displayName": display_name,
            "description": format!("Fake {display_name}"),
            "inputTokenLimit": 1_048_576,
            "outputTokenLimit": 65_536,
            "supportedGenerationMethods": ["generateContent", "countTokens", "createCachedContent", "batchGenerateContent"],
            "temperature": 1,
            "topP": 0.95,
            "topK": 64,
            "maxTemperature": 2,
            "thinking": true,
        })
    }

    /// `pageSize` (default 50, at most 1000) and `pageToken` (the index to start at, as an
    /// opaque-looking string).
    fn list_models(&self, request: &Recorded, state: &FakeState) -> Response {
        let size = request
            .query_param("pageSize")
            .and_then(|s| s.parse::<usize>().ok())
            .filter(|s| *s > 0)
            .map_or(50, |s| s.min(1000));
        let start = match request.query_param("pageToken") {
            None => 0,
            Some(token) => match token.strip_prefix("page-").and_then(|i| i.parse().ok()) {
                Some(index) => index,
                None => return self.error(400, "Invalid page token."),
            },
        };
        let ids = &state.options.models;
        let end = (start + size).min(ids.len());
        let start = start.min(end);
        let mut body = json!({
            "models": ids[start..end].iter().map(|id| self.model(id)).collect::<Vec<_>>(),
        });
        if end < ids.len() {
            body["nextPageToken"] = json!(format!("page-{end}"));
        }
        json(200, &body)
    }

    fn not_found(&self, id: &str, version: &str) -> Response {
        self.error(
            404,
            &format!(
                "models/{id} is not found for API version {version}, or is not supported for generateContent. Call ListModels to see the list of available models and their supported methods."
            ),
        )
    }

    fn generate(&self, id: &str, version: &str, request: &Recorded, state: &FakeState) -> Response {
        if !state.has_model(id) || is_embedding(id) {
            return self.not_found(id, version);
        }
        let body = &request.body;
        if !body.is_object() {
            return self.error(400, "Invalid JSON payload received.");
        }
        if body.get("contents").is_none() {
            return self.error(
                400,
                "* GenerateContentRequest.contents: contents is not specified\n",
            );
        }
        let (part, finish_reason) = match state.next_reply() {
            Reply::Text(text) => (json!({"text": text}), "STOP"),
            Reply::Truncated(text) => (json!({"text": text}), "MAX_TOKENS"),
            Reply::ToolInput(input) => (
                json!({"functionCall": {"name": function_name(body), "args": input}}),
                "STOP",
            ),
        };
        let prompt =
            tokens(&all_text(&body["contents"])) + tokens(&all_text(&body["systemInstruction"]));
        let candidates = tokens(&all_text(&part));
        json(
            200,
            &json!({
                "candidates": [{
                    "content": {"parts": [part], "role": "model"},
                    "finishReason": finish_reason,
                    "index": 0,
                }],
                "usageMetadata": {
                    "promptTokenCount": prompt,
                    "candidatesTokenCount": candidates,
                    "totalTokenCount": prompt + candidates,
                    "promptTokensDetails": [{"modality": "TEXT", "tokenCount": prompt}],
                },
                "modelVersion": id,
                "responseId": format!("fake-response-{:04}", state.next_id()),
            }),
        )
    }
}

impl Dialect for Gemini {
    fn error_body(&self, status: u16, message: &str) -> Value {
        let code = match status {
            400 => "INVALID_ARGUMENT",
            401 => "UNAUTHENTICATED",
            403 => "PERMISSION_DENIED",
            404 => "NOT_FOUND",
            409 => "ABORTED",
            429 => "RESOURCE_EXHAUSTED",
            499 => "CANCELLED",
            501 => "NOT_IMPLEMENTED",
            503 => "UNAVAILABLE",
            504 => "DEADLINE_EXCEEDED",
            _ => "INTERNAL",
        };
        json!({"error": {"code": status, "message": message, "status": code}})
    }

    /// Google sends no `Retry-After` on 429; the delay is a `RetryInfo` detail instead.
    fn status_body(&self, status: u16, retry_after: Option<&str>) -> Value {
        match status {
            429 => {
                let mut body = self.error_body(
                    429,
                    "You exceeded your current quota, please check your plan and billing details.",
                );
                if let Some(secs) = retry_after {
                    body["error"]["details"] = json!([{
                        "@type": "type.googleapis.com/google.rpc.RetryInfo",
                        "retryDelay": format!("{secs}s"),
                    }]);
                }
                body
            }
            500 => self.error_body(
                500,
                "An internal error has occurred. Please retry or report in https://developers.generativeai.google/guide/troubleshooting",
            ),
            503 => self.error_body(503, "The model is overloaded. Please try again later."),
            _ => self.error_body(status, default_message(status)),
        }
    }

    fn authenticate(&self, request: &Recorded, state: &FakeState) -> Option<Response> {
        if let Some(key) = request.query_param("key") {
            let shown: String = key.chars().take(6).collect();
            state.violation(format!(
                "Gemini API key in the URL query: {} {}?key={shown}…",
                request.method, request.path
            ));
            return Some(self.error(
                400,
                "fake Gemini: the API key was sent in the URL query (?key=); send it in the x-goog-api-key header",
            ));
        }
        let Some(key) = request.header("x-goog-api-key") else {
            return Some(self.error(
                403,
                "Method doesn't allow unregistered callers (callers without established identity). Please use API Key or other form of API consumer identity to call this API.",
            ));
        };
        if state.key_is_forbidden(key) {
            let message = "Generative Language API has not been used in project 000000000000 before or it is disabled. Enable it by visiting https://console.developers.google.com/apis/api/generativelanguage.googleapis.com/overview?project=000000000000 then retry. If you enabled this API recently, wait a few minutes for the action to propagate to our systems and retry.";
            let mut body = self.error_body(403, message);
            body["error"]["details"] = json!([{
                "@type": "type.googleapis.com/google.rpc.ErrorInfo",
                "reason": "SERVICE_DISABLED",
                "domain": "googleapis.com",
                "metadata": {
                    "service": "generativelanguage.googleapis.com",
                    "consumer": "projects/000000000000",
                },
            }]);
            return Some(json(403, &body));
        }
        if !state.key_is_valid(key) {
            let message = "API key not valid. Please pass a valid API key.";
            let mut body = self.error_body(400, message);
            body["error"]["details"] = json!([
                {
                    "@type": "type.googleapis.com/google.rpc.ErrorInfo",
                    "reason": "API_KEY_INVALID",
                    "domain": "googleapis.com",
                    "metadata": {"service": "generativelanguage.googleapis.com"},
                },
                {
                    "@type": "type.googleapis.com/google.rpc.LocalizedMessage",
                    "locale": "en-US",
                    "message": message,
                },
            ]);
            return Some(json(400, &body));
        }
        None
    }

    async fn handle(&self, request: Recorded, state: Arc<FakeState>) -> Response {
        let path = request.path.clone();
        let Some((version, rest)) = path
            .strip_prefix("/v1beta/models")
            .map(|rest| ("v1beta", rest))
            .or_else(|| path.strip_prefix("/v1/models").map(|rest| ("v1", rest)))
        else {
            return self.error(404, "Not Found");
        };
        match (request.method.as_str(), rest) {
            ("GET", "") => self.list_models(&request, &state),
            ("POST", rest) if rest.ends_with(":generateContent") => {
                let id = rest
                    .trim_start_matches('/')
                    .trim_end_matches(":generateContent");
                self.generate(id, version, &request, &state)
            }
            ("GET", rest) if rest.starts_with('/') => {
                let id = &rest[1..];
                if state.has_model(id) {
                    json(200, &self.model(id))
                } else {
                    self.error(
                        404,
                        &format!("models/{id} is not found for API version {version}"),
                    )
                }
            }
            _ => self.error(404, "Not Found"),
        }
    }
}

/// The function a request forces (`toolConfig.functionCallingConfig.allowedFunctionNames`),
/// else its first declared function.
fn function_name(body: &Value) -> String {
    body["toolConfig"]["functionCallingConfig"]["allowedFunctionNames"][0]
        .as_str()
        .or_else(|| body["tools"][0]["functionDeclarations"][0]["name"].as_str())
        .map_or_else(|| requested_tool(body), str::to_owned)
}
