//! A fake OpenAI API (also standing in for OpenAI-compatible servers): `GET /v1/models`,
//! `GET /v1/models/{id}`, `POST /v1/chat/completions`, with Bearer auth (optional) and
//! OpenAI's error envelope (`{"error":{"message","type","param","code"}}`). The provider's
//! base URL is `fake.url("/v1")`.

use std::sync::Arc;

use axum::response::Response;
use serde_json::{Value, json};

use super::core::{
    Dialect, Fake, FakeState, Options, Recorded, Reply, all_text, default_message, json,
    requested_tool, tokens, unix_now, with_header,
};

/// The key the fake accepts by default.
pub const KEY: &str = "sk-proj-fake-test-key-0123456789abcdef";

/// Models listed by default: (id, created, owned_by).
const MODELS: [(&str, u64, &str); 3] = [
    ("gpt-4o-mini", 1_721_172_741, "system"),
    ("gpt-4.1-mini", 1_744_318_173, "system"),
    ("text-embedding-3-small", 1_705_948_997, "system"),
];

/// Default options: Bearer [`KEY`] and the default models. `api_key: None` serves without
/// auth, like a local OpenAI-compatible server.
pub fn options() -> Options {
    Options {
        api_key: Some(KEY.to_owned()),
        forbidden_key: None,
        models: MODELS.iter().map(|(id, _, _)| (*id).to_owned()).collect(),
    }
}

pub async fn start() -> Fake {
    start_with(options()).await
}

pub async fn start_with(options: Options) -> Fake {
    Fake::start(OpenAi, options).await
}

struct OpenAi;

impl OpenAi {
    fn error(&self, status: u16, message: &str, code: Option<&str>) -> Response {
        self.error_on(status, message, code, None)
    }

    fn error_on(
        &self,
        status: u16,
        message: &str,
        code: Option<&str>,
        param: Option<&str>,
    ) -> Response {
        let mut body = self.error_body(status, message);
        body["error"]["code"] = json!(code);
        body["error"]["param"] = json!(param);
        with_request_id(json(status, &body))
    }

    fn model(&self, id: &str) -> Value {
        let (created, owned_by) = MODELS
            .iter()
            .find(|(known, _, _)| *known == id)
            .map(|(_, created, owner)| (*created, *owner))
            .unwrap_or((1_700_000_000, "user"));
        json!({"id": id, "object": "model", "created": created, "owned_by": owned_by})
    }

    fn chat(&self, request: &Recorded, state: &FakeState) -> Response {
        let body = &request.body;
        if !body.is_object() {
            return self.error(
                400,
                "We could not parse the JSON body of your request. (HINT: This likely means you aren't using your HTTP library correctly. The OpenAI API expects a JSON payload, but what was sent was not valid JSON.)",
                None,
            );
        }
        for field in ["model", "messages"] {
            if body.get(field).is_none() {
                return self.error_on(
                    400,
                    &format!("Missing required parameter: '{field}'."),
                    Some("missing_required_parameter"),
                    Some(field),
                );
            }
        }
        let model = body["model"].as_str().unwrap_or_default();
        if !state.has_model(model) {
            return self.error(
                404,
                &format!("The model `{model}` does not exist or you do not have access to it."),
                Some("model_not_found"),
            );
        }
        if body["stream"] == json!(true) {
            return self.error(
                400,
                "the fake OpenAI API does not implement streaming",
                None,
            );
        }
        let (message, finish_reason) = match state.next_reply() {
            Reply::Text(text) => (assistant(json!(text), None), "stop"),
            Reply::Truncated(text) => (assistant(json!(text), None), "length"),
            Reply::ToolInput(input) => (
                assistant(
                    Value::Null,
                    Some(json!([{
                        "id": format!("call_fake_{:04}", state.next_id()),
                        "type": "function",
                        "function": {"name": requested_tool(body), "arguments": input.to_string()},
                    }])),
                ),
                "tool_calls",
            ),
        };
        let prompt_tokens = tokens(&all_text(&body["messages"]));
        let completion_tokens = tokens(&all_text(&message));
        with_request_id(json(
            200,
            &json!({
                "id": format!("chatcmpl-fake{:04}", state.next_id()),
                "object": "chat.completion",
                "created": unix_now(),
                "model": model,
                "choices": [{
                    "index": 0,
                    "message": message,
                    "logprobs": null,
                    "finish_reason": finish_reason,
                }],
                "usage": {
                    "prompt_tokens": prompt_tokens,
                    "completion_tokens": completion_tokens,
                    "total_tokens": prompt_tokens + completion_tokens,
                    "prompt_tokens_details": {"cached_tokens": 0, "audio_tokens": 0},
                    "completion_tokens_details": {
                        "reasoning_tokens": 0,
                        "audio_tokens": 0,
                        "accepted_prediction_tokens": 0,
                        "rejected_prediction_tokens": 0,
                    },
                },
                "service_tier": "default",
                "system_fingerprint": "fp_fake0001",
            }),
        ))
    }
}

