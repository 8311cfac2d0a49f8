//! Workers end to end: registration tokens, registration, real `agentry worker` processes
//! over WebSocket executing runs, disabling the built-in worker, revoking a worker, and a
//! worker killed mid-run whose run another worker completes exactly once.

use std::time::Duration;

use agentry_tests::fakes::{self, Behavior, Reply};
use agentry_tests::workers::WorkerProcess;
use agentry_tests::{Backend, TestApp, db_tests};
use serde_json::{Value, json};

const VALID: &str = r#"{"sentiment":"positive","score":0.9}"#;

async fn on_openai(app: &TestApp, openai: &fakes::Fake) -> String {
    let provider = json!({"name": "o", "kind": "openai", "base_url": openai.url("/v1"),
        "api_key": fakes::openai::KEY});
    app.runnable(&provider, "gpt-4o-mini", json!({})).await
}

fn input() -> Value {
    json!({"input": {"text": "What a wonderful day!"}})
}

async fn registration_tokens_are_single_use_hashed_and_revocable(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let created = app
        .post(
            "/api/worker-tokens",
            &json!({"ttl_secs": 600, "note": "gpu box"}),
        )
        .await
        .assert_status(201)
        .json();
    let token = created["token"].as_str().unwrap().to_owned();
    assert!(token.starts_with("agwt_") && token.len() >= 48, "{token}");
    assert_eq!(created["details"]["status"], "unused");
    let listed = app.get("/api/worker-tokens").await;
    assert!(
        !listed.text.contains(&token),
        "the token is shown once only"
    );
    assert_eq!(listed.json()[0]["note"], "gpu box");

    // Bad inputs: a clear 422 each, nothing stored.
    for (body, path) in [
        (json!({"ttl_secs": 0}), "/ttl_secs"),
        (json!({"ttl_secs": 59}), "/ttl_secs"),
        (json!({"ttl_secs": 2_592_001}), "/ttl_secs"),
        (json!({"note": "x".repeat(201)}), "/note"),
    ] {
        let errors = app
            .post("/api/worker-tokens", &body)
            .await
            .assert_problem(422, "validation_failed");
        assert!(errors.iter().any(|e| e == path), "{body}: {errors:?}");
    }
    assert_eq!(
        app.get("/api/worker-tokens")
            .await
            .json()
            .as_array()
            .unwrap()
            .len(),
        1
    );

    // Registration: once, with the right messages for every refusal.
    let registered = app
        .post(
            "/api/workers/register",
            &json!({"token": token, "name": "gpu-1"}),
        )
        .await
        .assert_status(201)
        .json();
    let key = registered["key"].as_str().unwrap().to_owned();
    assert!(key.starts_with("agwk_"));
    assert_eq!(registered["name"], "gpu-1");
    let again = app
        .post(
            "/api/workers/register",
            &json!({"token": token, "name": "gpu-2"}),
        )
        .await;
    again.assert_problem(401, "unauthorized");
    assert!(again.text.contains("already used"), "{}", again.text);
    let unknown = app
        .post("/api/workers/register", &json!({"token": "agwt_nope"}))
        .await;
    unknown.assert_problem(401, "unauthorized");
    assert!(
        unknown.text.contains("unknown registration token"),
        "{}",
        unknown.text
    );
    let fresh = app.worker_token().await;
    app.post(
        "/api/workers/register",
        &json!({"token": fresh, "name": "gpu-1"}),
    )
    .await
    .assert_problem(409, "duplicate_name");
    app.post(
        "/api/workers/register",
        &json!({"token": fresh, "name": "bad name!"}),
    )
    .await
    .assert_problem(422, "validation_failed");
    // Neither failure used the token up.
    let tokens = app.get("/api/worker-tokens").await.json();
    let unused: Vec<_> = tokens
        .as_array()
        .unwrap()
        .iter()
        .filter(|t| t["status"] == "unused")
        .collect();
    assert_eq!(unused.len(), 1, "{tokens}");
    // Revoking: unused → gone; used → 409.
    let unused_id = unused[0]["id"].as_str().unwrap().to_owned();
    app.delete(&format!("/api/worker-tokens/{unused_id}"))
        .await
        .assert_status(204);
    app.post("/api/workers/register", &json!({"token": fresh}))
        .await
        .assert_problem(401, "unauthorized");
    let used_id = created["details"]["id"].as_str().unwrap();
    app.delete(&format!("/api/worker-tokens/{used_id}"))
        .await
        .assert_problem(409, "conflict");

    // An expired token is refused as expired.
    let expiring = app
        .post("/api/worker-tokens", &json!({"ttl_secs": 60}))
        .await
        .json();
    let db = agentry::db::connect::connect(&app.config.database_url())
        .await
        .unwrap();
    use sea_orm::{ConnectionTrait, Statement};
    db.execute_raw(Statement::from_sql_and_values(
        db.get_database_backend(),
        "UPDATE worker_tokens SET expires_at = $1 WHERE id = $2",
        [
            agentry::domain::now().into(),
            expiring["details"]["id"]
                .as_str()
                .unwrap()
                .parse::<uuid::Uuid>()
                .unwrap()
                .into(),
        ],
    ))
    .await
    .unwrap();
    let expired = app
        .post(
            "/api/workers/register",
            &json!({"token": expiring["token"]}),
        )
        .await;
    expired.assert_problem(401, "unauthorized");
    assert!(expired.text.contains("expired"), "{}", expired.text);

    // Only hashes are stored: no token or key in any column.
    for table in ["worker_tokens", "workers"] {
        let rows = db
            .query_all_raw(Statement::from_string(
                db.get_database_backend(),
                format!("SELECT * FROM {table}"),
            ))
            .await
            .unwrap();
        let dump = format!("{rows:?}");
        assert!(
            !dump.contains(&token) && !dump.contains(&key),
            "{table}: {dump}"
        );
    }
    db.close().await.unwrap();
    let workers = app.get("/api/workers").await;
    assert!(!workers.text.contains(&key), "the key is never shown again");
    assert!(!agentry_tests::logs::captured().contains(&key));
    assert!(!agentry_tests::logs::captured().contains(&token));
}

