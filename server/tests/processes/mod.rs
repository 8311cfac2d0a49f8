//! What the crash tests drive from outside: the real `agentry` binary as a server and as a
//! worker, a plain HTTP client, and an OpenAI-compatible endpoint that holds every chat
//! completion until it is opened.
#![allow(
    dead_code,
    reason = "each test binary uses its own part of these helpers"
)]

use std::path::Path;
use std::process::Stdio;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use serde_json::Value;
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::{TcpListener, TcpStream};
use tokio::process::{Child, Command};
use tokio::sync::watch;

pub const DEADLINE: Duration = Duration::from_secs(60);

/// An OpenAI-compatible endpoint that lists one model (`m`) at once and answers chat
/// completions with `{}` only once opened; until then every call stays in flight.
pub struct Gate {
    pub port: u16,
    /// Chat completions received.
    pub chats: Arc<AtomicUsize>,
    /// Held chat completions whose client hung up before the gate opened.
    pub abandoned: Arc<AtomicUsize>,
    open: watch::Sender<bool>,
}

impl Gate {
    pub async fn start() -> Gate {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let (open, opened) = watch::channel(false);
        let chats = Arc::new(AtomicUsize::new(0));
        let abandoned = Arc::new(AtomicUsize::new(0));
        let (counter, dropped) = (Arc::clone(&chats), Arc::clone(&abandoned));
        tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                let (counter, dropped) = (Arc::clone(&counter), Arc::clone(&dropped));
                tokio::spawn(serve(stream, counter, dropped, opened.clone()));
            }
        });
        Gate {
            port,
            chats,
            abandoned,
            open,
        }
    }

    /// Answers every held and later chat completion.
    pub fn open(&self) {
        self.open.send_replace(true);
    }

    pub fn abandoned(&self) -> usize {
        self.abandoned.load(Ordering::SeqCst)
    }

    pub fn chats(&self) -> usize {
        self.chats.load(Ordering::SeqCst)
    }

    /// Waits until `n` chat completions arrived in all.
    pub async fn wait_for_chats(&self, n: usize, what: &str) {
        wait_until(what, || self.chats() >= n).await;
    }
}

/// One request per connection: the whole request is read (headers and body), then answered.
async fn serve(
    stream: TcpStream,
    chats: Arc<AtomicUsize>,
    abandoned: Arc<AtomicUsize>,
    mut opened: watch::Receiver<bool>,
) {
    let mut reader = BufReader::new(stream);
    let mut head = String::new();
    let mut length = 0_usize;
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line).await.unwrap_or(0) == 0 {
            return;
        }
        if let Some((name, value)) = line.split_once(':')
            && name.eq_ignore_ascii_case("content-length")
        {
            length = value.trim().parse().unwrap_or(0);
        }
        let end = line == "\r\n";
        head.push_str(&line);
        if end {
            break;
        }
    }
    let mut body = vec![0_u8; length];
    if reader.read_exact(&mut body).await.is_err() {
        return;
    }
    let mut stream = reader.into_inner();
    let body = if head.starts_with("GET") {
        r#"{"object":"list","data":[{"id":"m","object":"model"}]}"#.to_owned()
    } else {
        chats.fetch_add(1, Ordering::SeqCst);
        let mut probe = [0_u8; 1];
        tokio::select! {
            _ = opened.wait_for(|open| *open) => {}
            // The client hung up (a worker aborting the run): nothing to answer.
            _ = stream.read(&mut probe) => {
                abandoned.fetch_add(1, Ordering::SeqCst);
                return;
            }
        }
        r#"{"id":"c","object":"chat.completion","created":0,"model":"m","choices":[{"index":0,"message":{"role":"assistant","content":"{}"},"finish_reason":"stop"}],"usage":{"prompt_tokens":1,"completion_tokens":1,"total_tokens":2}}"#.to_owned()
    };
    let answer = format!(
        "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\
         Connection: close\r\n\r\n{body}",
        body.len()
    );
    let _ = stream.write_all(answer.as_bytes()).await;
    let _ = stream.shutdown().await;
}

