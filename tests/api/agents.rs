//! `/api/agents`: provider checks, prompt and parameter validation, pagination, views.

use agentry_tests::{Backend, TestApp, agent_body, db_tests, without_validation};
use serde_json::json;

async fn create_returns_201_with_provider_summary(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let provider = app.ollama_provider("local").await;
    let resp = app.create_agent(&agent_body("classifier", provider)).await;
    resp.assert_status(201);
    let agent = resp.json();
    assert_eq!(
        resp.header("location"),
        Some(format!("/api/agents/{}", resp.id()).as_str())
    );
    assert_eq!(agent["provider"]["id"], provider.to_string());
    assert_eq!(agent["provider"]["name"], "local");
    assert_eq!(agent["provider"]["kind"], "ollama");
    assert!(agent["provider"]["validation_status"].is_string());
    assert_eq!(agent["tasks"], json!([]));
    assert_eq!(agent["revision"], 1);
    let fetched = app.get(&format!("/api/agents/{}", resp.id())).await.json();
    assert_eq!(without_validation(&fetched), without_validation(&agent));
}

async fn create_applies_defaults(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let provider = app.ollama_provider("local").await;
    let resp = app
        .create_agent(&json!({
            "name": "minimal", "provider_id": provider, "model": "m", "system_prompt": "Be brief."
        }))
        .await;
    resp.assert_status(201);
    let agent = resp.json();
    assert_eq!(agent["description"], "");
    assert_eq!(agent["user_prompt"], serde_json::Value::Null);
    assert_eq!(agent["max_retries"], 2);
    assert_eq!(agent["timeout_secs"], 120);
    assert_eq!(agent["queue_timeout_secs"], 300);
}

async fn create_rejects_invalid_bodies_naming_the_field(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let provider = app.ollama_provider("local").await;
    let with = |field: &str, value: serde_json::Value| {
        let mut body = agent_body("a", provider);
        body[field] = value;
        body
    };
    let without = |field: &str| {
        let mut body = agent_body("a", provider);
        body.as_object_mut().unwrap().remove(field);
        body
    };
    let table = [
        (
            without("system_prompt"),
            "/system_prompt",
            "missing system prompt",
        ),
        (
            with("system_prompt", json!("   ")),
            "/system_prompt",
            "blank system prompt",
        ),
        (without("model"), "/model", "missing model"),
        (with("model", json!("")), "/model", "empty model"),
        (without("name"), "/name", "missing name"),
        (
            with("user_prompt", json!("Classify {{ input.text")),
            "/user_prompt",
            "unclosed tag",
        ),
        (
            with("user_prompt", json!("{% for x in y %}")),
            "/user_prompt",
            "unclosed block",
        ),
        (
            with("temperature", json!(2.5)),
            "/temperature",
            "temperature above 2",
        ),
        (
            with("temperature", json!(-0.1)),
            "/temperature",
            "negative temperature",
        ),
        (
            with("max_tokens", json!(0)),
            "/max_tokens",
            "zero max tokens",
        ),
        (
            with("max_tokens", json!(-5)),
            "/max_tokens",
            "negative max tokens",
        ),
        (
            with("max_retries", json!(11)),
            "/max_retries",
            "too many retries",
        ),
        (
            with("timeout_secs", json!(0)),
            "/timeout_secs",
            "zero timeout",
        ),
        (
            with("queue_timeout_secs", json!(0)),
            "/queue_timeout_secs",
            "zero queue timeout",
        ),
        (
            with("queue_timeout_secs", json!(86_401)),
            "/queue_timeout_secs",
            "queue timeout over a day",
        ),
        (
            with("provider_id", json!("nope")),
            "/provider_id",
            "provider id not a uuid",
        ),
        (with("unknown", json!(1)), "/unknown", "unknown field"),
    ];
    for (body, path, why) in table {
        let paths = app
            .create_agent(&body)
            .await
            .assert_problem(422, "validation_failed");
        assert!(
            paths.iter().any(|p| p == path),
            "{why}: paths {paths:?}, want {path}"
        );
    }
    assert_eq!(
        app.get("/api/agents").await.json()["total"],
        0,
        "nothing stored"
    );
}

