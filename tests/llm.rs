//! The real test LLM: one llama-server (SmolLM2-135M-Instruct) per test process on a free
//! 127.0.0.1 port, installed by `scripts/test-llm` and started on first use.
//!
//! The server is a plain OS process owned by a static, not by a task: each `#[tokio::test]`
//! has its own runtime that dies with the test, and the server must outlive all of them. It
//! dies with the test process, even on panic or abort, because it runs under a small `sh`
//! guard that kills it when its stdin (a pipe from this process) reaches end-of-file.

use std::fs::File;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use tokio::sync::OnceCell;

/// The model id llama-server answers to (its `--alias`).
pub const MODEL: &str = "smollm2-135m-instruct";

/// How long llama-server may take to load the model and answer `/health` with 200.
const STARTUP_DEADLINE: Duration = Duration::from_secs(60);

/// A running llama-server.
#[derive(Debug)]
pub struct LlamaServer {
    base_url: String,
    port: u16,
    log: PathBuf,
    model_path: PathBuf,
    startup: Duration,
    /// The `sh` guard. Its stdin pipe is the kill switch: it stays open as long as this
    /// process lives, since statics are never dropped.
    _guard: Child,
}

impl LlamaServer {
    /// `http://127.0.0.1:PORT` (the OpenAI API is under `/v1`).
    pub fn base_url(&self) -> &str {
        &self.base_url
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// The model id to send in requests ("smollm2-135m-instruct").
    pub fn model(&self) -> &'static str {
        MODEL
    }

    /// The GGUF file being served.
    pub fn model_path(&self) -> &Path {
        &self.model_path
    }

    /// llama-server's own log (stdout and stderr).
    pub fn log_path(&self) -> &Path {
        &self.log
    }

    /// Spawn to first `/health` 200.
    pub fn startup_time(&self) -> Duration {
        self.startup
    }
}

/// Cache directory of `scripts/test-llm`.
pub fn home() -> PathBuf {
    match std::env::var_os("AGENTRY_TEST_LLM_HOME") {
        Some(dir) => PathBuf::from(dir),
        None => {
            let home = std::env::var_os("HOME").expect("HOME is set");
            PathBuf::from(home).join(".cache/agentry-test-llm")
        }
    }
}

/// The shared llama-server, started on first call. A missing install fails the test: the
/// real LLM is part of the test environment, never silently skipped.
pub async fn llama_server() -> &'static LlamaServer {
    static SERVER: OnceCell<LlamaServer> = OnceCell::const_new();
    SERVER.get_or_init(start).await
}

async fn start() -> LlamaServer {
    let home = home();
    let binary = home.join("bin/llama-server");
    let model_path = home.join(format!("models/{MODEL}.gguf"));
    for path in [&binary, &model_path] {
        assert!(
            path.exists(),
            "{} is missing: run scripts/test-llm to install the test LLM \
             (set AGENTRY_TEST_LLM_HOME if it lives elsewhere)",
            path.display()
        );
    }
    let logs = home.join("logs");
    std::fs::create_dir_all(&logs).expect("create the llama-server log directory");
    prune_logs(&logs);

    // The port is found by binding :0 and released before llama-server binds it, so another
    // process can take it in between; llama-server then exits and we try another port.
    let mut failures = Vec::new();
    for _ in 0..3 {
        let port = free_port();
        let log = logs.join(format!("llama-server-{}-{port}.log", std::process::id()));
        match spawn(&binary, &model_path, port, &log).await {
            Ok(server) => return server,
            Err(failure) => failures.push(failure),
        }
    }
    panic!("llama-server did not start:\n{}", failures.join("\n\n"));
}

/// One log per test process accumulates; those older than a day are of no use.
fn prune_logs(logs: &Path) {
    let day = Duration::from_secs(24 * 3600);
    for entry in std::fs::read_dir(logs).into_iter().flatten().flatten() {
        let old = entry
            .metadata()
            .and_then(|m| m.modified())
            .is_ok_and(|modified| modified.elapsed().is_ok_and(|age| age > day));
        if old {
            let _ = std::fs::remove_file(entry.path());
        }
    }
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|listener| listener.local_addr())
        .expect("bind 127.0.0.1:0")
        .port()
}

/// Starts llama-server under the guard and waits for `/health`. On failure the guard has
/// exited (or been killed) and the error carries the end of the log.
async fn spawn(binary: &Path, model: &Path, port: u16, log: &Path) -> Result<LlamaServer, String> {
    let log_file = File::create(log).map_err(|e| format!("create {}: {e}", log.display()))?;
    let log_err = log_file
        .try_clone()
        .map_err(|e| format!("clone log handle: {e}"))?;
    // The guard: fd 3 keeps the test process's pipe (a background job's stdin is /dev/null in
    // a non-interactive sh); the background `cat` returns at end-of-file, i.e. when the test
    // process is gone, and kills the server. `wait` makes the guard exit when the server
    // does, so a crash is seen at once instead of at the deadline.
    let script = r#"exec 3<&0
"$0" "$@" 3<&- </dev/null &
pid=$!
trap 'kill $pid 2>/dev/null' EXIT INT TERM HUP
{ cat <&3 >/dev/null; kill $pid 2>/dev/null; } &
exec 3<&-
wait $pid"#;
    let started = Instant::now();
    let mut guard = Command::new("sh")
        .arg("-c")
        .arg(script)
        .arg(binary)
        .args(["--host", "127.0.0.1", "--port", &port.to_string()])
        .args(["--threads", "1", "-np", "1", "--jinja", "--no-repack"])
        .args(["--alias", MODEL, "-c", "2048", "-m"])
        .arg(model)
        .stdin(Stdio::piped())
        .stdout(log_file)
        .stderr(log_err)
        .spawn()
        .map_err(|e| format!("spawn sh for {}: {e}", binary.display()))?;

    let base_url = format!("http://127.0.0.1:{port}");
    crate::install_crypto_provider();
    let client = reqwest::Client::builder()
        .no_proxy()
        .timeout(Duration::from_secs(5))
        .build()
        .expect("client");
    let deadline = started + STARTUP_DEADLINE;
    loop {
        if let Ok(Some(status)) = guard.try_wait() {
            return Err(format!(
                "llama-server on port {port} exited ({status}); log {}:\n{}",
                log.display(),
                log_tail(log)
            ));
        }
        // 503 while the model loads, 200 once it can serve.
        if let Ok(resp) = client.get(format!("{base_url}/health")).send().await
            && resp.status() == reqwest::StatusCode::OK
        {
            return Ok(LlamaServer {
                base_url,
                port,
                log: log.to_owned(),
                model_path: model.to_owned(),
                startup: started.elapsed(),
                _guard: guard,
            });
        }
        if Instant::now() > deadline {
            let _ = guard.kill();
            let _ = guard.wait();
            return Err(format!(
                "llama-server on port {port} not healthy after {STARTUP_DEADLINE:?}; log {}:\n{}",
                log.display(),
                log_tail(log)
            ));
        }
        // Polling interval, not a readiness guess: the loop ends on health or the deadline.
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
}

fn log_tail(log: &Path) -> String {
    let text = std::fs::read_to_string(log).unwrap_or_default();
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(30)..].join("\n")
}
