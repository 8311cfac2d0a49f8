#![expect(
    clippy::expect_used,
    reason = "test harness: a failed expectation is a failed test"
)]
#![expect(
    clippy::disallowed_methods,
    reason = "the harness drives the server from outside: its own HTTP client, fakes and tasks"
)]

//! Test harness: the real Agentry server in-process on 127.0.0.1:0 with its own database
//! (a SQLite file in a temp dir, or a PostgreSQL database created and dropped per test), and
//! an HTTP client whose every response is checked against the committed OpenAPI document.

pub mod binaries;
pub mod contract;
pub mod fakes;
pub mod llm;
pub mod logs;
pub mod postgres;
pub mod runs;
pub mod workers;
pub mod ws;

use std::collections::BTreeSet;
use std::sync::{Arc, Mutex};

use agentry::{Application, Config};
use reqwest::{Method, StatusCode, header::HeaderMap};
use serde_json::{Value, json};
use tokio::sync::oneshot;
use uuid::Uuid;

pub use contract::Coverage;
pub use postgres::PgDatabase;

/// Which database a test runs against. Every black-box test runs on both.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

/// Declares each listed `async fn name(backend: Backend)` as two tests, `sqlite::name` and
/// `postgres::name`.
#[macro_export]
macro_rules! db_tests {
    ($($name:ident),* $(,)?) => {
        mod sqlite {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    super::$name($crate::Backend::Sqlite).await
                }
            )*
        }
        mod postgres {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    super::$name($crate::Backend::Postgres).await
                }
            )*
        }
    };
}

/// A 32-byte key (base64) for tests that set AGENTRY_ENCRYPTION_KEY.
pub const TEST_KEY: &str = "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=";

/// A running server and a client for it.
pub struct TestApp {
    pub base_url: String,
    pub client: reqwest::Client,
    /// Sent as `Authorization: Bearer` on every request when set.
    pub token: Option<String>,
    pub config: Config,
    pub coverage: Arc<Mutex<Coverage>>,
    /// The running server's services (protocol tests attach workers through `state.runs`).
    pub state: agentry::state::AppState,
    shutdown: Option<oneshot::Sender<()>>,
    server: Option<tokio::task::JoinHandle<()>>,
    pub data_dir: tempfile::TempDir,
    pg: Option<PgDatabase>,
}

/// A response, read whole.
#[derive(Debug)]
pub struct Resp {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub text: String,
}

impl Resp {
    pub fn json(&self) -> Value {
        serde_json::from_str(&self.text).unwrap_or(Value::Null)
    }

    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    /// The `id` of a created resource.
    pub fn id(&self) -> Uuid {
        self.json()["id"]
            .as_str()
            .and_then(|s| s.parse().ok())
            .unwrap_or_else(|| panic!("no id in {}: {}", self.status, self.text))
    }

    /// The problem `code` of an error response.
    pub fn code(&self) -> String {
        self.json()["code"].as_str().unwrap_or_default().to_owned()
    }

    #[track_caller]
    pub fn assert_status(&self, expected: u16) -> &Resp {
        assert_eq!(
            self.status.as_u16(),
            expected,
            "unexpected status; body: {}",
            self.text
        );
        self
    }

    /// Asserts a problem response with this status and code; returns its field paths.
    #[track_caller]
    pub fn assert_problem(&self, status: u16, code: &str) -> Vec<String> {
        self.assert_status(status);
        assert_eq!(
            self.header("content-type"),
            Some("application/problem+json"),
            "problems are problem+json"
        );
        assert_eq!(self.code(), code, "body: {}", self.text);
        self.json()["errors"]
            .as_array()
            .map(|errors| {
                errors
                    .iter()
                    .filter_map(|e| e["path"].as_str().map(str::to_owned))
                    .collect()
            })
            .unwrap_or_default()
    }
}

impl TestApp {
    pub async fn spawn(backend: Backend) -> TestApp {
        TestApp::spawn_with(backend, |_| {}).await
    }

