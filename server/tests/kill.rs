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

mod processes;

use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use processes::{DEADLINE, Gate, get, post, start_server};
use sea_orm::{ConnectionTrait, Database, Statement};
use serde_json::json;

async fn kill_mid_run_and_restart(database_url: Option<&str>) {
    let iterations: usize = std::env::var("AGENTRY_KILL_ITERATIONS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(2);
    // Never opened: every run stays in flight until the server is killed.
    let llm = Gate::start().await;
    let dir = tempfile::tempdir().unwrap();
    agentry::outbound::install_crypto_provider();
    let client = reqwest::Client::builder().no_proxy().build().unwrap();
    let (mut server, mut addr) = start_server(dir.path(), database_url, "127.0.0.1:0", &[]).await;
    let runs_path = processes::runnable(&client, &addr, &llm).await;
    let agents = get(&client, &addr, "/api/agents").await;
    let agent_id = agents["items"][0]["id"].as_str().unwrap().to_owned();
    let task = get(&client, &addr, "/api/tasks").await["items"][0].clone();

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
        (server, addr) = start_server(dir.path(), database_url, "127.0.0.1:0", &[]).await;
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
    processes::on_postgres(|url| async move { kill_mid_run_and_restart(Some(&url)).await }).await;
}
