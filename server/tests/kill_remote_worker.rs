//! `kill -9` of the server while a remote `agentry worker` executes its runs, then a restart
//! on the same address and data, on SQLite and PostgreSQL. The worker keeps working while
//! it reconnects: when its leases are still valid its results are accepted (one call and one
//! delivery per run); when they ran out meanwhile it aborts the runs, the restarted server
//! requeues them and the worker executes them again. Either way no run is failed, lost or
//! executed twice at once.
#![expect(clippy::expect_used, clippy::unwrap_used, reason = "tests")]
#![expect(
    clippy::disallowed_methods,
    reason = "the test drives the binary from outside: its own client and fake LLM"
)]

mod processes;

use processes::{Gate, get, post, start_server, start_worker, try_get, wait_for, wait_until};
use serde_json::{Value, json};

const RUNS: usize = 3;

/// Whether the leases outlive the server's absence.
#[derive(Clone, Copy, PartialEq)]
enum Leases {
    /// 30 s: still valid when the server is back.
    Valid,
    /// 2 s: run out while the server is down.
    Expire,
}

async fn kill_the_server_under_a_remote_worker(database_url: Option<String>, leases: Leases) {
    let gate = Gate::start().await;
    let dir = tempfile::tempdir().unwrap();
    agentry::outbound::install_crypto_provider();
    let client = reqwest::Client::builder().no_proxy().build().unwrap();
    let lease = if leases == Leases::Valid { "30" } else { "2" };
    let env = [
        ("AGENTRY_BUILTIN_WORKER", "false"),
        ("AGENTRY_LEASE_SECS", lease),
    ];
    let url = database_url.as_deref();
    let (mut server, addr) = start_server(dir.path(), url, "127.0.0.1:0", &env).await;
    let runs_path = processes::runnable(&client, &addr, &gate).await;
    let token = post(&client, &addr, "/api/worker-tokens", json!({})).await;
    let worker_dir = dir.path().join("worker");
    let mut worker = start_worker(
        &addr,
        &worker_dir,
        &[
            "--token",
            token["token"].as_str().unwrap(),
            "--name",
            "remote",
            "--slots",
            "4",
        ],
    );
    wait_for("the worker is online", || worker_online(&client, &addr)).await;

    let mut ids = Vec::new();
    for _ in 0..RUNS {
        let run = post(
            &client,
            &addr,
            &runs_path,
            json!({"input": {}, "mode": "async"}),
        )
        .await;
        ids.push(run["id"].as_str().unwrap().to_owned());
    }
    gate.wait_for_chats(RUNS, "the worker calls the provider")
        .await;
    wait_for("the acceptances are stored", || {
        counted(&client, &addr, "running", RUNS)
    })
    .await;

    // kill -9 while the worker holds every run, then the same address again.
    server.start_kill().unwrap();
    server.wait().await.unwrap();
    if leases == Leases::Expire {
        // Cut off longer than its leases, the worker gives the runs up and hangs up on
        // the provider.
        wait_until("the worker aborts the runs whose lease ran out", || {
            gate.abandoned() >= RUNS
        })
        .await;
    }
    let (mut server, addr) = start_server(dir.path(), url, &addr, &env).await;
    wait_for("the worker reconnects", || worker_online(&client, &addr)).await;
    let calls = if leases == Leases::Valid {
        RUNS
    } else {
        // Requeued, offered to the worker again, called again.
        gate.wait_for_chats(2 * RUNS, "the requeued runs are executed again")
            .await;
        2 * RUNS
    };
    gate.open();
    wait_for("every run succeeds", || {
        counted(&client, &addr, "succeeded", RUNS)
    })
    .await;

    let page = get(&client, &addr, "/api/runs").await;
    assert_eq!(page["total"], RUNS, "a run row was lost or added: {page}");
    let deliveries = if leases == Leases::Valid { 1 } else { 2 };
    for id in &ids {
        let run = get(&client, &addr, &format!("/api/runs/{id}")).await;
        assert_eq!(run["status"], "succeeded", "{run}");
        assert_eq!(run["deliveries"], deliveries, "{run}");
        let events = get(&client, &addr, &format!("/api/runs/{id}/events")).await;
        let statuses: Vec<&str> = events
            .as_array()
            .unwrap()
            .iter()
            .filter(|e| e["kind"] == "status")
            .map(|e| e["data"]["status"].as_str().unwrap())
            .collect();
        let expected: &[&str] = if leases == Leases::Valid {
            &["queued", "running", "succeeded"]
        } else {
            &["queued", "running", "queued", "running", "succeeded"]
        };
        assert_eq!(statuses, expected, "{events}");
        let attempts: Vec<&Value> = events
            .as_array()
            .unwrap()
            .iter()
            .filter(|e| e["kind"] == "attempt")
            .collect();
        assert_eq!(attempts.len(), 1, "one result stored: {events}");
    }
    assert_eq!(
        gate.chats(),
        calls,
        "no run executed more often than delivered"
    );
    server.start_kill().unwrap();
    server.wait().await.unwrap();
    worker.start_kill().unwrap();
    worker.wait().await.unwrap();
}

/// Whether the worker named `remote` is online (false while the server is away).
async fn worker_online(client: &reqwest::Client, addr: &str) -> bool {
    try_get(client, addr, "/api/workers")
        .await
        .and_then(|all| {
            all.as_array()?
                .iter()
                .find(|w| w["name"] == "remote")
                .map(|w| w["status"] == "online")
        })
        .unwrap_or(false)
}

/// Whether exactly `n` runs are in `status`.
async fn counted(client: &reqwest::Client, addr: &str, status: &str, n: usize) -> bool {
    let page = get(client, addr, &format!("/api/runs?status={status}&limit=1")).await;
    page["total"] == n
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_valid_leases_are_honoured_after_a_kill_9() {
    kill_the_server_under_a_remote_worker(None, Leases::Valid).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_expired_leases_are_requeued_after_a_kill_9() {
    kill_the_server_under_a_remote_worker(None, Leases::Expire).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_valid_leases_are_honoured_after_a_kill_9() {
    processes::on_postgres(|url| async move {
        kill_the_server_under_a_remote_worker(Some(url), Leases::Valid).await;
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_expired_leases_are_requeued_after_a_kill_9() {
    processes::on_postgres(|url| async move {
        kill_the_server_under_a_remote_worker(Some(url), Leases::Expire).await;
    })
    .await;
}
