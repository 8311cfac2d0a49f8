//! The database going away and coming back (PostgreSQL refusing connections, its sessions
//! killed with `pg_terminate_backend`): readiness says 503, requests answer 503 problem+json
//! with `Retry-After` instead of hanging or 500, nothing is lost, and service resumes by
//! itself.

use std::time::{Duration, Instant};

use agentry_tests::{Backend, Resp, TestApp};
use sea_orm::{ConnectionTrait, Database};
use serde_json::json;

async fn admin(sql: &str) {
    let admin = Database::connect(agentry_tests::postgres::admin_url())
        .await
        .expect("connect as admin");
    admin.execute_unprepared(sql).await.expect(sql);
    admin.close().await.ok();
}

#[track_caller]
fn assert_unavailable(resp: &Resp, what: &str) {
    resp.assert_problem(503, "unavailable");
    assert_eq!(resp.header("retry-after"), Some("5"), "{what}");
    assert!(
        !resp.text.contains("sqlx") && !resp.text.contains("SQL"),
        "{what}: {}",
        resp.text
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_going_away_answers_503_and_service_resumes_by_itself() {
    let app = TestApp::spawn(Backend::Postgres).await;
    let name = app.pg_name().expect("a PostgreSQL app").to_owned();
    let provider = app.ollama_provider("kept").await;
    app.get("/readyz").await.assert_status(200);

    // The database refuses new sessions and its current ones are killed.
    admin(&format!(
        "ALTER DATABASE \"{name}\" ALLOW_CONNECTIONS false"
    ))
    .await;
    admin(&format!(
        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = '{name}'"
    ))
    .await;

    app.get("/readyz").await.assert_problem(503, "unavailable");
    assert_unavailable(&app.get("/api/agents").await, "a read");
    assert_unavailable(
        &app.get(&format!("/api/providers/{provider}")).await,
        "a read by id",
    );
    assert_unavailable(
        &app.create_task(&json!({"name": "t", "response_schema": {"type": "object"}}))
            .await,
        "a write",
    );

    // Back: the server recovers without a restart.
    admin(&format!("ALTER DATABASE \"{name}\" ALLOW_CONNECTIONS true")).await;
    let deadline = Instant::now() + Duration::from_secs(30);
    while app.get("/readyz").await.status != 200 {
        assert!(Instant::now() < deadline, "the server did not recover");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    app.get(&format!("/api/providers/{provider}"))
        .await
        .assert_status(200);
    app.create_task(&json!({"name": "t", "response_schema": {"type": "object"}}))
        .await
        .assert_status(201);
    assert_eq!(
        app.get("/api/tasks").await.json()["total"],
        1,
        "nothing half-written"
    );
}
