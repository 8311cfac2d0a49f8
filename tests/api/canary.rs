//! Canary sweep: providers hold a canary API key; every endpoint, every WebSocket topic and
//! every error path is driven (validation failures, conflicts, rejected and echoed keys,
//! failing and canceled runs, bad tokens); then every response (body and headers), every
//! WebSocket frame, the complete server log and a plain dump of the database are searched.
//! The canary appears 0 times: only its ciphertext is stored.

use std::time::{Duration, Instant};

use agentry_tests::fakes::{self, Behavior, Reply};
use agentry_tests::ws::{Next, WsClient};
use agentry_tests::{Backend, Resp, TestApp, agent_body, closed_schema, db_tests, logs, task_body};
use reqwest::Method;
use serde_json::{Value, json};

const CANARY: &str = "sk-CANARY-5e1f0c7a-9d2b-4c8e-b3a6-must-never-appear";
const TOKEN: &str = "canary-sweep-api-token-0123456789";
const VALID: &str = r#"{"sentiment":"positive","score":0.5}"#;

/// Sends the sweep's requests and keeps everything the server sent back, to be searched at
/// the end.
struct Sweep<'a> {
    app: &'a TestApp,
    text: String,
}

impl Sweep<'_> {
    fn keep(&mut self, resp: &Resp) {
        for (name, value) in resp.headers.iter() {
            self.text.push_str(name.as_str());
            self.text
                .push_str(&String::from_utf8_lossy(value.as_bytes()));
            self.text.push('\n');
        }
        self.text.push_str(&resp.text);
        self.text.push('\n');
    }

    async fn call(&mut self, method: Method, path: &str, body: Option<&Value>) -> Resp {
        let resp = self.app.request(method, path, body).await;
        self.keep(&resp);
        resp
    }

    /// A raw body (malformed JSON, wrong content type) with the token.
    async fn raw(&mut self, path: &str, content_type: &str, body: String) -> Resp {
        let request = self
            .app
            .raw(Method::POST, path)
            .header("content-type", content_type)
            .body(body);
        let resp = self.app.send(request).await;
        self.keep(&resp);
        resp
    }
}

/// Reads every frame until the `deleted` event of `marker` arrives (the sweep's last act).
async fn drain(ws: &mut WsClient, marker: &str, frames: &mut String) {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        assert!(Instant::now() < deadline, "the marker event never arrived");
        match ws.next().await {
            Next::Json(frame) => {
                frames.push_str(&frame.to_string());
                frames.push('\n');
                if frame["event"] == "deleted" && frame["id"] == marker {
                    return;
                }
            }
            Next::Closed(code) => panic!("socket closed ({code:?}) during the sweep"),
        }
    }
}