impl Dialect for OpenAi {
    fn error_body(&self, status: u16, message: &str) -> Value {
        let kind = match status {
            429 => "requests",
            500.. => "server_error",
            _ => "invalid_request_error",
        };
        json!({"error": {"message": message, "type": kind, "param": null, "code": null}})
    }

    fn status_body(&self, status: u16, _retry_after: Option<&str>) -> Value {
        match status {
            429 => json!({"error": {
                "message": "Rate limit reached for gpt-4o-mini in organization org-fake on requests per min (RPM): Limit 3, Used 3, Requested 1. Please try again in 20s.",
                "type": "requests",
                "param": null,
                "code": "rate_limit_exceeded",
            }}),
            500 => self.error_body(
                500,
                "The server had an error while processing your request. Sorry about that!",
            ),
            503 => self.error_body(
                503,
                "The engine is currently overloaded, please try again later.",
            ),
            _ => self.error_body(status, default_message(status)),
        }
    }

    fn authenticate(&self, request: &Recorded, state: &FakeState) -> Option<Response> {
        state.options.api_key.as_ref()?;
        let key = request
            .header("authorization")
            .and_then(|value| value.strip_prefix("Bearer "));
        let Some(key) = key else {
            return Some(self.error(
                401,
                "You didn't provide an API key. You need to provide your API key in an Authorization header using Bearer auth (i.e. Authorization: Bearer YOUR_KEY), or as the password field (with blank username) if you're accessing the API from your browser and are prompted for a username and password. You can obtain an API key from https://platform.openai.com/account/api-keys.",
                None,
            ));
        };
        if state.key_is_forbidden(key) {
            // A restricted key without the model scope: OpenAI answers 401 (not 403) here.
            return Some(self.error(
                401,
                "You have insufficient permissions for this operation. Missing scopes: model.request. Check that you have the correct role in your organization (Reader, Writer, Owner) and project (Member, Owner), and if you're using a restricted API key, that it has the necessary scopes.",
                None,
            ));
        }
        if !state.key_is_valid(key) {
            return Some(self.error(
                401,
                &format!(
                    "Incorrect API key provided: {}. You can find your API key at https://platform.openai.com/account/api-keys.",
                    mask(key)
                ),
                Some("invalid_api_key"),
            ));
        }
        None
    }

    async fn handle(&self, request: Recorded, state: Arc<FakeState>) -> Response {
        match (request.method.as_str(), request.path.as_str()) {
            ("GET", "/v1/models") => with_request_id(json(
                200,
                &json!({
                    "object": "list",
                    "data": state.options.models.iter().map(|id| self.model(id)).collect::<Vec<_>>(),
                }),
            )),
            ("GET", path) if path.starts_with("/v1/models/") => {
                let id = &path["/v1/models/".len()..];
                if state.has_model(id) {
                    with_request_id(json(200, &self.model(id)))
                } else {
                    self.error(
                        404,
                        &format!("The model '{id}' does not exist"),
                        Some("model_not_found"),
                    )
                }
            }
            ("POST", "/v1/chat/completions") => self.chat(&request, &state),
            (method, path) => self.error(404, &format!("Invalid URL ({method} {path})"), None),
        }
    }
}

fn assistant(content: Value, tool_calls: Option<Value>) -> Value {
    let mut message = json!({
        "role": "assistant",
        "content": content,
        "refusal": null,
        "annotations": [],
    });
    if let Some(calls) = tool_calls {
        message["tool_calls"] = calls;
    }
    message
}

/// How OpenAI echoes a wrong key: the first three and last four characters.
fn mask(key: &str) -> String {
    let chars: Vec<char> = key.chars().collect();
    if chars.len() <= 8 {
        return "*".repeat(chars.len());
    }
    let head: String = chars[..3].iter().collect();
    let tail: String = chars[chars.len() - 4..].iter().collect();
    format!("{head}{}{tail}", "*".repeat(chars.len() - 7))
}

fn with_request_id(response: Response) -> Response {
    with_header(response, "x-request-id", "req_fake0123456789")
}
