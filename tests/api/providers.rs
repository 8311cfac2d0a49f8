//! `/api/providers`: create per kind, required fields, secrets never returned, key rebinding
//! on endpoint change, soft and hard delete.

use agentry_tests::{Backend, TestApp, db_tests, without_validation};
use serde_json::{Value, json};

const KEY: &str = "sk-test-0123456789-canary-SECRET-abcd";

fn valid_bodies() -> Vec<Value> {
    vec![
        json!({"name": "local ollama", "kind": "ollama", "base_url": "http://127.0.0.1:11434"}),
        json!({"name": "openai", "kind": "openai", "api_key": KEY}),
        json!({"name": "anthropic", "kind": "anthropic", "api_key": KEY}),
        json!({"name": "gemini", "kind": "gemini", "api_key": KEY}),
        json!({"name": "vllm", "kind": "openai_compatible", "base_url": "http://127.0.0.5:8000/v1"}),
        json!({"name": "proxied openai", "kind": "openai", "base_url": "https://127.0.0.7/v1", "api_key": KEY}),
    ]
}

async fn create_each_kind_returns_201_pending_with_location(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    for body in valid_bodies() {
        let resp = app.create_provider(&body).await;
        resp.assert_status(201);
        let provider = resp.json();
        assert_eq!(provider["validation_status"], "pending");
        assert_eq!(provider["kind"], body["kind"]);
        assert_eq!(provider["revision"], 1);
        assert_eq!(provider["is_active"], true);
        assert_eq!(
            resp.header("location"),
            Some(format!("/api/providers/{}", resp.id()).as_str())
        );
        let fetched = app.get(&format!("/api/providers/{}", resp.id())).await;
        fetched.assert_status(200);
        assert_eq!(
            without_validation(&fetched.json()),
            without_validation(&provider)
        );
    }
    let list = app.get("/api/providers").await;
    list.assert_status(200);
    assert_eq!(list.json()["total"], valid_bodies().len());
}

async fn create_rejects_invalid_bodies_naming_the_field(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let table = [
        (
            json!({"name": "o", "kind": "ollama"}),
            "/base_url",
            "ollama without base_url",
        ),
        (
            json!({"name": "c", "kind": "openai_compatible"}),
            "/base_url",
            "compatible without base_url",
        ),
        (
            json!({"name": "o", "kind": "openai"}),
            "/api_key",
            "openai without key",
        ),
        (
            json!({"name": "a", "kind": "anthropic"}),
            "/api_key",
            "anthropic without key",
        ),
        (
            json!({"name": "g", "kind": "gemini"}),
            "/api_key",
            "gemini without key",
        ),
        (
            json!({"name": "x", "kind": "mistral", "api_key": KEY}),
            "/kind",
            "unknown kind",
        ),
        (
            json!({"kind": "openai", "api_key": KEY}),
            "/name",
            "missing name",
        ),
        (
            json!({"name": "  ", "kind": "openai", "api_key": KEY}),
            "/name",
            "blank name",
        ),
        (
            json!({"name": "n".repeat(101), "kind": "openai", "api_key": KEY}),
            "/name",
            "long name",
        ),
        (
            json!({"name": "o", "kind": "ollama", "base_url": "ftp://h"}),
            "/base_url",
            "ftp scheme",
        ),
        (
            json!({"name": "o", "kind": "ollama", "base_url": "not a url"}),
            "/base_url",
            "not a URL",
        ),
        (
            json!({"name": "o", "kind": "ollama", "base_url": "http://u:p@h"}),
            "/base_url",
            "userinfo",
        ),
        (
            json!({"name": "o", "kind": "openai", "api_key": ""}),
            "/api_key",
            "empty key",
        ),
        (
            json!({"name": "o", "kind": "openai", "api_key": "sk 1"}),
            "/api_key",
            "key with space",
        ),
        (
            json!({"name": "o", "kind": "openai", "api_key": KEY, "extra": 1}),
            "/extra",
            "unknown field",
        ),
        (
            json!({"name": 5, "kind": "openai", "api_key": KEY}),
            "/name",
            "name not a string",
        ),
    ];
    for (body, path, why) in table {
        let resp = app.create_provider(&body).await;
        let paths = resp.assert_problem(422, "validation_failed");
        assert!(
            paths.iter().any(|p| p == path),
            "{why}: paths {paths:?}, want {path}"
        );
    }
    // Nothing was stored by any of them.
    assert_eq!(app.get("/api/providers").await.json()["total"], 0);
}

async fn duplicate_name_is_409(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    app.ollama_provider("same").await;
    let resp = app
        .create_provider(&json!({"name": "same", "kind": "openai", "api_key": KEY}))
        .await;
    resp.assert_problem(409, "duplicate_name");
}

async fn unknown_id_is_404(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let id = uuid::Uuid::now_v7();
    app.get(&format!("/api/providers/{id}"))
        .await
        .assert_problem(404, "not_found");
    app.delete(&format!("/api/providers/{id}"))
        .await
        .assert_problem(404, "not_found");
    let body = json!({"name": "x", "kind": "ollama", "base_url": "http://127.0.0.2:9"});
    app.put(&format!("/api/providers/{id}"), &body)
        .await
        .assert_problem(404, "not_found");
    app.get("/api/providers/not-a-uuid")
        .await
        .assert_problem(404, "not_found");
}

