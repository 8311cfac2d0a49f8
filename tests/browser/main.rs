//! Browser journeys: headless Chromium (Debian's, installed by scripts/setup) driving the web
//! app served by the real server on port 0. SQLite only: the API suite covers PostgreSQL, and
//! these tests are about the UI wiring (forms, live updates, layout), not the database.
#![expect(
    clippy::expect_used,
    reason = "tests: a failed expectation is a failed test"
)]
#![expect(
    clippy::disallowed_methods,
    reason = "tests drive the server from outside: their own HTTP client, fakes and tasks"
)]

mod agents;
mod auth;
mod concurrency;
mod driver;
mod keyboard;
mod layout;
mod playground;
mod providers;
mod reconnect;
mod tasks;
mod workers;

use agentry_tests::TestApp;
use driver::{Browser, Text};

/// The header's live-connection indicator.
pub const WS_STATUS: &str = "[data-testid=ws-status]";

/// Opens `path` of the app and waits until the live connection is up, so that whatever the
/// test does next is pushed to the page.
pub async fn open(browser: &Browser, app: &TestApp, path: &str) {
    browser.goto(&format!("{}{path}", app.base_url)).await;
    browser.wait_text(WS_STATUS, Text::Equals("live")).await;
    mark_page(browser).await;
}

/// Marks the loaded document; [`assert_not_reloaded`] then proves that what changed came in
/// through the live connection rather than a navigation.
async fn mark_page(browser: &Browser) {
    browser.eval("window.__agentryJourneyMark = true").await;
}

pub async fn assert_not_reloaded(browser: &Browser) {
    assert_eq!(
        browser.eval("window.__agentryJourneyMark === true").await,
        serde_json::Value::Bool(true),
        "the page was reloaded"
    );
}
