//! Liveness: no enabled worker fails a sync run with the reason, a hello in another protocol
//! is refused, and a worker that misses heartbeats is offline and loses its runs.

use super::*;

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

db_tests!(
    without_an_enabled_worker_a_sync_run_fails_with_the_reason_after_the_queue_timeout,
    a_hello_in_another_protocol_is_rejected_with_the_reason,
    a_worker_that_misses_two_heartbeats_is_offline_and_loses_its_runs,
);
