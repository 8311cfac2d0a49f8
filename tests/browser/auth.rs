//! With AGENTRY_API_TOKEN set, the app asks for the token once and then works, REST and live
//! updates alike, for the rest of the browser session.

use agentry_tests::{Backend, TestApp};
use serde_json::json;

use crate::WS_STATUS;
use crate::driver::{Browser, Text};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_app_asks_for_the_token_once_and_then_works_live() {
    let token = "browser-token-0123456789abcdef";
    let app = TestApp::spawn_with(Backend::Sqlite, |c| c.api_token = Some(token.to_owned())).await;
    let browser = Browser::launch().await;
    browser.goto(&format!("{}/providers", app.base_url)).await;

    browser.wait_for("[data-testid=token-dialog]").await;
    browser.fill("#token-input", token).await;
    browser.click("#token-save").await;
    browser.wait_gone("[data-testid=token-dialog]").await;
    browser.wait_text(WS_STATUS, Text::Equals("live")).await;

    // A provider created elsewhere arrives over the authenticated socket.
    app.create_provider(
        &json!({"name": "pushed", "kind": "ollama", "base_url": "http://127.0.0.1:9"}),
    )
    .await
    .assert_status(201);
    browser
        .wait_for("[data-testid=provider-card][data-provider-name=\"pushed\"]")
        .await;
    // Navigating keeps the token for the session: no second prompt.
    browser.click("#tab-agents").await;
    browser
        .wait_text("#section-panel", Text::Contains("No agents yet"))
        .await;
    assert_eq!(browser.count("[data-testid=token-dialog]").await, 0);
    browser.close().await;
}
