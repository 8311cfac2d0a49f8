//! Hostile input, on both databases: what clients send (broken, huge, nested, slow, full of
//! control characters) gets a 4xx problem naming the field or is stored and read back
//! byte-identical — never a 500 or a dropped connection; and whatever bytes a provider answers,
//! every run reaches a final state with a reason.

use std::time::Duration;

use agentry_tests::fakes::raw::{RawAnswer, RawServer};
use agentry_tests::{Backend, Resp, TestApp, agent_body, closed_schema, db_tests, task_body};
use reqwest::Method;
use serde_json::json;

#[track_caller]
fn assert_client_error(resp: &Resp, why: &str) {
    let status = resp.status.as_u16();
    assert!(
        (400..500).contains(&status),
        "{why}: expected a 4xx, got {status}: {}",
        resp.text
    );
    assert_eq!(
        resp.header("content-type"),
        Some("application/problem+json"),
        "{why}: {}",
        resp.text
    );
}

/// Raw bodies no operation may answer with a 5xx (or not at all).
fn hostile_bodies() -> Vec<(Vec<u8>, &'static str)> {
    let nested = format!("{}{}", "[".repeat(10_000), "]".repeat(10_000));
    let nested_input = format!(
        "{{\"input\": {}{}}}",
        "{\"a\":".repeat(5_000),
        "1".to_owned() + &"}".repeat(5_000)
    );
    let huge_array = format!("{{\"input\": [{}0]}}", "0,".repeat(400_000));
    vec![
        (Vec::new(), "empty body"),
        (b"{".to_vec(), "truncated"),
        (b"{\"name\": \"a\"".to_vec(), "truncated object"),
        (
            b"{\"name\": \"\xff\xfe\"}".to_vec(),
            "invalid UTF-8 in a string",
        ),
        (b"\xef\xbb\xbf{}".to_vec(), "byte-order mark"),
        (b"{\"name\": \"\\ud800\"}".to_vec(), "lone surrogate escape"),
        (
            b"{\"name\": \"a\", \"name\": \"b\"}".to_vec(),
            "duplicate keys",
        ),
        (b"{\"name\": \"a\x00b\"}".to_vec(), "raw NUL in a string"),
        (
            b"{\"name\": \"a\\u0000b\"}".to_vec(),
            "escaped NUL in a string",
        ),
        (b"{\"max_tokens\": 1e400}".to_vec(), "number out of range"),
        (
            b"{\"max_tokens\": 18446744073709551616}".to_vec(),
            "u64::MAX + 1",
        ),
        (
            b"{\"max_tokens\": -9223372036854775809}".to_vec(),
            "i64::MIN - 1",
        ),
        (
            b"{\"timeout_secs\": 2147483648.0}".to_vec(),
            "i32::MAX + 1 as float",
        ),
        (b"[]".to_vec(), "array body"),
        (b"null".to_vec(), "null body"),
        (b"\"text\"".to_vec(), "string body"),
        (nested.into_bytes(), "10,000 nested arrays"),
        (nested_input.into_bytes(), "5,000 nested objects"),
        (huge_array.into_bytes(), "400,000-element array"),
        (b"{\"input\": {\"k\\u0000\": 1}}".to_vec(), "NUL in a key"),
        (b"{} trailing".to_vec(), "trailing garbage"),
    ]
}

async fn hostile_bodies_get_a_problem_on_every_operation(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let provider = app.ollama_provider("p").await;
    let agent = app.agent_on("a", provider).await;
    let task = app.simple_task("t").await;
    app.assign(agent, task).await.assert_status(201);
    let operations = [
        (Method::POST, "/api/providers".to_owned()),
        (Method::PUT, format!("/api/providers/{provider}")),
        (Method::POST, "/api/agents".to_owned()),
        (Method::PUT, format!("/api/agents/{agent}")),
        (Method::POST, "/api/tasks".to_owned()),
        (Method::PUT, format!("/api/tasks/{task}")),
        (Method::POST, format!("/api/agents/{agent}/tasks")),
        (
            Method::POST,
            format!("/api/agents/{agent}/tasks/{task}/runs"),
        ),
    ];
    for (method, path) in &operations {
        for (body, why) in hostile_bodies() {
            let resp = app
                .send(
                    app.raw(method.clone(), path)
                        .header("content-type", "application/json")
                        .body(body),
                )
                .await;
            assert_client_error(&resp, &format!("{method} {path}: {why}"));
        }
        for content_type in [
            None,
            Some("text/plain"),
            Some("application/xml"),
            Some("application/jsonx"),
        ] {
            let mut request = app.raw(method.clone(), path).body("{}");
            if let Some(content_type) = content_type {
                request = request.header("content-type", content_type);
            }
            let resp = app.send(request).await;
            resp.assert_problem(415, "unsupported_media_type");
        }
    }
    // Nothing was stored by any of it.
    assert_eq!(app.get("/api/agents").await.json()["total"], 1);
    assert_eq!(app.get("/api/tasks").await.json()["total"], 1);
    assert_eq!(app.get("/api/providers").await.json()["total"], 1);
    assert_eq!(app.get("/api/runs").await.json()["total"], 0);
}