async fn canary_key_appears_only_as_ciphertext(backend: Backend) {
    // A provider that knows the canary, one that knows another key, and one that answers
    // every call with an error quoting the key it was sent (as some servers do).
    let good = fakes::openai::start_with(fakes::Options {
        api_key: Some(CANARY.to_owned()),
        ..fakes::openai::options()
    })
    .await;
    good.set_default_reply(Reply::Text(VALID.to_owned()));
    let other = fakes::anthropic::start().await;
    let echo = fakes::openai::start_with(fakes::Options {
        api_key: None,
        ..fakes::openai::options()
    })
    .await;
    let quoted = json!({"error": {"message": format!("Incorrect API key provided: {CANARY}. \
        You passed {CANARY} in the Authorization header."), "type": "invalid_request_error",
        "code": "invalid_api_key"}});
    echo.set_behavior(Behavior::status(401).with_body(quoted.clone()));

    let app = TestApp::spawn_with(backend, |c| {
        c.api_token = Some(TOKEN.to_owned());
        c.validator.enabled = true;
        c.validator.check_timeout = Duration::from_secs(5);
    })
    .await;
    let mut sweep = Sweep {
        app: &app,
        text: String::new(),
    };
    let mut frames = String::new();
    // One socket with every topic from the query, one subscribing by messages after
    // authenticating with the `auth` message.
    let mut all = app.ws("providers,agents,tasks,runs").await;
    let mut by_message = {
        let url = format!("{}/ws", app.base_url.replacen("http", "ws", 1));
        let (stream, _) = tokio_tungstenite::connect_async(url)
            .await
            .expect("connect /ws");
        let mut ws = WsClient { stream };
        ws.send_json(&json!({"type": "auth", "token": TOKEN})).await;
        ws.send_json(&json!({"type": "subscribe", "topics": ["providers", "runs"]}))
            .await;
        ws
    };

    // Providers: created (connected, rejected, echoed), validated, updated, listed.
    let p = |name: &str, kind: &str, base: String| json!({"name": name, "kind": kind, "base_url": base, "api_key": CANARY});
    let created = sweep
        .call(
            Method::POST,
            "/api/providers",
            Some(&p("good", "openai", good.url("/v1"))),
        )
        .await;
    created.assert_status(201);
    let good_id = created.id();
    let rejected = sweep
        .call(
            Method::POST,
            "/api/providers",
            Some(&p("rejected", "anthropic", other.base_url())),
        )
        .await;
    rejected.assert_status(201);
    let echo_id = sweep
        .call(
            Method::POST,
            "/api/providers",
            Some(&p("echo", "openai", echo.url("/v1"))),
        )
        .await
        .assert_status(201)
        .id();
    for id in [good_id, rejected.id(), echo_id] {
        let settled = app.provider_settled(id).await;
        sweep.text.push_str(&settled.to_string());
    }
    assert_eq!(
        app.get(&format!("/api/providers/{good_id}")).await.json()["validation_status"],
        "connected"
    );
    assert!(
        app.get(&format!("/api/providers/{echo_id}")).await.json()["validation_error"]
            .as_str()
            .is_some_and(|e| e.starts_with("credentials_rejected")),
        "the echoing provider is rejected"
    );
    // Error paths with the key in the body: duplicate name, bad fields, wrong types,
    // malformed JSON, wrong content type, an oversized key.
    sweep
        .call(
            Method::POST,
            "/api/providers",
            Some(&p("good", "openai", good.url("/v1"))),
        )
        .await
        .assert_status(409);
    sweep
        .call(
            Method::POST,
            "/api/providers",
            Some(&p("", "no-such-kind", "ftp://x".to_owned())),
        )
        .await;
    sweep
        .call(
            Method::POST,
            "/api/providers",
            Some(
                &json!({"name": "types", "kind": "openai", "base_url": good.url("/v1"),
            "api_key": CANARY, "extra": CANARY}),
            ),
        )
        .await;
    sweep
        .call(
            Method::POST,
            "/api/providers",
            Some(&json!({"name": "long", "kind": "openai", "api_key": CANARY.repeat(200)})),
        )
        .await;
    sweep
        .call(
            Method::POST,
            "/api/providers",
            Some(
                &json!({"name": "meta", "kind": "openai", "base_url": "http://169.254.169.254/v1",
            "api_key": CANARY}),
            ),
        )
        .await;
    sweep
        .raw(
            "/api/providers",
            "application/json",
            format!(r#"{{"name": "cut", "kind": "openai", "api_key": "{CANARY}""#),
        )
        .await;
    sweep
        .raw(
            "/api/providers",
            "application/json",
            format!(r#"{{"name": "n", "kind": "openai", "api_key": "{CANARY}", "api_key": 7}}"#),
        )
        .await;
    sweep
        .raw(
            "/api/providers",
            "text/plain",
            format!(r#"{{"name": "t", "kind": "openai", "api_key": "{CANARY}"}}"#),
        )
        .await;
    let update = json!({"name": "good", "kind": "openai", "base_url": good.url("/v1"),
        "api_key": CANARY});
    sweep
        .call(
            Method::PUT,
            &format!("/api/providers/{good_id}"),
            Some(&update),
        )
        .await
        .assert_status(200);
    sweep
        .call(
            Method::PUT,
            &format!("/api/providers/{good_id}"),
            Some(&json!({"name": "good", "kind": "openai", "base_url": "nope", "api_key": CANARY})),
        )
        .await;
    sweep
        .call(
            Method::POST,
            &format!("/api/providers/{good_id}/validate"),
            None,
        )
        .await
        .assert_status(202);
    app.provider_settled(good_id).await;
    sweep
        .call(Method::GET, "/api/providers", None)
        .await
        .assert_status(200);
    sweep
        .call(Method::GET, "/api/providers?limit=1&offset=1", None)
        .await;
    sweep
        .call(Method::GET, "/api/providers?limit=-1", None)
        .await;
    sweep
        .call(Method::GET, &format!("/api/providers/{good_id}"), None)
        .await;
    sweep
        .call(Method::GET, "/api/providers/not-a-uuid", None)
        .await;
    sweep
        .call(
            Method::GET,
            &format!("/api/providers/{}", uuid::Uuid::nil()),
            None,
        )
        .await;

    // Agents, tasks, assignments on the canary providers.
    let agent = sweep
        .call(
            Method::POST,
            "/api/agents",
            Some(&{
                let mut a = agent_body("agent", good_id);
                a["model"] = json!("gpt-4o-mini");
                a
            }),
        )
        .await
        .assert_status(201)
        .id();
    let echo_agent = sweep
        .call(
            Method::POST,
            "/api/agents",
            Some(&{
                let mut a = agent_body("echo-agent", echo_id);
                a["model"] = json!("gpt-4o-mini");
                a["max_retries"] = json!(0);
                a
            }),
        )
        .await
        .assert_status(201)
        .id();
    sweep
        .call(
            Method::POST,
            "/api/agents",
            Some(&json!({"name": "bad", "provider_id": good_id, "model": "", "user_prompt": "{{"})),
        )
        .await;
    let mut renamed = agent_body("agent-renamed", good_id);
    renamed["model"] = json!("gpt-4o-mini");
    sweep
        .call(Method::PUT, &format!("/api/agents/{agent}"), Some(&renamed))
        .await
        .assert_status(200);
    let mut task = task_body("task");
    task["response_schema"] = closed_schema();
    let task = sweep
        .call(Method::POST, "/api/tasks", Some(&task))
        .await
        .assert_status(201)
        .id();
    sweep
        .call(
            Method::POST,
            "/api/tasks",
            Some(&json!({"name": "bad", "response_schema": {"type": "nope"}})),
        )
        .await;
    let mut changed = task_body("task");
    changed["response_schema"] = closed_schema();
    changed["description"] = json!("changed");
    sweep
        .call(Method::PUT, &format!("/api/tasks/{task}"), Some(&changed))
        .await
        .assert_status(200);
    for a in [agent, echo_agent] {
        sweep
            .call(
                Method::POST,
                &format!("/api/agents/{a}/tasks"),
                Some(&json!({"task_id": task})),
            )
            .await
            .assert_status(201);
    }
    sweep
        .call(
            Method::POST,
            &format!("/api/agents/{agent}/tasks"),
            Some(&json!({"task_id": task})),
        )
        .await;
    sweep
        .call(Method::GET, &format!("/api/agents/{agent}/tasks"), None)
        .await;
    sweep.call(Method::GET, "/api/agents", None).await;
    sweep
        .call(Method::GET, &format!("/api/agents/{agent}"), None)
        .await;
    sweep.call(Method::GET, "/api/tasks", None).await;
    sweep
        .call(Method::GET, &format!("/api/tasks/{task}"), None)
        .await;

    // Runs: succeeded (sync and async), failed on the echoing provider, failed on a 500
    // quoting the key, refused input, canceled.
    let runs = format!("/api/agents/{agent}/tasks/{task}/runs");
    let input = json!({"input": {"text": "a fine day"}});
    let ok = sweep.call(Method::POST, &runs, Some(&input)).await;
    assert_eq!(
        ok.assert_status(201).json()["status"],
        "succeeded",
        "{}",
        ok.text
    );
    let queued = sweep
        .call(
            Method::POST,
            &runs,
            Some(&json!({"input": {"text": "later"}, "mode": "async"})),
        )
        .await
        .assert_status(202)
        .json();
    let queued = queued["id"].as_str().expect("run id").to_owned();
    app.run_finished(&queued).await;
    let echoed = sweep
        .call(
            Method::POST,
            &format!("/api/agents/{echo_agent}/tasks/{task}/runs"),
            Some(&input),
        )
        .await;
    assert_eq!(echoed.json()["status"], "failed", "{}", echoed.text);
    good.push_once(Behavior::status(500).with_body(quoted.clone()));
    good.push_once(Behavior::status(500).with_body(quoted.clone()));
    good.push_once(Behavior::status(500).with_body(quoted.clone()));
    sweep.call(Method::POST, &runs, Some(&input)).await;
    sweep
        .call(Method::POST, &runs, Some(&json!({"input": {"text": 7}})))
        .await;
    good.set_behavior(Behavior::Hang);
    let hanging = sweep
        .call(
            Method::POST,
            &runs,
            Some(&json!({"input": {"text": "slow"}, "mode": "async"})),
        )
        .await
        .json();
    let hanging = hanging["id"].as_str().expect("run id").to_owned();
    sweep
        .call(Method::POST, &format!("/api/runs/{hanging}/cancel"), None)
        .await;
    app.run_finished(&hanging).await;
    good.set_behavior(Behavior::Normal);
    sweep
        .call(Method::POST, &format!("/api/runs/{hanging}/cancel"), None)
        .await;
    for id in [&queued, &hanging] {
        sweep
            .call(Method::GET, &format!("/api/runs/{id}"), None)
            .await;
        sweep
            .call(Method::GET, &format!("/api/runs/{id}/events"), None)
            .await;
    }
    sweep.call(Method::GET, "/api/runs", None).await;
    sweep
        .call(
            Method::GET,
            &format!("/api/runs?agent_id={agent}&status=failed"),
            None,
        )
        .await;

    // Authentication errors, health, deletes (the provider in use, then free).
    for token in [None, Some("wrong-token")] {
        let mut request = app.client.get(format!("{}/api/providers", app.base_url));
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        sweep.keep(&app.send(request).await);
    }
    sweep.call(Method::GET, "/healthz", None).await;
    sweep.call(Method::GET, "/readyz", None).await;
    sweep
        .call(
            Method::DELETE,
            &format!("/api/agents/{echo_agent}/tasks/{task}"),
            None,
        )
        .await;
    sweep
        .call(Method::DELETE, &format!("/api/agents/{echo_agent}"), None)
        .await;
    sweep
        .call(Method::DELETE, &format!("/api/providers/{echo_id}"), None)
        .await
        .assert_status(204);
    sweep
        .call(Method::GET, &format!("/api/providers/{echo_id}"), None)
        .await;
    let marker = sweep
        .call(
            Method::POST,
            "/api/tasks",
            Some(&json!({"name": "marker", "response_schema": {"type": "object"}})),
        )
        .await
        .id();
    sweep
        .call(Method::DELETE, &format!("/api/tasks/{marker}"), None)
        .await
        .assert_status(204);
    drain(&mut all, &marker.to_string(), &mut frames).await;
    by_message.send_json(&json!({"type": "ping"})).await;
    loop {
        match by_message.next().await {
            Next::Json(frame) => {
                frames.push_str(&frame.to_string());
                if frame["type"] == "pong" {
                    break;
                }
            }
            Next::Closed(code) => panic!("socket closed ({code:?})"),
        }
    }

    // The key was used where it belongs.
    assert!(
        good.requests()
            .iter()
            .any(|r| r.header("authorization") == Some(&format!("Bearer {CANARY}"))),
        "the provider never received the key"
    );
    assert!(
        frames.contains("validation_update") && frames.contains("\"runs\""),
        "{frames}"
    );

    let responses = sweep.text;
    let dump = app.dump().await;
    let hex: String = CANARY.bytes().map(|b| format!("{b:02x}")).collect();
    let log = logs::captured();
    for (what, text) in [
        ("an API response", &responses),
        ("a WebSocket frame", &frames),
        ("the server log", &log),
        ("the database dump", &dump),
    ] {
        assert_eq!(text.matches(CANARY).count(), 0, "the canary reached {what}");
        assert!(
            !text.to_ascii_lowercase().contains(&hex),
            "the canary (hex) reached {what}"
        );
    }
    assert!(
        dump.contains(&good_id.to_string()) && dump.contains("api_key"),
        "the dump holds the providers: {dump}"
    );
}

db_tests!(canary_key_appears_only_as_ciphertext);
