//! Creating runs under load: runs created at once are stored together (one writer, group
//! commit) and each must still be stored exactly once, with its own history, and executed
//! once; a prepared configuration is reused only while it is current.

use std::collections::HashSet;
use std::time::Duration;

use agentry_tests::fakes::{self, Reply};
use agentry_tests::{Backend, TestApp, db_tests};
use serde_json::{Value, json};

use crate::runs::{VALID, on_openai};

const RUNS: usize = 120;

async fn runs_created_at_once_are_each_stored_once_and_executed_once(backend: Backend) {
    let openai = fakes::openai::start().await;
    openai.set_default_reply(Reply::Text(VALID.to_owned()));
    let app = TestApp::spawn(backend).await;
    let url = on_openai(&app, &openai, json!({})).await;
    let agent_id = url.split('/').nth(3).unwrap().to_owned();
    // Sync and async requests mixed, all at once.
    let created = futures_util::future::join_all((0..RUNS).map(|i| {
        let (app, url) = (&app, &url);
        async move {
            let mode = if i % 3 == 0 { "sync" } else { "async" };
            let body = json!({"input": {"text": format!("text {i}")}, "mode": mode});
            let resp = app.post(url, &body).await;
            resp.assert_status(if mode == "sync" { 201 } else { 202 });
            let run = resp.json();
            assert_eq!(run["input"]["text"], format!("text {i}"), "{run}");
            run["id"].as_str().unwrap().to_owned()
        }
    }))
    .await;
    let ids: HashSet<&String> = created.iter().collect();
    assert_eq!(ids.len(), RUNS, "every request got its own run");
    for id in &created {
        let run = app.run_finished(id).await;
        assert_eq!(run["status"], "succeeded", "{run}");
        assert_eq!(run["deliveries"], 1, "{run}");
        let statuses: Vec<Value> = app
            .run_events(id)
            .await
            .into_iter()
            .filter(|e| e["kind"] == "status")
            .map(|e| e["data"]["status"].clone())
            .collect();
        assert_eq!(
            statuses,
            [json!("queued"), json!("running"), json!("succeeded")],
            "{id}"
        );
    }
    let listed = app
        .get(&format!("/api/runs?agent_id={agent_id}&limit=1"))
        .await
        .json();
    assert_eq!(listed["total"], RUNS, "no run stored twice");
    openai
        .wait_for_requests(RUNS, Duration::from_secs(10))
        .await;
    assert_eq!(
        openai.requests_to("/v1/chat/completions").len(),
        RUNS,
        "each run executed once"
    );
}

/// While a run holds its prepared agent, new runs reuse it only if nothing changed: an
/// edited agent, task or provider, or a removed assignment, is seen by the next run.
async fn a_prepared_configuration_is_reused_only_while_it_is_current(backend: Backend) {
    let openai = fakes::openai::start().await;
    let app = TestApp::spawn_with(backend, |c| c.builtin_worker = false).await;
    let url = on_openai(&app, &openai, json!({})).await;
    let parts: Vec<&str> = url.split('/').collect();
    let (agent_id, task_id) = (parts[3], parts[5]);
    let queue = |text: &'static str| {
        let (app, url) = (&app, &url);
        async move {
            let resp = app
                .post(url, &json!({"input": {"text": text}, "mode": "async"}))
                .await;
            resp.assert_status(202);
            resp.json()
        }
    };
    // Runs stay queued (no worker), each holding the configuration it was created with.
    let first = queue("a").await;
    let same = queue("b").await;
    assert_eq!(same["snapshot"], first["snapshot"]);

    let agent = app.get(&format!("/api/agents/{agent_id}")).await.json();
    let edit = json!({"name": "runner", "provider_id": agent["provider_id"],
        "model": "gpt-4.1-mini", "system_prompt": "Changed.",
        "user_prompt": agent["user_prompt"]});
    app.put(&format!("/api/agents/{agent_id}"), &edit)
        .await
        .assert_status(200);
    let edited = queue("c").await;
    assert_eq!(edited["snapshot"]["agent_revision"], 2, "{edited}");
    assert_eq!(edited["snapshot"]["model"], "gpt-4.1-mini");

    let task = app.get(&format!("/api/tasks/{task_id}")).await.json();
    let task_edit = json!({"name": task["name"], "description": "edited",
        "request_schema": task["request_schema"], "response_schema": task["response_schema"]});
    app.put(&format!("/api/tasks/{task_id}"), &task_edit)
        .await
        .assert_status(200);
    let retasked = queue("d").await;
    assert_eq!(retasked["snapshot"]["task_revision"], 2, "{retasked}");

    let provider_id = agent["provider_id"].as_str().unwrap();
    let provider = json!({"name": "renamed", "kind": "openai", "base_url": openai.url("/v1"),
        "api_key": fakes::openai::KEY});
    app.put(&format!("/api/providers/{provider_id}"), &provider)
        .await
        .assert_status(200);
    let reprovided = queue("e").await;
    assert_eq!(
        reprovided["snapshot"]["provider_name"], "renamed",
        "{reprovided}"
    );

    app.delete(&format!("/api/agents/{agent_id}/tasks/{task_id}"))
        .await
        .assert_status(204);
    app.post(&url, &json!({"input": {"text": "f"}, "mode": "async"}))
        .await
        .assert_problem(409, "task_not_assigned");
}

db_tests!(
    runs_created_at_once_are_each_stored_once_and_executed_once,
    a_prepared_configuration_is_reused_only_while_it_is_current,
);
