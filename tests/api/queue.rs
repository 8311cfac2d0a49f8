//! The run queue and the worker protocol, against the real server with the built-in worker
//! off: scripted workers speak the protocol and do exactly what a test needs (ignore an
//! offer, answer late, report a result), so every lease and fencing rule is exercised on both
//! databases — and the core exchanges over both transports (in-process and WebSocket).

use std::time::Duration;

use agentry::db::{queue, workers};
use agentry::worker::transport::WorkerLink;
use agentry_tests::fakes::{self};
use agentry_tests::{Backend, TestApp, db_tests};
use contracts::worker::{
    Hello, JobOutcome, JobResult, PROTOCOL, PROTOCOL_VERSION, ServerMessage, WorkerMessage,
};
use serde_json::{Value, json};
use uuid::Uuid;

const VALID: &str = r#"{"sentiment":"positive","score":0.9}"#;
/// Long enough that nothing in a test waits for it by accident.
const WAIT: Duration = Duration::from_secs(15);

/// A worker the test drives message by message.
struct Scripted {
    id: Uuid,
    link: WorkerLink,
}

/// How a scripted worker reaches the server.
#[derive(Debug, Clone, Copy)]
enum Transport {
    InProcess,
    WebSocket,
}

const TRANSPORTS: [Transport; 2] = [Transport::InProcess, Transport::WebSocket];

impl Scripted {
    /// Registers a worker named `name` and opens an in-process session with `slots` slots.
    async fn connect(app: &TestApp, name: &str, slots: u32) -> Scripted {
        Scripted::connect_over(app, Transport::InProcess, name, slots).await
    }

    /// Registers a worker and opens a session over `transport`: in-process (registered in
    /// the database directly), or WebSocket (registered with a token, connected with its key
    /// to `/api/workers/connect`, as `agentry worker` does).
    async fn connect_over(app: &TestApp, transport: Transport, name: &str, slots: u32) -> Scripted {
        let (id, link) = match transport {
            Transport::InProcess => {
                let db = agentry::db::connect::connect(&app.config.database_url())
                    .await
                    .unwrap();
                let id = Uuid::now_v7();
                workers::insert_remote(&db, id, name, None, agentry::domain::now())
                    .await
                    .unwrap();
                db.close().await.unwrap();
                (id, app.state.runs.attach(id))
            }
            Transport::WebSocket => {
                let token = app.worker_token().await;
                let registered = app
                    .post(
                        "/api/workers/register",
                        &json!({"token": token, "name": name}),
                    )
                    .await
                    .assert_status(201)
                    .json();
                let id: Uuid = registered["worker_id"].as_str().unwrap().parse().unwrap();
                let key = registered["key"].as_str().unwrap().to_owned();
                let url = agentry::worker::websocket::endpoint(&app.base_url, false).unwrap();
                let connector = agentry::worker::websocket::WebSocket::new(
                    url,
                    key,
                    agentry::background::Background::new(),
                )
                .unwrap();
                use agentry::worker::transport::Connector as _;
                (id, connector.connect().await.unwrap())
            }
        };
        let mut worker = Scripted { id, link };
        worker.send(WorkerMessage::Hello(hello(slots))).await;
        match worker.recv().await {
            ServerMessage::Welcome { worker_id, .. } => assert_eq!(worker_id, id),
            other => panic!("expected welcome, got {other:?}"),
        }
        worker
    }

    async fn send(&self, message: WorkerMessage) {
        self.link.tx.send(message).await.unwrap();
    }

    /// The next message that is not a ping (pings are answered).
    async fn recv(&mut self) -> ServerMessage {
        loop {
            let message = tokio::time::timeout(WAIT, self.link.rx.recv())
                .await
                .expect("no message from the server in time")
                .expect("the server closed the session");
            match message {
                ServerMessage::Ping { nonce } => self.send(WorkerMessage::Pong { nonce }).await,
                other => return other,
            }
        }
    }

    /// The next offer: `(run_id, lease_id)`.
    async fn offer(&mut self) -> (Uuid, Uuid) {
        match self.recv().await {
            ServerMessage::Assign {
                run_id, lease_id, ..
            } => (run_id, lease_id),
            other => panic!("expected assign, got {other:?}"),
        }
    }

