//! Runs end to end: schema-checked output from a real model, repair of invalid answers,
//! transient retries, timeouts, cancellation, configuration snapshots, forward-only status.

use std::time::Duration;

use agentry::db::runs::{Finish, transition};
use agentry_tests::fakes::{self, Behavior, Reply};
use agentry_tests::llm::llama_server;
use agentry_tests::{Backend, TestApp, closed_schema, db_tests};
use contracts::RunStatus;
use serde_json::{Value, json};

pub(crate) const VALID: &str = r#"{"sentiment":"positive","score":0.9}"#;

pub(crate) fn input() -> Value {
    json!({"input": {"text": "What a wonderful day!"}})
}

fn assert_valid(output: &Value) {
    let validator = jsonschema::validator_for(&closed_schema()).unwrap();
    assert!(
        validator.is_valid(output),
        "output does not match the schema: {output}"
    );
}

/// An agent on an OpenAI fake (model `gpt-4o-mini`), assigned the sentiment task; `patch`
/// overrides agent fields. Returns the runs URL.
pub(crate) async fn on_openai(app: &TestApp, openai: &fakes::Fake, patch: Value) -> String {
    let provider = json!({"name": "o", "kind": "openai", "base_url": openai.url("/v1"),
        "api_key": fakes::openai::KEY});
    app.runnable(&provider, "gpt-4o-mini", patch).await
}

fn kinds(events: &[Value]) -> Vec<String> {
    events
        .iter()
        .map(|e| e["kind"].as_str().unwrap().to_owned())
        .collect()
}

async fn real_model_returns_schema_valid_output(backend: Backend) {
    let llm = llama_server().await;
    let app = TestApp::spawn(backend).await;
    let url = app
        .runnable(
            &json!({"name": "llama", "kind": "openai_compatible", "base_url": llm.base_url()}),
            llm.model(),
            json!({"max_retries": 3, "max_tokens": 64}),
        )
        .await;
    let resp = app.post(&url, &input()).await;
    resp.assert_status(201);
    let run = resp.json();
    assert_eq!(run["status"], "succeeded", "{run}");
    assert_valid(&run["output"]);
    assert!(run["attempts"].as_u64().unwrap() >= 1);
    assert!(run["completion_tokens"].as_u64().unwrap() > 0);
    assert_eq!(run["snapshot"]["provider_kind"], "openai_compatible");
}

async fn real_model_through_the_ollama_api_returns_schema_valid_output(backend: Backend) {
    let ollama = fakes::ollama::start().await;
    let app = TestApp::spawn(backend).await;
    let url = app
        .runnable(
            &json!({"name": "ollama", "kind": "ollama", "base_url": ollama.base_url()}),
            fakes::ollama::MODEL,
            json!({"max_retries": 3, "max_tokens": 64}),
        )
        .await;
    let run = app.post(&url, &input()).await.json();
    assert_eq!(run["status"], "succeeded", "{run}");
    assert_valid(&run["output"]);
    let chat = ollama.requests_to("/api/chat").pop().unwrap();
    assert_eq!(
        chat.body["format"],
        closed_schema(),
        "the schema is sent as `format`"
    );
}

