//! Losing the server: the app shows that it is reconnecting, reconnects by itself when the
//! server is back, and refetches what changed meanwhile.

use agentry_tests::{Backend, TestApp};
use serde_json::json;

use crate::driver::{Browser, Text};
use crate::{WS_STATUS, assert_not_reloaded, open};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_app_reconnects_and_refetches_after_the_server_restarts() {
    let app = TestApp::spawn(Backend::Sqlite).await;
    let addr = app.base_url.trim_start_matches("http://").to_owned();
    let browser = Browser::launch().await;
    open(&browser, &app, "/providers").await;

    // The server goes away: the header says so.
    let (config, dir, pg) = app.stop().await;
    browser
        .wait_text(WS_STATUS, Text::Contains("reconnecting"))
        .await;

    // Back on the same address, with a change made while the page was disconnected.
    let app = TestApp::start_on(config, dir, pg, &addr).await;
    app.create_provider(
        &json!({"name": "made-offline", "kind": "ollama", "base_url": "http://127.0.0.1:9"}),
    )
    .await
    .assert_status(201);
    browser.wait_text(WS_STATUS, Text::Equals("live")).await;
    browser
        .wait_for("[data-testid=provider-card][data-provider-name=\"made-offline\"]")
        .await;
    assert_not_reloaded(&browser).await;
    browser.close().await;
}
