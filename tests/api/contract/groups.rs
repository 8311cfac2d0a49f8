//! The concurrency-group operations and statuses the contract test exercises.

use agentry_tests::{TestApp, agent_body};
use serde_json::json;
use uuid::Uuid;

/// Every documented status of `/api/concurrency-groups…`, with an agent in a group (`ghost`:
/// an id nothing has; `provider`: an active provider).
pub(super) async fn exercise(app: &TestApp, ghost: Uuid, provider: Uuid) {
    app.get("/api/concurrency-groups").await.assert_status(200);
    let group = app
        .post(
            "/api/concurrency-groups",
            &json!({"name": "key", "limit": 2}),
        )
        .await;
    group.assert_status(201);
    app.post(
        "/api/concurrency-groups",
        &json!({"name": "key", "limit": 2}),
    )
    .await
    .assert_status(409);
    app.post(
        "/api/concurrency-groups",
        &json!({"name": "key", "limit": 0}),
    )
    .await
    .assert_status(422);
    let other = app
        .post(
            "/api/concurrency-groups",
            &json!({"name": "other", "limit": 1}),
        )
        .await;
    other.assert_status(201);
    let group_path = format!("/api/concurrency-groups/{}", group.id());
    let ghost_group = format!("/api/concurrency-groups/{ghost}");
    app.get(&group_path).await.assert_status(200);
    app.get(&ghost_group).await.assert_status(404);
    app.put(&group_path, &json!({"name": "key", "limit": 3}))
        .await
        .assert_status(200);
    app.put(&group_path, &json!({"name": "other", "limit": 3}))
        .await
        .assert_status(409);
    app.put(&group_path, &json!({"name": "key", "limit": -3}))
        .await
        .assert_status(422);
    app.put(&ghost_group, &json!({"name": "key", "limit": 3}))
        .await
        .assert_status(404);
    let mut limited = agent_body("limited", provider);
    limited["concurrency_group_id"] = json!(group.id());
    let limited = app.create_agent(&limited).await;
    limited.assert_status(201);
    app.delete(&group_path).await.assert_status(409);
    app.delete(&format!("/api/agents/{}", limited.id()))
        .await
        .assert_status(204);
    app.delete(&group_path).await.assert_status(204);
    app.delete(&group_path).await.assert_status(404);
}
