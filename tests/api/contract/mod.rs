//! The OpenAPI contract: the committed document is what the code generates, is what the
//! server serves, and every documented operation and status is exercised and matches.

mod groups;
mod schedules;

use std::collections::BTreeSet;

use agentry_tests::contract::{documented, openapi_path};
use agentry_tests::fakes::{self, Behavior, Reply};
use agentry_tests::{Backend, TestApp, agent_body, db_tests, task_body};
use reqwest::Method;
use serde_json::json;
use uuid::Uuid;

#[test]
fn committed_openapi_matches_the_code() {
    let generated = agentry::routes::openapi_json();
    let committed = std::fs::read_to_string(openapi_path()).unwrap_or_default();
    if generated != committed {
        if std::env::var_os("AGENTRY_UPDATE_OPENAPI").is_some() {
            std::fs::write(openapi_path(), &generated).unwrap();
            return;
        }
        panic!(
            "contracts/openapi.json is stale: run `just openapi` (or `cargo run -- openapi \
             --output contracts/openapi.json`) and commit it"
        );
    }
    let doc: serde_json::Value = serde_json::from_str(&generated).unwrap();
    assert!(doc["openapi"].as_str().unwrap().starts_with("3.1"));
}

async fn served_document_is_the_committed_one(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let served = app.send(app.raw(Method::GET, "/openapi.json")).await;
    served.assert_status(200);
    let committed = std::fs::read_to_string(openapi_path()).unwrap();
    assert_eq!(served.text, committed);
}

