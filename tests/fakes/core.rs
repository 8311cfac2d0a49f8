//! What every fake provider shares: an in-process axum server on 127.0.0.1:0 that records each
//! request, applies the test's [`Behavior`] (error status, hang, delay), then hands the request
//! to a [`Dialect`] that knows one provider's wire format.

use std::collections::VecDeque;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use axum::body::Body;
use axum::extract::Request;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::Value;
use tokio::sync::{oneshot, watch};

use super::calls::Call;

/// One request as the fake received it.
#[derive(Debug, Clone)]
pub struct Recorded {
    pub method: String,
    pub path: String,
    /// The raw query string, if any.
    pub query: Option<String>,
    pub headers: HeaderMap,
    /// The body as text (empty when there was none).
    pub raw_body: String,
    /// The body as JSON; `Null` when empty or not JSON.
    pub body: Value,
}

impl Recorded {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    /// A query parameter, percent-decoded.
    pub fn query_param(&self, name: &str) -> Option<String> {
        let query = self.query.as_deref()?;
        url::form_urlencoded::parse(query.as_bytes())
            .find(|(key, _)| key == name)
            .map(|(_, value)| value.into_owned())
    }
}

/// How the fake answers, switchable while a test runs. Applied to every route, before
/// authentication (a failing server fails whoever calls it).
#[derive(Debug, Clone, PartialEq)]
pub enum Behavior {
    /// Answer as the provider would.
    Normal,
    /// Answer with this status. `body: None` uses the provider's own error envelope for the
    /// status; `retry_after` sets the `Retry-After` header (seconds or an HTTP date).
    Status {
        status: u16,
        body: Option<Value>,
        retry_after: Option<String>,
    },
    /// Never answer (the handler awaits a future that never completes); only a client
    /// timeout ends the request.
    Hang,
    /// Answer normally after this long.
    Delay(Duration),
}

impl Behavior {
    /// The status with the provider's error envelope.
    pub fn status(status: u16) -> Behavior {
        Behavior::Status {
            status,
            body: None,
            retry_after: None,
        }
    }

    /// 429 with `Retry-After: <secs>`.
    pub fn rate_limited(retry_after_secs: u64) -> Behavior {
        Behavior::Status {
            status: 429,
            body: None,
            retry_after: Some(retry_after_secs.to_string()),
        }
    }

    /// Replaces the body of a `Status` (no effect on other variants).
    pub fn with_body(self, body: Value) -> Behavior {
        match self {
            Behavior::Status {
                status,
                retry_after,
                ..
            } => Behavior::Status {
                status,
                body: Some(body),
                retry_after,
            },
            other => other,
        }
    }
}

/// What a completion returns. Scripted replies are used in order; when none are left the
/// default reply answers.
#[derive(Debug, Clone, PartialEq)]
pub enum Reply {
    /// Assistant text (a JSON document for structured output, valid or not).
    Text(String),
    /// A tool call with these arguments (Anthropic `tool_use`, OpenAI `tool_calls`, Gemini
    /// `functionCall`), named after the tool the request forces or else its first tool.
    ToolInput(Value),
    /// Text cut off by the token limit (`max_tokens` / `length` / `MAX_TOKENS`).
    Truncated(String),
}

/// Key and model configuration shared by the cloud fakes. Each provider module has an
/// `options()` with its defaults.
#[derive(Debug, Clone, Default)]
pub struct Options {
    /// The accepted key; `None` accepts requests without one.
    pub api_key: Option<String>,
    /// A well-formed key that authenticates but has no access: the provider's 403 (or what
    /// the provider really answers; see each module).
    pub forbidden_key: Option<String>,
    /// Model ids listed and accepted.
    pub models: Vec<String>,
}

/// One provider's wire format. The core has already recorded the request and applied the
/// behavior when these are called.
pub trait Dialect: Send + Sync + 'static {
    /// The provider's error body for `status`.
    fn error_body(&self, status: u16, message: &str) -> Value;

    /// The provider's error body for a `Behavior::Status` without a body.
    fn status_body(&self, status: u16, retry_after: Option<&str>) -> Value {
        let _ = retry_after;
        self.error_body(status, default_message(status))
    }

    /// `Some(response)` refuses the request (missing or wrong key).
    fn authenticate(&self, request: &Recorded, state: &FakeState) -> Option<Response>;

    /// Routes an authenticated request.
    fn handle(
        &self,
        request: Recorded,
        state: Arc<FakeState>,
    ) -> impl Future<Output = Response> + Send;
}

