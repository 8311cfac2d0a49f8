//! A fake Anthropic API: `GET /v1/models`, `GET /v1/models/{id}`, `POST /v1/messages`, with
//! Anthropic's headers (`x-api-key`, `anthropic-version`), response shapes and error envelope
//! (`{"type":"error","error":{"type","message"},"request_id"}`).

use std::sync::Arc;

use axum::response::Response;
use serde_json::{Value, json};

use super::core::{
    Dialect, Fake, FakeState, Options, Recorded, Reply, all_text, default_message, json,
    requested_tool, tokens, with_header,
};

/// The key the fake accepts by default.
pub const KEY: &str = "sk-ant-api03-fake-test-key-0123456789";

/// `anthropic-version` values the API accepts.
pub const VERSIONS: [&str; 2] = ["2023-06-01", "2023-01-01"];

/// Models listed by default: (id, display name, created_at).
const MODELS: [(&str, &str, &str); 3] = [
    (
        "claude-sonnet-4-5-20250929",
        "Claude Sonnet 4.5",
        "2025-09-29T00:00:00Z",
    ),
    (
        "claude-haiku-4-5-20251001",
        "Claude Haiku 4.5",
        "2025-10-15T00:00:00Z",
    ),
    (
        "claude-opus-4-1-20250805",
        "Claude Opus 4.1",
        "2025-08-05T00:00:00Z",
    ),
];

/// Default options: [`KEY`] and the default models.
pub fn options() -> Options {
    Options {
        api_key: Some(KEY.to_owned()),
        forbidden_key: None,
        models: MODELS.iter().map(|(id, _, _)| (*id).to_owned()).collect(),
    }
}

/// A fake with the default options.
pub async fn start() -> Fake {
    start_with(options()).await
}

pub async fn start_with(options: Options) -> Fake {
    Fake::start(Anthropic, options).await
}

struct Anthropic;

impl Anthropic {
    fn error(&self, status: u16, message: &str) -> Response {
        with_request_id(json(status, &self.error_body(status, message)))
    }

    fn model(&self, id: &str) -> Value {
        let (display_name, created_at) = MODELS
            .iter()
            .find(|(known, _, _)| *known == id)
            .map(|(_, name, created)| (*name, *created))
            .unwrap_or((id, "2025-01-01T00:00:00Z"));
        json!({"type": "model", "id": id, "display_name": display_name, "created_at": created_at})
    }

    /// `limit` (1–1000, default 20) and `after_id` / `before_id` cursors, as the real API pages.
    fn list_models(&self, request: &Recorded, state: &FakeState) -> Response {
        let limit = match request.query_param("limit").map(|l| l.parse::<usize>()) {
            None => 20,
            Some(Ok(limit)) if (1..=1000).contains(&limit) => limit,
            Some(_) => {
                return self.error(
                    400,
                    "limit: Input should be greater than or equal to 1 and less than or equal to 1000",
                );
            }
        };
        let ids = &state.options.models;
        let (start, end) = if let Some(after) = request.query_param("after_id") {
            let start = ids
                .iter()
                .position(|m| *m == after)
                .map_or(ids.len(), |i| i + 1);
            (start, (start + limit).min(ids.len()))
        } else if let Some(before) = request.query_param("before_id") {
            let end = ids.iter().position(|m| *m == before).unwrap_or(0);
            (end.saturating_sub(limit), end)
        } else {
            (0, limit.min(ids.len()))
        };
        let page = &ids[start..end];
        with_request_id(json(
            200,
            &json!({
                "data": page.iter().map(|id| self.model(id)).collect::<Vec<_>>(),
                "has_more": end < ids.len(),
                "first_id": page.first(),
                "last_id": page.last(),
            }),
        ))
    }