    /// Spawns with a config adjusted by `configure` (token, keys, …).
    pub async fn spawn_with(backend: Backend, configure: impl FnOnce(&mut Config)) -> TestApp {
        let data_dir = tempfile::tempdir().expect("temp dir");
        let mut config = Config::with_data_dir(data_dir.path());
        config.log_filter = "warn".to_owned();
        // Tests create providers pointing at public hosts (the cloud kinds' defaults) and
        // unroutable addresses: the validator would reach out to them. Tests about
        // validation turn it on, with loopback servers only.
        config.validator.enabled = false;
        config.render_helper = Some(binaries::render_helper());
        let pg = match backend {
            Backend::Sqlite => None,
            Backend::Postgres => {
                let db = PgDatabase::create().await;
                config.database_url = Some(db.url.clone());
                Some(db)
            }
        };
        configure(&mut config);
        TestApp::start(config, data_dir, pg).await
    }

    /// Starts a server on an existing data directory / database (restart tests).
    pub async fn start(
        config: Config,
        data_dir: tempfile::TempDir,
        pg: Option<PgDatabase>,
    ) -> TestApp {
        TestApp::start_on(config, data_dir, pg, "127.0.0.1:0").await
    }

    /// Like `start`, on a given address: a restarted server keeps its URL, as for a browser
    /// that must reconnect to it.
    pub async fn start_on(
        config: Config,
        data_dir: tempfile::TempDir,
        pg: Option<PgDatabase>,
        addr: &str,
    ) -> TestApp {
        install_crypto_provider();
        logs::capture();
        let listener = tokio::net::TcpListener::bind(addr)
            .await
            .unwrap_or_else(|e| panic!("bind {addr}: {e}"));
        let app = Application::build_with_listener(config.clone(), listener)
            .await
            .expect("build application");
        let base_url = format!("http://{}", app.local_addr());
        let state = app.state().clone();
        let (tx, rx) = oneshot::channel::<()>();
        let server = tokio::spawn(async move {
            app.run_until_stopped(async {
                let _ = rx.await;
            })
            .await
            .expect("server error");
        });
        TestApp {
            base_url,
            client: reqwest::Client::builder()
                .no_proxy()
                .build()
                .expect("client"),
            token: config.api_token.clone(),
            config,
            coverage: Arc::new(Mutex::new(Coverage::default())),
            state,
            shutdown: Some(tx),
            server: Some(server),
            data_dir,
            pg,
        }
    }

    /// Stops the server gracefully and hands back its data directory and database, so a
    /// test can start another server on the same data.
    pub async fn stop(mut self) -> (Config, tempfile::TempDir, Option<PgDatabase>) {
        self.shutdown_server().await;
        let data_dir =
            std::mem::replace(&mut self.data_dir, tempfile::tempdir().expect("temp dir"));
        (self.config.clone(), data_dir, self.pg.take())
    }

    async fn shutdown_server(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        if let Some(server) = self.server.take() {
            let _ = server.await;
        }
    }

    /// Sends a request; checks the response against the OpenAPI document and records the
    /// (operation, status) pair for coverage.
    pub async fn request(&self, method: Method, path: &str, body: Option<&Value>) -> Resp {
        let mut request = self
            .client
            .request(method.clone(), format!("{}{path}", self.base_url));
        if let Some(token) = &self.token {
            request = request.bearer_auth(token);
        }
        if let Some(body) = body {
            request = request.json(body);
        }
        let resp = self.send(request).await;
        contract::check_response(&method, path, &resp, &self.coverage);
        resp
    }

    /// Sends a prepared request without contract checks (raw bodies, odd headers).
    pub async fn send(&self, request: reqwest::RequestBuilder) -> Resp {
        let response = request.send().await.expect("request failed");
        let status = response.status();
        let headers = response.headers().clone();
        let text = response.text().await.expect("read body");
        Resp {
            status,
            headers,
            text,
        }
    }

    /// Sends `method path` over a raw connection with `Content-Length: declared` but only the
    /// `sent` bytes of body, then waits (up to `deadline`) for the server's answer, which is
    /// parsed into a `Resp` (`None` when the server closed without answering).
    pub async fn stalled_body(
        &self,
        method: &str,
        path: &str,
        sent: &[u8],
        declared: usize,
        deadline: std::time::Duration,
    ) -> Option<Resp> {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let addr = self.base_url.trim_start_matches("http://");
        let mut stream = tokio::net::TcpStream::connect(addr).await.expect("connect");
        let auth = match &self.token {
            Some(token) => format!("Authorization: Bearer {token}\r\n"),
            None => String::new(),
        };
        let head = format!(
            "{method} {path} HTTP/1.1\r\nHost: {addr}\r\n{auth}Content-Type: application/json\r\n\
             Content-Length: {declared}\r\n\r\n"
        );
        stream.write_all(head.as_bytes()).await.expect("write head");
        stream.write_all(sent).await.expect("write body");
        let mut answer = Vec::new();
        let read = tokio::time::timeout(deadline, async {
            let mut buffer = [0_u8; 4096];
            loop {
                match stream.read(&mut buffer).await {
                    Ok(0) | Err(_) => break,
                    Ok(n) => answer.extend_from_slice(&buffer[..n]),
                }
                if parse_response(&answer).is_some() {
                    break;
                }
            }
        })
        .await;
        assert!(read.is_ok(), "no answer within {deadline:?}");
        parse_response(&answer)
    }