async fn a_remote_worker_process_executes_runs_when_the_builtin_is_disabled(backend: Backend) {
    let openai = fakes::openai::start().await;
    openai.set_default_reply(Reply::Text(VALID.to_owned()));
    let app = TestApp::spawn(backend).await;
    let url = on_openai(&app, &openai).await;
    let builtin = app.builtin_worker().await;
    app.worker_status("built-in", "online").await;
    let disabled = app
        .patch(
            &format!("/api/workers/{builtin}"),
            &json!({"enabled": false}),
        )
        .await
        .assert_status(200)
        .json();
    assert_eq!(disabled["status"], "disabled");

    let dir = tempfile::tempdir().unwrap();
    let token = app.worker_token().await;
    let mut worker = WorkerProcess::spawn(
        &app,
        dir.path(),
        &["--token", &token, "--name", "remote-1", "--slots", "2"],
    );
    let online = app.worker_status("remote-1", "online").await;
    assert_eq!(online["slots"], 2);
    assert_eq!(online["builtin"], false);
    assert_eq!(online["address"], "127.0.0.1");
    let identity = dir.path().join("worker.json");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        let mode = std::fs::metadata(&identity).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600, "the key file is private");
    }
    let run = app.post(&url, &input()).await.assert_status(201).json();
    assert_eq!(run["status"], "succeeded", "{run}");
    assert_eq!(
        run["worker_id"], online["id"],
        "executed by the remote worker"
    );
    assert_eq!(run["output"], serde_json::from_str::<Value>(VALID).unwrap());
    assert!(
        !worker.log().contains(fakes::openai::KEY),
        "the provider key is never logged by the worker"
    );
    let pool = app.get("/api/workers/pool").await.json();
    assert_eq!(
        (pool["online"].as_u64(), pool["disabled"].as_u64()),
        (Some(1), Some(1)),
        "{pool}"
    );

    // A restart without the token reconnects with the stored key.
    worker.child.kill().await.unwrap();
    app.worker_status("remote-1", "offline").await;
    let mut worker = WorkerProcess::spawn(&app, dir.path(), &[]);
    app.worker_status("remote-1", "online").await;

    // Revoked: the connection closes, the worker gives up, its key is refused.
    let id = online["id"].as_str().unwrap();
    app.delete(&format!("/api/workers/{id}"))
        .await
        .assert_status(204);
    assert_eq!(worker.exited().await, Some(1), "log:\n{}", worker.log());
    assert!(worker.log().contains("refused"), "{}", worker.log());
    app.get(&format!("/api/workers/{id}"))
        .await
        .assert_status(404);
    app.delete(&format!("/api/workers/{builtin}"))
        .await
        .assert_problem(409, "conflict");

    // Enabled again, the built-in worker takes the runs.
    app.patch(
        &format!("/api/workers/{builtin}"),
        &json!({"enabled": true}),
    )
    .await
    .assert_status(200);
    app.worker_status("built-in", "online").await;
    let run = app.post(&url, &input()).await.json();
    assert_eq!(run["worker_id"], json!(builtin.to_string()), "{run}");
}