async fn provider_must_exist_and_be_active(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let missing = uuid::Uuid::now_v7();
    let paths = app
        .create_agent(&agent_body("a", missing))
        .await
        .assert_problem(422, "validation_failed");
    assert_eq!(
        paths,
        ["/provider_id"],
        "a body field naming no provider is a 422"
    );

    let provider = app.ollama_provider("p").await;
    let first = app.agent_on("first", provider).await;
    app.delete(&format!("/api/providers/{provider}"))
        .await
        .assert_status(204);
    let paths = app
        .create_agent(&agent_body("second", provider))
        .await
        .assert_problem(422, "validation_failed");
    assert_eq!(paths, vec!["/provider_id"]);
    // The agent already on the soft-deleted provider can still be edited...
    let mut edit = agent_body("first", provider);
    edit["description"] = json!("still works");
    app.put(&format!("/api/agents/{first}"), &edit)
        .await
        .assert_status(200);
    // ...and re-pointed to an active one.
    let other = app.ollama_provider("other").await;
    let repointed = app
        .put(&format!("/api/agents/{first}"), &agent_body("first", other))
        .await;
    repointed.assert_status(200);
    assert_eq!(repointed.json()["provider"]["name"], "other");
}

async fn duplicate_name_is_409(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let provider = app.ollama_provider("p").await;
    app.agent_on("same", provider).await;
    app.create_agent(&agent_body("same", provider))
        .await
        .assert_problem(409, "duplicate_name");
    let other = app.agent_on("other", provider).await;
    app.put(
        &format!("/api/agents/{other}"),
        &agent_body("same", provider),
    )
    .await
    .assert_problem(409, "duplicate_name");
}

async fn update_bumps_revision_and_delete_removes(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let provider = app.ollama_provider("p").await;
    let id = app.agent_on("a", provider).await;
    let path = format!("/api/agents/{id}");
    let mut body = agent_body("a", provider);
    body["model"] = json!("other-model");
    let updated = app.put(&path, &body).await;
    updated.assert_status(200);
    assert_eq!(updated.json()["model"], "other-model");
    assert_eq!(updated.json()["revision"], 2);
    assert_ne!(updated.json()["updated_at"], updated.json()["created_at"]);

    app.delete(&path).await.assert_status(204);
    app.get(&path).await.assert_problem(404, "not_found");
    app.delete(&path).await.assert_problem(404, "not_found");
    app.put(&path, &body).await.assert_problem(404, "not_found");
}

async fn list_paginates_with_defaults_and_caps(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let provider = app.ollama_provider("p").await;
    for i in 0..3 {
        app.agent_on(&format!("a{i}"), provider).await;
    }
    let all = app.get("/api/agents").await.json();
    assert_eq!(all["limit"], 50);
    assert_eq!(all["offset"], 0);
    assert_eq!(all["total"], 3);
    let page = app.get("/api/agents?limit=1&offset=2").await.json();
    assert_eq!(page["items"][0]["name"], "a2");
    let past_end = app.get("/api/agents?offset=10").await.json();
    assert_eq!(past_end["items"], json!([]));
    assert_eq!(past_end["total"], 3);
    app.get("/api/agents?limit=201")
        .await
        .assert_problem(400, "invalid_parameter");
    app.get("/api/agents?limit=200").await.assert_status(200);
}

db_tests!(
    create_returns_201_with_provider_summary,
    create_applies_defaults,
    create_rejects_invalid_bodies_naming_the_field,
    provider_must_exist_and_be_active,
    duplicate_name_is_409,
    update_bumps_revision_and_delete_removes,
    list_paginates_with_defaults_and_caps,
);