    /// The PostgreSQL database this app runs on (`None` on SQLite).
    pub fn pg_name(&self) -> Option<&str> {
        self.pg.as_ref().map(|db| db.name.as_str())
    }

    /// Polls `GET path` until `check` holds for its body (30 s); the body.
    pub async fn get_until(&self, path: &str, check: impl Fn(&Value) -> bool) -> Value {
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
        loop {
            let body = self.get(path).await.json();
            if check(&body) {
                return body;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "GET {path} never got there: {body}"
            );
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
    }

    /// Stops the server and returns a plain-text dump of its database (`pg_dump` or
    /// `sqlite3 .dump`), for searching what was stored.
    pub async fn dump(self) -> String {
        let pg = self.pg_name().map(str::to_owned);
        let (config, data_dir, db) = self.stop().await;
        let output = match (&pg, &config.database_url) {
            (Some(_), Some(url)) => std::process::Command::new("pg_dump")
                .args(["--no-owner", "--column-inserts", url])
                .output(),
            _ => std::process::Command::new("sqlite3")
                .arg(data_dir.path().join("agentry.db"))
                .arg(".dump")
                .output(),
        }
        .expect("run the dump tool");
        assert!(
            output.status.success(),
            "{}",
            String::from_utf8_lossy(&output.stderr)
        );
        drop(db);
        String::from_utf8(output.stdout).expect("a text dump")
    }

    /// A raw request with the token (if any) already set.
    pub fn raw(&self, method: Method, path: &str) -> reqwest::RequestBuilder {
        let request = self
            .client
            .request(method, format!("{}{path}", self.base_url));
        match &self.token {
            Some(token) => request.bearer_auth(token),
            None => request,
        }
    }

    pub async fn get(&self, path: &str) -> Resp {
        self.request(Method::GET, path, None).await
    }

    pub async fn post(&self, path: &str, body: &Value) -> Resp {
        self.request(Method::POST, path, Some(body)).await
    }

    pub async fn put(&self, path: &str, body: &Value) -> Resp {
        self.request(Method::PUT, path, Some(body)).await
    }

    pub async fn patch(&self, path: &str, body: &Value) -> Resp {
        self.request(Method::PATCH, path, Some(body)).await
    }

    pub async fn delete(&self, path: &str) -> Resp {
        self.request(Method::DELETE, path, None).await
    }

    pub async fn create_provider(&self, body: &Value) -> Resp {
        self.post("/api/providers", body).await
    }

    pub async fn create_agent(&self, body: &Value) -> Resp {
        self.post("/api/agents", body).await
    }

    pub async fn create_task(&self, body: &Value) -> Resp {
        self.post("/api/tasks", body).await
    }

    pub async fn assign(&self, agent: Uuid, task: Uuid) -> Resp {
        self.post(
            &format!("/api/agents/{agent}/tasks"),
            &json!({"task_id": task}),
        )
        .await
    }

    /// An Ollama provider (no key), created and checked.
    pub async fn ollama_provider(&self, name: &str) -> Uuid {
        self.create_provider(&json!({
            "name": name, "kind": "ollama", "base_url": "http://127.0.0.1:11434"
        }))
        .await
        .assert_status(201)
        .id()
    }

    /// An agent on `provider`, created and checked.
    pub async fn agent_on(&self, name: &str, provider: Uuid) -> Uuid {
        self.create_agent(&agent_body(name, provider))
            .await
            .assert_status(201)
            .id()
    }

    /// A task with a small closed response schema, created and checked.
    pub async fn simple_task(&self, name: &str) -> Uuid {
        self.create_task(&task_body(name))
            .await
            .assert_status(201)
            .id()
    }

    /// Every (method, path template, status) this app's requests have exercised.
    pub fn covered(&self) -> BTreeSet<(String, String, u16)> {
        self.coverage
            .lock()
            .map(|c| c.seen.clone())
            .unwrap_or_default()
    }
}

impl Drop for TestApp {
    fn drop(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        if let Some(server) = self.server.take() {
            server.abort();
        }
        // `pg` drops the database in its own Drop, after the server has been told to stop.
    }
}

pub fn agent_body(name: &str, provider: Uuid) -> Value {
    json!({
        "name": name,
        "description": "classifies things",
        "provider_id": provider,
        "model": "smollm2",
        "system_prompt": "You are a careful classifier. Answer in JSON.",
        "user_prompt": "Classify: {{ input.text }}",
        "temperature": 0.2,
        "max_tokens": 256,
        "max_retries": 2,
        "timeout_secs": 60
    })
}

pub fn task_body(name: &str) -> Value {
    json!({
        "name": name,
        "description": "sentiment of a text",
        "request_schema": {
            "type": "object",
            "properties": {"text": {"type": "string"}},
            "required": ["text"]
        },
        "response_schema": {
            "type": "object",
            "properties": {
                "sentiment": {"enum": ["positive", "negative", "neutral"]},
                "score": {"type": "number", "minimum": 0, "maximum": 1}
            },
            "required": ["sentiment", "score"],
            "additionalProperties": false
        }
    })
}

/// reqwest is built without a default TLS provider (ring is chosen explicitly, as in the
/// server): install it once per test process before any client is built.
pub fn install_crypto_provider() {
    let _ = rustls::crypto::ring::default_provider().install_default();
}

/// `value` without the fields the background validator changes at any moment
/// (`validation_status`, `validation_error`, `validated_at`, `latency_ms`, `models`), at any
/// depth: for comparing provider views taken at different times.
pub fn without_validation(value: &Value) -> Value {
    const LIVE: [&str; 5] = [
        "validation_status",
        "validation_error",
        "validated_at",
        "latency_ms",
        "models",
    ];
    match value {
        Value::Object(map) => Value::Object(
            map.iter()
                .filter(|(k, _)| !LIVE.contains(&k.as_str()))
                .map(|(k, v)| (k.clone(), without_validation(v)))
                .collect(),
        ),
        Value::Array(items) => Value::Array(items.iter().map(without_validation).collect()),
        other => other.clone(),
    }
}

impl TestApp {
    /// Polls `GET /api/providers/{id}` until `done` accepts it (deadline: 30 s).
    pub async fn provider_until(&self, id: Uuid, done: impl Fn(&Value) -> bool) -> Value {
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
        loop {
            let provider = self.get(&format!("/api/providers/{id}")).await.json();
            if done(&provider) {
                return provider;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "provider never reached the expected state: {provider}"
            );
            tokio::time::sleep(std::time::Duration::from_millis(25)).await;
        }
    }

