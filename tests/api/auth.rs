//! AGENTRY_API_TOKEN: /api needs the bearer token; health checks stay open; a public bind
//! without a token is refused.

use agentry::{Application, Config};
use agentry_tests::{Backend, TestApp, db_tests};
use reqwest::Method;

const TOKEN: &str = "test-token-0123456789abcdef";

async fn api_requires_the_token_when_set(backend: Backend) {
    let app = TestApp::spawn_with(backend, |c| c.api_token = Some(TOKEN.to_owned())).await;
    // With the token (the harness sends it): fine.
    app.get("/api/providers").await.assert_status(200);
    // Without it, or with a wrong one: 401 problem, for known and unknown routes alike.
    let table = [
        (None, "/api/providers", "no header"),
        (
            Some("Bearer wrong-token-0123456789abcdef"),
            "/api/providers",
            "wrong token",
        ),
        (
            Some(&*format!("Bearer {TOKEN}x")),
            "/api/agents",
            "token with extra char",
        ),
        (
            Some(&*format!("Basic {TOKEN}")),
            "/api/tasks",
            "wrong scheme",
        ),
        (Some("Bearer "), "/api/tasks", "empty token"),
        (None, "/api/unknown", "unknown route"),
    ];
    for (header, path, why) in table {
        let mut request = app.client.get(format!("{}{path}", app.base_url));
        if let Some(value) = header {
            request = request.header("authorization", value);
        }
        let resp = app.send(request).await;
        resp.assert_problem(401, "unauthorized");
        assert!(resp.header("www-authenticate").is_some(), "{why}");
    }
    let post = app
        .send(
            app.client
                .post(format!("{}/api/providers", app.base_url))
                .json(&serde_json::json!({})),
        )
        .await;
    post.assert_problem(401, "unauthorized");
    // Health checks and the OpenAPI document stay open.
    for path in ["/healthz", "/readyz", "/openapi.json"] {
        app.send(app.client.get(format!("{}{path}", app.base_url)))
            .await
            .assert_status(200);
    }
}

async fn without_token_api_is_open_on_loopback(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    app.send(app.raw(Method::GET, "/api/providers"))
        .await
        .assert_status(200);
}

async fn failed_token_attempts_are_limited_per_address(backend: Backend) {
    let app = TestApp::spawn_with(backend, |c| {
        c.api_token = Some(TOKEN.to_owned());
        c.auth_failures_per_minute = 3;
    })
    .await;
    let from = |ip: [u8; 4]| {
        reqwest::Client::builder()
            .local_address(std::net::IpAddr::from(ip))
            .no_proxy()
            .build()
            .unwrap()
    };
    let (guesser, bystander) = (from([127, 0, 0, 1]), from([127, 0, 0, 2]));
    let url = format!("{}/api/providers", app.base_url);
    let attempt =
        |client: &reqwest::Client, token: &str| client.get(&url).bearer_auth(token.to_owned());
    for _ in 0..3 {
        app.send(attempt(&guesser, "wrong-guess-0123456789abcdef"))
            .await
            .assert_problem(401, "unauthorized");
    }
    let limited = app
        .send(attempt(&guesser, "wrong-guess-0123456789abcdef"))
        .await;
    limited.assert_problem(429, "too_many_attempts");
    let retry_after: u64 = limited.header("retry-after").unwrap().parse().unwrap();
    assert!((1..=60).contains(&retry_after), "{retry_after}");
    // Refused before the token is compared: even the right one, so guessing stays bounded.
    app.send(attempt(&guesser, TOKEN))
        .await
        .assert_problem(429, "too_many_attempts");
    // The WebSocket refuses the address too.
    let ws = app
        .send(
            guesser
                .get(format!("{}/ws", app.base_url))
                .bearer_auth(TOKEN),
        )
        .await;
    assert_eq!(ws.status.as_u16(), 429, "{}", ws.text);
    // Another address is not affected.
    app.send(attempt(&bystander, TOKEN))
        .await
        .assert_status(200);
}

db_tests!(
    failed_token_attempts_are_limited_per_address,
    api_requires_the_token_when_set,
    without_token_api_is_open_on_loopback
);

#[tokio::test]
async fn public_bind_without_token_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let mut config = Config::with_data_dir(dir.path());
    config.bind = "0.0.0.0:0".parse().unwrap();
    let err = Application::build(config.clone())
        .await
        .err()
        .expect("refused");
    let message = format!("{err:#}");
    assert!(message.contains("AGENTRY_API_TOKEN"), "{message}");
    assert!(
        !dir.path().join("agentry.db").exists(),
        "refused before touching the database"
    );

    config.api_token = Some("short".to_owned());
    let err = Application::build(config)
        .await
        .err()
        .expect("short token refused");
    assert!(format!("{err:#}").contains("at least 16"));
}
