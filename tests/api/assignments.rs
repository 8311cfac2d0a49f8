//! `/api/agents/{id}/tasks`: assign, list, unassign; cascade on agent delete.

use agentry_tests::{Backend, TestApp, db_tests};
use serde_json::json;
use uuid::Uuid;

async fn assign_list_and_unassign(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let provider = app.ollama_provider("p").await;
    let agent = app.agent_on("a", provider).await;
    let tasks_path = format!("/api/agents/{agent}/tasks");
    let empty = app.get(&tasks_path).await;
    empty.assert_status(200);
    assert_eq!(empty.json()["items"], json!([]));

    let t1 = app.simple_task("t1").await;
    let t2 = app.simple_task("t2").await;
    let created = app.assign(agent, t1).await;
    created.assert_status(201);
    assert_eq!(
        created.header("location"),
        Some(format!("{tasks_path}/{t1}").as_str())
    );
    assert_eq!(created.json()["task"]["name"], "t1");
    app.assign(agent, t2).await.assert_status(201);
    app.assign(agent, t1)
        .await
        .assert_problem(409, "duplicate_assignment");

    let listed = app.get(&tasks_path).await.json();
    assert_eq!(listed["total"], 2);
    assert_eq!(listed["items"][0]["name"], "t1");
    assert_eq!(listed["items"][1]["name"], "t2");
    let agent_view = app.get(&format!("/api/agents/{agent}")).await.json();
    assert_eq!(agent_view["tasks"].as_array().unwrap().len(), 2);

    app.delete(&format!("{tasks_path}/{t1}"))
        .await
        .assert_status(204);
    app.delete(&format!("{tasks_path}/{t1}"))
        .await
        .assert_problem(404, "not_found");
    assert_eq!(app.get(&tasks_path).await.json()["total"], 1);
}

async fn unknown_agent_is_404_and_unknown_task_is_422(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let provider = app.ollama_provider("p").await;
    let agent = app.agent_on("a", provider).await;
    let task = app.simple_task("t").await;
    let nobody = Uuid::now_v7();
    app.assign(nobody, task)
        .await
        .assert_problem(404, "not_found");
    let paths = app
        .assign(agent, nobody)
        .await
        .assert_problem(422, "validation_failed");
    assert_eq!(paths, ["/task_id"], "a body field naming no task is a 422");
    app.get(&format!("/api/agents/{nobody}/tasks"))
        .await
        .assert_problem(404, "not_found");
    app.delete(&format!("/api/agents/{agent}/tasks/{nobody}"))
        .await
        .assert_problem(404, "not_found");
    let paths = app
        .post(
            &format!("/api/agents/{agent}/tasks"),
            &json!({"task_id": "x"}),
        )
        .await
        .assert_problem(422, "validation_failed");
    assert_eq!(paths, vec!["/task_id"]);
}

async fn deleting_an_agent_removes_its_assignments(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let provider = app.ollama_provider("p").await;
    let agent = app.agent_on("a", provider).await;
    let task = app.simple_task("t").await;
    app.assign(agent, task).await.assert_status(201);
    app.delete(&format!("/api/agents/{agent}"))
        .await
        .assert_status(204);
    let view = app.get(&format!("/api/tasks/{task}")).await.json();
    assert_eq!(view["agents"], json!([]));
    app.delete(&format!("/api/tasks/{task}"))
        .await
        .assert_status(204);
}

db_tests!(
    assign_list_and_unassign,
    unknown_agent_is_404_and_unknown_task_is_422,
    deleting_an_agent_removes_its_assignments,
);