    async fn succeed(&mut self, run_id: Uuid, lease_id: Uuid, output: Value) -> bool {
        let result = JobResult {
            outcome: JobOutcome::Succeeded {
                output,
                attempt: json!({"attempt": 1, "raw_output": VALID}),
            },
            attempts: 1,
            prompt_tokens: Some(3),
            completion_tokens: Some(4),
            raw_output: Some(VALID.to_owned()),
            latency_ms: 5,
        };
        self.send(WorkerMessage::Result {
            run_id,
            lease_id,
            result,
        })
        .await;
        match self.recv().await {
            ServerMessage::ResultAck {
                run_id: acked,
                accepted,
            } => {
                assert_eq!(acked, run_id);
                accepted
            }
            other => panic!("expected result_ack, got {other:?}"),
        }
    }
}

fn hello(slots: u32) -> Hello {
    Hello {
        protocol: PROTOCOL.to_owned(),
        version: PROTOCOL_VERSION,
        build: "test".to_owned(),
        os: "linux".to_owned(),
        arch: "x86_64".to_owned(),
        slots,
        capabilities: Vec::new(),
        leases: Vec::new(),
    }
}

/// A server without the built-in worker, with short queue timings.
async fn app_without_builtin(backend: Backend) -> TestApp {
    TestApp::spawn_with(backend, |c| {
        c.builtin_worker = false;
        c.queue.ack_timeout = Duration::from_millis(300);
        c.queue.lease = Duration::from_secs(1);
        c.queue.sweep_interval = Duration::from_millis(50);
    })
    .await
}

async fn runs_url(app: &TestApp) -> (fakes::Fake, String) {
    runs_url_with(app, json!({})).await
}

/// An agent on an OpenAI fake with `patch` applied, assigned the sentiment task.
async fn runs_url_with(app: &TestApp, patch: Value) -> (fakes::Fake, String) {
    let openai = fakes::openai::start().await;
    let provider = json!({"name": "o", "kind": "openai", "base_url": openai.url("/v1"),
        "api_key": fakes::openai::KEY});
    let url = app.runnable(&provider, "gpt-4o-mini", patch).await;
    (openai, url)
}

async fn queue_async(app: &TestApp, url: &str) -> Uuid {
    app.post(
        url,
        &json!({"input": {"text": "What a wonderful day!"}, "mode": "async"}),
    )
    .await
    .assert_status(202)
    .id()
}

async fn run(app: &TestApp, id: Uuid) -> Value {
    app.get(&format!("/api/runs/{id}")).await.json()
}

async fn a_worker_executes_an_offer_it_accepts(backend: Backend) {
    for transport in TRANSPORTS {
        executes_an_accepted_offer_over(backend, transport).await;
    }
}

async fn executes_an_accepted_offer_over(backend: Backend, transport: Transport) {
    let app = app_without_builtin(backend).await;
    let (_openai, url) = runs_url(&app).await;
    let mut worker = Scripted::connect_over(&app, transport, "w1", 1).await;
    let id = queue_async(&app, &url).await;
    let (run_id, lease_id) = match worker.recv().await {
        ServerMessage::Assign {
            run_id,
            lease_id,
            job,
        } => {
            assert_eq!(job.model, "gpt-4o-mini");
            assert_eq!(
                job.provider.api_key.as_deref(),
                Some(fakes::openai::KEY),
                "a key stored on the server travels in the assignment"
            );
            assert!(job.prompt.contains("wonderful"), "{}", job.prompt);
            (run_id, lease_id)
        }
        other => panic!("expected assign, got {other:?}"),
    };
    assert_eq!(run_id, id);
    assert_eq!(run(&app, id).await["status"], "assigned");
    worker
        .send(WorkerMessage::Accept { run_id, lease_id })
        .await;
    let accepted = worker
        .succeed(run_id, lease_id, serde_json::from_str(VALID).unwrap())
        .await;
    assert!(accepted);
    let stored = run(&app, id).await;
    assert_eq!(stored["status"], "succeeded", "{stored}");
    assert_eq!(stored["worker_id"], json!(worker.id));
    assert_eq!(stored["deliveries"], 1);
    assert_eq!(
        stored["output"],
        serde_json::from_str::<Value>(VALID).unwrap()
    );
    assert!(stored["assigned_at"].is_string() && stored["started_at"].is_string());
    let listed = app
        .get(&format!("/api/runs?worker_id={}", worker.id))
        .await
        .json();
    assert_eq!(listed["total"], 1, "{listed}");
}