/// Polls `done` every 20 ms until it holds; panics with `what` after `DEADLINE`.
pub async fn wait_until(what: &str, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + DEADLINE;
    while !done() {
        assert!(Instant::now() < deadline, "timed out waiting: {what}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Polls the async `done` every 20 ms until it holds; panics with `what` after `DEADLINE`.
pub async fn wait_for<F, Fut>(what: &str, mut done: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = Instant::now() + DEADLINE;
    while !done().await {
        assert!(Instant::now() < deadline, "timed out waiting: {what}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// The binary serving on `bind` (`127.0.0.1:0` for any port) over `data_dir` (and
/// `database_url` when given), with extra `env`; returns it with its address, read from its
/// log.
pub async fn start_server(
    data_dir: &Path,
    database_url: Option<&str>,
    bind: &str,
    env: &[(&str, &str)],
) -> (Child, String) {
    let mut command = Command::new(env!("CARGO_BIN_EXE_agentry"));
    command
        .current_dir(data_dir)
        .env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .env("AGENTRY_DATA_DIR", data_dir)
        .env("AGENTRY_LOG", "info")
        .env("AGENTRY_VALIDATION_INTERVAL_SECS", "0")
        .envs(env.iter().copied())
        .args(["serve", "--bind", bind])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    if let Some(url) = database_url {
        command.env("DATABASE_URL", url);
    }
    let mut child = command.spawn().expect("spawn agentry");
    let addr = listening_address(&mut child).await;
    (child, addr)
}

/// The address a server started with its log on a pipe says it listens on; the rest of the
/// log is drained so the server never blocks on a full pipe.
pub async fn listening_address(child: &mut Child) -> String {
    let mut lines = BufReader::new(child.stderr.take().unwrap()).lines();
    let addr = tokio::time::timeout(DEADLINE, async {
        while let Some(line) = lines.next_line().await.unwrap() {
            if let Some(at) = line.find("listening on http://") {
                return line[at + "listening on http://".len()..]
                    .split_whitespace()
                    .next()
                    .unwrap()
                    .to_owned();
            }
        }
        panic!("the server exited before listening");
    })
    .await
    .expect("the server logs its address");
    tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
    addr
}

/// `agentry worker --server http://<addr>` with its data in `data_dir` and `args`, logging
/// to `worker.log` there.
pub fn start_worker(addr: &str, data_dir: &Path, args: &[&str]) -> Child {
    std::fs::create_dir_all(data_dir).unwrap();
    let log = std::fs::File::create(data_dir.join("worker.log")).unwrap();
    Command::new(env!("CARGO_BIN_EXE_agentry"))
        .arg("worker")
        .arg("--server")
        .arg(format!("http://{addr}"))
        .arg("--data-dir")
        .arg(data_dir)
        .args(args)
        .env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .env("AGENTRY_LOG", "info,agentry=debug")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(log)
        .kill_on_drop(true)
        .spawn()
        .expect("spawn agentry worker")
}

pub async fn post(client: &reqwest::Client, addr: &str, path: &str, body: Value) -> Value {
    let resp = client
        .post(format!("http://{addr}{path}"))
        .json(&body)
        .send()
        .await
        .unwrap();
    assert!(resp.status().is_success(), "{path}: {}", resp.status());
    resp.json().await.unwrap()
}

pub async fn get(client: &reqwest::Client, addr: &str, path: &str) -> Value {
    let resp = client
        .get(format!("http://{addr}{path}"))
        .send()
        .await
        .unwrap();
    assert!(resp.status().is_success(), "{path}: {}", resp.status());
    resp.json().await.unwrap()
}

/// `get`, or `None` while the server does not answer (restarting).
pub async fn try_get(client: &reqwest::Client, addr: &str, path: &str) -> Option<Value> {
    let resp = client
        .get(format!("http://{addr}{path}"))
        .send()
        .await
        .ok()?;
    if !resp.status().is_success() {
        return None;
    }
    resp.json().await.ok()
}

/// A provider on `gate`, a task answering any object and an agent assigned to it; returns
/// the path that starts runs.
pub async fn runnable(client: &reqwest::Client, addr: &str, gate: &Gate) -> String {
    let provider = post(
        client,
        addr,
        "/api/providers",
        serde_json::json!({"name": "gate", "kind": "openai_compatible",
            "base_url": format!("http://127.0.0.1:{}/v1", gate.port)}),
    )
    .await;
    let task = post(
        client,
        addr,
        "/api/tasks",
        serde_json::json!({"name": "t", "response_schema": {"type": "object"}}),
    )
    .await;
    let agent = post(
        client,
        addr,
        "/api/agents",
        serde_json::json!({"name": "a", "provider_id": provider["id"], "model": "m",
            "system_prompt": "Answer.", "timeout_secs": 3600}),
    )
    .await;
    let (agent_id, task_id) = (agent["id"].as_str().unwrap(), task["id"].as_str().unwrap());
    post(
        client,
        addr,
        &format!("/api/agents/{agent_id}/tasks"),
        serde_json::json!({"task_id": task_id}),
    )
    .await;
    format!("/api/agents/{agent_id}/tasks/{task_id}/runs")
}

/// Runs `test` on a new PostgreSQL database (`AGENTRY_TEST_PG_URL`'s server), dropped after,
/// whether the test passed or not.
pub async fn on_postgres<F, Fut>(test: F)
where
    F: FnOnce(String) -> Fut + Send + 'static,
    Fut: std::future::Future<Output = ()> + Send,
{
    use sea_orm::{ConnectionTrait, Database};
    let admin_url = std::env::var("AGENTRY_TEST_PG_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".to_owned());
    let admin = Database::connect(&admin_url)
        .await
        .expect("PostgreSQL must be reachable for this test (AGENTRY_TEST_PG_URL)");
    let name = format!("agentry_crash_{}", uuid::Uuid::now_v7().simple());
    admin
        .execute_unprepared(&format!("CREATE DATABASE \"{name}\""))
        .await
        .unwrap();
    let base = admin_url
        .rsplit_once('/')
        .map_or(admin_url.as_str(), |(base, _)| base);
    let url = format!("{base}/{name}");
    let outcome = tokio::spawn(async move { test(url).await }).await;
    admin
        .execute_unprepared(&format!("DROP DATABASE \"{name}\" WITH (FORCE)"))
        .await
        .unwrap();
    if let Err(e) = outcome {
        std::panic::resume_unwind(e.into_panic());
    }
}
