//! `kill -9` of the real binary in the middle of sync and async runs, on SQLite and
//! PostgreSQL, then a restart on the same data: no row is lost or half-written, every run the
//! killed process left unfinished is queued again and executed by the restarted server's
//! built-in worker (none is failed because the server died), the configuration is intact,
//! and the SQLite file passes `PRAGMA integrity_check`.
//!
//! `AGENTRY_KILL_ITERATIONS` (default 2) sets how many kill/restart rounds each database gets.
#![expect(clippy::expect_used, clippy::unwrap_used, reason = "tests")]
#![expect(
    clippy::disallowed_methods,
    reason = "the test drives the binary from outside: its own client, fake LLM and tasks"
)]

use std::path::Path;
use std::process::Stdio;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use sea_orm::{ConnectionTrait, Database, Statement};
use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpListener;
use tokio::process::{Child, Command};

const DEADLINE: Duration = Duration::from_secs(60);

/// An OpenAI-compatible endpoint that lists one model at once and never answers a chat
/// completion: every run stays in flight until the server is killed.
struct Stuck {
    port: u16,
    chats: Arc<AtomicUsize>,
}

async fn stuck_llm() -> Stuck {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let chats = Arc::new(AtomicUsize::new(0));
    let counter = Arc::clone(&chats);
    tokio::spawn(async move {
        while let Ok((mut stream, _)) = listener.accept().await {
            let counter = Arc::clone(&counter);
            tokio::spawn(async move {
                let mut buffer = vec![0_u8; 64 * 1024];
                let n = stream.read(&mut buffer).await.unwrap_or(0);
                let head = String::from_utf8_lossy(&buffer[..n]);
                if head.starts_with("GET") {
                    let body = r#"{"data":[{"id":"m"}]}"#;
                    let answer = format!(
                        "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
                        body.len()
                    );
                    let _ = stream.write_all(answer.as_bytes()).await;
                } else {
                    counter.fetch_add(1, Ordering::SeqCst);
                    std::future::pending::<()>().await;
                }
            });
        }
    });
    Stuck { port, chats }
}

/// The binary on port 0 over `data_dir` (and `database_url` when given); returns it with its
/// address, read from its log.
async fn start(data_dir: &Path, database_url: Option<&str>) -> (Child, String) {
    let mut command = Command::new(env!("CARGO_BIN_EXE_agentry"));
    command
        .current_dir(data_dir)
        .env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .env("AGENTRY_DATA_DIR", data_dir)
        .env("AGENTRY_LOG", "info")
        .env("AGENTRY_VALIDATION_INTERVAL_SECS", "0")
        .args(["serve", "--bind", "127.0.0.1:0"])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    if let Some(url) = database_url {
        command.env("DATABASE_URL", url);
    }
    let mut child = command.spawn().expect("spawn agentry");
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
    // Keep draining the log so the server never blocks on a full pipe.
    tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
    (child, addr)
}

async fn post(client: &reqwest::Client, addr: &str, path: &str, body: Value) -> Value {
    let resp = client
        .post(format!("http://{addr}{path}"))
        .json(&body)
        .send()
        .await
        .unwrap();
    assert!(resp.status().is_success(), "{path}: {}", resp.status());
    resp.json().await.unwrap()
}

async fn get(client: &reqwest::Client, addr: &str, path: &str) -> Value {
    let resp = client
        .get(format!("http://{addr}{path}"))
        .send()
        .await
        .unwrap();
    assert!(resp.status().is_success(), "{path}: {}", resp.status());
    resp.json().await.unwrap()
}

