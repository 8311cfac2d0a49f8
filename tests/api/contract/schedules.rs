//! The schedule operations and statuses the contract test exercises.

use agentry_tests::fakes::{self, Behavior};
use agentry_tests::{TestApp, agent_body};
use serde_json::{Value, json};
use uuid::Uuid;

/// Every documented status of `/api/schedules…` (`ghost`: an id nothing has), on an agent
/// whose provider never answers, so a started run stays unfinished.
pub(super) async fn exercise(app: &TestApp, ghost: Uuid) {
    let fake = fakes::openai::start().await;
    fake.set_behavior(Behavior::Hang);
    let provider = app
        .create_provider(&json!({"name": "hanging", "kind": "openai_compatible",
            "base_url": fake.url("/v1"), "api_key": fakes::openai::KEY}))
        .await
        .id();
    let mut agent = agent_body("scheduled", provider);
    agent["model"] = json!("gpt-4o-mini");
    let agent = app.create_agent(&agent).await.id();
    let task = app.simple_task("scheduled").await;
    let body = |agent: Uuid, task: Uuid, timing: Value| {
        let mut body = json!({"agent_id": agent, "task_id": task, "input": {"text": "hi"}});
        for (k, v) in timing.as_object().unwrap() {
            body[k] = v.clone();
        }
        body
    };
    let hourly = json!({"every_secs": 3600});
    app.get("/api/schedules").await.assert_status(200);
    app.get("/api/schedules?agent_id=x")
        .await
        .assert_status(400);
    app.post("/api/schedules", &body(agent, task, hourly.clone()))
        .await
        .assert_status(409); // not assigned
    app.assign(agent, task).await.assert_status(201);
    let created = app
        .post("/api/schedules", &body(agent, task, hourly.clone()))
        .await;
    created.assert_status(201);
    app.post(
        "/api/schedules",
        &body(agent, task, json!({"cron": "nope"})),
    )
    .await
    .assert_status(422);
    app.post("/api/schedules", &body(ghost, task, hourly.clone()))
        .await
        .assert_status(404);
    let path = format!("/api/schedules/{}", created.id());
    let ghost_path = format!("/api/schedules/{ghost}");
    app.get(&path).await.assert_status(200);
    app.get(&ghost_path).await.assert_status(404);
    app.put(&path, &body(agent, task, json!({"cron": "0 9 * * MON"})))
        .await
        .assert_status(200);
    app.put(&path, &body(agent, task, json!({"every_secs": 0})))
        .await
        .assert_status(422);
    app.put(&path, &body(agent, ghost, hourly.clone()))
        .await
        .assert_status(404);
    app.put(&ghost_path, &body(agent, task, hourly.clone()))
        .await
        .assert_status(404);
    let other = app.simple_task("unassigned").await;
    app.put(&path, &body(agent, other, hourly.clone()))
        .await
        .assert_status(409);
    // Run now: a run that stays unfinished, so a second one must wait.
    let ran = app.post(&format!("{path}/run"), &json!({})).await;
    ran.assert_status(202);
    app.post(&format!("{path}/run"), &json!({}))
        .await
        .assert_status(409);
    app.post(&format!("{ghost_path}/run"), &json!({}))
        .await
        .assert_status(404);
    app.post(&format!("/api/runs/{}/cancel", ran.id()), &json!({}))
        .await
        .assert_status(202);
    let strict = json!({"name": "scheduled", "request_schema": {"type": "object",
        "properties": {"text": {"type": "string", "minLength": 100}}, "required": ["text"]},
        "response_schema": {"type": "object"}});
    app.put(&format!("/api/tasks/{task}"), &strict)
        .await
        .assert_status(200);
    app.post(&format!("{path}/run"), &json!({}))
        .await
        .assert_status(422);
    app.delete(&path).await.assert_status(204);
    app.delete(&path).await.assert_status(404);
}
