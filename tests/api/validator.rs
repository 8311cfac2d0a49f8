//! The background provider validator, against real servers: llama.cpp's llama-server for
//! OpenAI-compatible, an Ollama-API server in front of it, wire-accurate fakes for the cloud
//! APIs, closed ports and servers that never answer.

use std::time::Duration;

use agentry_tests::fakes::{self, Behavior, Options};
use agentry_tests::llm::llama_server;
use agentry_tests::ws::WsClient;
use agentry_tests::{Backend, TestApp, db_tests, logs};
use serde_json::{Value, json};
use uuid::Uuid;

/// Waits for this provider's `validation_update` events until one reports `status`; returns
/// every status seen on the way.
async fn watch_until(ws: &mut WsClient, id: Uuid, status: &str) -> (Vec<String>, Value) {
    let mut seen = Vec::new();
    loop {
        let event = ws.next_event().await;
        if event["id"] != id.to_string() || event["event"] != "validation_update" {
            continue;
        }
        let current = event["data"]["validation_status"]
            .as_str()
            .unwrap()
            .to_owned();
        seen.push(current.clone());
        if current == status {
            return (seen, event["data"].clone());
        }
    }
}

fn checks_on(config: &mut agentry::Config) {
    config.validator.enabled = true;
}

fn fast_checks(config: &mut agentry::Config) {
    checks_on(config);
    config.validator.check_timeout = Duration::from_secs(2);
}

async fn real_llama_server_connects_with_its_model(backend: Backend) {
    let llm = llama_server().await;
    let app = TestApp::spawn_with(backend, checks_on).await;
    let mut ws = app.ws("providers").await;
    let id = app
        .create_provider(
            &json!({"name": "llama", "kind": "openai_compatible", "base_url": llm.base_url()}),
        )
        .await
        .id();
    let (seen, data) = watch_until(&mut ws, id, "connected").await;
    assert_eq!(seen, ["validating", "connected"]);
    assert_eq!(data["models"], json!([llm.model()]));
    let provider = app.get(&format!("/api/providers/{id}")).await.json();
    assert_eq!(provider["validation_status"], "connected");
    assert_eq!(provider["models"], json!([llm.model()]));
    assert!(provider["latency_ms"].is_u64());
    assert!(provider["validated_at"].is_string());
    assert_eq!(provider["validation_error"], Value::Null);
}

async fn ollama_api_server_connects_with_its_model(backend: Backend) {
    let ollama = fakes::ollama::start().await;
    let app = TestApp::spawn_with(backend, checks_on).await;
    let mut ws = app.ws("providers").await;
    let id = app
        .create_provider(
            &json!({"name": "ollama", "kind": "ollama", "base_url": ollama.base_url()}),
        )
        .await
        .id();
    let (_, data) = watch_until(&mut ws, id, "connected").await;
    assert!(
        data["models"]
            .as_array()
            .unwrap()
            .contains(&json!(fakes::ollama::MODEL))
    );
    assert!(!ollama.requests_to("/api/tags").is_empty());
}

async fn closed_port_ends_unreachable(backend: Backend) {
    let port = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.local_addr().unwrap().port()
    };
    let app = TestApp::spawn_with(backend, checks_on).await;
    let id = app
        .create_provider(&json!({"name": "gone", "kind": "ollama", "base_url": format!("http://127.0.0.1:{port}")}))
        .await
        .id();
    let provider = app.provider_settled(id).await;
    assert_eq!(provider["validation_status"], "error");
    let error = provider["validation_error"].as_str().unwrap();
    assert!(error.starts_with("unreachable:"), "{error}");
    assert!(error.len() <= 512);
}

async fn server_that_never_answers_ends_timeout(backend: Backend) {
    let fake = fakes::openai::start().await;
    fake.set_behavior(Behavior::Hang);
    let app = TestApp::spawn_with(backend, fast_checks).await;
    let id = app
        .create_provider(&json!({"name": "hang", "kind": "openai_compatible",
            "base_url": fake.url("/v1"), "api_key": fakes::openai::KEY}))
        .await
        .id();
    let provider = app.provider_settled(id).await;
    assert_eq!(provider["validation_status"], "error");
    assert!(
        provider["validation_error"]
            .as_str()
            .unwrap()
            .starts_with("timeout:")
    );
}

