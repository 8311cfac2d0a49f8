//! Keyboard and labels: a form driven with real key events (CDP `Input.dispatchKeyEvent`)
//! only, and every control of the CRUD pages reachable by name (labels, button texts).

use agentry_tests::{Backend, TestApp};

use crate::driver::Browser;
use crate::open;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_provider_is_created_with_the_keyboard_only() {
    // Arrange
    let app = TestApp::spawn(Backend::Sqlite).await;
    let browser = Browser::launch().await;
    open(&browser, &app, "/providers").await;
    browser
        .eval("document.querySelector('#provider-new').focus()")
        .await;
    browser.wait_focused("provider-new").await;

    // Act: Enter opens the form; Tab walks its fields in order; Enter on Save submits.
    browser.press_key("Enter").await;
    browser.wait_for("#provider-form").await;
    browser.press_key("Tab").await;
    browser.wait_focused("provider-name").await;
    browser.type_text("local").await;
    browser.press_key("Tab").await;
    browser.wait_focused("provider-kind").await;
    browser.press_key("Tab").await;
    browser.wait_focused("provider-base-url").await;
    browser.type_text("http://127.0.0.1:11434").await;
    browser.press_key("Tab").await;
    browser.wait_focused("provider-credential-location").await;
    browser.press_key("Tab").await;
    browser.wait_focused("provider-api-key").await;
    browser.press_key("Tab").await;
    browser.wait_focused("provider-credential-workers").await;
    browser.press_key("Tab").await;
    browser.wait_focused("provider-save").await;
    browser.press_key("Enter").await;

    // Assert
    browser.wait_gone("#provider-form").await;
    browser
        .wait_for("[data-testid=provider-card][data-provider-name=\"local\"]")
        .await;
    let providers = app.get("/api/providers").await.json();
    assert_eq!(providers["total"], 1, "{providers}");
    let provider = &providers["items"][0];
    assert_eq!(provider["name"], "local");
    assert_eq!(provider["kind"], "ollama");
    assert_eq!(provider["base_url"], "http://127.0.0.1:11434");
    browser.close().await;
}

/// Every problem with labels on the page: `<label for>` naming no control, form controls
/// without a label, buttons and links without a name.
const LABEL_PROBLEMS: &str = "(() => {\
  const problems = [];\
  const describe = el => el.outerHTML.slice(0, 120);\
  for (const label of document.querySelectorAll('label[for]')) {\
    const target = document.getElementById(label.htmlFor);\
    if (!target || !['INPUT', 'SELECT', 'TEXTAREA'].includes(target.tagName))\
      problems.push(`label for=${label.htmlFor} names no control`);\
  }\
  for (const el of document.querySelectorAll('input, select, textarea')) {\
    if (el.type === 'hidden') continue;\
    const named = el.labels.length > 0 || el.getAttribute('aria-label')\
      || el.getAttribute('aria-labelledby');\
    if (!named) problems.push(`unlabelled control: ${describe(el)}`);\
  }\
  for (const el of document.querySelectorAll('button, a[href]')) {\
    const name = (el.getAttribute('aria-label') || el.textContent || el.title || '').trim();\
    if (!name) problems.push(`unnamed ${el.tagName.toLowerCase()}: ${describe(el)}`);\
  }\
  return problems;\
})()";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_form_control_has_a_label_and_every_button_a_name() {
    // Arrange: one of each card, so the card controls are on the pages too.
    let app = TestApp::spawn(Backend::Sqlite).await;
    let provider = app.ollama_provider("local").await;
    app.agent_on("classifier", provider).await;
    app.simple_task("sentiment").await;
    let browser = Browser::launch().await;

    // Act: each page with its form (and, on agents, the task assignments) open.
    let mut problems = Vec::new();
    for (path, open_form, card) in [
        ("/providers", "#provider-new", "[data-testid=provider-card]"),
        ("/agents", "#agent-new", "[data-testid=agent-card]"),
        ("/tasks", "#task-new", "[data-testid=task-card]"),
    ] {
        open(&browser, &app, path).await;
        browser.wait_for(card).await;
        browser.click(open_form).await;
        if path == "/agents" {
            browser.click("[data-testid=manage-tasks]").await;
            browser.wait_for("[data-testid=assign-task]").await;
        }
        if path == "/tasks" {
            browser.click("#task-has-request-schema").await;
            browser
                .wait_for("[data-testid=request-schema-editor]")
                .await;
            browser
                .click("[data-testid=response-schema-editor] [data-testid=root-card] > .prop-list > [data-testid=add-property]")
                .await;
            browser.wait_for("[data-testid=property-card]").await;
        }
        let found = browser.eval(LABEL_PROBLEMS).await;
        for problem in found.as_array().into_iter().flatten() {
            problems.push(format!("{path}: {}", problem.as_str().unwrap_or_default()));
        }
    }

    // Assert
    assert!(problems.is_empty(), "{}", problems.join("\n"));
    browser.close().await;
}