async fn a_worker_killed_mid_run_loses_the_run_to_another_worker_exactly_once(backend: Backend) {
    let openai = fakes::openai::start().await;
    openai.set_behavior(Behavior::Hang);
    let app = TestApp::spawn_with(backend, |c| {
        c.builtin_worker = false;
        c.queue.lease = Duration::from_secs(1);
        c.queue.sweep_interval = Duration::from_millis(50);
    })
    .await;
    let url = on_openai(&app, &openai).await;
    let dir = tempfile::tempdir().unwrap();
    let token = app.worker_token().await;
    let mut doomed =
        WorkerProcess::spawn(&app, dir.path(), &["--token", &token, "--name", "doomed"]);
    let first = app.worker_status("doomed", "online").await;
    let id = app
        .post(&url, &json!({"input": {"text": "x"}, "mode": "async"}))
        .await
        .id();
    openai.wait_for_requests(1, Duration::from_secs(30)).await;
    doomed.child.start_kill().unwrap(); // SIGKILL
    doomed.child.wait().await.unwrap();
    openai.set_behavior(Behavior::Normal);
    openai.set_default_reply(Reply::Text(VALID.to_owned()));
    let other_dir = tempfile::tempdir().unwrap();
    let token = app.worker_token().await;
    let _rescuer = WorkerProcess::spawn(
        &app,
        other_dir.path(),
        &["--token", &token, "--name", "rescuer"],
    );
    let second = app.worker_status("rescuer", "online").await;
    let run = app.run_finished(&id.to_string()).await;
    assert_eq!(run["status"], "succeeded", "{run}");
    assert_eq!(run["worker_id"], second["id"]);
    assert_eq!(run["deliveries"], 2);
    assert_eq!(openai.requests().len(), 2, "one provider call per delivery");
    let events = app.run_events(&id.to_string()).await;
    let deliveries: Vec<&Value> = events
        .iter()
        .filter(|e| e["kind"] == "status" && e["data"]["status"] == "running")
        .map(|e| &e["data"]["worker_id"])
        .collect();
    assert_eq!(deliveries, [&first["id"], &second["id"]], "{events:?}");
    let finals = events
        .iter()
        .filter(|e| e["kind"] == "status" && e["data"]["status"] == "succeeded")
        .count();
    assert_eq!(finals, 1, "one result");
}

async fn cancel_reaches_a_remote_worker_and_drops_the_provider_call(backend: Backend) {
    let openai = fakes::openai::start().await;
    openai.set_behavior(Behavior::Hang);
    let app = TestApp::spawn_with(backend, |c| c.builtin_worker = false).await;
    let url = on_openai(&app, &openai).await;
    let dir = tempfile::tempdir().unwrap();
    let token = app.worker_token().await;
    let _worker = WorkerProcess::spawn(&app, dir.path(), &["--token", &token, "--name", "far"]);
    app.worker_status("far", "online").await;
    let id = app
        .post(&url, &json!({"input": {"text": "x"}, "mode": "async"}))
        .await
        .id();
    openai.wait_for_requests(1, Duration::from_secs(30)).await;
    app.post(&format!("/api/runs/{id}/cancel"), &json!({}))
        .await
        .assert_status(202);
    // The remote worker aborts the call: the provider sees its connection dropped.
    openai.wait_for_abandoned(1, Duration::from_secs(30)).await;
    let run = app.get(&format!("/api/runs/{id}")).await.json();
    assert_eq!(run["status"], "canceled", "{run}");
    // The worker's slot is free again: the next run goes through.
    openai.set_behavior(Behavior::Normal);
    openai.set_default_reply(Reply::Text(VALID.to_owned()));
    let next = app.post(&url, &input()).await.json();
    assert_eq!(next["status"], "succeeded", "{next}");
}