async fn invalid_answers_are_repaired(backend: Backend) {
    let anthropic = fakes::anthropic::start().await;
    anthropic.push_replies([
        Reply::Text("I think it is positive.".to_owned()),
        Reply::ToolInput(json!({"sentiment": "positive", "score": 0.8})),
    ]);
    let gemini = fakes::gemini::start().await;
    gemini.push_replies([
        Reply::Text(r#"{"sentiment":"great","score":1}"#.to_owned()),
        Reply::Text(VALID.to_owned()),
    ]);
    let app = TestApp::spawn(backend).await;
    let cases = [
        (
            "anthropic",
            anthropic.base_url(),
            fakes::anthropic::KEY,
            fakes::anthropic::options().models[0].clone(),
        ),
        (
            "gemini",
            gemini.base_url(),
            fakes::gemini::KEY,
            fakes::gemini::options().models[0].clone(),
        ),
    ];
    for (kind, base_url, key, model) in cases {
        let url = app
            .runnable(
                &json!({"name": kind, "kind": kind, "base_url": base_url, "api_key": key}),
                &model,
                json!({}),
            )
            .await;
        let run = app.post(&url, &input()).await.json();
        assert_eq!(run["status"], "succeeded", "{kind}: {run}");
        assert_eq!(run["attempts"], 2, "{kind}");
        assert_valid(&run["output"]);
        let events = app.run_events(run["id"].as_str().unwrap()).await;
        assert_eq!(
            kinds(&events),
            [
                "status",
                "status",
                "attempt",
                "validation_error",
                "attempt",
                "status"
            ],
            "{kind}"
        );
        assert_eq!(events[3]["data"]["attempt"], 1);
        app.delete(&format!(
            "/api/agents/{}",
            run["agent_id"].as_str().unwrap()
        ))
        .await;
        app.delete(&format!("/api/tasks/{}", run["task_id"].as_str().unwrap()))
            .await;
    }
    // The repair request showed the model its answer and what was wrong.
    let second = gemini.requests().pop().unwrap();
    let text = second.body.to_string();
    assert!(text.contains("great"), "previous answer sent back");
    assert!(text.contains("/sentiment"), "validation errors sent back");
    // Anthropic got a forced tool whose input schema is the response schema.
    let request = anthropic.requests_to("/v1/messages").pop().unwrap();
    assert_eq!(request.body["tool_choice"]["type"], "tool");
    assert_eq!(request.body["tools"][0]["input_schema"], closed_schema());
    let request = gemini.requests().pop().unwrap();
    assert_eq!(
        request.body["generationConfig"]["responseMimeType"],
        "application/json"
    );
}

async fn always_invalid_fails_after_every_attempt(backend: Backend) {
    let openai = fakes::openai::start().await; // answers a greeting, never JSON
    let app = TestApp::spawn(backend).await;
    let url = on_openai(&app, &openai, json!({"max_retries": 2})).await;
    let run = app.post(&url, &input()).await.json();
    assert_eq!(run["status"], "failed");
    assert_eq!(run["attempts"], 3);
    assert_eq!(
        run["output"],
        Value::Null,
        "never output that does not validate"
    );
    let error = run["error"].as_str().unwrap();
    for attempt in 1..=3 {
        assert!(error.contains(&format!("attempt {attempt}:")), "{error}");
    }
    assert!(run["raw_output"].as_str().unwrap().contains("Hello"));
    let events = app.run_events(run["id"].as_str().unwrap()).await;
    assert_eq!(
        kinds(&events)
            .iter()
            .filter(|k| *k == "validation_error")
            .count(),
        3
    );
    // OpenAI got json_schema, strict because the schema qualifies.
    let body = openai
        .requests_to("/v1/chat/completions")
        .pop()
        .unwrap()
        .body;
    assert_eq!(body["response_format"]["type"], "json_schema");
    assert_eq!(body["response_format"]["json_schema"]["strict"], true);
}

async fn rate_limits_are_retried_after_the_requested_delay(backend: Backend) {
    let openai = fakes::openai::start().await;
    openai.push_once(Behavior::rate_limited(1));
    openai.push_reply(Reply::Text(VALID.to_owned()));
    let app = TestApp::spawn(backend).await;
    let url = on_openai(&app, &openai, json!({})).await;
    let run = app.post(&url, &input()).await.json();
    assert_eq!(run["status"], "succeeded", "{run}");
    assert_eq!(run["attempts"], 1, "a transient error is not an attempt");
    let events = app.run_events(run["id"].as_str().unwrap()).await;
    let retry = events
        .iter()
        .find(|e| e["kind"] == "provider_error")
        .unwrap();
    assert_eq!(retry["data"]["class"], "rate_limited");
    assert_eq!(retry["data"]["retry_in_ms"], 1000, "Retry-After honoured");
    assert_eq!(openai.requests_to("/v1/chat/completions").len(), 2);
}

async fn a_provider_that_hangs_fails_the_run_at_its_timeout(backend: Backend) {
    let openai = fakes::openai::start().await;
    openai.set_behavior(Behavior::Hang);
    let app = TestApp::spawn(backend).await;
    let url = on_openai(&app, &openai, json!({"timeout_secs": 1})).await;
    let run = app.post(&url, &input()).await.json();
    assert_eq!(run["status"], "failed");
    assert!(
        run["error"].as_str().unwrap().starts_with("timeout:"),
        "{run}"
    );
}

async fn cancel_aborts_the_call_in_flight(backend: Backend) {
    let openai = fakes::openai::start().await;
    openai.set_behavior(Behavior::Hang);
    let app = TestApp::spawn(backend).await;
    let mut ws = app.ws("runs").await;
    let url = on_openai(&app, &openai, json!({})).await;
    let queued = app
        .post(&url, &json!({"input": {"text": "x"}, "mode": "async"}))
        .await;
    queued.assert_status(202);
    assert_eq!(
        queued.header("location"),
        Some(format!("/api/runs/{}", queued.id()).as_str())
    );
    let id = queued.id().to_string();
    openai.wait_for_requests(1, Duration::from_secs(10)).await;
    // The worker calls the provider once it has accepted; the acceptance is stored a moment
    // later.
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while app.get(&format!("/api/runs/{id}")).await.json()["status"] != "running" {
        assert!(std::time::Instant::now() < deadline, "never running");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let canceled = app
        .post(&format!("/api/runs/{id}/cancel"), &json!({}))
        .await;
    canceled.assert_status(202);
    assert_eq!(canceled.json()["status"], "canceled");
    openai.wait_for_abandoned(1, Duration::from_secs(10)).await;
    app.post(&format!("/api/runs/{id}/cancel"), &json!({}))
        .await
        .assert_problem(409, "run_finished");
    // The lifecycle was published on topic `runs`.
    let mut statuses = Vec::new();
    while statuses.last().map(String::as_str) != Some("canceled") {
        let event = ws.next_event().await;
        assert_eq!(event["topic"], "runs");
        statuses.push(event["data"]["status"].as_str().unwrap().to_owned());
    }
    assert_eq!(statuses.first().map(String::as_str), Some("queued"));
    assert!(statuses.contains(&"running".to_owned()));
}

async fn edits_and_deletion_do_not_disturb_runs_in_flight(backend: Backend) {
    let openai = fakes::openai::start().await;
    openai.set_behavior(Behavior::Delay(Duration::from_millis(700)));
    openai.set_default_reply(Reply::Text(VALID.to_owned()));
    let app = TestApp::spawn(backend).await;
    let url = on_openai(&app, &openai, json!({})).await;
    let agent_id = url.split('/').nth(3).unwrap().to_owned();
    let first = app
        .post(&url, &json!({"input": {"text": "a"}, "mode": "async"}))
        .await
        .id();
    openai.wait_for_requests(1, Duration::from_secs(10)).await;
    // Edit the agent while the run waits for its answer.
    let agent = app.get(&format!("/api/agents/{agent_id}")).await.json();
    let edit = json!({"name": "runner", "provider_id": agent["provider_id"], "model": "gpt-4.1-mini",
        "system_prompt": "Changed.", "user_prompt": agent["user_prompt"]});
    app.put(&format!("/api/agents/{agent_id}"), &edit)
        .await
        .assert_status(200);
    let run = app.run_finished(&first.to_string()).await;
    assert_eq!(run["status"], "succeeded");
    assert_eq!(run["snapshot"]["agent_revision"], 1);
    assert_eq!(run["snapshot"]["model"], "gpt-4o-mini");
    let sent = openai.requests_to("/v1/chat/completions");
    assert_eq!(
        sent[0].body["model"], "gpt-4o-mini",
        "the run kept its configuration"
    );
    // A new run sees the edit.
    let second = app.post(&url, &input()).await.json();
    assert_eq!(second["snapshot"]["agent_revision"], 2);
    assert_eq!(second["snapshot"]["model"], "gpt-4.1-mini");
    // Deleting the agent mid-run lets the run finish.
    let third = app
        .post(&url, &json!({"input": {"text": "c"}, "mode": "async"}))
        .await
        .id();
    openai.wait_for_requests(3, Duration::from_secs(10)).await;
    app.delete(&format!("/api/agents/{agent_id}"))
        .await
        .assert_status(204);
    let run = app.run_finished(&third.to_string()).await;
    assert_eq!(run["status"], "succeeded", "{run}");
    // Its history stays readable through its own snapshot.
    let listed = app
        .get(&format!("/api/runs?agent_id={agent_id}"))
        .await
        .json();
    assert_eq!(listed["total"], 3);
}

async fn bad_input_is_422_and_stores_nothing(backend: Backend) {
    let openai = fakes::openai::start().await;
    let app = TestApp::spawn(backend).await;
    let url = on_openai(&app, &openai, json!({})).await;
    let table = [
        (json!({"input": {}}), "/input", "missing required field"),
        (json!({"input": {"text": 5}}), "/input/text", "wrong type"),
        (json!({"input": "text"}), "/input", "not an object"),
        (
            json!({"input": {"text": "x"}, "mode": "later"}),
            "/mode",
            "unknown mode",
        ),
        (json!({"text": "x"}), "/text", "unknown field"),
        (json!({}), "/input", "no input at all"),
    ];
    for (body, path, why) in table {
        let paths = app
            .post(&url, &body)
            .await
            .assert_problem(422, "validation_failed");
        assert!(
            paths.iter().any(|p| p.starts_with(path)),
            "{why}: {paths:?}"
        );
    }
    assert_eq!(app.get("/api/runs").await.json()["total"], 0);
    assert_eq!(
        openai.requests_to("/v1/chat/completions").len(),
        0,
        "no model call"
    );
}

async fn a_template_variable_the_input_lacks_is_422(backend: Backend) {
    let openai = fakes::openai::start().await;
    let app = TestApp::spawn(backend).await;
    let url = on_openai(
        &app,
        &openai,
        json!({"user_prompt": "Classify {{ input.text }} in {{ language }}"}),
    )
    .await;
    let paths = app
        .post(&url, &input())
        .await
        .assert_problem(422, "validation_failed");
    assert_eq!(paths, ["/input"]);
    assert_eq!(app.get("/api/runs").await.json()["total"], 0);
}

/// A template renderer that cannot start is the server's problem: 503 with the reason,
/// nothing stored, no model called.
async fn a_renderer_that_does_not_start_is_503(backend: Backend) {
    let openai = fakes::openai::start().await;
    let app = TestApp::spawn_with(backend, |c| {
        c.render_helper = Some("/nonexistent/agentry".into());
    })
    .await;
    let url = on_openai(&app, &openai, json!({"user_prompt": "Classify {{ text }}"})).await;
    let resp = app.post(&url, &input()).await;
    resp.assert_problem(503, "unavailable");
    assert!(
        resp.text.contains("the template renderer does not start"),
        "{}",
        resp.text
    );
    assert_eq!(app.get("/api/runs").await.json()["total"], 0);
    assert!(openai.requests().is_empty());
}

/// A template that loops for ever, writes without end, builds values until memory runs out or
/// keeps the CPU busy is refused at start with the reason, and no model is called. Templates
/// render in helper processes (a memory limit, a deadline): the server keeps answering, and
/// renders the next template as before.
async fn runaway_templates_are_422_with_the_reason(backend: Backend) {
    let openai = fakes::openai::start().await;
    openai.set_default_reply(Reply::Text(VALID.to_owned()));
    let app = TestApp::spawn(backend).await;
    let doubling = "{% set ns = namespace(s='0123456789abcdef') %}{% for i in range(64) %}\
                    {% set ns.s = ns.s ~ ns.s %}{% endfor %}{{ ns.s | length }}";
    let table = [
        (
            "{% for i in range(100000) %}{% for j in range(100000) %}.{% endfor %}{% endfor %}",
            "takes more than 1000000 steps",
        ),
        (
            "{% for i in range(100000) %}{{ input.text }}{% endfor %}",
            "renders a prompt of more than",
        ),
        (doubling, "needs more than 256 MiB of memory to render"),
        (
            "{{ (items * 10**8) | list | length }}",
            "needs more than 256 MiB",
        ),
        ("{{ 5 in items * 10**9 }}", "takes more than 2 s to render"),
    ];
    let provider = app
        .create_provider(
            &json!({"name": "runaway", "kind": "openai", "base_url": openai.url("/v1"),
            "api_key": fakes::openai::KEY}),
        )
        .await
        .assert_status(201)
        .id();
    for (i, (template, reason)) in table.into_iter().enumerate() {
        let mut agent = agentry_tests::agent_body(&format!("runaway-{i}"), provider);
        agent["model"] = json!("gpt-4o-mini");
        agent["user_prompt"] = json!(template);
        let agent = app.create_agent(&agent).await.assert_status(201).id();
        let task = app.simple_task(&format!("t{i}")).await;
        app.assign(agent, task).await.assert_status(201);
        let resp = app
            .post(
                &format!("/api/agents/{agent}/tasks/{task}/runs"),
                &json!({"input": {"text": "x".repeat(100), "items": [1, 2, 3]}}),
            )
            .await;
        resp.assert_problem(422, "validation_failed");
        assert!(resp.text.contains(reason), "{template}: {}", resp.text);
        app.get("/readyz").await.assert_status(200);
    }
    assert_eq!(app.get("/api/runs").await.json()["total"], 0);
    assert_eq!(openai.requests_to("/v1/chat/completions").len(), 0);
    // A fresh helper renders the next run's prompt.
    let url = on_openai(
        &app,
        &openai,
        json!({"user_prompt": "Classify: {{ text }}"}),
    )
    .await;
    let run = app.post(&url, &input()).await;
    run.assert_status(201);
    assert_eq!(run.json()["status"], "succeeded", "{}", run.text);
    let sent = openai.requests_to("/v1/chat/completions");
    assert!(
        sent[0].body.to_string().contains("Classify: "),
        "{:?}",
        sent[0].body
    );
}

async fn status_only_moves_forward(backend: Backend) {
    let openai = fakes::openai::start().await;
    openai.set_default_reply(Reply::Text(VALID.to_owned()));
    let app = TestApp::spawn(backend).await;
    let url = on_openai(&app, &openai, json!({})).await;
    let run = app.post(&url, &input()).await.json();
    let id: uuid::Uuid = run["id"].as_str().unwrap().parse().unwrap();
    let db = agentry::db::connect::connect(&app.config.database_url())
        .await
        .unwrap();
    use sea_orm::{ConnectionTrait, Statement};
    for from in RunStatus::ALL {
        for to in RunStatus::ALL {
            db.execute_raw(Statement::from_sql_and_values(
                db.get_database_backend(),
                "UPDATE runs SET status = $1 WHERE id = $2",
                [from.as_str().into(), id.into()],
            ))
            .await
            .unwrap();
            let moved = transition(&db, id, to, agentry::domain::now(), Finish::default())
                .await
                .unwrap();
            assert_eq!(
                moved.is_some(),
                to.predecessors().contains(&from),
                "{from:?} → {to:?}"
            );
            if let Some(run) = moved {
                // The returned row is the stored one, after the update.
                assert_eq!(run.status.as_str(), to.as_str());
                assert_eq!(run.id, id);
            }
        }
    }
}

async fn a_retry_repeats_a_run_with_its_input_and_links_it(backend: Backend) {
    let openai = fakes::openai::start().await;
    openai.push_replies([
        Reply::Text("nope".to_owned()),
        Reply::Text("nope".to_owned()),
        Reply::Text("nope".to_owned()),
    ]);
    let app = TestApp::spawn(backend).await;
    let url = on_openai(&app, &openai, json!({})).await;
    let failed = app.post(&url, &input()).await.json();
    assert_eq!(failed["status"], "failed", "{failed}");
    openai.set_default_reply(Reply::Text(VALID.to_owned()));
    let id = failed["id"].as_str().unwrap();
    let retried = app
        .post(&format!("/api/runs/{id}/retry"), &json!({}))
        .await
        .assert_status(202)
        .json();
    assert_eq!(retried["retry_of"], failed["id"]);
    assert_eq!(retried["input"], failed["input"]);
    assert_ne!(retried["id"], failed["id"]);
    let done = app.run_finished(retried["id"].as_str().unwrap()).await;
    assert_eq!(done["status"], "succeeded", "{done}");
    assert_eq!(done["retry_of"], failed["id"]);
    let original = app.get(&format!("/api/runs/{id}")).await.json();
    assert_eq!(
        original["status"], "failed",
        "the original is left as it was"
    );
}

async fn runs_are_listed_newest_first_with_filters(backend: Backend) {
    let openai = fakes::openai::start().await;
    openai.push_replies([
        Reply::Text(VALID.to_owned()),
        Reply::Text("nope".to_owned()),
    ]);
    let app = TestApp::spawn(backend).await;
    let url = on_openai(&app, &openai, json!({"max_retries": 0})).await;
    let ok = app.post(&url, &input()).await.json();
    let bad = app.post(&url, &input()).await.json();
    assert_eq!(
        (ok["status"].as_str(), bad["status"].as_str()),
        (Some("succeeded"), Some("failed"))
    );
    let all = app.get("/api/runs").await.json();
    assert_eq!(all["total"], 2);
    assert_eq!(all["items"][0]["id"], bad["id"], "newest first");
    let failed = app.get("/api/runs?status=failed").await.json();
    assert_eq!(failed["total"], 1);
    assert_eq!(failed["items"][0]["id"], bad["id"]);
    let other = app
        .get(&format!("/api/runs?task_id={}", uuid::Uuid::now_v7()))
        .await
        .json();
    assert_eq!(other["total"], 0);
}

async fn server_errors_are_retried_but_other_client_errors_are_not(backend: Backend) {
    let openai = fakes::openai::start().await;
    let app = TestApp::spawn(backend).await;
    let url = on_openai(&app, &openai, json!({})).await;
    openai.push_once(Behavior::status(503));
    openai.push_reply(Reply::Text(VALID.to_owned()));
    let run = app.post(&url, &input()).await.json();
    assert_eq!(run["status"], "succeeded", "a 503 is retried: {run}");
    assert_eq!(openai.requests_to("/v1/chat/completions").len(), 2);

    openai.clear_requests();
    openai.push_once(Behavior::status(400));
    let run = app.post(&url, &input()).await.json();
    assert_eq!(run["status"], "failed");
    assert!(run["error"].as_str().unwrap().contains("HTTP 400"), "{run}");
    assert_eq!(
        openai.requests_to("/v1/chat/completions").len(),
        1,
        "a 400 is not retried"
    );
}

db_tests!(
    server_errors_are_retried_but_other_client_errors_are_not,
    real_model_returns_schema_valid_output,
    real_model_through_the_ollama_api_returns_schema_valid_output,
    invalid_answers_are_repaired,
    always_invalid_fails_after_every_attempt,
    rate_limits_are_retried_after_the_requested_delay,
    a_provider_that_hangs_fails_the_run_at_its_timeout,
    cancel_aborts_the_call_in_flight,
    edits_and_deletion_do_not_disturb_runs_in_flight,
    bad_input_is_422_and_stores_nothing,
    a_template_variable_the_input_lacks_is_422,
    runaway_templates_are_422_with_the_reason,
    a_renderer_that_does_not_start_is_503,
    status_only_moves_forward,
    a_retry_repeats_a_run_with_its_input_and_links_it,
    runs_are_listed_newest_first_with_filters,
);