async fn hostile_paths_and_queries_get_a_problem(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let long = "a".repeat(8_000);
    let table = [
        format!("/api/agents/{long}"),
        "/api/agents/%00".to_owned(),
        "/api/agents/%FF%FE".to_owned(),
        "/api/agents/..%2F..%2Fetc%2Fpasswd".to_owned(),
        "/api/runs?status=paused".to_owned(),
        "/api/runs?agent_id=not-a-uuid".to_owned(),
        "/api/runs?limit=99999999999999999999999".to_owned(),
        "/api/runs?offset=%00".to_owned(),
        "/api/agents?limit=1&limit=2".to_owned(),
        "/api/agents?unknown=1".to_owned(),
        format!("/api/tasks?limit={long}"),
    ];
    for path in table {
        let resp = app.get(&path).await;
        assert_client_error(&resp, &path);
    }
}

/// Values that are awkward but valid are stored and read back exactly, by both databases.
async fn awkward_valid_values_are_stored_and_read_back_byte_identical(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let provider = app.ollama_provider("p").await;
    let names = [
        "émoji 🦀 名前",
        "\u{202e}right-to-left override",
        "zero\u{200b}width",
        "\u{feff}bom",
        "quotes \" ' ` and \\ backslash",
        "<script>alert(1)</script>",
        "'; DROP TABLE agent_configs; --",
        "%s%n%x {{ input }}",
    ];
    for (i, name) in names.iter().enumerate() {
        let mut body = agent_body(name, provider);
        body["description"] = json!(format!("line\u{2028}sep\tand\r\nnewlines \u{1}\u{7f} {i}"));
        body["system_prompt"] = json!(format!("{name}\n\u{85}next line"));
        body["user_prompt"] = json!("{{ input | tojson }} \u{fffd}");
        let created = app.create_agent(&body).await.assert_status(201).json();
        let read = app
            .get(&format!("/api/agents/{}", created["id"].as_str().unwrap()))
            .await
            .json();
        for field in ["name", "description", "system_prompt", "user_prompt"] {
            assert_eq!(read[field], body[field], "{field} of {name:?}");
            assert_eq!(
                created[field], body[field],
                "{field} of {name:?} as created"
            );
        }
    }
    let schema = json!({
        "type": "object",
        "$comment": "control \u{1} and unicode \u{10ffff}",
        "properties": {"ключ \u{1f980}": {"type": "string", "description": "\u{2028}"}},
        "additionalProperties": false
    });
    let mut body = task_body("awkward");
    body["request_schema"] = schema.clone();
    body["response_schema"] = schema.clone();
    let created = app.create_task(&body).await.assert_status(201).json();
    let read = app
        .get(&format!("/api/tasks/{}", created["id"].as_str().unwrap()))
        .await
        .json();
    assert_eq!(read["request_schema"], schema);
    assert_eq!(read["response_schema"], schema);
}

/// A client that sends half a request and goes quiet is disconnected; others are served.
async fn a_client_that_stops_sending_headers_is_disconnected(backend: Backend) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let app = TestApp::spawn_with(backend, |c| c.request_header_timeout_secs = 1).await;
    let addr = app.base_url.trim_start_matches("http://").to_owned();
    let mut quiet = Vec::new();
    for _ in 0..20 {
        let mut stream = tokio::net::TcpStream::connect(&addr).await.unwrap();
        stream
            .write_all(b"GET /api/providers HTTP/1.1\r\nHost: x\r\nX-Slow: ")
            .await
            .unwrap();
        quiet.push(stream);
    }
    // Served meanwhile.
    app.get("/api/providers").await.assert_status(200);
    for mut stream in quiet {
        let mut buffer = [0_u8; 1024];
        let read = tokio::time::timeout(Duration::from_secs(10), stream.read(&mut buffer))
            .await
            .expect("the server closes a connection whose headers never arrive");
        // Closed (0 bytes, or a reset), possibly after a 408.
        match read {
            Ok(0) | Err(_) => {}
            Ok(n) => assert!(
                String::from_utf8_lossy(&buffer[..n]).starts_with("HTTP/1.1 408"),
                "{}",
                String::from_utf8_lossy(&buffer[..n])
            ),
        }
    }
    // On a new connection: the pooled one of the request above sat idle for longer than the
    // header timeout while the quiet ones were read, so the server may have closed it, and
    // reusing it races that close (a reset).
    let fresh = reqwest::Client::builder().no_proxy().build().unwrap();
    let status = fresh
        .get(format!("{}/api/providers", app.base_url))
        .send()
        .await
        .unwrap()
        .status();
    assert_eq!(status, 200);
}

