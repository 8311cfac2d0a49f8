//! What a worker reports: results under a lease taken back are refused, reported output is
//! checked against the response schema, and cancel reaches the worker holding the run.

use super::*;

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
    a_result_under_a_lease_that_was_taken_back_is_refused,
    cancel_reaches_the_worker_holding_the_run,
    output_a_worker_reports_is_checked_against_the_response_schema,
);
