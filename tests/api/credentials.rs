//! Credentials that live on workers, end to end with real `agentry worker` processes: a
//! provider whose key lives on workers is run and checked only on a worker that holds the
//! key (set with `agentry worker credentials set`), and the key appears nowhere on the
//! server — API, WebSocket, log, database; a key the server keeps for some workers only
//! never reaches another worker (its captured traffic and its log).

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use agentry_tests::fakes::{self, Options, Reply};
use agentry_tests::workers::{WorkerProcess, credentials};
use agentry_tests::ws::{Next, WsClient};
use agentry_tests::{Backend, TestApp, agent_body, closed_schema, db_tests, logs, task_body};
use contracts::worker::{Hello, ServerMessage, WorkerMessage};
use serde_json::{Value, json};
use uuid::Uuid;

const VALID: &str = r#"{"sentiment":"positive","score":0.9}"#;
/// The key only the worker holds: the canary.
const WORKER_KEY: &str = "sk-WORKER-ONLY-7c1e-canary-never-on-the-server";

db_tests!(
    a_key_kept_on_a_worker_is_used_there_and_appears_nowhere_on_the_server,
    a_server_key_for_some_workers_never_reaches_the_others,
);

/// A task with a closed schema and an agent on `provider` with `extra` fields, assigned;
/// the runs URL.
async fn runs_url(app: &TestApp, provider: Uuid, extra: Value) -> String {
    let mut task = task_body("sentiment");
    task["response_schema"] = closed_schema();
    let task = app.create_task(&task).await.assert_status(201).id();
    let mut body = agent_body("classifier", provider);
    body["model"] = json!("gpt-4o-mini");
    for (k, v) in extra.as_object().cloned().unwrap_or_default() {
        body[k] = v;
    }
    let agent = app.create_agent(&body).await.assert_status(201).id();
    app.assign(agent, task).await.assert_status(201);
    format!("/api/agents/{agent}/tasks/{task}/runs")
}

async fn submit(app: &TestApp, url: &str) -> String {
    let body = json!({"input": {"text": "What a wonderful day!"}, "mode": "async"});
    app.post(url, &body).await.assert_status(202).json()["id"]
        .as_str()
        .unwrap()
        .to_owned()
}

async fn run_until(app: &TestApp, id: &str, check: impl Fn(&Value) -> bool) -> Value {
    app.get_until(&format!("/api/runs/{id}"), check).await
}

async fn provider_until(app: &TestApp, id: Uuid, check: impl Fn(&Value) -> bool) -> Value {
    app.get_until(&format!("/api/providers/{id}"), check).await
}

/// Reads every frame until the `deleted` event of a marker task created now arrives.
async fn drain(app: &TestApp, ws: &mut WsClient) -> String {
    let marker = app
        .create_task(&json!({"name": "marker", "response_schema": {"type": "object"}}))
        .await
        .assert_status(201)
        .id();
    app.delete(&format!("/api/tasks/{marker}"))
        .await
        .assert_status(204);
    let mut frames = String::new();
    loop {
        match ws.next().await {
            Next::Json(frame) => {
                frames.push_str(&frame.to_string());
                frames.push('\n');
                if frame["event"] == "deleted" && frame["id"] == marker.to_string() {
                    return frames;
                }
            }
            Next::Closed(code) => panic!("socket closed ({code:?})"),
        }
    }
}

