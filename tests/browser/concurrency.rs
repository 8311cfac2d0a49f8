//! The Concurrency tab of the Workers section (groups with live counts, created and changed
//! from the page) and the group and tag pickers on the agent form, against the real server with its
//! built-in worker and a provider fake that holds every call.

use agentry_tests::fakes::{self, Behavior};
use agentry_tests::{Backend, TestApp, agent_body, closed_schema, task_body};
use serde_json::{Value, json};

use crate::agents::fill_agent_form;
use crate::driver::{Browser, Text};
use crate::{assert_not_reloaded, open};

fn row(name: &str) -> String {
    format!("[data-testid=group-row][data-group=\"{name}\"]")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_concurrency_page_shows_live_counts_and_changes_limits() {
    let stuck = fakes::openai::start().await;
    stuck.set_behavior(Behavior::Hang);
    let app = TestApp::spawn_with(Backend::Sqlite, |c| c.builtin_worker_slots = Some(8)).await;
    let browser = Browser::launch().await;
    open(&browser, &app, "/workers").await;
    browser.click("#tab-concurrency").await;
    browser.wait_for("[data-testid=concurrency-empty]").await;

    // Create a group from the page.
    browser.fill("#group-name", "gpu-box").await;
    browser.fill("#group-limit", "1").await;
    browser.fill("#group-note", "one GPU").await;
    browser.click("#group-create").await;
    let gpu = row("gpu-box");
    browser
        .wait_text(
            &format!("{gpu} [data-testid=group-active]"),
            Text::Equals("0 / 1"),
        )
        .await;
    // A bad name is refused where it was typed, and nothing is added.
    browser.fill("#group-name", "GPU Box").await;
    browser.click("#group-create").await;
    browser
        .wait_text("#section-panel .field-error", Text::Contains("name"))
        .await;
    assert_eq!(browser.count("[data-testid=group-row]").await, 1);

    // An agent in the group, and three runs of it: one holds the slot, two wait.
    let groups = app.get("/api/concurrency-groups").await.json();
    let group_id = groups[0]["id"].clone();
    let provider = json!({"name": "o", "kind": "openai", "base_url": stuck.url("/v1"),
        "api_key": fakes::openai::KEY});
    let provider = app.create_provider(&provider).await.assert_status(201).id();
    let mut task = task_body("sentiment");
    task["response_schema"] = closed_schema();
    let task = app.create_task(&task).await.assert_status(201).id();
    let mut agent = agent_body("held", provider);
    agent["model"] = json!("gpt-4o-mini");
    agent["concurrency_group_id"] = group_id;
    let agent = app.create_agent(&agent).await.assert_status(201).id();
    app.assign(agent, task).await.assert_status(201);
    let mut runs = Vec::new();
    for _ in 0..3 {
        let body = json!({"input": {"text": "hello"}, "mode": "async"});
        let run = app
            .post(&format!("/api/agents/{agent}/tasks/{task}/runs"), &body)
            .await
            .assert_status(202)
            .json();
        runs.push(run["id"].as_str().unwrap().to_owned());
    }
    browser
        .wait_text(
            &format!("{gpu} [data-testid=group-active]"),
            Text::Equals("1 / 1"),
        )
        .await;
    browser
        .wait_text(
            &format!("{gpu} [data-testid=group-queued]"),
            Text::Equals("2"),
        )
        .await;
    browser
        .wait_text(
            &format!("{gpu} [data-testid=group-agents]"),
            Text::Equals("1"),
        )
        .await;

    // Raise the limit from the page: the waiting runs start, live.
    browser
        .fill(&format!("{gpu} [data-testid=group-limit-input]"), "3")
        .await;
    browser
        .click(&format!("{gpu} [data-testid=group-limit-save]"))
        .await;
    browser
        .wait_text(
            &format!("{gpu} [data-testid=group-active]"),
            Text::Equals("3 / 3"),
        )
        .await;
    browser
        .wait_text(
            &format!("{gpu} [data-testid=group-queued]"),
            Text::Equals("0"),
        )
        .await;
    // A group agents are in cannot be deleted: the page says why.
    browser
        .click(&format!("{gpu} [data-testid=group-delete]"))
        .await;
    browser
        .wait_text("[data-testid=error-banner]", Text::Contains("held"))
        .await;
    for run in &runs {
        app.post(&format!("/api/runs/{run}/cancel"), &json!({}))
            .await
            .assert_status(202);
    }
    browser
        .wait_text(
            &format!("{gpu} [data-testid=group-active]"),
            Text::Equals("0 / 3"),
        )
        .await;
    assert_not_reloaded(&browser).await;
    browser.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_agent_form_puts_an_agent_in_a_concurrency_group() {
    let app = TestApp::spawn(Backend::Sqlite).await;
    let provider = app.ollama_provider("local").await;
    for tag in ["gpu", "eu"] {
        app.post("/api/tags", &json!({"name": tag}))
            .await
            .assert_status(201);
    }
    let group = app
        .post(
            "/api/concurrency-groups",
            &json!({"name": "shared-key", "limit": 2}),
        )
        .await
        .assert_status(201)
        .id();
    let browser = Browser::launch().await;
    open(&browser, &app, "/agents").await;
    fill_agent_form(&browser, "limited", provider).await;
    browser
        .fill("#agent-system-prompt", "You are a careful classifier.")
        .await;
    browser
        .wait_text(
            "#agent-concurrency-group",
            Text::Contains("shared-key (at most 2 at once)"),
        )
        .await;
    browser
        .select("#agent-concurrency-group", &group.to_string())
        .await;
    // Required tags picked from the tags that exist: a second click takes one back out.
    for tag in ["gpu", "eu", "eu"] {
        browser
            .click(&format!("[data-testid=tag-pick][data-tag={tag}]"))
            .await;
    }
    browser
        .wait_attr(
            "[data-testid=tag-pick][data-tag=gpu]",
            "aria-pressed",
            "true",
        )
        .await;
    browser.click("#agent-save").await;
    browser.wait_gone("#agent-form").await;
    let agents = app.get("/api/agents").await.json();
    assert_eq!(agents["items"][0]["concurrency_group_id"], json!(group));
    assert_eq!(agents["items"][0]["required_tags"], json!(["gpu"]));

    // Editing it shows the group, and "none" takes it out.
    let card = "[data-testid=agent-card][data-agent-name=\"limited\"]";
    browser
        .click(&format!("{card} [data-testid=edit-agent]"))
        .await;
    let chosen = browser
        .eval("document.querySelector('#agent-concurrency-group').value")
        .await;
    assert_eq!(chosen, Value::String(group.to_string()));
    browser.select("#agent-concurrency-group", "").await;
    browser.click("#agent-save").await;
    browser.wait_gone("#agent-form").await;
    let agents = app.get("/api/agents").await.json();
    assert!(agents["items"][0]["concurrency_group_id"].is_null());
    browser.close().await;
}
