//! Routing end to end, with real worker processes: an agent's runs execute only on workers
//! with one of its worker names and all of its required tags (tags the API or the
//! registration token gave, never the worker); a run no registered worker can take says why
//! at once, starts as soon as a worker gains what it needs, and otherwise fails after its
//! queue timeout with that reason.

use std::time::{Duration, Instant};

use agentry_tests::fakes::{self, Reply};
use agentry_tests::workers::WorkerProcess;
use agentry_tests::{Backend, TestApp, agent_body, closed_schema, db_tests, task_body};
use serde_json::{Value, json};
use uuid::Uuid;

const VALID: &str = r#"{"sentiment":"positive","score":0.9}"#;

struct Fixture {
    provider: Uuid,
    task: Uuid,
}

impl Fixture {
    async fn new(app: &TestApp, openai: &fakes::Fake) -> Fixture {
        let provider = json!({"name": "o", "kind": "openai", "base_url": openai.url("/v1"),
            "api_key": fakes::openai::KEY});
        let provider = app.create_provider(&provider).await.assert_status(201).id();
        let mut task = task_body("sentiment");
        task["response_schema"] = closed_schema();
        let task = app.create_task(&task).await.assert_status(201).id();
        Fixture { provider, task }
    }

    /// An agent with these routing fields, assigned the task; its runs URL.
    async fn agent(&self, app: &TestApp, name: &str, routing: Value) -> String {
        let mut body = agent_body(name, self.provider);
        body["model"] = json!("gpt-4o-mini");
        if let Value::Object(fields) = routing {
            for (k, v) in fields {
                body[k] = v;
            }
        }
        let agent = app.create_agent(&body).await.assert_status(201).id();
        app.assign(agent, self.task).await.assert_status(201);
        format!("/api/agents/{agent}/tasks/{}/runs", self.task)
    }
}

fn input() -> Value {
    json!({"input": {"text": "What a wonderful day!"}, "mode": "async"})
}

async fn queued(app: &TestApp, url: &str) -> Value {
    app.post(url, &input()).await.assert_status(202).json()
}