async fn a_key_kept_on_a_worker_is_used_there_and_appears_nowhere_on_the_server(backend: Backend) {
    let openai = fakes::openai::start_with(Options {
        api_key: Some(WORKER_KEY.to_owned()),
        ..fakes::openai::options()
    })
    .await;
    openai.set_default_reply(Reply::Text(VALID.to_owned()));
    let app = TestApp::spawn_with(backend, |c| {
        c.builtin_worker = false;
        c.validator.enabled = true;
    })
    .await;
    let mut ws = app
        .ws("providers,agents,tasks,runs,workers,pool,tags,concurrency")
        .await;
    let mut seen = String::new();
    let mut keep = |value: &Value| {
        seen.push_str(&value.to_string());
        seen.push('\n');
    };

    // A key that lives on workers is refused in the body, and the server stores none.
    let mut body = json!({"name": "vault", "kind": "openai", "base_url": openai.url("/v1"),
        "credential_location": "worker", "api_key": WORKER_KEY});
    let refused = app.create_provider(&body).await;
    assert_eq!(
        refused.assert_problem(422, "validation_failed"),
        ["/api_key"]
    );
    keep(&refused.json());
    body.as_object_mut().unwrap().remove("api_key");
    let created = app.create_provider(&body).await;
    created.assert_status(201);
    let provider = created.id();
    let shown = created.json();
    assert_eq!(shown["credential_location"], "worker");
    assert_eq!(shown["has_api_key"], false);
    // No worker can check it yet, and says so.
    let unchecked = provider_until(&app, provider, |p| p["validation_status"] == "error").await;
    assert!(
        unchecked["validation_error"]
            .as_str()
            .unwrap()
            .starts_with("not checked: "),
        "{unchecked}"
    );

    // Three workers: `holder` (the key, tag gpu), `plain` (tag gpu, no key), `keyed` (the key,
    // no tag). The agent needs tag gpu: only `holder` may run it.
    app.post("/api/tags", &json!({"name": "gpu"}))
        .await
        .assert_status(201);
    let url = runs_url(&app, provider, json!({"required_tags": ["gpu"]})).await;
    let first = submit(&app, &url).await;
    let waiting = run_until(&app, &first, |r| !r["waiting_reason"].is_null()).await;
    keep(&waiting);
    let dirs: Vec<tempfile::TempDir> = (0..3).map(|_| tempfile::tempdir().unwrap()).collect();
    for dir in [&dirs[0], &dirs[2]] {
        let (ok, out) =
            credentials(dir.path(), &["set", "vault"], &format!("{WORKER_KEY}\n")).await;
        assert!(ok, "{out}");
        assert!(!out.contains(WORKER_KEY), "{out}");
        let (ok, listed) = credentials(dir.path(), &["list"], "").await;
        assert!(ok && listed.trim() == "vault", "{listed}");
        let stored = std::fs::read_to_string(dir.path().join("credentials.json")).unwrap();
        assert!(!stored.contains(WORKER_KEY), "the key is sealed at rest");
    }
    // Bad input: a clear error, nothing stored.
    let (ok, out) = credentials(dirs[1].path(), &["set", "vault"], "two words\n").await;
    assert!(!ok && out.contains("whitespace"), "{out}");
    let (ok, out) = credentials(dirs[1].path(), &["remove", "vault"], "").await;
    assert!(!ok && out.contains("holds no key"), "{out}");
    let (_, listed) = credentials(dirs[1].path(), &["list"], "").await;
    assert!(listed.trim().is_empty(), "{listed}");

    let gpu_token = || async {
        app.post("/api/worker-tokens", &json!({"tags": ["gpu"]}))
            .await
            .assert_status(201)
            .json()["token"]
            .as_str()
            .unwrap()
            .to_owned()
    };
    let (holder_token, plain_token) = (gpu_token().await, gpu_token().await);
    let keyed_token = app.worker_token().await;
    let mut processes = Vec::new();
    for (dir, token, name) in [
        (&dirs[0], &holder_token, "holder"),
        (&dirs[1], &plain_token, "plain"),
        (&dirs[2], &keyed_token, "keyed"),
    ] {
        let args = ["--token", token.as_str(), "--name", name, "--slots", "4"];
        processes.push(WorkerProcess::spawn(&app, dir.path(), &args));
    }
    let holder = app.worker_status("holder", "online").await;
    app.worker_status("plain", "online").await;
    app.worker_status("keyed", "online").await;
    assert_eq!(holder["credentials"], json!(["vault"]));
    let holder_id = holder["id"].as_str().unwrap().to_owned();

    // Every run executes on the holder, with the key it holds.
    let mut ids = vec![first];
    for _ in 0..5 {
        ids.push(submit(&app, &url).await);
    }
    for id in &ids {
        let done = run_until(&app, id, |r| r["status"] == "succeeded").await;
        assert_eq!(done["worker_id"], holder_id.as_str(), "{done}");
        keep(&done);
        let events = app.get(&format!("/api/runs/{id}/events")).await.json();
        keep(&events);
    }
    let calls = openai.requests_to("/v1/chat/completions");
    assert!(calls.len() >= ids.len());
    assert!(
        calls
            .iter()
            .all(|r| r.header("authorization") == Some(&format!("Bearer {WORKER_KEY}")))
    );
    // The check ran on a worker that holds the key.
    let checked = provider_until(&app, provider, |p| p["validation_status"] == "connected").await;
    assert!(
        ["holder", "keyed"].contains(&checked["checked_by"].as_str().unwrap_or("")),
        "{checked}"
    );
    assert!(checked["models"].as_array().is_some_and(|m| !m.is_empty()));
    keep(&checked);

    // The key taken off the holder while it runs: new runs wait, saying why; set again, they
    // run again.
    let (ok, out) = credentials(dirs[0].path(), &["remove", "vault"], "").await;
    assert!(ok, "{out}");
    let deadline = Instant::now() + Duration::from_secs(15);
    while app.worker_status("holder", "online").await["credentials"] != json!([]) {
        assert!(
            Instant::now() < deadline,
            "the holder never reported the change"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let later = submit(&app, &url).await;
    let waiting = run_until(&app, &later, |r| !r["waiting_reason"].is_null()).await;
    assert_eq!(
        waiting["waiting_reason"], "no worker holding the key of provider vault has tag gpu",
        "{waiting}"
    );
    let (ok, out) = credentials(dirs[0].path(), &["set", "vault"], WORKER_KEY).await;
    assert!(ok, "{out}");
    let done = run_until(&app, &later, |r| r["status"] == "succeeded").await;
    assert_eq!(done["worker_id"], holder_id.as_str());

    // Nowhere on the server: API answers, WebSocket frames, log, database.
    for path in [
        "/api/providers".to_owned(),
        format!("/api/providers/{provider}"),
        "/api/runs?limit=200".to_owned(),
        "/api/workers".to_owned(),
        format!("/api/workers/{holder_id}"),
        "/api/workers/pool".to_owned(),
    ] {
        keep(&app.get(&path).await.json());
    }
    let frames = drain(&app, &mut ws).await;
    assert!(frames.contains("validation_update"), "{frames}");
    drop(processes);
    let log = logs::captured();
    let dump = app.dump().await;
    assert!(dump.contains("vault"), "the dump holds the provider");
    for (what, text) in [
        ("an API answer", &seen),
        ("a WebSocket frame", &frames),
        ("the server log", &log),
        ("the database", &dump),
    ] {
        assert_eq!(
            text.matches(WORKER_KEY).count(),
            0,
            "the key reached {what}"
        );
    }
}

/// A worker the test drives: it says hello and then only records what the server sends
/// (answering pings), taking nothing.
async fn bystander(
    app: &TestApp,
    name: &str,
    slots: u32,
) -> (Uuid, Arc<Mutex<Vec<ServerMessage>>>) {
    let hello = Hello {
        // Claiming a key it does not hold widens nothing for a key the server keeps.
        credentials: vec!["kept".to_owned()],
        ..agentry_tests::workers::hello(slots)
    };
    let (id, mut link) = app.attach_worker(name, hello).await;
    let received = Arc::new(Mutex::new(Vec::new()));
    let log = Arc::clone(&received);
    tokio::spawn(async move {
        while let Some(message) = link.rx.recv().await {
            if let ServerMessage::Ping { nonce } = message {
                link.tx.send(WorkerMessage::Pong { nonce }).await.ok();
            }
            log.lock().unwrap().push(message);
        }
    });
    (id, received)
}

async fn a_server_key_for_some_workers_never_reaches_the_others(backend: Backend) {
    let openai = fakes::openai::start().await;
    openai.set_default_reply(Reply::Text(VALID.to_owned()));
    let app = TestApp::spawn_with(backend, |c| c.builtin_worker = false).await;
    let body = json!({"name": "kept", "kind": "openai", "base_url": openai.url("/v1"),
        "api_key": fakes::openai::KEY, "credential_workers": ["chosen", "chosen"]});
    let created = app.create_provider(&body).await.assert_status(201).json();
    assert_eq!(created["credential_workers"], json!(["chosen"]));
    let provider: Uuid = created["id"].as_str().unwrap().parse().unwrap();
    let bad = json!({"name": "bad", "kind": "ollama", "base_url": "http://127.0.0.1:9",
        "credential_workers": ["not a name"]});
    let errors = app
        .create_provider(&bad)
        .await
        .assert_problem(422, "validation_failed");
    assert_eq!(errors, ["/credential_workers/0"]);
    let url = runs_url(&app, provider, json!({})).await;

    // A scripted worker with many free slots (the dispatcher would prefer it), a real one
    // that is not allowed, and the chosen one.
    let (other_id, other_saw) = bystander(&app, "other", 64).await;
    let dirs: Vec<tempfile::TempDir> = (0..2).map(|_| tempfile::tempdir().unwrap()).collect();
    let mut processes = Vec::new();
    for (dir, name) in [(&dirs[0], "chosen"), (&dirs[1], "outsider")] {
        let token = app.worker_token().await;
        let args = ["--token", token.as_str(), "--name", name, "--slots", "8"];
        processes.push(WorkerProcess::spawn(&app, dir.path(), &args));
    }
    let chosen = app.worker_status("chosen", "online").await;
    app.worker_status("outsider", "online").await;
    app.worker_status("other", "online").await;
    let mut ids = Vec::new();
    for _ in 0..6 {
        ids.push(submit(&app, &url).await);
    }
    for id in &ids {
        let done = run_until(&app, id, |r| r["status"] == "succeeded").await;
        assert_eq!(done["worker_id"], chosen["id"], "{done}");
        // Offered once, to the chosen worker: never to another first.
        assert_eq!(done["deliveries"], 1, "{done}");
        let events = app.get(&format!("/api/runs/{id}/events")).await.json();
        let requeued = events
            .as_array()
            .unwrap()
            .iter()
            .filter(|e| e["kind"] == "status" && e["data"]["status"] == "queued")
            .count();
        assert!(requeued <= 1, "queued once, never taken back: {events}");
    }
    // Nothing went to the others: the scripted one got no assignment and never the key; the
    // outsider logged no run and never the key.
    let saw = other_saw.lock().unwrap().clone();
    assert!(
        !saw.iter().any(|m| matches!(
            m,
            ServerMessage::Assign { .. } | ServerMessage::Probe { .. }
        )),
        "{saw:?}"
    );
    let traffic = format!("{saw:?}");
    assert!(!traffic.contains(fakes::openai::KEY));
    let outsider_log = processes[1].log();
    assert!(
        outsider_log.contains("connected to the server"),
        "{outsider_log}"
    );
    assert!(!outsider_log.contains(fakes::openai::KEY), "{outsider_log}");
    for id in &ids {
        assert!(!outsider_log.contains(id.as_str()), "{outsider_log}");
    }
    let other = app
        .get(&format!("/api/runs?worker_id={other_id}"))
        .await
        .json();
    assert_eq!(other["total"], 0, "{other}");
}