/// What a provider can answer: each case ends its run `failed` with a reason (or
/// `succeeded`), never `running`, and the run and its events stay readable.
async fn whatever_a_provider_answers_every_run_ends(backend: Backend) {
    let envelope =
        |content: &str| json!({"choices": [{"message": {"content": content}}]}).to_string();
    let gigantic = RawAnswer {
        head: "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 10485760\r\nConnection: close".to_owned(),
        body: vec![b' '; 1024 * 1024],
        repeat: 10,
        stall: false,
    };
    let never_ends = RawAnswer {
        head: "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 1000"
            .to_owned(),
        body: b"{\"choices\":".to_vec(),
        repeat: 1,
        stall: true,
    };
    let cases: Vec<(RawAnswer, &str)> = vec![
        (
            RawAnswer::json(b"{\"choices\":[{\"message\":{\"content\":\"\xff\xfe\"}}]}".to_vec()),
            "invalid UTF-8",
        ),
        (
            RawAnswer::json(envelope("bad\u{0}text")),
            "a raw NUL in the answer",
        ),
        (
            RawAnswer::json(envelope(r#"{"sentiment":"positive\u0000","score":0.5}"#)),
            "NUL inside the JSON answer",
        ),
        (
            RawAnswer::json(envelope(&format!(
                "{}1{}",
                "[".repeat(10_000),
                "]".repeat(10_000)
            ))),
            "10,000 nested arrays",
        ),
        (
            RawAnswer::json(b"<html><body>OK</body></html>".to_vec()),
            "HTML",
        ),
        (
            RawAnswer::json(b"{\"choices\":\"nope\"}".to_vec()),
            "wrong shape",
        ),
        (RawAnswer::json(Vec::new()), "empty body"),
        (
            RawAnswer::json(format!("{}{}", "[".repeat(100_000), "]".repeat(100_000))),
            "100,000 nested arrays",
        ),
        (gigantic, "a 10 MiB body"),
        (never_ends, "a body that never ends"),
    ];
    let app = TestApp::spawn(backend).await;
    let mut task = task_body("sentiment");
    task["response_schema"] = closed_schema();
    let task = app.create_task(&task).await.assert_status(201).id();
    for (i, (answer, why)) in cases.into_iter().enumerate() {
        let server = RawServer::start(answer).await;
        let provider = app
            .create_provider(
                &json!({"name": format!("raw-{i}"), "kind": "openai_compatible",
                "base_url": server.base_url()}),
            )
            .await
            .assert_status(201)
            .id();
        let mut agent = agent_body(&format!("agent-{i}"), provider);
        agent["timeout_secs"] = json!(3);
        agent["max_retries"] = json!(0);
        let agent = app.create_agent(&agent).await.assert_status(201).id();
        app.assign(agent, task).await.assert_status(201);
        let resp = app
            .post(
                &format!("/api/agents/{agent}/tasks/{task}/runs"),
                &json!({"input": {"text": "x"}}),
            )
            .await
            .assert_status(201)
            .json();
        let id = resp["id"].as_str().unwrap().to_owned();
        assert_eq!(resp["status"], "failed", "{why}: {resp}");
        assert!(
            !resp["error"].as_str().unwrap_or("").is_empty(),
            "{why}: no reason"
        );
        let stored = app
            .get(&format!("/api/runs/{id}"))
            .await
            .assert_status(200)
            .json();
        assert_eq!(stored["status"], "failed", "{why}");
        app.get(&format!("/api/runs/{id}/events"))
            .await
            .assert_status(200);
        assert!(
            server.connections() >= 1,
            "{why}: the provider was not asked"
        );
    }
    let running = app.get("/api/runs?status=running").await.json();
    assert_eq!(running["total"], 0, "a run was left running");
}

/// A provider's model list with characters a database cannot store is stored anyway (as
/// U+FFFD) and the check ends; it never stays `validating`.
async fn a_model_list_with_nul_is_stored_readably(backend: Backend) {
    let server = RawServer::start(RawAnswer::json(
        json!({"data": [{"id": "m\u{0}x"}, {"id": "ok"}, {"nope": 1}]}).to_string(),
    ))
    .await;
    let app = TestApp::spawn_with(backend, |c| c.validator.enabled = true).await;
    let id = app
        .create_provider(
            &json!({"name": "raw", "kind": "openai_compatible", "base_url": server.base_url()}),
        )
        .await
        .assert_status(201)
        .id();
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    let provider = loop {
        let provider = app.get(&format!("/api/providers/{id}")).await.json();
        if provider["validation_status"] == "connected" || provider["validation_status"] == "error"
        {
            break provider;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "check never ended: {provider}"
        );
        tokio::time::sleep(Duration::from_millis(25)).await;
    };
    assert_eq!(provider["validation_status"], "connected", "{provider}");
    assert_eq!(provider["models"], json!(["m\u{fffd}x", "ok"]));
}

db_tests!(
    hostile_bodies_get_a_problem_on_every_operation,
    hostile_paths_and_queries_get_a_problem,
    awkward_valid_values_are_stored_and_read_back_byte_identical,
    a_client_that_stops_sending_headers_is_disconnected,
    whatever_a_provider_answers_every_run_ends,
    a_model_list_with_nul_is_stored_readably,
);