async fn rejected_keys_end_credentials_rejected_and_never_leak(backend: Backend) {
    let wrong = "sk-CANARY-wrong-key-must-never-leak-0123456789";
    let anthropic = fakes::anthropic::start().await;
    let gemini = fakes::gemini::start().await;
    let forbidden = fakes::anthropic::start_with(Options {
        forbidden_key: Some(fakes::anthropic::KEY.to_owned()),
        ..fakes::anthropic::options()
    })
    .await;
    let app = TestApp::spawn_with(backend, checks_on).await;
    let mut ws = app.ws("providers").await;
    let cases = [
        ("anthropic", anthropic.base_url(), wrong),
        ("gemini", gemini.base_url(), wrong),
        ("anthropic", forbidden.base_url(), fakes::anthropic::KEY),
    ];
    let mut frames = String::new();
    for (i, (kind, base_url, key)) in cases.iter().enumerate() {
        let created = app
            .create_provider(&json!({"name": format!("p{i}"), "kind": kind, "base_url": base_url, "api_key": key}))
            .await;
        let id = created.id();
        frames.push_str(&created.text);
        let (_, data) = watch_until(&mut ws, id, "error").await;
        frames.push_str(&data.to_string());
        let error = data["validation_error"].as_str().unwrap();
        assert!(
            error.starts_with("credentials_rejected:"),
            "{kind}: {error}"
        );
        let provider = app.get(&format!("/api/providers/{id}")).await;
        frames.push_str(&provider.text);
    }
    frames.push_str(&app.get("/api/providers").await.text);
    for key in [wrong, fakes::anthropic::KEY] {
        assert!(
            !frames.contains(key),
            "a key reached an API response or a WebSocket frame"
        );
        assert!(
            !logs::captured().contains(key),
            "a key reached the server log"
        );
    }
    // The key travelled only where each API wants it.
    let request = gemini.last_request().unwrap();
    assert_eq!(request.header("x-goog-api-key"), Some(wrong));
    assert_eq!(request.query_param("key"), None);
    let request = anthropic.last_request().unwrap();
    assert_eq!(request.header("x-api-key"), Some(wrong));
    assert!(request.header("anthropic-version").is_some());
}

async fn valid_cloud_keys_connect(backend: Backend) {
    let anthropic = fakes::anthropic::start().await;
    let gemini = fakes::gemini::start().await;
    let openai = fakes::openai::start().await;
    let app = TestApp::spawn_with(backend, checks_on).await;
    let cases = [
        ("anthropic", anthropic.base_url(), fakes::anthropic::KEY),
        ("gemini", gemini.base_url(), fakes::gemini::KEY),
        ("openai", openai.url("/v1"), fakes::openai::KEY),
    ];
    for (i, (kind, base_url, key)) in cases.iter().enumerate() {
        let id = app
            .create_provider(&json!({"name": format!("p{i}"), "kind": kind, "base_url": base_url, "api_key": key}))
            .await
            .id();
        let provider = app.provider_settled(id).await;
        assert_eq!(
            provider["validation_status"], "connected",
            "{kind}: {provider}"
        );
        assert!(!provider["models"].as_array().unwrap().is_empty(), "{kind}");
    }
}

async fn fifty_providers_a_third_hanging_keep_the_api_responsive(backend: Backend) {
    let healthy = fakes::openai::start().await;
    let hanging = fakes::openai::start().await;
    hanging.set_behavior(Behavior::Hang);
    let closed = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        format!(
            "http://127.0.0.1:{}/v1",
            listener.local_addr().unwrap().port()
        )
    };
    let app = TestApp::spawn_with(backend, fast_checks).await;
    let mut expected = Vec::new();
    for i in 0..50 {
        let (base_url, outcome) = match i % 3 {
            0 => (hanging.url("/v1"), "timeout:"),
            1 => (closed.clone(), "unreachable:"),
            _ => (healthy.url("/v1"), "connected"),
        };
        let resp = app
            .create_provider(
                &json!({"name": format!("p{i:02}"), "kind": "openai_compatible",
                "base_url": base_url, "api_key": fakes::openai::KEY}),
            )
            .await;
        resp.assert_status(201);
        expected.push((resp.id(), outcome));
        // Every call completes while checks hang in the background.
        app.get("/api/providers?limit=200").await.assert_status(200);
        app.get("/readyz").await.assert_status(200);
    }
    for (id, outcome) in expected {
        let provider = app.provider_settled(id).await;
        match outcome {
            "connected" => assert_eq!(provider["validation_status"], "connected"),
            prefix => assert!(
                provider["validation_error"]
                    .as_str()
                    .unwrap()
                    .starts_with(prefix),
                "want {prefix}: {provider}"
            ),
        }
    }
}

