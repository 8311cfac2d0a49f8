//! `/healthz` and `/readyz`.

use agentry_tests::postgres::admin_url;
use agentry_tests::{Backend, TestApp, db_tests};
use sea_orm::ConnectionTrait;

async fn health_and_readiness_are_ok(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let health = app.get("/healthz").await;
    health.assert_status(200);
    assert_eq!(health.json()["status"], "ok");
    let ready = app.get("/readyz").await;
    ready.assert_status(200);
    assert_eq!(ready.json()["status"], "ready");
}

db_tests!(health_and_readiness_are_ok);

/// Breaking the environment for real: the database disappears under a running server.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn readyz_is_503_when_the_database_is_gone() {
    let app = TestApp::spawn(Backend::Postgres).await;
    app.get("/readyz").await.assert_status(200);
    let url = app.config.database_url.clone().unwrap();
    let name = url.rsplit('/').next().unwrap();
    let admin = sea_orm::Database::connect(admin_url()).await.unwrap();
    admin
        .execute_unprepared(&format!("DROP DATABASE \"{name}\" WITH (FORCE)"))
        .await
        .unwrap();
    let resp = app.get("/readyz").await;
    resp.assert_problem(503, "unavailable");
    assert!(
        !resp.text.contains("postgres://"),
        "no connection details leak"
    );
    // The harness drops the (already gone) database with IF EXISTS.
}