async fn offers_not_accepted_in_time_are_requeued_and_three_misses_make_a_worker_unhealthy(
    backend: Backend,
) {
    let app = app_without_builtin(backend).await;
    let (_openai, url) = runs_url(&app).await;
    // The deaf worker has more free slots, so it is preferred while it is healthy.
    let mut deaf = Scripted::connect(&app, "deaf", 8).await;
    let id = queue_async(&app, &url).await;
    for _ in 0..3 {
        let (run_id, _) = deaf.offer().await;
        assert_eq!(
            run_id, id,
            "the same run, offered again after each missed ack"
        );
    }
    let mut healthy = Scripted::connect(&app, "healthy", 1).await;
    let (run_id, lease_id) = healthy.offer().await;
    assert_eq!(
        run_id, id,
        "an unhealthy worker gets no work while another can take it"
    );
    healthy
        .send(WorkerMessage::Accept { run_id, lease_id })
        .await;
    assert!(
        healthy
            .succeed(run_id, lease_id, serde_json::from_str(VALID).unwrap())
            .await
    );
    let events = app.run_events(&id.to_string()).await;
    let requeues = events
        .iter()
        .filter(|e| e["kind"] == "status" && e["data"]["status"] == "queued")
        .count();
    assert!(
        requeues >= 4,
        "queued once, requeued after each miss: {events:?}"
    );
}

async fn a_result_under_a_lease_that_was_taken_back_is_refused(backend: Backend) {
    for transport in TRANSPORTS {
        refuses_a_stale_result_over(backend, transport).await;
    }
}

async fn refuses_a_stale_result_over(backend: Backend, transport: Transport) {
    let app = app_without_builtin(backend).await;
    let (_openai, url) = runs_url(&app).await;
    let mut slow = Scripted::connect_over(&app, transport, "slow", 1).await;
    let id = queue_async(&app, &url).await;
    let (run_id, stale_lease) = slow.offer().await;
    slow.send(WorkerMessage::Accept {
        run_id,
        lease_id: stale_lease,
    })
    .await;
    // The slow worker never extends: its lease runs out, the run is queued again and goes
    // to the faster worker (more free slots; the slow one declines whatever it gets).
    let mut fast = Scripted::connect_over(&app, transport, "fast", 4).await;
    let (second, fresh_lease) = loop {
        tokio::select! {
            message = slow.recv() => match message {
                ServerMessage::Assign { run_id, lease_id, .. } => {
                    slow.send(WorkerMessage::Decline { run_id, lease_id, reason: "busy".into() })
                        .await;
                }
                other => panic!("unexpected {other:?}"),
            },
            offer = fast.offer() => break offer,
        }
    };
    assert_eq!(second, id);
    assert_ne!(fresh_lease, stale_lease);
    fast.send(WorkerMessage::Accept {
        run_id,
        lease_id: fresh_lease,
    })
    .await;
    assert!(
        fast.succeed(
            run_id,
            fresh_lease,
            json!({"sentiment": "negative", "score": 0.1})
        )
        .await
    );
    // The slow worker's late answer is refused and changes nothing.
    let late = slow
        .succeed(run_id, stale_lease, serde_json::from_str(VALID).unwrap())
        .await;
    assert!(!late, "a stale lease's result is refused");
    let stored = run(&app, id).await;
    assert_eq!(stored["status"], "succeeded");
    assert_eq!(
        stored["output"]["sentiment"], "negative",
        "the second worker's result"
    );
    assert_eq!(stored["worker_id"], json!(fast.id));
    assert_eq!(stored["deliveries"], 2);
}

async fn cancel_reaches_the_worker_holding_the_run(backend: Backend) {
    for transport in TRANSPORTS {
        cancels_over(backend, transport).await;
    }
}

