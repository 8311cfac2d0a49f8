//! Workers section, the pool status in the header and the Runs section, against the real
//! server with a real remote `agentry worker` process.

use agentry_tests::fakes::{self, Behavior, Reply};
use agentry_tests::workers::WorkerProcess;
use agentry_tests::{Backend, TestApp};
use serde_json::json;

use crate::driver::{Browser, Text};
use crate::{assert_not_reloaded, open};

const VALID: &str = r#"{"sentiment":"positive","score":0.9}"#;

fn card(name: &str) -> String {
    format!("[data-testid=worker-card][data-worker=\"{name}\"]")
}

/// The command the Add worker dialog shows, split into its token.
fn token_of(command: &str) -> String {
    command
        .split_whitespace()
        .skip_while(|w| *w != "--token")
        .nth(1)
        .expect("a --token in the command")
        .to_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_worker_added_from_the_dialog_appears_live_and_can_be_switched_and_revoked() {
    let app = TestApp::spawn(Backend::Sqlite).await;
    let browser = Browser::launch().await;
    open(&browser, &app, "/workers").await;

    // The built-in worker is there and online; the header counts it.
    let builtin = card("built-in");
    browser
        .wait_attr(
            &format!("{builtin} [data-testid=worker-status]"),
            "data-status",
            "online",
        )
        .await;
    browser
        .wait_text("[data-testid=pool-status]", Text::Contains("1 worker"))
        .await;

    // Add worker: a token and the exact command to run.
    browser.click("#worker-add").await;
    let command = browser
        .wait_text(
            "[data-testid=worker-command]",
            Text::Contains("agentry worker --server"),
        )
        .await;
    assert!(command.contains(&app.base_url), "{command}");
    let token = token_of(&command);
    assert!(token.starts_with("agwt_"), "{command}");

    // Run it: the new worker appears without a reload.
    let dir = tempfile::tempdir().expect("worker dir");
    let _worker = WorkerProcess::spawn(&app, dir.path(), &["--token", &token, "--name", "gpu-1"]);
    let remote = card("gpu-1");
    browser
        .wait_attr(
            &format!("{remote} [data-testid=worker-status]"),
            "data-status",
            "online",
        )
        .await;
    browser
        .wait_text("[data-testid=pool-status]", Text::Contains("2 workers"))
        .await;
    assert_eq!(
        browser
            .text(&format!("{remote} [data-testid=worker-tags]"))
            .await,
        "—"
    );
    // Tags given through the API show on its card live.
    for tag in ["gpu", "region=eu"] {
        app.post("/api/tags", &json!({"name": tag}))
            .await
            .assert_status(201);
    }
    let remote_id = app.worker_status("gpu-1", "online").await["id"]
        .as_str()
        .unwrap()
        .to_owned();
    app.put(
        &format!("/api/workers/{remote_id}/tags"),
        &json!({"tags": ["region=eu", "gpu"]}),
    )
    .await
    .assert_status(200);
    browser
        .wait_text(
            &format!("{remote} [data-testid=worker-tags]"),
            Text::Equals("gpu, region=eu"),
        )
        .await;
    // The tag manager: create a tag, give it to the worker from its card, delete it.
    let lan = "[data-testid=tag-row][data-tag=\"lan\"]";
    browser.fill("#tag-name", "lan").await;
    browser.fill("#tag-note", "office network").await;
    browser.click("#tag-create").await;
    browser
        .wait_text(
            &format!("{lan} [data-testid=tag-workers]"),
            Text::Equals("0 workers"),
        )
        .await;
    browser
        .click(&format!("{remote} [data-testid=worker-tags-edit]"))
        .await;
    browser
        .fill(
            &format!("{remote} [data-testid=worker-tags-input]"),
            "gpu, lan",
        )
        .await;
    browser
        .click(&format!("{remote} [data-testid=worker-tags-save]"))
        .await;
    browser
        .wait_text(
            &format!("{remote} [data-testid=worker-tags]"),
            Text::Equals("gpu, lan"),
        )
        .await;
    browser
        .wait_text(
            &format!("{lan} [data-testid=tag-workers]"),
            Text::Equals("1 worker"),
        )
        .await;
    browser
        .click(&format!("{lan} [data-testid=tag-delete]"))
        .await;
    browser.wait_gone(lan).await;
    browser
        .wait_text(
            &format!("{remote} [data-testid=worker-tags]"),
            Text::Equals("gpu"),
        )
        .await;

    // Disable the built-in worker from its card.
    browser
        .click(&format!("{builtin} [data-testid=worker-toggle]"))
        .await;
    browser
        .wait_attr(
            &format!("{builtin} [data-testid=worker-status]"),
            "data-status",
            "disabled",
        )
        .await;

    // Revoke the remote worker, with confirmation.
    browser
        .click(&format!("{remote} [data-testid=worker-revoke]"))
        .await;
    browser
        .click(&format!("{remote} [data-testid=confirm-delete]"))
        .await;
    browser.wait_gone(&remote).await;
    // No worker online now: the header says so in its warning colour.
    browser
        .wait_text("[data-testid=pool-status]", Text::Contains("0 workers"))
        .await;
    let class = browser
        .eval("document.querySelector('[data-testid=pool-status]').className")
        .await;
    assert!(
        class.as_str().is_some_and(|c| c.contains("pool-none")),
        "{class}"
    );
    assert_not_reloaded(&browser).await;

    // The header's pool status opens Workers from anywhere.
    browser.click("#nav-agents").await;
    browser.wait_for("#tab-providers").await;
    browser.click("[data-testid=pool-status]").await;
    browser.wait_for(&builtin).await;
    browser.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_runs_section_lists_every_run_live_with_filters_cancel_and_retry() {
    let openai = fakes::openai::start().await;
    openai.set_default_reply(Reply::Text(VALID.to_owned()));
    let app = TestApp::spawn(Backend::Sqlite).await;
    let provider = json!({"name": "o", "kind": "openai", "base_url": openai.url("/v1"),
        "api_key": fakes::openai::KEY});
    let url = app.runnable(&provider, "gpt-4o-mini", json!({})).await;
    let done = app
        .post(&url, &json!({"input": {"text": "great"}}))
        .await
        .json();
    assert_eq!(done["status"], "succeeded");

    let browser = Browser::launch().await;
    open(&browser, &app, "/runs").await;
    browser
        .wait_for("[data-testid=all-run-row][data-status=succeeded]")
        .await;
    assert_eq!(browser.count("[data-testid=all-run-row]").await, 1);
    browser
        .wait_text("[data-testid=all-run-worker]", Text::Equals("built-in"))
        .await;

    // A run started elsewhere appears live; it hangs at the provider until canceled here.
    openai.set_behavior(Behavior::Hang);
    let hanging = app
        .post(&url, &json!({"input": {"text": "slow"}, "mode": "async"}))
        .await
        .id();
    let row = format!("[data-testid=all-run-row][data-run-id=\"{hanging}\"]");
    browser
        .wait_for(&format!("{row}[data-status=running]"))
        .await;
    browser
        .click(&format!("{row} [data-testid=all-run-cancel]"))
        .await;
    browser
        .wait_for(&format!("{row}[data-status=canceled]"))
        .await;

    // Filter by status.
    browser.select("#runs-filter-status", "succeeded").await;
    browser.wait_gone(&row).await;
    assert_eq!(browser.count("[data-testid=all-run-row]").await, 1);
    browser.select("#runs-filter-status", "").await;
    browser.wait_for(&row).await;

    // Retry the canceled run: a new run appears and succeeds.
    openai.set_behavior(Behavior::Normal);
    browser
        .click(&format!("{row} [data-testid=all-run-retry]"))
        .await;
    browser
        .wait_js(
            "a retried run that succeeded",
            "document.querySelectorAll('[data-testid=all-run-row][data-status=succeeded]').length === 2",
        )
        .await;
    assert_not_reloaded(&browser).await;
    let runs = app.get("/api/runs").await.json();
    let retried = runs["items"][0].clone();
    assert_eq!(retried["retry_of"], json!(hanging.to_string()), "{runs}");

    // A row opens the run's detail view.
    browser
        .click(&format!("{row} [data-testid=all-run-open]"))
        .await;
    browser
        .wait_text("[data-testid=run-status]", Text::Contains("canceled"))
        .await;
    browser.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_run_no_worker_can_take_says_why_and_starts_once_a_worker_gets_the_tag() {
    let openai = fakes::openai::start().await;
    openai.set_default_reply(Reply::Text(VALID.to_owned()));
    let app = TestApp::spawn(Backend::Sqlite).await;
    app.post("/api/tags", &json!({"name": "big"}))
        .await
        .assert_status(201);
    let provider = json!({"name": "o", "kind": "openai", "base_url": openai.url("/v1"),
        "api_key": fakes::openai::KEY});
    let url = app
        .runnable(&provider, "gpt-4o-mini", json!({"required_tags": ["big"]}))
        .await;
    let run = app
        .post(&url, &json!({"input": {"text": "great"}, "mode": "async"}))
        .await
        .assert_status(202)
        .json();
    let id = run["id"].as_str().unwrap().to_owned();

    let browser = Browser::launch().await;
    open(&browser, &app, "/runs").await;
    let row = format!("[data-testid=all-run-row][data-run-id=\"{id}\"]");
    browser
        .click(&format!("{row} [data-testid=all-run-open]"))
        .await;
    browser
        .wait_text(
            "[data-testid=run-waiting-reason]",
            Text::Contains("no worker has tag big"),
        )
        .await;
    // The built-in worker gets the tag: the run starts and the reason goes, live.
    let builtin = app.builtin_worker().await;
    app.put(
        &format!("/api/workers/{builtin}/tags"),
        &json!({"tags": ["big"]}),
    )
    .await
    .assert_status(200);
    browser
        .wait_text("[data-testid=run-status]", Text::Contains("succeeded"))
        .await;
    browser.wait_gone("[data-testid=run-waiting-reason]").await;
    browser.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_workers_page_shows_its_health_keys_and_runs_with_links() {
    let openai = fakes::openai::start().await;
    openai.set_default_reply(Reply::Text(VALID.to_owned()));
    let app = TestApp::spawn_with(Backend::Sqlite, |c| {
        c.queue.heartbeat = std::time::Duration::from_millis(500);
    })
    .await;
    let provider = json!({"name": "o", "kind": "openai", "base_url": openai.url("/v1"),
        "api_key": fakes::openai::KEY});
    let url = app.runnable(&provider, "gpt-4o-mini", json!({})).await;
    let done = app
        .post(&url, &json!({"input": {"text": "great"}}))
        .await
        .json();
    assert_eq!(done["status"], "succeeded");
    let run_id = done["id"].as_str().unwrap().to_owned();

    let browser = Browser::launch().await;
    open(&browser, &app, "/workers").await;
    browser
        .click(&format!(
            "{} [data-testid=worker-detail-link]",
            card("built-in")
        ))
        .await;
    browser
        .wait_text("[data-testid=worker-name]", Text::Equals("built-in"))
        .await;
    browser
        .wait_attr(
            "[data-testid=worker-page] [data-testid=worker-status]",
            "data-status",
            "online",
        )
        .await;
    // The built-in worker's health arrives with its heartbeats, live.
    browser
        .wait_text("[data-testid=health-disk]", Text::Contains(" free of "))
        .await;
    browser
        .wait_text("[data-testid=health-memory]", Text::Contains("%"))
        .await;
    browser.wait_for("[data-testid=health-history]").await;
    browser
        .wait_text(
            "[data-testid=worker-capabilities]",
            Text::Contains("Ollama, OpenAI"),
        )
        .await;
    browser
        .wait_text(
            "[data-testid=worker-local-networks]",
            Text::Contains("reaches providers on loopback and private networks"),
        )
        .await;
    // Its runs, each linking to the run.
    let row = format!("[data-testid=worker-recent-runs] [data-run=\"{run_id}\"]");
    browser.wait_for(&row).await;
    browser
        .click(&format!("{row} [data-testid=worker-run-link]"))
        .await;
    let path = browser
        .eval("window.location.pathname + window.location.search")
        .await;
    assert!(
        path.as_str()
            .unwrap_or("")
            .contains(&format!("run={run_id}")),
        "{path}"
    );
    assert_not_reloaded(&browser).await;
    browser.close().await;
}
