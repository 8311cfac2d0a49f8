//! Request-level errors: malformed JSON, wrong media type, oversized bodies, unknown routes.
//! Each is problem+json with a stable code, and nothing is stored.

use agentry_tests::{Backend, TestApp, db_tests};
use reqwest::Method;

async fn malformed_json_is_400_with_position(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let table = [
        ("{\"name\": ", "truncated"),
        ("{\"name\": \"x\",}", "trailing comma"),
        ("not json", "not JSON at all"),
        ("{\"name\": \"x\"} trailing", "trailing characters"),
        ("", "empty body"),
    ];
    for (body, why) in table {
        let resp = app
            .send(
                app.raw(Method::POST, "/api/providers")
                    .header("content-type", "application/json")
                    .body(body),
            )
            .await;
        resp.assert_problem(400, "malformed_json");
        let detail = resp.json()["detail"]
            .as_str()
            .unwrap_or_default()
            .to_owned();
        assert!(
            detail.contains("line") && detail.contains("column"),
            "{why}: {detail}"
        );
    }
    assert_eq!(app.get("/api/providers").await.json()["total"], 0);
}

async fn wrong_content_type_is_415(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    for content_type in [
        None,
        Some("text/plain"),
        Some("application/x-www-form-urlencoded"),
    ] {
        let mut request = app.raw(Method::POST, "/api/tasks").body("{}");
        if let Some(ct) = content_type {
            request = request.header("content-type", ct);
        }
        app.send(request)
            .await
            .assert_problem(415, "unsupported_media_type");
    }
}

async fn body_over_one_mib_is_413(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let description = "x".repeat(1024 * 1024 + 10);
    let body =
        serde_json::json!({"name": "t", "description": description, "response_schema": true});
    let resp = app.post("/api/tasks", &body).await;
    resp.assert_problem(413, "payload_too_large");
    assert_eq!(app.get("/api/tasks").await.json()["total"], 0);
}

async fn bodies_that_are_not_objects_are_422(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let builtin = app.builtin_worker().await;
    let targets = [
        (Method::POST, "/api/providers".to_owned()),
        (Method::POST, "/api/worker-tokens".to_owned()),
        (Method::PATCH, format!("/api/workers/{builtin}")),
        (Method::POST, "/api/workers/register".to_owned()),
    ];
    for (method, path) in &targets {
        for body in ["[null, null]", "[]", "\"text\"", "5", "null", "true"] {
            let resp = app
                .send(
                    app.raw(method.clone(), path)
                        .header("content-type", "application/json")
                        .body(body),
                )
                .await;
            resp.assert_problem(422, "validation_failed");
            assert!(
                resp.text.contains("must be a JSON object"),
                "{method} {path} {body}: {}",
                resp.text
            );
        }
    }
    assert_eq!(
        app.get("/api/worker-tokens").await.json(),
        serde_json::json!([])
    );
    let worker = app.get(&format!("/api/workers/{builtin}")).await.json();
    assert_eq!(worker["worker"]["enabled"], true, "nothing changed");
}

async fn unknown_routes_are_404_problems(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    for path in ["/api/nope", "/api", "/api/providers/x/y/z"] {
        app.send(app.raw(Method::GET, path))
            .await
            .assert_problem(404, "route_not_found");
    }
    app.send(app.raw(Method::POST, "/somewhere"))
        .await
        .assert_problem(404, "route_not_found");
    let resp = app.send(app.raw(Method::PATCH, "/api/providers")).await;
    resp.assert_problem(405, "method_not_allowed");
}

async fn web_app_is_served_at_root(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    for path in ["/", "/agents", "/providers"] {
        let resp = app.send(app.raw(Method::GET, path)).await;
        resp.assert_status(200);
        assert!(
            resp.header("content-type")
                .unwrap_or("")
                .starts_with("text/html")
        );
        assert!(resp.text.contains("Agentry"), "{path}: {}", resp.text);
    }
}

db_tests!(
    malformed_json_is_400_with_position,
    bodies_that_are_not_objects_are_422,
    wrong_content_type_is_415,
    body_over_one_mib_is_413,
    unknown_routes_are_404_problems,
    web_app_is_served_at_root,
);
