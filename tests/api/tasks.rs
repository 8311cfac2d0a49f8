//! `/api/tasks`: JSON Schema validation with paths, limits, views, delete rules.

use agentry_tests::{Backend, TestApp, db_tests, task_body};
use serde_json::{Value, json};

async fn create_returns_201_and_round_trips_schemas(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let body = task_body("sentiment");
    let resp = app.create_task(&body).await;
    resp.assert_status(201);
    let task = resp.json();
    assert_eq!(
        resp.header("location"),
        Some(format!("/api/tasks/{}", resp.id()).as_str())
    );
    assert_eq!(task["request_schema"], body["request_schema"]);
    assert_eq!(task["response_schema"], body["response_schema"]);
    assert_eq!(task["agents"], json!([]));
    assert_eq!(
        app.get(&format!("/api/tasks/{}", resp.id())).await.json(),
        task
    );

    let no_request = app
        .create_task(&json!({"name": "free", "response_schema": {"type": "string"}}))
        .await;
    no_request.assert_status(201);
    assert_eq!(no_request.json()["request_schema"], Value::Null);
}

fn with_response(schema: Value) -> Value {
    json!({"name": "t", "response_schema": schema})
}

async fn create_rejects_bad_schemas_with_json_paths(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let deep = (0..40).fold(json!({"type": "string"}), |acc, _| json!({"items": acc}));
    let big: serde_json::Map<String, Value> = (0..3_000)
        .map(|i| (format!("property_number_{i}"), json!({"type": "string"})))
        .collect();
    let table = [
        (
            json!({"name": "t"}),
            "/response_schema",
            "missing response schema",
        ),
        (
            with_response(json!("object")),
            "/response_schema",
            "schema is a string",
        ),
        (
            with_response(json!({"type": "objekt"})),
            "/response_schema/type",
            "unknown type",
        ),
        (
            with_response(json!({"type": "object", "properties": {"a": {"type": 7}}})),
            "/response_schema/properties/a/type",
            "nested bad type",
        ),
        (
            with_response(json!({"required": "a"})),
            "/response_schema/required",
            "required not an array",
        ),
        (
            with_response(json!({"$ref": "https://example.com/s.json"})),
            "/response_schema/$ref",
            "remote ref",
        ),
        (
            with_response(json!({"items": {"$ref": "file:///etc/passwd"}})),
            "/response_schema/items/$ref",
            "file ref",
        ),
        (
            with_response(json!({"$ref": "other.json#/x"})),
            "/response_schema/$ref",
            "relative ref",
        ),
        (
            with_response(json!({"$schema": "https://example.com/my-meta"})),
            "/response_schema/$schema",
            "unknown draft",
        ),
        (
            with_response(json!({"type": "string", "pattern": "(a+)+(?=b)"})),
            "/response_schema",
            "lookahead pattern",
        ),
        (
            with_response(json!({"type": "string", "pattern": "[unclosed"})),
            "/response_schema",
            "bad regex",
        ),
        (with_response(deep), "/response_schema", "deeper than 32"),
        (
            with_response(json!({"properties": big})),
            "/response_schema",
            "over 64 KiB",
        ),
        (
            json!({"name": "t", "request_schema": {"type": 1}, "response_schema": {"type": "string"}}),
            "/request_schema/type",
            "bad request schema",
        ),
        (
            json!({"name": "", "response_schema": true}),
            "/name",
            "empty name",
        ),
    ];
    for (body, path, why) in table {
        let paths = app
            .create_task(&body)
            .await
            .assert_problem(422, "validation_failed");
        assert!(
            paths.iter().any(|p| p.starts_with(path)),
            "{why}: paths {paths:?}, want {path}"
        );
    }
    assert_eq!(
        app.get("/api/tasks").await.json()["total"],
        0,
        "nothing stored"
    );
}

async fn older_drafts_are_accepted(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    for (i, draft) in [
        "http://json-schema.org/draft-07/schema#",
        "http://json-schema.org/draft-04/schema#",
        "https://json-schema.org/draft/2019-09/schema",
        "https://json-schema.org/draft/2020-12/schema",
    ]
    .iter()
    .enumerate()
    {
        let body = json!({"name": format!("t{i}"), "response_schema": {"$schema": draft, "type": "object"}});
        app.create_task(&body).await.assert_status(201);
    }
}

async fn update_revalidates_and_bumps_revision(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let id = app.simple_task("t").await;
    let path = format!("/api/tasks/{id}");
    let updated = app
        .put(
            &path,
            &json!({"name": "t", "response_schema": {"type": "number"}}),
        )
        .await;
    updated.assert_status(200);
    assert_eq!(updated.json()["revision"], 2);
    assert_eq!(updated.json()["request_schema"], Value::Null);
    let paths = app
        .put(
            &path,
            &json!({"name": "t", "response_schema": {"type": "nope"}}),
        )
        .await
        .assert_problem(422, "validation_failed");
    assert_eq!(paths, vec!["/response_schema/type"]);
    assert_eq!(
        app.get(&path).await.json()["revision"],
        2,
        "refused update changed nothing"
    );
    app.simple_task("other").await;
    app.put(&path, &task_body("other"))
        .await
        .assert_problem(409, "duplicate_name");
    let missing = format!("/api/tasks/{}", uuid::Uuid::now_v7());
    app.put(&missing, &task_body("x"))
        .await
        .assert_problem(404, "not_found");
}

async fn duplicate_name_is_409(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    app.simple_task("same").await;
    app.create_task(&task_body("same"))
        .await
        .assert_problem(409, "duplicate_name");
}

async fn delete_is_409_while_assigned_then_204(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let provider = app.ollama_provider("p").await;
    let agent = app.agent_on("a", provider).await;
    let task = app.simple_task("t").await;
    app.assign(agent, task).await.assert_status(201);
    let path = format!("/api/tasks/{task}");
    app.delete(&path).await.assert_problem(409, "task_assigned");
    let view = app.get(&path).await.json();
    assert_eq!(view["agents"][0]["id"], agent.to_string());
    app.delete(&format!("/api/agents/{agent}/tasks/{task}"))
        .await
        .assert_status(204);
    app.delete(&path).await.assert_status(204);
    app.get(&path).await.assert_problem(404, "not_found");
    app.delete(&path).await.assert_problem(404, "not_found");
}

db_tests!(
    create_returns_201_and_round_trips_schemas,
    create_rejects_bad_schemas_with_json_paths,
    older_drafts_are_accepted,
    update_revalidates_and_bumps_revision,
    duplicate_name_is_409,
    delete_is_409_while_assigned_then_204,
);