async fn kill_mid_run_and_restart(database_url: Option<&str>) {
    let iterations: usize = std::env::var("AGENTRY_KILL_ITERATIONS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(2);
    let llm = stuck_llm().await;
    let dir = tempfile::tempdir().unwrap();
    agentry::outbound::install_crypto_provider();
    let client = reqwest::Client::builder().no_proxy().build().unwrap();
    let (mut server, mut addr) = start(dir.path(), database_url).await;
    let provider = post(
        &client,
        &addr,
        "/api/providers",
        json!({"name": "stuck",
        "kind": "openai_compatible", "base_url": format!("http://127.0.0.1:{}/v1", llm.port)}),
    )
    .await;
    let task = post(
        &client,
        &addr,
        "/api/tasks",
        json!({"name": "t",
        "response_schema": {"type": "object"}}),
    )
    .await;
    let agent = post(
        &client,
        &addr,
        "/api/agents",
        json!({"name": "a",
        "provider_id": provider["id"], "model": "m", "system_prompt": "Answer.",
        "timeout_secs": 3600}),
    )
    .await;
    let (agent_id, task_id) = (agent["id"].as_str().unwrap(), task["id"].as_str().unwrap());
    post(
        &client,
        &addr,
        &format!("/api/agents/{agent_id}/tasks"),
        json!({"task_id": task_id}),
    )
    .await;
    let runs_path = format!("/api/agents/{agent_id}/tasks/{task_id}/runs");

    let mut started = 0;
    for round in 0..iterations {
        let calls_at_start = llm.chats.load(Ordering::SeqCst);
        // Three async runs and two sync ones (whose requests the kill will cut), all waiting
        // on the provider.
        for _ in 0..3 {
            post(
                &client,
                &addr,
                &runs_path,
                json!({"input": {}, "mode": "async"}),
            )
            .await;
        }
        for _ in 0..2 {
            let (client, url) = (client.clone(), format!("http://{addr}{runs_path}"));
            tokio::spawn(async move { client.post(url).json(&json!({"input": {}})).send().await });
        }
        started += 5;
        let deadline = Instant::now() + DEADLINE;
        while llm.chats.load(Ordering::SeqCst) < calls_at_start + 5 {
            assert!(
                Instant::now() < deadline,
                "round {round}: runs never reached the provider"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        // kill -9, then a restart on the same data: every unfinished run reaches the provider
        // once more.
        server.start_kill().unwrap();
        server.wait().await.unwrap();
        let calls_before = llm.chats.load(Ordering::SeqCst);
        (server, addr) = start(dir.path(), database_url).await;
        let deadline = Instant::now() + DEADLINE;
        while llm.chats.load(Ordering::SeqCst) < calls_before + started {
            assert!(
                Instant::now() < deadline,
                "round {round}: the runs were not executed again after the restart"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }

        // The worker calls the provider as soon as it has accepted; the acceptance is stored
        // a moment later.
        let all = loop {
            let all = get(&client, &addr, "/api/runs?limit=200").await;
            let settled = all["items"]
                .as_array()
                .unwrap()
                .iter()
                .all(|run| run["status"] == "running" && run["queued_at"] != run["created_at"]);
            if settled || Instant::now() >= deadline {
                break all;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        };
        assert_eq!(all["total"], started, "round {round}: a run row was lost");
        for run in all["items"].as_array().unwrap() {
            assert_eq!(run["status"], "running", "round {round}: {run}");
            assert!(run["error"].is_null(), "round {round}: {run}");
            // Queued again at the restart (a run killed before its acceptance was stored
            // counts one delivery less).
            assert_ne!(
                run["queued_at"], run["created_at"],
                "round {round}: queued again: {run}"
            );
            assert!(
                run["deliveries"].as_u64().unwrap() >= 1,
                "round {round}: delivered again: {run}"
            );
            let id = run["id"].as_str().unwrap();
            let events = get(&client, &addr, &format!("/api/runs/{id}/events")).await;
            assert!(
                !events.as_array().unwrap().is_empty(),
                "{id} has no history"
            );
        }
        // The configuration survived whole.
        assert_eq!(get(&client, &addr, "/api/agents").await["total"], 1);
        let agent_view = get(&client, &addr, &format!("/api/agents/{agent_id}")).await;
        assert_eq!(agent_view["tasks"][0]["id"], task["id"]);
    }
    server.start_kill().unwrap();
    server.wait().await.unwrap();

    if database_url.is_none() {
        let file = dir.path().join("agentry.db");
        let db = Database::connect(format!("sqlite://{}?mode=ro", file.display()))
            .await
            .unwrap();
        let row = db
            .query_one_raw(Statement::from_string(
                db.get_database_backend(),
                "PRAGMA integrity_check",
            ))
            .await
            .unwrap()
            .unwrap();
        assert_eq!(row.try_get_by_index::<String>(0).unwrap(), "ok");
        db.close().await.unwrap();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_survives_kill_9_mid_run() {
    kill_mid_run_and_restart(None).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_survives_kill_9_mid_run() {
    let admin_url = std::env::var("AGENTRY_TEST_PG_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".to_owned());
    let admin = Database::connect(&admin_url)
        .await
        .expect("PostgreSQL must be reachable for this test (AGENTRY_TEST_PG_URL)");
    let name = format!("agentry_kill_{}", uuid::Uuid::now_v7().simple());
    admin
        .execute_unprepared(&format!("CREATE DATABASE \"{name}\""))
        .await
        .unwrap();
    let base = admin_url
        .rsplit_once('/')
        .map_or(admin_url.as_str(), |(base, _)| base);
    let url = format!("{base}/{name}");
    let outcome = tokio::spawn(async move { kill_mid_run_and_restart(Some(&url)).await }).await;
    admin
        .execute_unprepared(&format!("DROP DATABASE \"{name}\" WITH (FORCE)"))
        .await
        .unwrap();
    if let Err(e) = outcome {
        std::panic::resume_unwind(e.into_panic());
    }
}