/// Names of the workers in `prefix*` that are online now.
async fn online_named(app: &TestApp, prefix: &str) -> Vec<String> {
    app.get("/api/workers")
        .await
        .json()
        .as_array()
        .unwrap()
        .iter()
        .filter(|w| w["status"] == "online")
        .filter_map(|w| w["name"].as_str())
        .filter(|name| name.starts_with(prefix))
        .map(str::to_owned)
        .collect()
}

/// 50 real workers lose their server (a stop: each is told it is draining) and come back on
/// their own with full-jitter backoff: spread over time, not in one burst.
async fn fifty_workers_reconnect_spread_over_time_after_a_restart(backend: Backend) {
    const WORKERS: usize = 50;
    let app = TestApp::spawn(backend).await;
    let dir = tempfile::tempdir().unwrap();
    let mut fleet = Vec::new();
    for i in 0..WORKERS {
        let token = app.worker_token().await;
        let name = format!("fleet-{i}");
        let args = [
            "--token",
            token.as_str(),
            "--name",
            name.as_str(),
            "--slots",
            "1",
        ];
        fleet.push(WorkerProcess::spawn(&app, &dir.path().join(&name), &args));
    }
    let deadline = std::time::Instant::now() + Duration::from_secs(120);
    while online_named(&app, "fleet-").await.len() < WORKERS {
        assert!(
            std::time::Instant::now() < deadline,
            "the fleet never came online"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    let addr = app.base_url.trim_start_matches("http://").to_owned();
    let (config, data_dir, pg) = app.stop().await;
    let app = TestApp::start_on(config, data_dir, pg, &addr).await;
    let restarted = std::time::Instant::now();
    let restarted_at = chrono::Utc::now();
    // When each worker connected again, by the server's own record (`last_seen_at` is set
    // on hello, before the worker shows online): polling latency under load must not bunch
    // the times together.
    let mut back: std::collections::HashMap<String, chrono::DateTime<chrono::Utc>> =
        std::collections::HashMap::new();
    while back.len() < WORKERS {
        assert!(
            restarted.elapsed() < Duration::from_secs(120),
            "only {} of {WORKERS} workers reconnected",
            back.len()
        );
        for worker in app.get("/api/workers").await.json().as_array().unwrap() {
            let Some(name) = worker["name"].as_str().filter(|n| n.starts_with("fleet-")) else {
                continue;
            };
            let seen = worker["last_seen_at"]
                .as_str()
                .and_then(|t| t.parse::<chrono::DateTime<chrono::Utc>>().ok());
            if worker["status"] == "online"
                && let Some(seen) = seen.filter(|t| *t >= restarted_at)
            {
                back.entry(name.to_owned()).or_insert(seen);
            }
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let mut times: Vec<Duration> = back
        .into_values()
        .map(|t| (t - restarted_at).to_std().unwrap_or_default())
        .collect();
    times.sort();
    let span = times[WORKERS - 1] - times[0];
    // Full jitter over a window of at least a second: a fleet reconnecting at once would
    // span a few tens of milliseconds.
    assert!(
        span >= Duration::from_millis(300),
        "reconnects within {span:?}: {times:?}"
    );
    let busiest = times
        .iter()
        .map(|start| {
            times
                .iter()
                .filter(|t| **t >= *start && **t < *start + Duration::from_millis(100))
                .count()
        })
        .max()
        .unwrap();
    assert!(
        busiest <= WORKERS / 2,
        "{busiest} of {WORKERS} reconnected within 100 ms: {times:?}"
    );
    drop(fleet);
}

db_tests!(
    fifty_workers_reconnect_spread_over_time_after_a_restart,
    registration_tokens_are_single_use_hashed_and_revocable,
    cancel_reaches_a_remote_worker_and_drops_the_provider_call,
    a_remote_worker_process_executes_runs_when_the_builtin_is_disabled,
    a_worker_killed_mid_run_loses_the_run_to_another_worker_exactly_once,
);
