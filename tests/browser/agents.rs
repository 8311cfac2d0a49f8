//! Agents page: creating agents through the form, seen live by another browser, and the
//! form's field errors.

use agentry_tests::{Backend, TestApp};
use serde_json::json;
use uuid::Uuid;

use crate::driver::{Browser, Text};
use crate::{assert_not_reloaded, open};

/// Fills the agent form, except the system prompt, with a valid agent on `provider`.
pub(crate) async fn fill_agent_form(browser: &Browser, name: &str, provider: Uuid) {
    browser.click("#agent-new").await;
    browser.fill("#agent-name", name).await;
    browser
        .fill("#agent-description", "classifies things")
        .await;
    browser
        .select("#agent-provider", &provider.to_string())
        .await;
    browser.fill("#agent-model", "smollm2").await;
    browser
        .fill("#agent-user-prompt", "Classify: {{ input.text }}")
        .await;
    browser.fill("#agent-temperature", "0.2").await;
    browser.fill("#agent-max-tokens", "256").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn agent_created_in_one_browser_appears_live_in_another() {
    // Arrange: a provider over the API; two browsers with their own profiles on /agents.
    let app = TestApp::spawn(Backend::Sqlite).await;
    let provider = app.ollama_provider("local").await;
    let watcher = Browser::launch_with(1280, 900, "watcher").await;
    open(&watcher, &app, "/agents").await;
    watcher
        .wait_text("#section-panel", Text::Contains("No agents yet"))
        .await;
    let editor = Browser::launch_with(1280, 900, "editor").await;
    open(&editor, &app, "/agents").await;

    // Act
    app.post("/api/tags", &json!({"name": "gpu"}))
        .await
        .assert_status(201);
    fill_agent_form(&editor, "classifier", provider).await;
    editor
        .fill(
            "#agent-system-prompt",
            "You are a careful classifier. Answer in JSON.",
        )
        .await;
    editor.fill("#agent-workers", "gpu-2, gpu-1").await;
    editor.fill("#agent-required-tags", " gpu ").await;
    editor.click("#agent-save").await;
    editor.wait_gone("#agent-form").await;

    // Assert: the watcher shows the card without reloading.
    let card = "[data-testid=agent-card][data-agent-name=\"classifier\"]";
    watcher
        .wait_text(
            &format!("{card} [data-testid=task-count]"),
            Text::Equals("0 tasks"),
        )
        .await;
    assert_not_reloaded(&watcher).await;
    let agents = app.get("/api/agents").await.json();
    let agent = &agents["items"][0];
    assert_eq!(agent["name"], "classifier");
    assert_eq!(agent["provider_id"], json!(provider));
    assert_eq!(agent["model"], "smollm2");
    assert_eq!(agent["temperature"], 0.2);
    assert_eq!(agent["max_tokens"], 256);
    assert_eq!(agent["user_prompt"], "Classify: {{ input.text }}");
    assert_eq!(agent["workers"], json!(["gpu-1", "gpu-2"]));
    assert_eq!(agent["required_tags"], json!(["gpu"]));
    editor.close().await;
    watcher.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn agent_without_system_prompt_shows_the_error_next_to_the_field() {
    // Arrange
    let app = TestApp::spawn(Backend::Sqlite).await;
    let provider = app.ollama_provider("local").await;
    let browser = Browser::launch().await;
    open(&browser, &app, "/agents").await;

    // Act: everything but the system prompt.
    fill_agent_form(&browser, "no-prompt", provider).await;
    browser.click("#agent-save").await;

    // Assert: the server's message sits in the system prompt's field, and nothing was made.
    let field = "#agent-form .field:has(> #agent-system-prompt) .field-error";
    browser
        .wait_text(field, Text::Equals("is required and must not be blank"))
        .await;
    browser.wait_for("#agent-form").await;
    assert_eq!(
        app.get("/api/agents").await.json()["total"],
        0,
        "no agent is created"
    );
    browser.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tasks_are_assigned_and_unassigned_from_the_agent_card() {
    // Arrange: a provider, an agent and a task over the API, not assigned.
    let app = TestApp::spawn(Backend::Sqlite).await;
    let provider = app.ollama_provider("local").await;
    let agent = app.agent_on("classifier", provider).await;
    let task = app.simple_task("sentiment").await;
    let browser = Browser::launch().await;
    open(&browser, &app, "/agents").await;
    let card = "[data-testid=agent-card][data-agent-name=\"classifier\"]";
    let count = format!("{card} [data-testid=task-count]");
    let checkbox = format!("{card} [data-testid=assign-task][data-task-name=\"sentiment\"]");
    browser.wait_text(&count, Text::Equals("0 tasks")).await;

    // Act: assign
    browser
        .click(&format!("{card} [data-testid=manage-tasks]"))
        .await;
    browser.set_checked(&checkbox, true).await;

    // Assert
    browser.wait_text(&count, Text::Equals("1 task")).await;
    let assigned = app.get(&format!("/api/agents/{agent}")).await.json();
    assert_eq!(assigned["tasks"][0]["id"], json!(task), "{assigned}");
    assert_eq!(assigned["tasks"].as_array().map(Vec::len), Some(1));

    // Act: unassign
    browser.set_checked(&checkbox, false).await;

    // Assert
    browser.wait_text(&count, Text::Equals("0 tasks")).await;
    let unassigned = app.get(&format!("/api/agents/{agent}")).await.json();
    assert_eq!(unassigned["tasks"], json!([]), "{unassigned}");
    assert_not_reloaded(&browser).await;
    browser.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lists_longer_than_one_page_are_shown_whole() {
    // More agents than the API's largest page (200).
    let app = TestApp::spawn(Backend::Sqlite).await;
    let provider = app.ollama_provider("local").await;
    for i in 0..205 {
        app.agent_on(&format!("agent-{i:03}"), provider).await;
    }
    let browser = Browser::launch().await;
    open(&browser, &app, "/agents").await;
    browser
        .wait_for("[data-testid=agent-card][data-agent-name=\"agent-204\"]")
        .await;
    assert_eq!(browser.count("[data-testid=agent-card]").await, 205);
    browser.close().await;
}