async fn cancels_over(backend: Backend, transport: Transport) {
    let app = app_without_builtin(backend).await;
    let (_openai, url) = runs_url(&app).await;
    let mut worker = Scripted::connect_over(&app, transport, "w", 1).await;
    let id = queue_async(&app, &url).await;
    let (run_id, lease_id) = worker.offer().await;
    worker
        .send(WorkerMessage::Accept { run_id, lease_id })
        .await;
    // Wait until the server has stored the acceptance, then cancel.
    let deadline = std::time::Instant::now() + WAIT;
    while run(&app, id).await["status"] != "running" {
        assert!(std::time::Instant::now() < deadline, "never running");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    app.post(&format!("/api/runs/{id}/cancel"), &json!({}))
        .await
        .assert_status(202);
    match worker.recv().await {
        ServerMessage::Cancel { run_id: canceled } => assert_eq!(canceled, id),
        other => panic!("expected cancel, got {other:?}"),
    }
    let stored = run(&app, id).await;
    assert_eq!(stored["status"], "canceled");
}

async fn without_an_enabled_worker_a_sync_run_fails_with_the_reason_after_the_queue_timeout(
    backend: Backend,
) {
    let app = TestApp::spawn_with(backend, |c| {
        c.builtin_worker = false;
        c.queue.sweep_interval = Duration::from_millis(50);
    })
    .await;
    let (openai, url) = runs_url_with(&app, json!({"queue_timeout_secs": 1})).await;
    let finished = app
        .post(&url, &json!({"input": {"text": "What a wonderful day!"}}))
        .await
        .assert_status(201)
        .json();
    assert_eq!(finished["status"], "failed", "{finished}");
    let error = finished["error"].as_str().unwrap();
    assert!(
        error.starts_with("no worker available: no enabled worker was connected"),
        "{error}"
    );
    assert!(error.ends_with("within its queue timeout (1 s)"), "{error}");
    assert!(openai.requests().is_empty(), "nothing executed it");
    let workers = agentry::db::connect::connect(&app.config.database_url())
        .await
        .unwrap();
    let builtin = workers::list(&workers).await.unwrap();
    assert!(
        builtin.iter().any(|w| w.builtin && !w.enabled),
        "AGENTRY_BUILTIN_WORKER=false disables the stored built-in worker"
    );
}

async fn a_hello_in_another_protocol_is_rejected_with_the_reason(backend: Backend) {
    let app = app_without_builtin(backend).await;
    let mut link = app.state.runs.attach(Uuid::now_v7());
    let mut wrong = hello(1);
    wrong.version = PROTOCOL_VERSION + 1;
    link.tx.send(WorkerMessage::Hello(wrong)).await.unwrap();
    match tokio::time::timeout(WAIT, link.rx.recv()).await.unwrap() {
        Some(ServerMessage::Rejected { reason }) => {
            assert!(reason.contains("unsupported protocol"), "{reason}");
        }
        other => panic!("expected rejected, got {other:?}"),
    }
    // An unknown worker is refused too.
    let mut link = app.state.runs.attach(Uuid::now_v7());
    link.tx.send(WorkerMessage::Hello(hello(1))).await.unwrap();
    match tokio::time::timeout(WAIT, link.rx.recv()).await.unwrap() {
        Some(ServerMessage::Rejected { reason }) => {
            assert_eq!(reason, "the worker is not registered");
        }
        other => panic!("expected rejected, got {other:?}"),
    }
}

async fn a_worker_that_misses_two_heartbeats_is_offline_and_loses_its_runs(backend: Backend) {
    let app = TestApp::spawn_with(backend, |c| {
        c.builtin_worker = false;
        c.queue.heartbeat = Duration::from_millis(200);
        c.queue.lease = Duration::from_secs(1);
        c.queue.sweep_interval = Duration::from_millis(50);
    })
    .await;
    let (_openai, url) = runs_url(&app).await;
    let mut silent = Scripted::connect(&app, "silent", 1).await;
    let id = queue_async(&app, &url).await;
    let (run_id, lease_id) = silent.offer().await;
    silent
        .send(WorkerMessage::Accept { run_id, lease_id })
        .await;
    // From now on it answers nothing: not even pings. The server ends the session.
    let closed = tokio::time::timeout(WAIT, async {
        while silent.link.rx.recv().await.is_some() {}
    })
    .await;
    assert!(
        closed.is_ok(),
        "the session of a silent worker was never closed"
    );
    let workers = app.get("/api/workers").await.json();
    let status = workers
        .as_array()
        .unwrap()
        .iter()
        .find(|w| w["name"] == "silent")
        .map(|w| w["status"].clone());
    assert_eq!(status, Some(json!("offline")), "{workers}");
    // Its lease runs out and the run waits in the queue for another worker.
    let deadline = std::time::Instant::now() + WAIT;
    loop {
        let stored = run(&app, id).await;
        if stored["status"] == "queued" {
            assert_eq!(stored["deliveries"], 1, "{stored}");
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "never requeued: {stored}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let mut next = Scripted::connect(&app, "next", 1).await;
    let (again, _) = next.offer().await;
    assert_eq!(again, id, "the requeued run goes to the next worker");
}

/// Two dispatchers claiming from one queue at once never get the same run (PostgreSQL:
/// `FOR UPDATE SKIP LOCKED`; SQLite: one writer).
async fn concurrent_claims_never_take_the_same_run(backend: Backend) {
    let app = app_without_builtin(backend).await;
    let (_openai, url) = runs_url(&app).await;
    let mut queued = Vec::new();
    for _ in 0..30 {
        queued.push(queue_async(&app, &url).await);
    }
    let claimer = |worker: Uuid| {
        let url = app.config.database_url();
        tokio::spawn(async move {
            let db = agentry::db::connect::connect(&url).await.unwrap();
            let mut got = Vec::new();
            loop {
                let now = agentry::domain::now();
                let deadline = queue::after(now, Duration::from_secs(60));
                // Batches of 4: each statement takes several runs at once.
                let rows = queue::claim(&db, worker, 4, now, deadline).await.unwrap();
                if rows.is_empty() {
                    break;
                }
                assert!(rows.len() <= 4, "at most the batch: {}", rows.len());
                let leases: std::collections::HashSet<_> =
                    rows.iter().map(|r| r.lease_id.unwrap()).collect();
                assert_eq!(leases.len(), rows.len(), "one lease per run");
                got.extend(rows.iter().map(|r| r.id));
            }
            db.close().await.unwrap();
            got
        })
    };
    let (a, b) = tokio::join!(claimer(Uuid::now_v7()), claimer(Uuid::now_v7()));
    let (a, b) = (a.unwrap(), b.unwrap());
    let mut all: Vec<Uuid> = a.iter().chain(&b).copied().collect();
    assert_eq!(
        all.len(),
        30,
        "every run claimed once: {} + {}",
        a.len(),
        b.len()
    );
    all.sort();
    all.dedup();
    assert_eq!(all.len(), 30, "no run claimed twice");
    queued.sort();
    assert_eq!(all, queued);
    // Oldest first: each claimer's runs come in queue order.
    for got in [&a, &b] {
        assert!(got.windows(2).all(|w| w[0] < w[1]), "in queue order");
    }
}

/// Offers claimed together and acceptances and results sent back to back (which the session
/// stores together): each offer has its own lease, an offer withdrawn in between is lost to
/// the worker while the others run, and a stale result among fresh ones is refused alone.
async fn offers_acceptances_and_results_in_batches_keep_each_run_apart(backend: Backend) {
    for transport in TRANSPORTS {
        batches_over(backend, transport).await;
    }
}

async fn batches_over(backend: Backend, transport: Transport) {
    let app = TestApp::spawn_with(backend, |c| {
        c.builtin_worker = false;
        c.queue.ack_timeout = WAIT;
    })
    .await;
    let (_openai, url) = runs_url(&app).await;
    let mut queued = Vec::new();
    for _ in 0..4 {
        queued.push(queue_async(&app, &url).await);
    }
    let mut worker = Scripted::connect_over(&app, transport, "batch", 4).await;
    let mut offers = Vec::new();
    for _ in 0..4 {
        offers.push(worker.offer().await);
    }
    let mut offered: Vec<Uuid> = offers.iter().map(|(run, _)| *run).collect();
    offered.sort();
    assert_eq!(offered, queued, "every queued run offered once");
    let mut leases: Vec<Uuid> = offers.iter().map(|(_, lease)| *lease).collect();
    leases.sort();
    leases.dedup();
    assert_eq!(leases.len(), 4, "one lease per offer: {offers:?}");

    let (withdrawn, _) = offers[1];
    app.post(&format!("/api/runs/{withdrawn}/cancel"), &json!({}))
        .await
        .assert_status(202);
    match worker.recv().await {
        ServerMessage::Cancel { run_id } => assert_eq!(run_id, withdrawn),
        other => panic!("expected cancel, got {other:?}"),
    }
    for (run_id, lease_id) in &offers {
        let accept = WorkerMessage::Accept {
            run_id: *run_id,
            lease_id: *lease_id,
        };
        worker.send(accept).await;
    }
    match worker.recv().await {
        ServerMessage::LeaseLost { run_id, .. } => assert_eq!(run_id, withdrawn),
        other => panic!("expected lease_lost, got {other:?}"),
    }
    for (run_id, _) in &offers {
        let expected = if *run_id == withdrawn {
            "canceled"
        } else {
            "running"
        };
        let stored = run(&app, *run_id).await;
        assert_eq!(stored["status"], expected, "{stored}");
    }

    for (run_id, lease_id) in &offers {
        let result = JobResult {
            outcome: JobOutcome::Succeeded {
                output: serde_json::from_str(VALID).unwrap(),
                attempt: json!({"attempt": 1}),
            },
            attempts: 1,
            prompt_tokens: None,
            completion_tokens: None,
            raw_output: Some(VALID.to_owned()),
            latency_ms: 1,
        };
        let result = WorkerMessage::Result {
            run_id: *run_id,
            lease_id: *lease_id,
            result,
        };
        worker.send(result).await;
    }
    for (run_id, _) in &offers {
        match worker.recv().await {
            ServerMessage::ResultAck {
                run_id: acked,
                accepted,
            } => {
                assert_eq!(acked, *run_id, "acknowledged in order");
                assert_eq!(accepted, acked != withdrawn, "{acked}");
            }
            other => panic!("expected result_ack, got {other:?}"),
        }
    }
    for (run_id, _) in &offers {
        let stored = run(&app, *run_id).await;
        let events = app.get(&format!("/api/runs/{run_id}/events")).await.json();
        let statuses: Vec<&str> = events
            .as_array()
            .unwrap()
            .iter()
            .filter(|e| e["kind"] == "status")
            .map(|e| e["data"]["status"].as_str().unwrap())
            .collect();
        if *run_id == withdrawn {
            assert_eq!(stored["status"], "canceled", "{stored}");
            assert_eq!(stored["deliveries"], 0, "never started: {stored}");
            assert_eq!(statuses, ["queued", "canceled"], "{events}");
        } else {
            assert_eq!(stored["status"], "succeeded", "{stored}");
            assert_eq!(stored["deliveries"], 1, "{stored}");
            assert_eq!(statuses, ["queued", "running", "succeeded"], "{events}");
        }
    }
}

/// The server checks what a worker reports: a `succeeded` output that does not match the
/// response schema is stored as a failed run that says why, keeping the raw output.
async fn output_a_worker_reports_is_checked_against_the_response_schema(backend: Backend) {
    let app = app_without_builtin(backend).await;
    let (_openai, url) = runs_url(&app).await;
    let mut worker = Scripted::connect(&app, "w1", 1).await;
    let bad = [
        (json!({"sentiment": "ecstatic", "score": 0.9}), "/sentiment"),
        (json!({"sentiment": "positive"}), "score"),
        (json!({"sentiment": "positive", "score": "high"}), "/score"),
        (json!("positive"), "object"),
        (json!(null), "object"),
    ];
    for (output, named) in bad {
        let id = queue_async(&app, &url).await;
        let (run_id, lease_id) = worker.offer().await;
        assert_eq!(run_id, id);
        worker
            .send(WorkerMessage::Accept { run_id, lease_id })
            .await;
        assert!(worker.succeed(run_id, lease_id, output.clone()).await);
        let stored = run(&app, id).await;
        assert_eq!(stored["status"], "failed", "{output}: {stored}");
        let error = stored["error"].as_str().unwrap();
        assert!(
            error.starts_with("invalid output: ") && error.contains(named),
            "{output}: {error}"
        );
        assert_eq!(stored["output"], Value::Null, "{stored}");
        assert_eq!(
            stored["raw_output"], VALID,
            "the raw answer is kept: {stored}"
        );
    }
    let id = queue_async(&app, &url).await;
    let (run_id, lease_id) = worker.offer().await;
    worker
        .send(WorkerMessage::Accept { run_id, lease_id })
        .await;
    let valid: Value = serde_json::from_str(VALID).unwrap();
    assert!(worker.succeed(run_id, lease_id, valid.clone()).await);
    let stored = run(&app, id).await;
    assert_eq!(stored["status"], "succeeded", "{stored}");
    assert_eq!(stored["output"], valid);
}

db_tests!(
    output_a_worker_reports_is_checked_against_the_response_schema,
    offers_acceptances_and_results_in_batches_keep_each_run_apart,
    a_worker_executes_an_offer_it_accepts,
    offers_not_accepted_in_time_are_requeued_and_three_misses_make_a_worker_unhealthy,
    a_result_under_a_lease_that_was_taken_back_is_refused,
    cancel_reaches_the_worker_holding_the_run,
    without_an_enabled_worker_a_sync_run_fails_with_the_reason_after_the_queue_timeout,
    a_hello_in_another_protocol_is_rejected_with_the_reason,
    a_worker_that_misses_two_heartbeats_is_offline_and_loses_its_runs,
    concurrent_claims_never_take_the_same_run,
);
