//! Worker health: what workers report with each heartbeat is stored (latest and the last
//! hour) and shown; a worker whose report says its disk is full is unhealthy and gets no work
//! until a report says it has room; a real `agentry worker` reports its machine's figures.

use std::time::Duration;

use agentry::worker::transport::WorkerLink;
use agentry_tests::fakes::{self, Reply};
use agentry_tests::workers::WorkerProcess;
use agentry_tests::{Backend, TestApp, agent_body, closed_schema, db_tests, task_body};
use contracts::WorkerHealth;
use contracts::worker::{ServerMessage, WorkerMessage};
use serde_json::{Value, json};
use uuid::Uuid;

const VALID: &str = r#"{"sentiment":"positive","score":0.9}"#;
const MIB: u64 = 1024 * 1024;

db_tests!(a_worker_whose_disk_is_full_gets_no_work_until_it_has_room);

/// A registered worker in a session the test drives.
async fn scripted(app: &TestApp, name: &str, slots: u32) -> (Uuid, WorkerLink) {
    app.attach_worker(name, agentry_tests::workers::hello(slots))
        .await
}

fn disk(free: u64) -> WorkerMessage {
    WorkerMessage::Health {
        health: WorkerHealth {
            cpu_percent: Some(12.0),
            memory_percent: Some(40.0),
            disk_free_bytes: Some(free),
            disk_total_bytes: Some(100 * 1024 * MIB),
            load_1m: Some(0.5),
        },
    }
}

/// The next message that is not a ping (answered), within 15 s.
async fn next(link: &mut WorkerLink) -> ServerMessage {
    loop {
        let message = tokio::time::timeout(Duration::from_secs(15), link.rx.recv())
            .await
            .expect("a message in time")
            .expect("the session is open");
        match message {
            ServerMessage::Ping { nonce } => {
                link.tx.send(WorkerMessage::Pong { nonce }).await.unwrap();
            }
            other => return other,
        }
    }
}

async fn worker_until(app: &TestApp, id: Uuid, check: impl Fn(&Value) -> bool) -> Value {
    app.get_until(&format!("/api/workers/{id}"), check).await
}

async fn runs_url(app: &TestApp, openai: &fakes::Fake) -> String {
    let provider = json!({"name": "o", "kind": "openai", "base_url": openai.url("/v1"),
        "api_key": fakes::openai::KEY});
    let provider = app.create_provider(&provider).await.assert_status(201).id();
    let mut task = task_body("sentiment");
    task["response_schema"] = closed_schema();
    let task = app.create_task(&task).await.assert_status(201).id();
    let mut agent = agent_body("a", provider);
    agent["model"] = json!("gpt-4o-mini");
    let agent = app.create_agent(&agent).await.assert_status(201).id();
    app.assign(agent, task).await.assert_status(201);
    format!("/api/agents/{agent}/tasks/{task}/runs")
}

async fn submit(app: &TestApp, url: &str) -> Uuid {
    let body = json!({"input": {"text": "hello"}, "mode": "async"});
    app.post(url, &body).await.assert_status(202).id()
}

async fn a_worker_whose_disk_is_full_gets_no_work_until_it_has_room(backend: Backend) {
    let openai = fakes::openai::start().await;
    openai.set_default_reply(Reply::Text(VALID.to_owned()));
    let app = TestApp::spawn_with(backend, |c| c.builtin_worker = false).await;
    let url = runs_url(&app, &openai).await;
    // `full` has more free slots, so it would be offered runs first.
    let (full_id, mut full) = scripted(&app, "full", 8).await;
    let (_, mut roomy) = scripted(&app, "roomy", 1).await;
    full.tx.send(disk(10 * MIB)).await.unwrap();
    // Status and report are read apart (the report may be stored a moment before the worker
    // is marked): wait for both.
    let detail = worker_until(&app, full_id, |d| {
        d["worker"]["status"] == "unhealthy" && !d["worker"]["health"].is_null()
    })
    .await;
    let worker = &detail["worker"];
    assert!(
        worker["unhealthy_reason"]
            .as_str()
            .unwrap()
            .contains("disk is full"),
        "{worker}"
    );
    assert_eq!(worker["health"]["disk_free_bytes"], 10 * MIB);
    assert_eq!(worker["health"]["memory_percent"], 40.0);
    let pool = app.get("/api/workers/pool").await.json();
    assert_eq!(pool["unhealthy"], 1, "{pool}");

    // A run goes to the worker with room, though it has fewer free slots.
    let first = submit(&app, &url).await;
    match next(&mut roomy).await {
        ServerMessage::Assign { run_id, .. } => assert_eq!(run_id, first),
        other => panic!("expected an assignment, got {other:?}"),
    }
    while let Ok(message) = full.rx.try_recv() {
        assert!(
            !matches!(message, ServerMessage::Assign { .. }),
            "the full worker got work: {message:?}"
        );
    }

    // Room again: it is online and takes the next run (the other worker's slot is taken).
    // An implausible figure in the report is dropped, not stored.
    let mut roomy_report = disk(50 * 1024 * MIB);
    if let WorkerMessage::Health { health } = &mut roomy_report {
        health.cpu_percent = Some(250.0);
    }
    full.tx.send(roomy_report).await.unwrap();
    let detail = worker_until(&app, full_id, |d| {
        d["worker"]["status"] == "online"
            && d["health_history"].as_array().is_some_and(|h| h.len() == 2)
            && d["worker"]["health"]["disk_free_bytes"] == 50 * 1024 * MIB
    })
    .await;
    assert!(detail["worker"]["unhealthy_reason"].is_null());
    assert!(
        detail["worker"]["health"]["cpu_percent"].is_null(),
        "{detail}"
    );
    let second = submit(&app, &url).await;
    match next(&mut full).await {
        ServerMessage::Assign { run_id, .. } => assert_eq!(run_id, second),
        other => panic!("expected an assignment, got {other:?}"),
    }
    // Both reports are in its history, oldest first.
    let history = detail["health_history"].as_array().unwrap().clone();
    assert_eq!(history.len(), 2, "{detail}");
    assert_eq!(history[0]["health"]["disk_free_bytes"], 10 * MIB);
    assert_eq!(history[1]["health"]["disk_free_bytes"], 50 * 1024 * MIB);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_real_worker_reports_its_machine_with_each_heartbeat() {
    let app = TestApp::spawn_with(Backend::Sqlite, |c| {
        c.builtin_worker = false;
        c.queue.heartbeat = Duration::from_millis(500);
    })
    .await;
    let dir = tempfile::tempdir().unwrap();
    let token = app.worker_token().await;
    let _worker = WorkerProcess::spawn(&app, dir.path(), &["--token", &token, "--name", "box"]);
    let online = app.worker_status("box", "online").await;
    let id: Uuid = online["id"].as_str().unwrap().parse().unwrap();
    // Two reports: the second has the CPU share since the first.
    let detail = worker_until(&app, id, |d| {
        d["health_history"].as_array().is_some_and(|h| h.len() >= 2)
    })
    .await;
    let health = &detail["worker"]["health"];
    let memory = health["memory_percent"].as_f64().unwrap();
    assert!((0.0..=100.0).contains(&memory), "{health}");
    let (free, total) = (
        health["disk_free_bytes"].as_u64().unwrap(),
        health["disk_total_bytes"].as_u64().unwrap(),
    );
    assert!(free <= total && total > 0, "{health}");
    assert!(health["load_1m"].as_f64().is_some(), "{health}");
    assert!(detail["worker"]["health_at"].is_string());
}