    fn messages(&self, request: &Recorded, state: &FakeState) -> Response {
        let body = &request.body;
        if !body.is_object() {
            return self.error(400, "There was an error parsing the body of your request.");
        }
        for field in ["model", "max_tokens", "messages"] {
            if body.get(field).is_none() {
                return self.error(400, &format!("{field}: Field required"));
            }
        }
        let model = body["model"].as_str().unwrap_or_default();
        if !state.has_model(model) {
            return self.error(404, &format!("model: {model}"));
        }
        if body["stream"] == json!(true) {
            return self.error(400, "the fake Anthropic API does not implement streaming");
        }
        let (content, stop_reason) = match state.next_reply() {
            Reply::Text(text) => (json!([{"type": "text", "text": text}]), "end_turn"),
            Reply::Truncated(text) => (json!([{"type": "text", "text": text}]), "max_tokens"),
            Reply::ToolInput(input) => (
                json!([{
                    "type": "tool_use",
                    "id": format!("toolu_fake_{:04}", state.next_id()),
                    "name": requested_tool(body),
                    "input": input,
                }]),
                "tool_use",
            ),
        };
        let input_tokens =
            tokens(&all_text(&body["messages"])) + tokens(&all_text(&body["system"]));
        with_request_id(json(
            200,
            &json!({
                "id": format!("msg_fake_{:04}", state.next_id()),
                "type": "message",
                "role": "assistant",
                "model": model,
                "content": content,
                "stop_reason": stop_reason,
                "stop_sequence": null,
                "usage": {
                    "input_tokens": input_tokens,
                    "output_tokens": tokens(&all_text(&content)),
                    "cache_creation_input_tokens": 0,
                    "cache_read_input_tokens": 0,
                },
            }),
        ))
    }
}

impl Dialect for Anthropic {
    fn error_body(&self, status: u16, message: &str) -> Value {
        let kind = match status {
            400 => "invalid_request_error",
            401 => "authentication_error",
            402 => "billing_error",
            403 => "permission_error",
            404 => "not_found_error",
            413 => "request_too_large",
            429 => "rate_limit_error",
            504 => "timeout_error",
            529 => "overloaded_error",
            _ => "api_error",
        };
        json!({
            "type": "error",
            "error": {"type": kind, "message": message},
            "request_id": "req_fake_0123456789",
        })
    }

    fn status_body(&self, status: u16, _retry_after: Option<&str>) -> Value {
        let message = match status {
            429 => {
                "This request would exceed the rate limit for your organization of 50 requests per minute."
            }
            500 => "Internal server error",
            529 => "Overloaded",
            _ => default_message(status),
        };
        self.error_body(status, message)
    }

    fn authenticate(&self, request: &Recorded, state: &FakeState) -> Option<Response> {
        let Some(key) = request.header("x-api-key") else {
            return Some(self.error(401, "x-api-key header is required"));
        };
        if state.key_is_forbidden(key) {
            return Some(self.error(
                403,
                "Your API key does not have permission to use the specified resource.",
            ));
        }
        if !state.key_is_valid(key) {
            return Some(self.error(401, "invalid x-api-key"));
        }
        match request.header("anthropic-version") {
            None => Some(self.error(400, "anthropic-version: header is required")),
            Some(version) if !VERSIONS.contains(&version) => Some(self.error(
                400,
                &format!("anthropic-version: invalid version '{version}'"),
            )),
            Some(_) => None,
        }
    }

    async fn handle(&self, request: Recorded, state: Arc<FakeState>) -> Response {
        match (request.method.as_str(), request.path.as_str()) {
            ("GET", "/v1/models") => self.list_models(&request, &state),
            ("GET", path) if path.starts_with("/v1/models/") => {
                let id = &path["/v1/models/".len()..];
                if state.has_model(id) {
                    with_request_id(json(200, &self.model(id)))
                } else {
                    self.error(404, &format!("model: {id}"))
                }
            }
            ("POST", "/v1/messages") => self.messages(&request, &state),
            _ => self.error(404, "Not found"),
        }
    }
}

fn with_request_id(response: Response) -> Response {
    with_header(response, "request-id", "req_fake_0123456789")
}