/// State shared by a fake's handlers and the test.
#[derive(Debug)]
pub struct FakeState {
    pub options: Options,
    requests: Mutex<Vec<Recorded>>,
    seen: watch::Sender<usize>,
    behavior: Mutex<Behavior>,
    once: Mutex<VecDeque<Behavior>>,
    replies: Mutex<VecDeque<Reply>>,
    default_reply: Mutex<Reply>,
    violations: Mutex<Vec<String>>,
    calls: Mutex<Vec<Call>>,
    counter: AtomicU64,
    /// Requests whose client went away before the answer (hyper drops the handler then).
    abandoned: watch::Sender<usize>,
}

impl FakeState {
    fn new(options: Options) -> FakeState {
        FakeState {
            options,
            requests: Mutex::new(Vec::new()),
            seen: watch::channel(0).0,
            behavior: Mutex::new(Behavior::Normal),
            once: Mutex::new(VecDeque::new()),
            replies: Mutex::new(VecDeque::new()),
            default_reply: Mutex::new(Reply::Text("Hello! How can I help you today?".to_owned())),
            violations: Mutex::new(Vec::new()),
            calls: Mutex::new(Vec::new()),
            counter: AtomicU64::new(0),
            abandoned: watch::channel(0).0,
        }
    }

    /// The next scripted reply, or the default one.
    pub fn next_reply(&self) -> Reply {
        lock(&self.replies)
            .pop_front()
            .unwrap_or_else(|| lock(&self.default_reply).clone())
    }

    /// Something the code under test must never do (e.g. a key in a URL). Recorded, and the
    /// fake panics when dropped unless the test took them with [`Fake::take_violations`].
    pub fn violation(&self, what: String) {
        lock(&self.violations).push(what);
    }

    /// A counter for ids (`msg_fake_0001`, …).
    pub fn next_id(&self) -> u64 {
        self.counter.fetch_add(1, Ordering::Relaxed) + 1
    }

    /// The configured key accepts this one (or no key is configured).
    pub fn key_is_valid(&self, key: &str) -> bool {
        self.options.api_key.as_deref().is_none_or(|k| k == key)
    }

    pub fn key_is_forbidden(&self, key: &str) -> bool {
        self.options.forbidden_key.as_deref() == Some(key)
    }

    pub fn has_model(&self, id: &str) -> bool {
        self.options.models.iter().any(|m| m == id)
    }

    fn record(&self, request: Recorded) {
        let count = {
            let mut requests = lock(&self.requests);
            requests.push(request);
            requests.len()
        };
        self.seen.send_replace(count);
    }

    fn next_behavior(&self) -> Behavior {
        lock(&self.once)
            .pop_front()
            .unwrap_or_else(|| lock(&self.behavior).clone())
    }
}

/// A running fake provider. Stops when dropped; panics on drop if it recorded violations the
/// test did not take.
#[derive(Debug)]
pub struct Fake {
    addr: SocketAddr,
    state: Arc<FakeState>,
    shutdown: Option<oneshot::Sender<()>>,
}

impl Fake {
    /// Serves `dialect` on 127.0.0.1:0 in the current runtime.
    pub async fn start<D: Dialect>(dialect: D, options: Options) -> Fake {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind 127.0.0.1:0");
        let addr = listener.local_addr().expect("local addr");
        let state = Arc::new(FakeState::new(options));
        let dialect = Arc::new(dialect);
        let handler_state = state.clone();
        let app = axum::Router::new().fallback(move |request: Request| {
            serve(dialect.clone(), handler_state.clone(), request)
        });
        let (tx, rx) = oneshot::channel::<()>();
        tokio::spawn(async move {
            let _ = axum::serve(listener, app)
                .with_graceful_shutdown(async {
                    let _ = rx.await;
                })
                .await;
        });
        Fake {
            addr,
            state,
            shutdown: Some(tx),
        }
    }

    /// `http://127.0.0.1:PORT`, without a trailing slash or path.
    pub fn base_url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// `base_url()` + `path`.
    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The standing behavior, from the next request on.
    pub fn set_behavior(&self, behavior: Behavior) {
        *lock(&self.state.behavior) = behavior;
    }

