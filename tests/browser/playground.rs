//! The run playground: an agent assigned a task runs it from the browser against the real test
//! LLM, and a succeeded run with schema-valid output appears.

use std::time::Duration;

use agentry_tests::llm::llama_server;
use agentry_tests::{Backend, TestApp, agent_body, closed_schema, task_body};
use serde_json::{Value, json};

use crate::driver::{Browser, Text};
use crate::open;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_run_from_the_playground_succeeds_with_schema_valid_output() {
    // Arrange: provider (the real model), task and agent over the API, the task assigned.
    let llm = llama_server().await;
    let app = TestApp::spawn(Backend::Sqlite).await;
    let provider = app
        .create_provider(
            &json!({"name": "llama", "kind": "openai_compatible", "base_url": llm.base_url()}),
        )
        .await
        .id();
    let mut task = task_body("sentiment");
    task["response_schema"] = closed_schema();
    let task = app.create_task(&task).await.id();
    let mut agent = agent_body("runner", provider);
    agent["model"] = json!(llm.model());
    agent["temperature"] = json!(0);
    agent["max_retries"] = json!(3);
    let agent = app.create_agent(&agent).await.id();
    app.assign(agent, task).await.assert_status(201);

    // Act: open the agent's playground from its card, fill the generated form, run.
    let mut browser = Browser::launch().await;
    browser.set_timeout(Duration::from_secs(60));
    open(&browser, &app, "/agents").await;
    browser
        .click("[data-testid=agent-card][data-agent-name=\"runner\"] [data-testid=open-playground]")
        .await;
    browser.wait_for("#run-task").await;
    browser.select("#run-task", &task.to_string()).await;
    browser
        .fill("[data-testid=run-input-text]", "What a wonderful day!")
        .await;
    browser.click("#run-start").await;

    // Assert: the run succeeds live, with output marked valid; the output shown is the
    // stored one and matches the response schema.
    browser
        .wait_text("[data-testid=run-status]", Text::Equals("succeeded"))
        .await;
    browser.wait_for("[data-testid=run-valid]").await;
    let shown: Value = serde_json::from_str(&browser.text("[data-testid=run-output]").await)
        .expect("the output block is JSON");
    let validator = jsonschema::validator_for(&closed_schema()).unwrap();
    assert!(validator.is_valid(&shown), "{shown}");
    let runs = app.get(&format!("/api/runs?agent_id={agent}")).await.json();
    assert_eq!(runs["total"], 1);
    assert_eq!(runs["items"][0]["status"], "succeeded");
    assert_eq!(runs["items"][0]["output"], shown);
    assert!(
        browser.count("[data-testid=run-row]").await >= 1,
        "the run is in the history"
    );
    browser.close().await;
}
