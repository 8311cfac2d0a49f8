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