    /// A behavior for the next request only, before the standing one; queued in order
    /// (e.g. one 429, then normal answers).
    pub fn push_once(&self, behavior: Behavior) {
        lock(&self.state.once).push_back(behavior);
    }

    /// Queues a completion reply (used in order, before the default).
    pub fn push_reply(&self, reply: Reply) {
        lock(&self.state.replies).push_back(reply);
    }

    pub fn push_replies(&self, replies: impl IntoIterator<Item = Reply>) {
        lock(&self.state.replies).extend(replies);
    }

    /// Scripted replies not used yet.
    pub fn pending_replies(&self) -> usize {
        lock(&self.state.replies).len()
    }

    /// The reply once the scripted ones are used up.
    pub fn set_default_reply(&self, reply: Reply) {
        *lock(&self.state.default_reply) = reply;
    }

    /// Every request so far, in arrival order (including refused and hung ones).
    pub fn requests(&self) -> Vec<Recorded> {
        lock(&self.state.requests).clone()
    }

    /// The requests to `path` (exact, without query).
    pub fn requests_to(&self, path: &str) -> Vec<Recorded> {
        lock(&self.state.requests)
            .iter()
            .filter(|r| r.path == path)
            .cloned()
            .collect()
    }

    pub fn last_request(&self) -> Option<Recorded> {
        lock(&self.state.requests).last().cloned()
    }

    /// Every answered call with when it started and ended.
    pub fn calls(&self) -> Vec<Call> {
        lock(&self.state.calls).clone()
    }

    pub fn request_count(&self) -> usize {
        lock(&self.state.requests).len()
    }

    pub fn clear_requests(&self) {
        lock(&self.state.requests).clear();
        self.state.seen.send_replace(0);
    }

    /// Waits until at least `count` requests have arrived (e.g. that a hung request reached
    /// the fake). Panics after `timeout`.
    pub async fn wait_for_requests(&self, count: usize, timeout: Duration) {
        let mut seen = self.state.seen.subscribe();
        let reached = tokio::time::timeout(timeout, seen.wait_for(|n| *n >= count)).await;
        assert!(
            matches!(reached, Ok(Ok(_))),
            "fake at {} got {} requests within {timeout:?}, expected {count}",
            self.addr,
            self.request_count()
        );
    }

    /// Recorded violations, cleared (so dropping the fake does not panic).
    /// Requests whose client closed the connection before the answer.
    pub fn abandoned(&self) -> usize {
        *self.state.abandoned.borrow()
    }

    /// Waits until at least `count` requests were abandoned by their client.
    pub async fn wait_for_abandoned(&self, count: usize, timeout: Duration) {
        let mut rx = self.state.abandoned.subscribe();
        let waited = tokio::time::timeout(timeout, rx.wait_for(|n| *n >= count)).await;
        assert!(
            waited.is_ok(),
            "only {} request(s) abandoned after {timeout:?}, want {count}",
            self.abandoned()
        );
    }

    pub fn take_violations(&self) -> Vec<String> {
        std::mem::take(&mut *lock(&self.state.violations))
    }

    /// Stops accepting connections: later requests fail with "connection refused". Requests
    /// in flight (e.g. hung ones) are left as they are.
    pub async fn stop(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        // axum drops the listener as soon as it sees the signal; wait until a connection is
        // refused so the caller can rely on it.
        let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
        while tokio::net::TcpStream::connect(self.addr).await.is_ok() {
            assert!(
                tokio::time::Instant::now() < deadline,
                "fake at {} still accepts connections after stop",
                self.addr
            );
            tokio::task::yield_now().await;
        }
    }
}

impl Drop for Fake {
    fn drop(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        let violations = self.take_violations();
        if !violations.is_empty() && !std::thread::panicking() {
            panic!(
                "the fake provider at {} saw forbidden requests:\n{}",
                self.addr,
                violations.join("\n")
            );
        }
    }
}

async fn serve<D: Dialect>(dialect: Arc<D>, state: Arc<FakeState>, request: Request) -> Response {
    let (parts, body) = request.into_parts();
    let bytes = axum::body::to_bytes(body, 64 * 1024 * 1024)
        .await
        .unwrap_or_default();
    let raw_body = String::from_utf8_lossy(&bytes).into_owned();
    let recorded = Recorded {
        method: parts.method.to_string(),
        path: parts.uri.path().to_owned(),
        query: parts.uri.query().map(str::to_owned),
        headers: parts.headers,
        body: serde_json::from_str(&raw_body).unwrap_or(Value::Null),
        raw_body,
    };
    state.record(recorded.clone());
    let mut guard = AnswerGuard {
        state: Arc::clone(&state),
        answered: false,
    };
    let started = std::time::Instant::now();
    let text = all_text(&recorded.body);
    let response = answer(dialect, Arc::clone(&state), recorded).await;
    guard.answered = true;
    lock(&state.calls).push(Call {
        started,
        finished: std::time::Instant::now(),
        text,
    });
    response
}