async fn api_key_is_never_returned(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let created = app
        .create_provider(&json!({"name": "o", "kind": "openai", "api_key": KEY}))
        .await;
    created.assert_status(201);
    let id = created.id();
    assert_eq!(created.json()["has_api_key"], true);
    assert_eq!(created.json()["api_key_hint"], "…abcd");
    let updated = app
        .put(
            &format!("/api/providers/{id}"),
            &json!({"name": "o2", "kind": "openai", "api_key": format!("{KEY}-v2")}),
        )
        .await;
    let list = app.get("/api/providers").await;
    let one = app.get(&format!("/api/providers/{id}")).await;
    for resp in [&created, &updated, &list, &one] {
        assert!(!resp.text.contains("canary"), "key leaked: {}", resp.text);
        assert!(
            !resp.text.contains("\"api_key\""),
            "api_key field present: {}",
            resp.text
        );
    }
    // The key is stored encrypted: the database holds no plaintext.
    let db = agentry::db::connect::connect(&app.config.database_url())
        .await
        .unwrap();
    let row = agentry::db::providers::find(&db, id)
        .await
        .unwrap()
        .unwrap();
    let blob = row.api_key_ciphertext.unwrap();
    assert!(!String::from_utf8_lossy(&blob).contains("canary"));
}

async fn update_keeps_or_replaces_key_and_bumps_revision(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let id = app
        .create_provider(&json!({"name": "o", "kind": "openai", "api_key": KEY}))
        .await
        .id();
    let path = format!("/api/providers/{id}");
    let kept = app
        .put(&path, &json!({"name": "renamed", "kind": "openai"}))
        .await;
    kept.assert_status(200);
    assert_eq!(kept.json()["name"], "renamed");
    assert_eq!(kept.json()["has_api_key"], true);
    assert_eq!(kept.json()["api_key_hint"], "…abcd");
    assert_eq!(kept.json()["revision"], 2);
    assert_eq!(kept.json()["validation_status"], "pending");

    let replaced = app
        .put(
            &path,
            &json!({"name": "renamed", "kind": "openai", "api_key": "sk-another-key-wxyz"}),
        )
        .await;
    replaced.assert_status(200);
    assert_eq!(replaced.json()["api_key_hint"], "…wxyz");
    assert_eq!(replaced.json()["revision"], 3);
}

async fn changing_endpoint_without_key_is_422(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let id = app
        .create_provider(&json!({
            "name": "c", "kind": "openai_compatible",
            "base_url": "http://127.0.0.5:8000/v1", "api_key": KEY
        }))
        .await
        .id();
    let path = format!("/api/providers/{id}");
    let table = [
        ("http://127.0.0.6:8000/v1", "host"),
        ("https://127.0.0.5:8000/v1", "scheme"),
        ("http://127.0.0.5:9000/v1", "port"),
    ];
    for (url, why) in table {
        let body = json!({"name": "c", "kind": "openai_compatible", "base_url": url});
        let paths = app
            .put(&path, &body)
            .await
            .assert_problem(422, "validation_failed");
        assert_eq!(paths, vec!["/api_key"], "changing the {why}");
    }
    // Unchanged by the refused updates.
    let current = app.get(&path).await.json();
    assert_eq!(current["base_url"], "http://127.0.0.5:8000/v1");
    assert_eq!(current["revision"], 1);
    // The same origin with another path is fine; a new host with the key resent is fine.
    let same_origin =
        json!({"name": "c", "kind": "openai_compatible", "base_url": "http://127.0.0.5:8000/v2"});
    app.put(&path, &same_origin).await.assert_status(200);
    let moved = json!({"name": "c", "kind": "openai_compatible", "base_url": "http://127.0.0.6:8000/v1", "api_key": KEY});
    app.put(&path, &moved).await.assert_status(200);
}

async fn delete_is_hard_when_unreferenced_and_soft_when_referenced(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let unused = app.ollama_provider("unused").await;
    app.delete(&format!("/api/providers/{unused}"))
        .await
        .assert_status(204);
    app.get(&format!("/api/providers/{unused}"))
        .await
        .assert_problem(404, "not_found");

    let used = app.ollama_provider("used").await;
    let agent = app.agent_on("agent", used).await;
    app.delete(&format!("/api/providers/{used}"))
        .await
        .assert_status(204);
    let soft = app.get(&format!("/api/providers/{used}")).await;
    soft.assert_status(200);
    assert_eq!(soft.json()["is_active"], false);
    assert_eq!(
        app.get("/api/providers").await.json()["total"],
        0,
        "hidden from lists"
    );
    // The agent keeps its provider; deleting again is 404; the name is free again.
    let agent_view = app.get(&format!("/api/agents/{agent}")).await.json();
    assert_eq!(agent_view["provider"]["is_active"], false);
    app.delete(&format!("/api/providers/{used}"))
        .await
        .assert_problem(404, "not_found");
    app.ollama_provider("used").await;
}

async fn list_paginates_in_creation_order(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    for i in 0..5 {
        app.ollama_provider(&format!("p{i}")).await;
    }
    let page = app.get("/api/providers?limit=2&offset=1").await;
    page.assert_status(200);
    let json = page.json();
    assert_eq!(json["total"], 5);
    assert_eq!(json["limit"], 2);
    assert_eq!(json["offset"], 1);
    let names: Vec<&str> = json["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["p1", "p2"]);
    for bad in ["limit=0", "limit=201", "limit=abc", "offset=-1", "bogus=1"] {
        app.get(&format!("/api/providers?{bad}"))
            .await
            .assert_problem(400, "invalid_parameter");
    }
}

db_tests!(
    create_each_kind_returns_201_pending_with_location,
    create_rejects_invalid_bodies_naming_the_field,
    duplicate_name_is_409,
    unknown_id_is_404,
    api_key_is_never_returned,
    update_keeps_or_replaces_key_and_bumps_revision,
    changing_endpoint_without_key_is_422,
    delete_is_hard_when_unreferenced_and_soft_when_referenced,
    list_paginates_in_creation_order,
);
