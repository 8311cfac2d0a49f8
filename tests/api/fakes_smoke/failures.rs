//! Every fake fails, hangs or stops on demand.

use std::time::{Duration, Instant};

use agentry_tests::fakes::{Behavior, Options, anthropic, gemini, openai};
use agentry_tests::install_crypto_provider;
use serde_json::json;

use super::{body, client};

#[tokio::test]
async fn fakes_answer_429_with_retry_after_and_one_off_errors_on_demand() {
    let anthropic = anthropic::start().await;
    let gemini = gemini::start().await;
    let openai = openai::start().await;
    let requests = [
        (
            &anthropic,
            client()
                .get(anthropic.url("/v1/models"))
                .header("x-api-key", anthropic::KEY)
                .header("anthropic-version", "2023-06-01"),
            "/error/type",
            json!("rate_limit_error"),
        ),
        (
            &gemini,
            client()
                .get(gemini.url("/v1beta/models"))
                .header("x-goog-api-key", gemini::KEY),
            "/error/status",
            json!("RESOURCE_EXHAUSTED"),
        ),
        (
            &openai,
            client()
                .get(openai.url("/v1/models"))
                .bearer_auth(openai::KEY),
            "/error/code",
            json!("rate_limit_exceeded"),
        ),
    ];
    for (fake, request, pointer, expected) in requests {
        fake.set_behavior(Behavior::rate_limited(1));
        let response = request.try_clone().unwrap().send().await.unwrap();
        assert_eq!(
            response
                .headers()
                .get("retry-after")
                .and_then(|v| v.to_str().ok()),
            Some("1")
        );
        let (status, error) = body(response).await;
        assert_eq!(status, 429);
        assert_eq!(error.pointer(pointer), Some(&expected), "{error}");

        // One 500, then the provider answers normally again.
        fake.set_behavior(Behavior::Normal);
        fake.push_once(Behavior::status(500));
        let (first, _) = body(request.try_clone().unwrap().send().await.unwrap()).await;
        let (second, _) = body(request.send().await.unwrap()).await;
        assert_eq!((first, second), (500, 200));
    }
    assert_eq!(
        gemini.requests()[0].headers.get("x-goog-api-key").unwrap(),
        gemini::KEY
    );
}

#[tokio::test]
async fn a_hung_fake_is_observed_as_a_client_timeout_and_a_slow_one_answers_late() {
    let fake = openai::start_with(Options {
        api_key: None,
        ..openai::options()
    })
    .await;
    install_crypto_provider();
    let quick = reqwest::Client::builder()
        .no_proxy()
        .timeout(Duration::from_millis(300))
        .build()
        .unwrap();

    fake.set_behavior(Behavior::Hang);
    let error = quick
        .get(fake.url("/v1/models"))
        .send()
        .await
        .expect_err("a hung server never answers");
    assert!(error.is_timeout(), "{error}");
    fake.wait_for_requests(1, Duration::from_secs(5)).await;

    fake.set_behavior(Behavior::Delay(Duration::from_millis(200)));
    let started = Instant::now();
    let (status, _) = body(client().get(fake.url("/v1/models")).send().await.unwrap()).await;
    assert_eq!(status, 200);
    assert!(started.elapsed() >= Duration::from_millis(200));
}

#[tokio::test]
async fn a_stopped_fake_refuses_connections() {
    let mut fake = anthropic::start().await;
    let url = fake.url("/v1/models");
    fake.stop().await;
    let error = client()
        .get(url)
        .send()
        .await
        .expect_err("nothing listens any more");
    assert!(error.is_connect(), "{error}");
}