/// Walks every documented operation through every documented status, validating each
/// response body against the document, then checks nothing documented was left out.
async fn every_documented_operation_and_status_is_exercised(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let ghost = Uuid::now_v7();

    // providers
    app.get("/api/providers").await.assert_status(200);
    app.get("/api/providers?limit=0").await.assert_status(400);
    let provider = app.ollama_provider("p").await;
    app.create_provider(&json!({"name": "p", "kind": "ollama", "base_url": "http://127.0.0.2:9"}))
        .await
        .assert_status(409);
    app.create_provider(&json!({"name": "q", "kind": "ollama"}))
        .await
        .assert_status(422);
    let p_path = format!("/api/providers/{provider}");
    app.get(&p_path).await.assert_status(200);
    app.get(&format!("/api/providers/{ghost}"))
        .await
        .assert_status(404);
    let other_provider = app.ollama_provider("other").await;
    app.put(
        &p_path,
        &json!({"name": "p", "kind": "ollama", "base_url": "http://127.0.0.3:9"}),
    )
    .await
    .assert_status(200);
    app.put(
        &p_path,
        &json!({"name": "other", "kind": "ollama", "base_url": "http://127.0.0.3:9"}),
    )
    .await
    .assert_status(409);
    app.put(&p_path, &json!({"name": "p", "kind": "ollama"}))
        .await
        .assert_status(422);
    app.put(
        &format!("/api/providers/{ghost}"),
        &json!({"name": "z", "kind": "ollama", "base_url": "http://127.0.0.2:9"}),
    )
    .await
    .assert_status(404);
    app.post(&format!("{p_path}/validate"), &json!({}))
        .await
        .assert_status(202);
    app.post(&format!("/api/providers/{ghost}/validate"), &json!({}))
        .await
        .assert_status(404);
    app.delete(&format!("/api/providers/{other_provider}"))
        .await
        .assert_status(204);
    app.delete(&format!("/api/providers/{ghost}"))
        .await
        .assert_status(404);

    // tasks
    app.get("/api/tasks").await.assert_status(200);
    app.get("/api/tasks?limit=x").await.assert_status(400);
    let task = app.simple_task("t").await;
    app.create_task(&task_body("t")).await.assert_status(409);
    app.create_task(&json!({"name": "u", "response_schema": {"type": 1}}))
        .await
        .assert_status(422);
    let t_path = format!("/api/tasks/{task}");
    app.get(&t_path).await.assert_status(200);
    app.get(&format!("/api/tasks/{ghost}"))
        .await
        .assert_status(404);
    app.put(&t_path, &task_body("t")).await.assert_status(200);
    app.simple_task("t2").await;
    app.put(&t_path, &task_body("t2")).await.assert_status(409);
    app.put(&t_path, &json!({"name": "t", "response_schema": 5}))
        .await
        .assert_status(422);
    app.put(&format!("/api/tasks/{ghost}"), &task_body("z"))
        .await
        .assert_status(404);

    // agents
    app.get("/api/agents").await.assert_status(200);
    app.get("/api/agents?offset=x").await.assert_status(400);
    let agent = app.agent_on("a", provider).await;
    app.create_agent(&agent_body("a", provider))
        .await
        .assert_status(409);
    app.create_agent(&agent_body("b", ghost))
        .await
        .assert_status(422);
    app.create_agent(&json!({"name": "b"}))
        .await
        .assert_status(422);
    let a_path = format!("/api/agents/{agent}");
    app.get(&a_path).await.assert_status(200);
    app.get(&format!("/api/agents/{ghost}"))
        .await
        .assert_status(404);
    app.put(&a_path, &agent_body("a", provider))
        .await
        .assert_status(200);
    app.agent_on("a2", provider).await;
    app.put(&a_path, &agent_body("a2", provider))
        .await
        .assert_status(409);
    app.put(&a_path, &json!({"name": "a"}))
        .await
        .assert_status(422);
    app.put(&format!("/api/agents/{ghost}"), &agent_body("z", provider))
        .await
        .assert_status(404);

    // assignments
    let at_path = format!("/api/agents/{agent}/tasks");
    app.get(&at_path).await.assert_status(200);
    app.get(&format!("{at_path}?limit=999"))
        .await
        .assert_status(400);
    app.get(&format!("/api/agents/{ghost}/tasks"))
        .await
        .assert_status(404);
    app.assign(agent, task).await.assert_status(201);
    app.assign(agent, task).await.assert_status(409);
    app.assign(agent, ghost).await.assert_status(422);
    app.assign(ghost, task).await.assert_status(404);
    app.post(&at_path, &json!({"task": 1}))
        .await
        .assert_status(422);
    app.delete(&t_path).await.assert_status(409);
    app.delete(&format!("{at_path}/{task}"))
        .await
        .assert_status(204);
    app.delete(&format!("{at_path}/{task}"))
        .await
        .assert_status(404);
    app.delete(&t_path).await.assert_status(204);
    app.delete(&format!("/api/tasks/{ghost}"))
        .await
        .assert_status(404);
    app.delete(&a_path).await.assert_status(204);
    app.delete(&a_path).await.assert_status(404);

    // runs, against a wire-accurate OpenAI-style fake
    let fake = fakes::openai::start().await;
    let openai = app
        .create_provider(&json!({"name": "fake", "kind": "openai_compatible",
            "base_url": fake.url("/v1"), "api_key": fakes::openai::KEY}))
        .await
        .id();
    let mut runner_body = agent_body("runner", openai);
    runner_body["model"] = json!("gpt-4o-mini");
    let runner = app.create_agent(&runner_body).await.id();
    let sentiment = app.simple_task("sentiment").await;
    let runs_path = format!("/api/agents/{runner}/tasks/{sentiment}/runs");
    let input = json!({"input": {"text": "great"}});
    app.post(&runs_path, &input).await.assert_status(409); // not assigned
    app.assign(runner, sentiment).await.assert_status(201);
    fake.push_reply(Reply::Text(
        r#"{"sentiment":"positive","score":0.9}"#.to_owned(),
    ));
    let done = app.post(&runs_path, &input).await;
    done.assert_status(201);
    assert_eq!(done.json()["status"], "succeeded", "{}", done.text);
    app.post(&runs_path, &json!({"input": {"text": 5}}))
        .await
        .assert_status(422);
    app.post(
        &format!("/api/agents/{ghost}/tasks/{sentiment}/runs"),
        &input,
    )
    .await
    .assert_status(404);
    fake.set_behavior(Behavior::Hang);
    let queued = app
        .post(
            &runs_path,
            &json!({"input": {"text": "x"}, "mode": "async"}),
        )
        .await;
    queued.assert_status(202);
    let run_path = format!("/api/runs/{}", queued.id());
    app.get(&run_path).await.assert_status(200);
    app.get(&format!("{run_path}/events"))
        .await
        .assert_status(200);
    app.post(&format!("{run_path}/cancel"), &json!({}))
        .await
        .assert_status(202);
    app.post(&format!("{run_path}/cancel"), &json!({}))
        .await
        .assert_status(409);
    let retried = app.post(&format!("{run_path}/retry"), &json!({})).await;
    retried.assert_status(202);
    app.post(&format!("/api/runs/{}/cancel", retried.id()), &json!({}))
        .await
        .assert_status(202);
    app.post(&format!("/api/runs/{ghost}/retry"), &json!({}))
        .await
        .assert_status(404);
    app.get(&format!("/api/runs/{ghost}"))
        .await
        .assert_status(404);
    app.get(&format!("/api/runs/{ghost}/events"))
        .await
        .assert_status(404);
    app.post(&format!("/api/runs/{ghost}/cancel"), &json!({}))
        .await
        .assert_status(404);
    app.get("/api/runs").await.assert_status(200);
    app.get("/api/runs?status=bogus").await.assert_status(400);
    // A retry whose input no longer fits, and one whose task is no longer assigned.
    let strict = json!({"name": "sentiment", "request_schema": {"type": "object",
        "properties": {"text": {"type": "string", "minLength": 100}}, "required": ["text"]},
        "response_schema": {"type": "object"}});
    app.put(&format!("/api/tasks/{sentiment}"), &strict)
        .await
        .assert_status(200);
    app.post(&format!("{run_path}/retry"), &json!({}))
        .await
        .assert_status(422);
    app.delete(&format!("/api/agents/{runner}/tasks/{sentiment}"))
        .await
        .assert_status(204);
    app.post(&format!("{run_path}/retry"), &json!({}))
        .await
        .assert_status(409);

    // workers and their registration tokens
    app.get("/api/workers").await.assert_status(200);
    app.get("/api/workers/pool").await.assert_status(200);
    let created = app.post("/api/worker-tokens", &json!({})).await;
    created.assert_status(201);
    app.post("/api/worker-tokens", &json!({"ttl_secs": 1}))
        .await
        .assert_status(422);
    app.get("/api/worker-tokens").await.assert_status(200);
    let token = created.json()["token"].as_str().unwrap().to_owned();
    let registered = app
        .post(
            "/api/workers/register",
            &json!({"token": token, "name": "w1"}),
        )
        .await;
    registered.assert_status(201);
    let worker = registered.json()["worker_id"].as_str().unwrap().to_owned();
    app.post("/api/workers/register", &json!({"token": token}))
        .await
        .assert_status(401);
    let second = app.worker_token().await;
    app.post(
        "/api/workers/register",
        &json!({"token": second, "name": "w1"}),
    )
    .await
    .assert_status(409);
    app.post(
        "/api/workers/register",
        &json!({"token": second, "name": "no spaces"}),
    )
    .await
    .assert_status(422);
    let w_path = format!("/api/workers/{worker}");
    app.get(&w_path).await.assert_status(200);
    app.get(&format!("/api/workers/{ghost}"))
        .await
        .assert_status(404);
    app.patch(&w_path, &json!({"name": "w2"}))
        .await
        .assert_status(200);
    app.patch(&w_path, &json!({"name": "built-in"}))
        .await
        .assert_status(409);
    app.patch(&w_path, &json!({"name": ""}))
        .await
        .assert_status(422);
    app.patch(&format!("/api/workers/{ghost}"), &json!({}))
        .await
        .assert_status(404);
    let builtin = app.builtin_worker().await;
    app.delete(&format!("/api/workers/{builtin}"))
        .await
        .assert_status(409);
    app.delete(&w_path).await.assert_status(204);
    app.delete(&w_path).await.assert_status(404);
    let used = created.json()["details"]["id"].as_str().unwrap().to_owned();
    app.delete(&format!("/api/worker-tokens/{used}"))
        .await
        .assert_status(409);
    let unused = app.get("/api/worker-tokens").await.json()[0]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    app.delete(&format!("/api/worker-tokens/{unused}"))
        .await
        .assert_status(204);
    app.delete(&format!("/api/worker-tokens/{ghost}"))
        .await
        .assert_status(404);

    // tags, on workers and required by agents
    app.get("/api/tags").await.assert_status(200);
    let tag = app.post("/api/tags", &json!({"name": "gpu"})).await;
    tag.assert_status(201);
    app.post("/api/tags", &json!({"name": "gpu"}))
        .await
        .assert_status(409);
    app.post("/api/tags", &json!({"name": "GPU"}))
        .await
        .assert_status(422);
    let tags_path = format!("/api/workers/{builtin}/tags");
    app.put(&tags_path, &json!({"tags": ["gpu"]}))
        .await
        .assert_status(200);
    app.put(&tags_path, &json!({"tags": ["nope"]}))
        .await
        .assert_status(422);
    app.put(&format!("/api/workers/{ghost}/tags"), &json!({"tags": []}))
        .await
        .assert_status(404);
    let mut routed = agent_body("routed", provider);
    routed["required_tags"] = json!(["gpu"]);
    let routed = app.create_agent(&routed).await;
    routed.assert_status(201);
    let tag_path = format!("/api/tags/{}", tag.id());
    app.delete(&tag_path).await.assert_status(409);
    app.delete(&format!("/api/agents/{}", routed.id()))
        .await
        .assert_status(204);
    app.delete(&tag_path).await.assert_status(204);
    app.delete(&tag_path).await.assert_status(404);

    // concurrency groups, with an agent in one
    groups::exercise(&app, ghost, provider).await;

    // schedules, with a run that stays unfinished
    schedules::exercise(&app, ghost).await;

    // request-level problems on every operation that takes a body
    let bodies: Vec<(Method, String)> = vec![
        (Method::POST, "/api/tags".into()),
        (Method::POST, "/api/concurrency-groups".into()),
        (Method::POST, "/api/schedules".into()),
        (Method::PUT, format!("/api/schedules/{ghost}")),
        (Method::PUT, format!("/api/concurrency-groups/{ghost}")),
        (Method::PUT, format!("/api/workers/{ghost}/tags")),
        (Method::POST, "/api/worker-tokens".into()),
        (Method::POST, "/api/workers/register".into()),
        (Method::PATCH, format!("/api/workers/{ghost}")),
        (Method::POST, "/api/providers".into()),
        (Method::PUT, p_path.clone()),
        (Method::POST, "/api/tasks".into()),
        (Method::PUT, format!("/api/tasks/{ghost}")),
        (Method::POST, "/api/agents".into()),
        (Method::PUT, format!("/api/agents/{ghost}")),
        (Method::POST, format!("/api/agents/{ghost}/tasks")),
        (
            Method::POST,
            format!("/api/agents/{ghost}/tasks/{ghost}/runs"),
        ),
    ];
    let huge = "x".repeat(1024 * 1024 + 1);
    for (method, path) in &bodies {
        let malformed = app
            .send(
                app.raw(method.clone(), path)
                    .header("content-type", "application/json")
                    .body("{"),
            )
            .await;
        record(&app, method, path, &malformed, 400);
        let not_json = app.send(app.raw(method.clone(), path).body("{}")).await;
        record(&app, method, path, &not_json, 415);
        let too_big = app
            .send(
                app.raw(method.clone(), path)
                    .header("content-type", "application/json")
                    .body(huge.clone()),
            )
            .await;
        record(&app, method, path, &too_big, 413);
    }

    // 408 on every operation that takes a body: a client that stops sending it
    let slow = TestApp::spawn_with(backend, |c| c.request_body_timeout_secs = 1).await;
    for (method, path) in &bodies {
        let resp = slow
            .stalled_body(
                method.as_str(),
                path,
                b"{\"name\":",
                100,
                std::time::Duration::from_secs(10),
            )
            .await
            .expect("the server answers a stalled body");
        record(&app, method, path, &resp, 408);
    }

    // health
    app.get("/healthz").await.assert_status(200);
    app.get("/readyz").await.assert_status(200);

    // 401 on every /api operation (with room for all their failed attempts)
    let locked = TestApp::spawn_with(backend, |c| {
        c.api_token = Some("contract-token-0123456789".into());
        c.auth_failures_per_minute = 1_000;
    })
    .await;
    let operations: BTreeSet<(String, String)> =
        documented().into_iter().map(|(m, p, _)| (m, p)).collect();
    for (method, template) in operations.iter().filter(|(_, p)| p.starts_with("/api/")) {
        let path = template
            .replace("{id}", &ghost.to_string())
            .replace("{task_id}", &ghost.to_string());
        let method = Method::from_bytes(method.as_bytes()).unwrap();
        let mut request = locked
            .client
            .request(method.clone(), format!("{}{path}", locked.base_url));
        if path == "/api/workers/register" {
            // Authenticated by its registration token, not by the API token.
            request = request.json(&json!({"token": "agwt_wrong"}));
        }
        let resp = locked.send(request).await;
        record(&app, &method, &path, &resp, 401);
    }

    // 429 on every /api operation once an address has used up its failed attempts
    let limited = TestApp::spawn_with(backend, |c| {
        c.api_token = Some("contract-token-0123456789".into());
        c.auth_failures_per_minute = 1;
    })
    .await;
    let unauthenticated = |method: Method, path: &str| {
        limited
            .client
            .request(method, format!("{}{path}", limited.base_url))
    };
    limited
        .send(unauthenticated(Method::GET, "/api/agents"))
        .await
        .assert_status(401);
    for (method, template) in operations.iter().filter(|(_, p)| p.starts_with("/api/")) {
        let path = template
            .replace("{id}", &ghost.to_string())
            .replace("{task_id}", &ghost.to_string());
        let method = Method::from_bytes(method.as_bytes()).unwrap();
        let resp = limited.send(unauthenticated(method.clone(), &path)).await;
        assert!(
            resp.header("retry-after").is_some(),
            "{method} {path}: no Retry-After"
        );
        record(&app, &method, &path, &resp, 429);
    }

    // 503 on every /api operation while the database refuses connections (PostgreSQL lets a
    // test switch that off; on SQLite these are left to the PostgreSQL walk).
    let api_operations = || operations.iter().filter(|(_, p)| p.starts_with("/api/"));
    if let Some(name) = app.pg_name() {
        let admin = sea_orm::Database::connect(agentry_tests::postgres::admin_url())
            .await
            .unwrap();
        use sea_orm::ConnectionTrait;
        admin
            .execute_unprepared(&format!(
                "ALTER DATABASE \"{name}\" ALLOW_CONNECTIONS false"
            ))
            .await
            .unwrap();
        admin
            .execute_unprepared(&format!(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = '{name}'"
            ))
            .await
            .unwrap();
        for (method, template) in api_operations() {
            let path = template
                .replace("{id}", &ghost.to_string())
                .replace("{agent_id}", &ghost.to_string())
                .replace("{task_id}", &ghost.to_string());
            let method = Method::from_bytes(method.as_bytes()).unwrap();
            // A valid body, so that the database is what the request needs next.
            let body = match template.as_str() {
                "/api/providers" | "/api/providers/{id}" => {
                    Some(json!({"name": "x", "kind": "ollama", "base_url": "http://127.0.0.1:9"}))
                }
                "/api/agents" | "/api/agents/{id}" => Some(agent_body("x", ghost)),
                "/api/tasks" | "/api/tasks/{id}" => Some(task_body("x")),
                "/api/agents/{id}/tasks" => Some(json!({"task_id": ghost})),
                "/api/agents/{agent_id}/tasks/{task_id}/runs" => Some(json!({"input": {}})),
                "/api/workers/register" => Some(json!({"token": "agwt_x"})),
                "/api/worker-tokens" | "/api/workers/{id}" => Some(json!({})),
                "/api/tags" => Some(json!({"name": "x"})),
                "/api/concurrency-groups" | "/api/concurrency-groups/{id}" => {
                    Some(json!({"name": "x", "limit": 1}))
                }
                "/api/workers/{id}/tags" => Some(json!({"tags": []})),
                "/api/schedules" | "/api/schedules/{id}" => Some(
                    json!({"agent_id": ghost, "task_id": ghost, "input": {}, "every_secs": 60}),
                ),
                _ => None,
            };
            let mut request = app.raw(method.clone(), &path);
            if let Some(body) =
                body.filter(|_| matches!(method, Method::POST | Method::PUT | Method::PATCH))
            {
                request = request.json(&body);
            }
            let resp = app.send(request).await;
            record(&app, &method, &path, &resp, 503);
        }
        admin
            .execute_unprepared(&format!("ALTER DATABASE \"{name}\" ALLOW_CONNECTIONS true"))
            .await
            .unwrap();
        admin.close().await.ok();
    }

    // Only statuses that need a broken environment are exercised elsewhere.
    let mut elsewhere: BTreeSet<(String, String, u16)> =
        [("GET".to_owned(), "/readyz".to_owned(), 503)]
            .into_iter()
            .collect();
    if app.pg_name().is_none() {
        elsewhere.extend(api_operations().map(|(m, p)| (m.clone(), p.clone(), 503)));
    }
    let missing: Vec<_> = documented()
        .difference(&app.covered())
        .filter(|triple| !elsewhere.contains(*triple))
        .cloned()
        .collect();
    assert!(
        missing.is_empty(),
        "documented but never exercised: {missing:#?}"
    );
}

/// Checks a raw response against the contract, records it, and asserts its status.
fn record(app: &TestApp, method: &Method, path: &str, resp: &agentry_tests::Resp, status: u16) {
    resp.assert_status(status);
    agentry_tests::contract::check_response(method, path, resp, &app.coverage);
}

db_tests!(
    served_document_is_the_committed_one,
    every_documented_operation_and_status_is_exercised
);
