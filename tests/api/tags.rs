//! Tags: created, listed and deleted through the API with clear errors; carried by workers,
//! set by the API or by the registration token that registered the worker, and live on the
//! `workers` and `tags` topics.

use agentry_tests::{Backend, TestApp, db_tests};
use serde_json::{Value, json};

async fn create_tag(app: &TestApp, name: &str) -> Value {
    app.post(
        "/api/tags",
        &json!({"name": name, "note": format!("{name} note")}),
    )
    .await
    .assert_status(201)
    .json()
}

async fn tag_names(app: &TestApp) -> Vec<String> {
    app.get("/api/tags")
        .await
        .json()
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["name"].as_str().unwrap().to_owned())
        .collect()
}

async fn tags_are_created_listed_and_deleted_with_clear_errors(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let created = app
        .post(
            "/api/tags",
            &json!({"name": "region=eu", "note": " EU machines "}),
        )
        .await;
    created.assert_status(201);
    let tag = created.json();
    assert_eq!(tag["note"], "EU machines");
    assert_eq!(tag["workers"], 0);
    create_tag(&app, "gpu").await;
    assert_eq!(
        tag_names(&app).await,
        ["gpu", "region=eu"],
        "sorted by name"
    );

    app.post("/api/tags", &json!({"name": "gpu"}))
        .await
        .assert_problem(409, "duplicate_name");
    for (body, path) in [
        (json!({"name": ""}), "/name"),
        (json!({"name": "GPU"}), "/name"),
        (json!({"name": "-gpu"}), "/name"),
        (json!({"name": "two words"}), "/name"),
        (json!({"name": "gpü"}), "/name"),
        (json!({"name": "a".repeat(65)}), "/name"),
        (json!({"name": "ok", "note": "x".repeat(201)}), "/note"),
        (json!({"name": "ok", "note": "nul\u{0}"}), "/note"),
    ] {
        let errors = app
            .post("/api/tags", &body)
            .await
            .assert_problem(422, "validation_failed");
        assert!(errors.iter().any(|e| e == path), "{body}: {errors:?}");
    }
    assert_eq!(
        tag_names(&app).await,
        ["gpu", "region=eu"],
        "nothing stored"
    );

    let id = tag["id"].as_str().unwrap();
    app.delete(&format!("/api/tags/{id}"))
        .await
        .assert_status(204);
    app.delete(&format!("/api/tags/{id}"))
        .await
        .assert_problem(404, "not_found");
    assert_eq!(tag_names(&app).await, ["gpu"]);
}

async fn workers_get_tags_from_the_api_or_their_token_and_lose_deleted_ones(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let gpu = create_tag(&app, "gpu").await;
    create_tag(&app, "big").await;
    let builtin = app.get("/api/workers").await.json()[0].clone();
    let builtin_url = format!("/api/workers/{}/tags", builtin["id"].as_str().unwrap());
    assert_eq!(builtin["tags"], json!([]));

    // The whole set, duplicates once, sorted.
    let worker = app
        .put(&builtin_url, &json!({"tags": ["gpu", "big", "gpu"]}))
        .await
        .assert_status(200)
        .json();
    assert_eq!(worker["tags"], json!(["big", "gpu"]));
    // Bad sets: a clear 422 at the offending entry, the worker's tags unchanged.
    let errors = app
        .put(&builtin_url, &json!({"tags": ["gpu", "nope"]}))
        .await
        .assert_problem(422, "validation_failed");
    assert!(errors.iter().any(|e| e == "/tags/1"), "{errors:?}");
    let many: Vec<String> = (0..33).map(|i| format!("t{i}")).collect();
    app.put(&builtin_url, &json!({"tags": many}))
        .await
        .assert_problem(422, "validation_failed");
    app.put(
        &format!("/api/workers/{}/tags", uuid::Uuid::nil()),
        &json!({"tags": []}),
    )
    .await
    .assert_problem(404, "not_found");
    assert_eq!(
        app.get("/api/workers").await.json()[0]["tags"],
        json!(["big", "gpu"])
    );

    // A token's tags go to the worker it registers, and nothing else does.
    let errors = app
        .post("/api/worker-tokens", &json!({"tags": ["missing"]}))
        .await
        .assert_problem(422, "validation_failed");
    assert!(errors.iter().any(|e| e == "/tags/0"), "{errors:?}");
    assert_eq!(app.get("/api/worker-tokens").await.json(), json!([]));
    let token = app
        .post("/api/worker-tokens", &json!({"tags": ["gpu"]}))
        .await
        .assert_status(201)
        .json();
    assert_eq!(token["details"]["tags"], json!(["gpu"]));
    assert_eq!(
        app.get("/api/worker-tokens").await.json()[0]["tags"],
        json!(["gpu"])
    );
    let registered = app
        .post(
            "/api/workers/register",
            &json!({"token": token["token"], "name": "gpu-box"}),
        )
        .await
        .assert_status(201)
        .json();
    let remote_id = registered["worker_id"].as_str().unwrap().to_owned();
    let remote = app.get(&format!("/api/workers/{remote_id}")).await.json();
    assert_eq!(remote["worker"]["tags"], json!(["gpu"]));
    let plain = app.worker_token().await;
    let other = app
        .post(
            "/api/workers/register",
            &json!({"token": plain, "name": "plain"}),
        )
        .await
        .assert_status(201)
        .json();
    let other = app
        .get(&format!(
            "/api/workers/{}",
            other["worker_id"].as_str().unwrap()
        ))
        .await
        .json();
    assert_eq!(other["worker"]["tags"], json!([]));
    let counts: Vec<(String, u64)> = app
        .get("/api/tags")
        .await
        .json()
        .as_array()
        .unwrap()
        .iter()
        .map(|t| {
            (
                t["name"].as_str().unwrap().to_owned(),
                t["workers"].as_u64().unwrap(),
            )
        })
        .collect();
    assert_eq!(counts, [("big".to_owned(), 1), ("gpu".to_owned(), 2)]);

    // Deleting a tag takes it off every worker, live.
    let mut ws = app.ws("workers,tags").await;
    app.delete(&format!("/api/tags/{}", gpu["id"].as_str().unwrap()))
        .await
        .assert_status(204);
    let mut updated = Vec::new();
    let mut deleted = false;
    while updated.len() < 2 || !deleted {
        let event = ws.next_event().await;
        match (event["topic"].as_str(), event["event"].as_str()) {
            (Some("tags"), Some("deleted")) => deleted = true,
            (Some("workers"), Some("updated")) => {
                assert!(
                    !event["data"]["tags"]
                        .as_array()
                        .unwrap()
                        .contains(&json!("gpu")),
                    "{event}"
                );
                updated.push(event["id"].as_str().unwrap().to_owned());
            }
            _ => {}
        }
    }
    updated.sort();
    let mut carriers = vec![
        builtin["id"].as_str().unwrap().to_owned(),
        remote_id.clone(),
    ];
    carriers.sort();
    assert_eq!(updated, carriers);
    assert_eq!(
        app.get("/api/workers").await.json()[0]["tags"],
        json!(["big"])
    );
    let remote = app.get(&format!("/api/workers/{remote_id}")).await.json();
    assert_eq!(remote["worker"]["tags"], json!([]));
}

db_tests!(
    tags_are_created_listed_and_deleted_with_clear_errors,
    workers_get_tags_from_the_api_or_their_token_and_lose_deleted_ones,
);
