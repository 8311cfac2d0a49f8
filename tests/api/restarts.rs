//! Runs across a stop or a crash of the server: nothing is failed because the server went
//! away; unfinished runs are queued again and executed after the restart.

use std::time::Duration;

use agentry_tests::fakes::{self, Behavior, Reply};
use agentry_tests::{Backend, TestApp, db_tests};
use serde_json::{Value, json};

use crate::runs::{VALID, input, on_openai};

async fn runs_left_unfinished_by_a_stop_run_again_after_the_restart(backend: Backend) {
    let openai = fakes::openai::start().await;
    openai.set_behavior(Behavior::Hang);
    let app = TestApp::spawn(backend).await;
    let url = on_openai(&app, &openai, json!({})).await;
    let id = app
        .post(&url, &json!({"input": {"text": "x"}, "mode": "async"}))
        .await
        .id();
    openai.wait_for_requests(1, Duration::from_secs(10)).await;
    // A graceful stop gives the run its grace period, then interrupts it; the run stays
    // leased to the built-in worker, which comes back without it: it is queued again and
    // executed, nothing is failed because the server stopped.
    let (config, dir, pg) = app.stop().await;
    openai.set_behavior(Behavior::Normal);
    openai.set_default_reply(Reply::Text(VALID.to_owned()));
    let app = TestApp::start(config, dir, pg).await;
    let run = app.run_finished(&id.to_string()).await;
    assert_eq!(run["status"], "succeeded", "{run}");
    assert_eq!(run["deliveries"], 2, "{run}");
    let events = app.get(&format!("/api/runs/{id}/events")).await.json();
    let statuses: Vec<&str> = events
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["kind"] == "status")
        .map(|e| e["data"]["status"].as_str().unwrap())
        .collect();
    assert_eq!(
        statuses,
        ["queued", "running", "queued", "running", "succeeded"],
        "{events}"
    );
    assert_eq!(openai.requests().len(), 2, "one call per delivery");
}

async fn runs_a_crash_left_unfinished_are_executed_at_the_next_start(backend: Backend) {
    let openai = fakes::openai::start().await;
    openai.set_default_reply(Reply::Text(VALID.to_owned()));
    let app = TestApp::spawn(backend).await;
    let url = on_openai(&app, &openai, json!({})).await;
    let running = app.post(&url, &input()).await.id();
    let queued = app.post(&url, &input()).await.id();
    let jobless = app.post(&url, &input()).await.id();
    // What a killed process leaves behind: rows still queued or running (leased to the
    // built-in worker, lease unexpired), and one stored before the queue existed.
    let db = agentry::db::connect::connect(&app.config.database_url())
        .await
        .unwrap();
    use sea_orm::{ConnectionTrait, Statement};
    let in_a_minute = agentry::db::queue::after(agentry::domain::now(), Duration::from_secs(60));
    for (id, status) in [
        (running, "running"),
        (queued, "queued"),
        (jobless, "running"),
    ] {
        db.execute_raw(Statement::from_sql_and_values(
            db.get_database_backend(),
            "UPDATE runs SET status = $1, error = NULL, output = NULL, finished_at = NULL, \
             lease_id = $2, lease_expires_at = $3 WHERE id = $4",
            [
                status.into(),
                uuid::Uuid::now_v7().into(),
                in_a_minute.into(),
                id.into(),
            ],
        ))
        .await
        .unwrap();
    }
    db.execute_raw(Statement::from_sql_and_values(
        db.get_database_backend(),
        "UPDATE runs SET job = NULL WHERE id = $1",
        [jobless.into()],
    ))
    .await
    .unwrap();
    db.close().await.unwrap();
    let (config, dir, pg) = app.stop().await;
    let app = TestApp::start(config, dir, pg).await;
    for id in [running, queued] {
        let run = app.run_finished(&id.to_string()).await;
        assert_eq!(run["status"], "succeeded", "{run}");
        assert_eq!(run["output"], serde_json::from_str::<Value>(VALID).unwrap());
        assert_eq!(run["deliveries"], 2, "{run}");
    }
    let run = app.get(&format!("/api/runs/{jobless}")).await.json();
    assert_eq!(run["status"], "failed", "{run}");
    assert!(
        run["error"].as_str().unwrap().starts_with("interrupted"),
        "{run}"
    );
    assert!(run["finished_at"].is_string(), "{run}");
}

db_tests!(
    runs_left_unfinished_by_a_stop_run_again_after_the_restart,
    runs_a_crash_left_unfinished_are_executed_at_the_next_start,
);