/// Polls the run until `check` holds (15 s).
async fn run_until(app: &TestApp, id: &str, check: impl Fn(&Value) -> bool) -> Value {
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let run = app.get(&format!("/api/runs/{id}")).await.json();
        if check(&run) {
            return run;
        }
        assert!(Instant::now() < deadline, "run never got there: {run}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

async fn runs_execute_only_on_workers_their_agent_routes_to(backend: Backend) {
    let openai = fakes::openai::start().await;
    openai.set_default_reply(Reply::Text(VALID.to_owned()));
    let app = TestApp::spawn_with(backend, |c| c.builtin_worker = false).await;
    let fixture = Fixture::new(&app, &openai).await;
    for tag in ["gpu", "big", "eu"] {
        app.post("/api/tags", &json!({"name": tag}))
            .await
            .assert_status(201);
    }
    // Agents: by tag, by name, by a tag nobody has yet, by a tag nobody will get.
    let on_gpu = fixture
        .agent(&app, "on-gpu", json!({"required_tags": ["gpu"]}))
        .await;
    let on_plain = fixture
        .agent(&app, "on-plain", json!({"workers": ["plain", "absent"]}))
        .await;
    let on_big = fixture
        .agent(&app, "on-big", json!({"required_tags": ["big"]}))
        .await;
    let on_eu = fixture
        .agent(
            &app,
            "on-eu",
            json!({"required_tags": ["eu"], "queue_timeout_secs": 2}),
        )
        .await;
    // Bad routing: clear 422s, nothing stored.
    for (routing, path) in [
        (json!({"required_tags": ["nope"]}), "/required_tags/0"),
        (json!({"workers": ["bad name!"]}), "/workers/0"),
        (
            json!({"workers": (0..33).map(|i| format!("w{i}")).collect::<Vec<_>>()}),
            "/workers",
        ),
    ] {
        let mut body = agent_body("bad", fixture.provider);
        for (k, v) in routing.as_object().unwrap() {
            body[k] = v.clone();
        }
        let errors = app
            .create_agent(&body)
            .await
            .assert_problem(422, "validation_failed");
        assert!(errors.iter().any(|e| e == path), "{routing}: {errors:?}");
    }

    // The gpu worker gets its tag from its token; the plain one has none.
    let gpu_token = app
        .post("/api/worker-tokens", &json!({"tags": ["gpu"]}))
        .await
        .assert_status(201)
        .json()["token"]
        .as_str()
        .unwrap()
        .to_owned();
    let (gpu_dir, plain_dir) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let _gpu = WorkerProcess::spawn(
        &app,
        gpu_dir.path(),
        &["--token", &gpu_token, "--name", "gpu-box", "--slots", "4"],
    );
    let plain_token = app.worker_token().await;
    let _plain = WorkerProcess::spawn(
        &app,
        plain_dir.path(),
        &["--token", &plain_token, "--name", "plain", "--slots", "4"],
    );
    let gpu_id = app.worker_status("gpu-box", "online").await["id"].clone();
    let plain_id = app.worker_status("plain", "online").await["id"].clone();

    let mut ids = Vec::new();
    for _ in 0..6 {
        ids.push((queued(&app, &on_gpu).await, &gpu_id));
        ids.push((queued(&app, &on_plain).await, &plain_id));
    }
    for (run, worker) in &ids {
        assert_eq!(run["waiting_reason"], Value::Null, "{run}");
        let id = run["id"].as_str().unwrap();
        let done = app.run_finished(id).await;
        assert_eq!(done["status"], "succeeded", "{done}");
        assert_eq!(&done["worker_id"], *worker, "{done}");
    }

    // Nobody has `big`: the run says so at once, and starts when a worker gets the tag.
    let waiting = queued(&app, &on_big).await;
    assert_eq!(
        waiting["waiting_reason"], "no worker has tag big",
        "{waiting}"
    );
    let id = waiting["id"].as_str().unwrap().to_owned();
    app.put(
        &format!("/api/workers/{}/tags", plain_id.as_str().unwrap()),
        &json!({"tags": ["big"]}),
    )
    .await
    .assert_status(200);
    let done = app.run_finished(&id).await;
    assert_eq!(done["status"], "succeeded", "{done}");
    assert_eq!(done["worker_id"], plain_id);
    assert_eq!(done["waiting_reason"], Value::Null);
    // Losing the tag stops the routing again.
    app.put(
        &format!("/api/workers/{}/tags", plain_id.as_str().unwrap()),
        &json!({"tags": []}),
    )
    .await
    .assert_status(200);
    let waiting = queued(&app, &on_big).await;
    assert_eq!(
        waiting["waiting_reason"], "no worker has tag big",
        "{waiting}"
    );
    let still = run_until(&app, waiting["id"].as_str().unwrap(), |r| {
        r["waiting_reason"].is_string()
    })
    .await;
    assert_eq!(still["status"], "queued", "{still}");

    // Nobody ever gets `eu`: it fails after the agent's queue timeout, saying why.
    let doomed = queued(&app, &on_eu).await;
    let failed = app.run_finished(doomed["id"].as_str().unwrap()).await;
    assert_eq!(failed["status"], "failed", "{failed}");
    let error = failed["error"].as_str().unwrap();
    assert!(
        error.starts_with("no worker available: no worker has tag eu"),
        "{error}"
    );

    // A tag an agent requires cannot be deleted: that would widen where its runs go.
    let tags = app.get("/api/tags").await.json();
    let big = tags
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["name"] == "big")
        .unwrap();
    let refused = app
        .delete(&format!("/api/tags/{}", big["id"].as_str().unwrap()))
        .await;
    refused.assert_problem(409, "conflict");
    assert!(refused.text.contains("on-big"), "{}", refused.text);
    // No run of a routed agent ever ran on the wrong worker: the fake saw each once.
    assert_eq!(
        openai.requests_to("/v1/chat/completions").len(),
        ids.len() + 1
    );
}

/// Among workers with as many free slots, the next run goes to the one offered fewest runs
/// recently: one run at a time spreads over equal workers instead of piling on one.
async fn equal_workers_share_runs_one_at_a_time(backend: Backend) {
    let openai = fakes::openai::start().await;
    openai.set_default_reply(Reply::Text(VALID.to_owned()));
    let app = TestApp::spawn_with(backend, |c| c.builtin_worker = false).await;
    let fixture = Fixture::new(&app, &openai).await;
    let url = fixture.agent(&app, "any", json!({})).await;
    let dirs = [tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap()];
    let mut workers = Vec::new();
    let mut ids = Vec::new();
    for (dir, name) in dirs.iter().zip(["left", "right"]) {
        let token = app.worker_token().await;
        workers.push(WorkerProcess::spawn(
            &app,
            dir.path(),
            &["--token", &token, "--name", name, "--slots", "2"],
        ));
        ids.push(app.worker_status(name, "online").await["id"].clone());
    }
    let mut on = [0, 0];
    for _ in 0..10 {
        let run = app
            .post(&url, &json!({"input": {"text": "What a wonderful day!"}}))
            .await
            .assert_status(201)
            .json();
        assert_eq!(run["status"], "succeeded", "{run}");
        let index = ids.iter().position(|id| *id == run["worker_id"]).unwrap();
        on[index] += 1;
    }
    assert_eq!(on, [5, 5], "runs alternate between equal workers");
}

db_tests!(
    runs_execute_only_on_workers_their_agent_routes_to,
    equal_workers_share_runs_one_at_a_time,
    runs_of_a_local_provider_go_only_to_workers_that_may_reach_it,
    runs_go_only_to_workers_that_serve_their_provider_kind,
);

/// A provider on a local network (the fake on 127.0.0.1) is reached only by workers whose own
/// outbound policy allows local networks: a worker started with `--block-local-providers`
/// gets none of its runs, and while it is the only one the run says why.
async fn runs_of_a_local_provider_go_only_to_workers_that_may_reach_it(backend: Backend) {
    let openai = fakes::openai::start().await;
    openai.set_default_reply(Reply::Text(VALID.to_owned()));
    let app = TestApp::spawn_with(backend, |c| c.builtin_worker = false).await;
    let fixture = Fixture::new(&app, &openai).await;
    let url = fixture.agent(&app, "anywhere", json!({})).await;
    let strict_dir = tempfile::tempdir().unwrap();
    let strict_token = app.worker_token().await;
    let strict = WorkerProcess::spawn(
        &app,
        strict_dir.path(),
        &[
            "--token",
            &strict_token,
            "--name",
            "strict",
            "--block-local-providers",
        ],
    );
    let shown = app.worker_status("strict", "online").await;
    assert_eq!(shown["local_networks"], false, "{shown}");
    let first = queued(&app, &url).await;
    let id = first["id"].as_str().unwrap().to_owned();
    let waiting = run_until(&app, &id, |r| !r["waiting_reason"].is_null()).await;
    assert_eq!(
        waiting["waiting_reason"],
        "no worker may reach 127.0.0.1: their outbound policy refuses local networks"
    );
    let lan_dir = tempfile::tempdir().unwrap();
    let lan_token = app.worker_token().await;
    let _lan = WorkerProcess::spawn(
        &app,
        lan_dir.path(),
        &["--token", &lan_token, "--name", "lan"],
    );
    let lan = app.worker_status("lan", "online").await;
    assert_eq!(lan["local_networks"], true, "{lan}");
    let mut ids = vec![id];
    for _ in 0..3 {
        ids.push(queued(&app, &url).await["id"].as_str().unwrap().to_owned());
    }
    for id in &ids {
        let done = run_until(&app, id, |r| r["status"] == "succeeded").await;
        assert_eq!(done["worker_id"], lan["id"], "{done}");
    }
    assert!(!strict.log().contains(&ids[0]), "{}", strict.log());
}

/// A worker serves the provider kinds it reports (a worker of an older build may lack one):
/// runs of another kind are not offered to it, and while no worker serves the kind the run
/// says so.
async fn runs_go_only_to_workers_that_serve_their_provider_kind(backend: Backend) {
    use agentry_tests::workers::hello;
    use contracts::worker::{Hello, ServerMessage};
    let openai = fakes::openai::start().await;
    let app = TestApp::spawn_with(backend, |c| c.builtin_worker = false).await;
    let fixture = Fixture::new(&app, &openai).await;
    let url = fixture.agent(&app, "openai-agent", json!({})).await;
    let connect = |name: &'static str, slots: u32, kinds: &'static [&'static str]| {
        let hello = Hello {
            capabilities: kinds.iter().map(|k| (*k).to_owned()).collect(),
            ..hello(slots)
        };
        let app = &app;
        async move { app.attach_worker(name, hello).await.1 }
    };
    // An "older" worker that serves Ollama only, with many free slots.
    let mut old = connect("old", 8, &["ollama"]).await;
    let shown = app.worker_status("old", "online").await;
    assert_eq!(shown["capabilities"], json!(["ollama"]));
    let id = queued(&app, &url).await["id"].as_str().unwrap().to_owned();
    let waiting = run_until(&app, &id, |r| !r["waiting_reason"].is_null()).await;
    assert_eq!(
        waiting["waiting_reason"],
        "no worker serves provider kind openai (their build is older than the server's)"
    );
    let mut new = connect("new", 1, &["ollama", "openai"]).await;
    let offered = tokio::time::timeout(Duration::from_secs(15), async {
        loop {
            match new.rx.recv().await {
                Some(ServerMessage::Assign { run_id, .. }) => return run_id,
                Some(_) => continue,
                None => panic!("the session closed"),
            }
        }
    })
    .await
    .expect("an offer to the worker that serves openai");
    assert_eq!(offered.to_string(), id);
    while let Ok(message) = old.rx.try_recv() {
        assert!(
            !matches!(message, ServerMessage::Assign { .. }),
            "the worker without the kind got a run: {message:?}"
        );
    }
}