    /// Polls until the provider's check has finished (connected or error).
    pub async fn provider_settled(&self, id: Uuid) -> Value {
        self.provider_until(id, |p| {
            matches!(p["validation_status"].as_str(), Some("connected" | "error"))
        })
        .await
    }
}

/// A closed response schema without numeric ranges: what a tiny model's grammar-constrained
/// output can always satisfy (llama.cpp does not enforce `minimum`/`maximum` on numbers).
pub fn closed_schema() -> Value {
    json!({
        "type": "object",
        "properties": {
            "sentiment": {"enum": ["positive", "negative", "neutral"]},
            "score": {"type": "number"}
        },
        "required": ["sentiment", "score"],
        "additionalProperties": false
    })
}

/// A complete HTTP/1.1 response with a Content-Length body, if `bytes` hold one.
fn parse_response(bytes: &[u8]) -> Option<Resp> {
    let text = std::str::from_utf8(bytes).ok()?;
    let (head, body) = text.split_once("\r\n\r\n")?;
    let mut lines = head.split("\r\n");
    let status: u16 = lines.next()?.split(' ').nth(1)?.parse().ok()?;
    let mut headers = HeaderMap::new();
    for line in lines {
        let (name, value) = line.split_once(':')?;
        headers.insert(
            reqwest::header::HeaderName::from_bytes(name.trim().as_bytes()).ok()?,
            value.trim().parse().ok()?,
        );
    }
    let length: usize = headers
        .get("content-length")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    if body.len() < length {
        return None;
    }
    Some(Resp {
        status: StatusCode::from_u16(status).ok()?,
        headers,
        text: body[..length].to_owned(),
    })
}