async fn update_and_validate_trigger_new_checks(backend: Backend) {
    let fake = fakes::openai::start().await;
    let app = TestApp::spawn_with(backend, checks_on).await;
    let mut ws = app.ws("providers").await;
    let body = json!({"name": "p", "kind": "openai_compatible", "base_url": fake.url("/v1"), "api_key": fakes::openai::KEY});
    let id = app.create_provider(&body).await.id();
    watch_until(&mut ws, id, "connected").await;

    let updated = app
        .put(
            &format!("/api/providers/{id}"),
            &json!({"name": "p2", "kind": "openai_compatible", "base_url": fake.url("/v1")}),
        )
        .await;
    assert_eq!(updated.json()["validation_status"], "pending");
    let (seen, _) = watch_until(&mut ws, id, "connected").await;
    assert_eq!(seen.first().map(String::as_str), Some("validating"));

    let before = fake.requests_to("/v1/models").len();
    let accepted = app
        .post(&format!("/api/providers/{id}/validate"), &json!({}))
        .await;
    accepted.assert_status(202);
    watch_until(&mut ws, id, "connected").await;
    assert_eq!(fake.requests_to("/v1/models").len(), before + 1);

    // A provider that starts failing is reported on the next check.
    fake.set_behavior(Behavior::status(500));
    app.post(&format!("/api/providers/{id}/validate"), &json!({}))
        .await
        .assert_status(202);
    let (_, data) = watch_until(&mut ws, id, "error").await;
    assert!(
        data["validation_error"]
            .as_str()
            .unwrap()
            .starts_with("server_error:")
    );
}

async fn checks_left_validating_by_a_stop_are_requeued(backend: Backend) {
    let fake = fakes::openai::start().await;
    fake.set_behavior(Behavior::Hang);
    let app = TestApp::spawn_with(backend, checks_on).await;
    let id = app
        .create_provider(&json!({"name": "p", "kind": "openai_compatible", "base_url": fake.url("/v1"), "api_key": fakes::openai::KEY}))
        .await
        .id();
    app.provider_until(id, |p| p["validation_status"] == "validating")
        .await;
    // Stopped mid-check: the row still says `validating`.
    let (config, dir, pg) = app.stop().await;
    fake.set_behavior(Behavior::Normal);
    let app = TestApp::start(config, dir, pg).await;
    let provider = app.provider_settled(id).await;
    assert_eq!(provider["validation_status"], "connected");
}

async fn providers_are_rechecked_periodically(backend: Backend) {
    let fake = fakes::openai::start().await;
    let app = TestApp::spawn_with(backend, |c| {
        checks_on(c);
        c.validation_interval_secs = 1;
    })
    .await;
    app.create_provider(&json!({"name": "p", "kind": "openai_compatible", "base_url": fake.url("/v1"), "api_key": fakes::openai::KEY}))
        .await
        .assert_status(201);
    // The check on create, then at least two periodic ones.
    fake.wait_for_requests(3, Duration::from_secs(15)).await;
    assert!(fake.requests_to("/v1/models").len() >= 3);
}

db_tests!(
    providers_are_rechecked_periodically,
    real_llama_server_connects_with_its_model,
    ollama_api_server_connects_with_its_model,
    closed_port_ends_unreachable,
    server_that_never_answers_ends_timeout,
    rejected_keys_end_credentials_rejected_and_never_leak,
    valid_cloud_keys_connect,
    fifty_providers_a_third_hanging_keep_the_api_responsive,
    update_and_validate_trigger_new_checks,
    checks_left_validating_by_a_stop_are_requeued,
);
