//! Layout checks at small viewports.

use agentry_tests::{Backend, TestApp};

use crate::driver::Browser;
use crate::open;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn providers_page_fits_a_360px_wide_screen() {
    let app = TestApp::spawn(Backend::Sqlite).await;
    // A card and the open form: the widest things on the page.
    app.ollama_provider("a-provider-with-a-rather-long-name-to-wrap")
        .await;
    let browser = Browser::launch_with(360, 740, "").await;
    open(&browser, &app, "/providers").await;
    browser
        .wait_for("[data-testid=provider-card][data-provider-name=\"a-provider-with-a-rather-long-name-to-wrap\"]")
        .await;
    browser.click("#provider-new").await;
    browser.wait_for("#provider-form").await;

    let width = browser.scroll_width().await;
    assert!(
        width <= 360,
        "the page is {width} px wide at a 360 px viewport: it scrolls sideways"
    );
    browser.close().await;
}

/// The app works under the server's strict Content-Security-Policy (every journey checks it
/// saw no violation), and the policy is real: an inline script is refused and reported.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_app_runs_under_a_strict_content_security_policy() {
    let app = TestApp::spawn(Backend::Sqlite).await;
    app.ollama_provider("csp").await;
    let browser = Browser::launch().await;
    open(&browser, &app, "/providers").await;
    browser
        .wait_for("[data-testid=provider-card][data-provider-name=\"csp\"]")
        .await;
    browser.assert_no_csp_violations().await;
    browser
        .eval(
            "var s = document.createElement('script'); s.textContent = 'window.__ran = 1'; \
             document.body.appendChild(s); 1",
        )
        .await;
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
    loop {
        let seen = browser.eval("window.__cspViolations.length").await;
        if seen.as_u64().unwrap_or(0) > 0 {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the violation was not reported"
        );
        tokio::time::sleep(std::time::Duration::from_millis(25)).await;
    }
    assert!(
        browser.eval("window.__ran").await.is_null(),
        "the inline script ran"
    );
    browser.eval("window.__cspViolations = []; 1").await;
    browser.close().await;
}
