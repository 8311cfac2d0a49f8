//! Offers: a worker executes what it accepts, unaccepted offers are requeued (three misses
//! make a worker unhealthy), concurrent claims never share a run, and batches keep runs apart.

use super::*;

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
            // The routes of the queued runs (a provider on loopback is a route of its own).
            let keys: Vec<String> = queue::unfinished_route_keys(&db)
                .await
                .unwrap()
                .into_iter()
                .collect();
            let mut got = Vec::new();
            loop {
                let now = agentry::domain::now();
                let deadline = queue::after(now, Duration::from_secs(60));
                // Batches of 4: each statement takes several runs at once.
                let rows = queue::claim(&db, worker, 4, &keys, None, now, deadline)
                    .await
                    .unwrap();
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

/// Runs created while a worker waits are offered as they are stored (on SQLite by the
/// write that stores them, on PostgreSQL by the dispatcher), in queue order and never more
/// than its free slots: with 2 slots and 5 runs, 2 are assigned and 3 wait until a result
/// frees a slot. On topic `runs` each run is published queued before it is assigned.
async fn new_runs_are_offered_in_order_up_to_the_free_slots(backend: Backend) {
    let app = app_without_builtin(backend).await;
    let (_openai, url) = runs_url(&app).await;
    let mut worker = Scripted::connect(&app, "two", 2).await;
    let mut ws = app.ws("runs").await;
    let mut created = Vec::new();
    for _ in 0..5 {
        created.push(queue_async(&app, &url).await);
    }
    let first = worker.offer().await;
    let second = worker.offer().await;
    assert_eq!([first.0, second.0], created[..2], "the oldest runs first");
    for (i, id) in created.iter().enumerate() {
        let expected = if i < 2 { "assigned" } else { "queued" };
        assert_eq!(run(&app, *id).await["status"], expected, "run {i}");
    }
    let mut published: Vec<(Uuid, String)> = Vec::new();
    while published.len() < 7 {
        let event = ws.next_event().await;
        let id: Uuid = event["data"]["id"].as_str().unwrap().parse().unwrap();
        published.push((id, event["data"]["status"].as_str().unwrap().to_owned()));
    }
    for id in &created[..2] {
        let statuses: Vec<&str> = published
            .iter()
            .filter(|(run, _)| run == id)
            .map(|(_, status)| status.as_str())
            .collect();
        assert_eq!(statuses, ["queued", "assigned"], "{published:?}");
    }
    worker
        .send(WorkerMessage::Accept {
            run_id: first.0,
            lease_id: first.1,
        })
        .await;
    worker
        .report_success(first.0, first.1, serde_json::from_str(VALID).unwrap())
        .await;
    // The freed slot is offered the next run, before or after the result's acknowledgement.
    let (mut acked, mut offered) = (None, None);
    while acked.is_none() || offered.is_none() {
        match worker.recv().await {
            ServerMessage::ResultAck { run_id, accepted } => acked = Some((run_id, accepted)),
            ServerMessage::Assign { run_id, .. } => offered = Some(run_id),
            other => panic!("expected result_ack and assign, got {other:?}"),
        }
    }
    assert_eq!(acked, Some((first.0, true)));
    assert_eq!(offered, Some(created[2]), "a freed slot takes the next");
    assert_eq!(run(&app, created[3]).await["status"], "queued");
}

db_tests!(
    a_worker_executes_an_offer_it_accepts,
    new_runs_are_offered_in_order_up_to_the_free_slots,
    offers_not_accepted_in_time_are_requeued_and_three_misses_make_a_worker_unhealthy,
    concurrent_claims_never_take_the_same_run,
    offers_acceptances_and_results_in_batches_keep_each_run_apart,
);
