//! Providers page: creating a provider through the form and watching its live status.

use std::time::Duration;

use agentry_tests::llm::llama_server;
use agentry_tests::{Backend, TestApp};
use serde_json::json;

use crate::driver::{Browser, Text};
use crate::{assert_not_reloaded, open};

fn card(name: &str) -> String {
    format!("[data-testid=provider-card][data-provider-name=\"{name}\"]")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn provider_created_in_the_form_turns_connected_without_reload() {
    // Arrange: the real test LLM, and a server whose validator checks new providers.
    let llm = llama_server().await;
    let app = TestApp::spawn_with(Backend::Sqlite, |config| {
        config.validator.enabled = true;
    })
    .await;
    let mut browser = Browser::launch().await;
    open(&browser, &app, "/providers").await;

    // Act
    browser.click("#provider-new").await;
    browser.fill("#provider-name", "llama").await;
    browser.select("#provider-kind", "openai_compatible").await;
    browser.fill("#provider-base-url", llm.base_url()).await;
    browser.click("#provider-save").await;

    // Assert: the form closes, the card appears and its badge follows the check.
    browser.wait_gone("#provider-form").await;
    let card = card("llama");
    browser.wait_for(&card).await;
    // The first check loads the model list of llama-server: generous on a busy machine.
    browser.set_timeout(Duration::from_secs(40));
    browser
        .wait_attr(
            &format!("{card} [data-testid=status-badge]"),
            "data-status",
            "connected",
        )
        .await;
    browser
        .wait_text(
            &format!("{card} [data-testid=models-count]"),
            Text::Equals("1 model"),
        )
        .await;
    assert_not_reloaded(&browser).await;
    let providers = app.get("/api/providers").await.json();
    assert_eq!(providers["items"][0]["validation_status"], "connected");
    browser.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn provider_form_shows_the_servers_duplicate_name_error() {
    // Arrange: a provider that already has the name.
    let app = TestApp::spawn(Backend::Sqlite).await;
    app.create_provider(&json!({
        "name": "local", "kind": "ollama", "base_url": "http://127.0.0.1:11434"
    }))
    .await
    .assert_status(201);
    let browser = Browser::launch().await;
    open(&browser, &app, "/providers").await;
    browser.wait_for(&card("local")).await;

    // Act
    browser.click("#provider-new").await;
    browser.fill("#provider-name", "local").await;
    browser.select("#provider-kind", "ollama").await;
    browser
        .fill("#provider-base-url", "http://127.0.0.1:11435")
        .await;
    browser.click("#provider-save").await;

    // Assert: the server's 409 duplicate_name detail, on the form, which stays open.
    browser
        .wait_text(
            "#provider-form [data-testid=form-error]",
            Text::Contains("a provider with this name already exists"),
        )
        .await;
    browser.wait_for("#provider-form").await;
    assert_eq!(browser.count("[data-testid=provider-card]").await, 1);
    browser.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deleting_a_provider_an_agent_uses_explains_and_soft_deletes_it() {
    // Arrange: a provider with one agent on it, over the API.
    let app = TestApp::spawn(Backend::Sqlite).await;
    let provider = app.ollama_provider("local").await;
    app.agent_on("classifier", provider).await;
    let browser = Browser::launch().await;
    open(&browser, &app, "/providers").await;
    let card = card("local");

    // Act
    browser
        .click(&format!("{card} [data-testid=delete-provider]"))
        .await;

    // Assert: the confirmation says the provider is kept for its agent…
    browser
        .wait_text(
            &format!("{card} [role=alertdialog]"),
            Text::Contains(
                "1 agent uses it: it will be hidden from lists but kept for that agent \
                 (soft delete) until the agent is moved to another provider.",
            ),
        )
        .await;

    // …and confirming removes the card while the server keeps the provider, inactive.
    browser
        .click(&format!("{card} [data-testid=confirm-delete]"))
        .await;
    browser.wait_gone(&card).await;
    assert_not_reloaded(&browser).await;
    let stored = app.get(&format!("/api/providers/{provider}")).await;
    stored.assert_status(200);
    assert_eq!(
        stored.json()["is_active"],
        false,
        "soft-deleted: {}",
        stored.text
    );
    assert_eq!(app.get("/api/providers").await.json()["total"], 0);
    browser.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_provider_whose_key_lives_on_workers_shows_who_holds_it_and_who_checked_it() {
    use agentry_tests::fakes;
    use agentry_tests::workers::{WorkerProcess, credentials};

    // A provider fake that only the worker's key opens, and a server that checks providers.
    const KEY: &str = "sk-held-by-the-worker-only-0123456789";
    let openai = fakes::openai::start_with(fakes::Options {
        api_key: Some(KEY.to_owned()),
        ..fakes::openai::options()
    })
    .await;
    let app = TestApp::spawn_with(Backend::Sqlite, |config| {
        config.validator.enabled = true;
        config.builtin_worker = false;
    })
    .await;
    let mut browser = Browser::launch().await;
    open(&browser, &app, "/providers").await;

    // The form: the key's place is chosen, and then no key field is offered.
    browser.click("#provider-new").await;
    browser.fill("#provider-name", "vault").await;
    browser.select("#provider-kind", "openai").await;
    browser.fill("#provider-base-url", &openai.url("/v1")).await;
    browser
        .select("#provider-credential-location", "worker")
        .await;
    browser
        .wait_text(
            "[data-testid=worker-key-hint]",
            Text::Contains("agentry worker credentials set \"vault\""),
        )
        .await;
    assert_eq!(browser.count("#provider-api-key").await, 0);
    browser.click("#provider-save").await;
    browser.wait_gone("#provider-form").await;
    let card = card("vault");
    browser
        .wait_text(
            &format!("{card} [data-testid=provider-key]"),
            Text::Equals("on workers (no worker holds it yet)"),
        )
        .await;
    let providers = app.get("/api/providers").await.json();
    assert_eq!(providers["items"][0]["credential_location"], "worker");
    assert_eq!(providers["items"][0]["has_api_key"], false);

    // A worker that holds the key connects: the card says so, and the check it ran.
    let dir = tempfile::tempdir().expect("worker dir");
    let (ok, out) = credentials(dir.path(), &["set", "vault"], KEY).await;
    assert!(ok, "{out}");
    let token = app.worker_token().await;
    let _worker = WorkerProcess::spawn(
        &app,
        dir.path(),
        &["--token", &token, "--name", "vault-box"],
    );
    browser.set_timeout(Duration::from_secs(30));
    browser
        .wait_text(
            &format!("{card} [data-testid=provider-key]"),
            Text::Equals("on workers: vault-box"),
        )
        .await;
    browser
        .wait_attr(
            &format!("{card} [data-testid=status-badge]"),
            "data-status",
            "connected",
        )
        .await;
    browser
        .wait_text(
            &format!("{card} [data-testid=provider-checked-by]"),
            Text::Equals("vault-box"),
        )
        .await;
    assert_not_reloaded(&browser).await;
    browser.close().await;
}