/// Counts a request as abandoned if its handler is dropped before answering: the client
/// closed the connection (e.g. a canceled run aborting its call).
struct AnswerGuard {
    state: Arc<FakeState>,
    answered: bool,
}

impl Drop for AnswerGuard {
    fn drop(&mut self) {
        if !self.answered {
            self.state.abandoned.send_modify(|n| *n += 1);
        }
    }
}

async fn answer<D: Dialect>(
    dialect: Arc<D>,
    state: Arc<FakeState>,
    recorded: Recorded,
) -> Response {
    match state.next_behavior() {
        Behavior::Normal => {}
        Behavior::Delay(delay) => tokio::time::sleep(delay).await,
        Behavior::Hang => std::future::pending::<()>().await,
        Behavior::Status {
            status,
            body,
            retry_after,
        } => {
            let body = body.unwrap_or_else(|| dialect.status_body(status, retry_after.as_deref()));
            let mut response = json(status, &body);
            if let Some(value) = retry_after.and_then(|v| HeaderValue::from_str(&v).ok()) {
                response.headers_mut().insert(header::RETRY_AFTER, value);
            }
            return response;
        }
    }
    if let Some(refusal) = dialect.authenticate(&recorded, &state) {
        return refusal;
    }
    dialect.handle(recorded, state).await
}

/// A JSON response with this status.
pub fn json(status: u16, body: &Value) -> Response {
    let status = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    (
        status,
        [(header::CONTENT_TYPE, "application/json")],
        Body::from(body.to_string()),
    )
        .into_response()
}

/// Adds a header to a response.
pub fn with_header(mut response: Response, name: &'static str, value: &str) -> Response {
    if let Ok(value) = HeaderValue::from_str(value) {
        response.headers_mut().insert(name, value);
    }
    response
}

/// The reason phrase, as a default error message.
pub fn default_message(status: u16) -> &'static str {
    StatusCode::from_u16(status)
        .ok()
        .and_then(|s| s.canonical_reason())
        .unwrap_or("Error")
}

/// A rough token count (words), for usage fields.
pub fn tokens(text: &str) -> u64 {
    text.split_whitespace().count().max(1) as u64
}

/// Every string value in a JSON document, joined (the "prompt" for token counts).
pub fn all_text(value: &Value) -> String {
    match value {
        Value::String(s) => s.clone(),
        Value::Array(items) => items.iter().map(all_text).collect::<Vec<_>>().join(" "),
        Value::Object(map) => map.values().map(all_text).collect::<Vec<_>>().join(" "),
        _ => String::new(),
    }
}

/// Seconds since the Unix epoch.
pub fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or_default()
}

/// The current UTC time as RFC 3339 with nanoseconds, as Ollama writes `created_at`.
pub fn rfc3339_now() -> String {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default();
    let secs = now.as_secs();
    let days = (secs / 86_400) as i64;
    let rem = secs % 86_400;
    // Civil date from days since 1970-01-01 (Howard Hinnant's algorithm).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1_460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}.{:09}Z",
        rem / 3_600,
        rem % 3_600 / 60,
        rem % 60,
        now.subsec_nanos()
    )
}

/// The name of the tool a request forces, else of its first tool. Covers the Anthropic
/// (`tool_choice.name`, `tools[].name`) and OpenAI (`tool_choice.function.name`,
/// `tools[].function.name`) shapes.
pub fn requested_tool(body: &Value) -> String {
    let forced = body["tool_choice"]["name"]
        .as_str()
        .or_else(|| body["tool_choice"]["function"]["name"].as_str());
    let first = body["tools"][0]["name"]
        .as_str()
        .or_else(|| body["tools"][0]["function"]["name"].as_str());
    forced.or(first).unwrap_or("respond").to_owned()
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    // A test that panicked while holding the lock already failed; keep serving the others.
    mutex
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}
