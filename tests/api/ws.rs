//! `/ws`: topic fan-out, isolation, CRUD events, subscription messages, limits, slow clients,
//! Origin and token checks, and the 1001 close on shutdown.

use std::time::Duration;

use agentry_tests::ws::{Next, code};
use agentry_tests::{Backend, TestApp, agent_body, db_tests, task_body};
use serde_json::{Value, json};
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;

const KEY: &str = "sk-ws-canary-0123456789-SECRET";

async fn three_clients_on_one_topic_receive_the_same_event(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let mut clients = vec![
        app.ws("providers").await,
        app.ws("providers").await,
        app.ws("providers,agents").await,
    ];
    let created = app
        .create_provider(&json!({"name": "p", "kind": "openai", "api_key": KEY}))
        .await;
    created.assert_status(201);
    let mut events = Vec::new();
    for client in &mut clients {
        events.push(client.next_change().await);
    }
    for event in &events {
        assert_eq!(event, &events[0], "every client gets the same event");
        assert!(
            !event.to_string().contains("canary"),
            "no key in frames: {event}"
        );
    }
    assert_eq!(events[0]["topic"], "providers");
    assert_eq!(events[0]["event"], "created");
    assert_eq!(events[0]["id"], created.json()["id"]);
    assert_eq!(
        events[0]["data"],
        created.json(),
        "data is the resource as the API returns it"
    );
    assert_eq!(events[0]["seq"], 1);
}

async fn a_client_receives_only_its_topics(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let mut tasks_only = app.ws("tasks").await;
    app.ollama_provider("p").await;
    let task = app.simple_task("t").await;
    // Events leave in publish order, so the provider event would have come first.
    let event = tasks_only.next_event().await;
    assert_eq!(event["topic"], "tasks");
    assert_eq!(event["id"], task.to_string());
}

async fn every_crud_change_is_published(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let mut ws = app.ws("providers,agents,tasks").await;
    let provider = app.ollama_provider("p").await;
    let task = app.simple_task("t").await;
    let agent = app.agent_on("a", provider).await;
    app.assign(agent, task).await.assert_status(201);
    let mut renamed = agent_body("a2", provider);
    renamed["model"] = json!("m2");
    app.put(&format!("/api/agents/{agent}"), &renamed)
        .await
        .assert_status(200);
    app.delete(&format!("/api/agents/{agent}"))
        .await
        .assert_status(204);
    app.put(&format!("/api/tasks/{task}"), &task_body("t2"))
        .await
        .assert_status(200);
    app.delete(&format!("/api/tasks/{task}"))
        .await
        .assert_status(204);
    app.put(
        &format!("/api/providers/{provider}"),
        &json!({"name": "p2", "kind": "ollama", "base_url": "http://127.0.0.1:1"}),
    )
    .await
    .assert_status(200);
    app.delete(&format!("/api/providers/{provider}"))
        .await
        .assert_status(204);

    let expected = [
        ("providers", "created", provider),
        ("tasks", "created", task),
        ("agents", "created", agent),
        ("agents", "updated", agent), // assignment
        ("tasks", "updated", task),   // assignment
        ("agents", "updated", agent), // rename
        ("tasks", "updated", task),   // its agent list shows the new name
        ("agents", "deleted", agent),
        ("tasks", "updated", task), // lost its agent
        ("tasks", "updated", task),
        ("tasks", "deleted", task),
        ("providers", "updated", provider),
        ("providers", "deleted", provider),
    ];
    let mut seqs = std::collections::HashMap::new();
    for (topic, kind, id) in expected {
        let event = ws.next_change().await;
        assert_eq!(
            (
                event["topic"].as_str(),
                event["event"].as_str(),
                event["id"].as_str()
            ),
            (Some(topic), Some(kind), Some(id.to_string().as_str())),
            "{event}"
        );
        // Validator events share the providers topic, so seq gaps are checked elsewhere.
        let seq = event["seq"].as_u64().unwrap();
        let last = seqs.insert(topic, seq).unwrap_or(0);
        assert!(seq > last, "seq grows per topic");
    }
}

async fn subscribe_unsubscribe_and_ping(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let mut ws = app.ws_with("", &[]).await.unwrap();
    ws.send_json(&json!({"type": "subscribe", "topics": ["agents", "providers"]}))
        .await;
    let ack = ws.next_json().await;
    assert_eq!(
        ack,
        json!({"type": "subscribed", "topics": ["providers", "agents"]})
    );
    ws.send_json(&json!({"type": "unsubscribe", "topics": ["agents"]}))
        .await;
    assert_eq!(ws.next_json().await["topics"], json!(["providers"]));
    ws.send_json(&json!({"type": "ping"})).await;
    assert_eq!(ws.next_json().await, json!({"type": "pong"}));
    let table = [
        json!({"type": "dance"}),
        json!({"type": "subscribe", "topics": ["weather"]}),
        json!({"type": "subscribe"}),
        json!("subscribe"),
    ];
    for bad in table {
        ws.send_json(&bad).await;
        let error = ws.next_json().await;
        assert_eq!(error["type"], "error", "{bad}: {error}");
        assert_eq!(error["code"], "bad_message");
    }
    // Still open and subscribed after the bad messages.
    let id = app.ollama_provider("p").await;
    assert_eq!(ws.next_change().await["id"], id.to_string());
}

async fn unknown_topic_in_query_is_400(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let err = app
        .ws_with("?topics=providers,weather", &[])
        .await
        .err()
        .expect("refused");
    assert!(err.to_string().contains("400"), "{err}");
}

async fn oversized_message_closes_with_1009(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let mut ws = app.ws("providers").await;
    let big = json!({"type": "subscribe", "topics": [], "pad": "x".repeat(70 * 1024)});
    ws.send_json(&big).await;
    assert_eq!(ws.closed().await, Some(code(CloseCode::Size)));
}

async fn a_client_that_never_reads_delays_nobody_and_is_closed(backend: Backend) {
    let app = TestApp::spawn_with(backend, |c| {
        c.ws.send_timeout = Duration::from_millis(300);
    })
    .await;
    let mut stalled = app.ws("tasks").await;
    let mut reader = app.ws("tasks").await;
    // Big events fill the stalled socket's buffers quickly.
    let wide: serde_json::Map<String, Value> = (0..1_500)
        .map(|i| (format!("property_{i:04}"), json!({"type": "string"})))
        .collect();
    let rounds = 120;
    let id = app.simple_task("t").await;
    assert_eq!(reader.next_event().await["event"], "created");
    let reading = tokio::spawn(async move {
        for expected in 2..=(rounds + 1) {
            let event = reader.next_event().await;
            assert_eq!(event["seq"], expected, "the reading client misses nothing");
        }
    });
    for i in 0..rounds {
        let body = json!({"name": "t", "description": format!("round {i}"), "response_schema": {"properties": wide}});
        app.put(&format!("/api/tasks/{id}"), &body)
            .await
            .assert_status(200);
    }
    reading.await.expect("reader got every event");
    // The stalled client was dropped: reading now ends in a close, not in all events.
    let mut received = 0;
    while let Next::Json(_) = stalled.next().await {
        received += 1;
    }
    assert!(
        received < rounds + 1,
        "stalled client was closed, got {received} messages"
    );
}

async fn foreign_origin_is_refused(backend: Backend) {
    let app = TestApp::spawn_with(backend, |c| {
        c.allowed_origins = vec!["https://agentry.example.com".to_owned()];
    })
    .await;
    let host = app.base_url.trim_start_matches("http://").to_owned();
    let own = format!("http://{host}");
    app.ws_with("", &[("origin", own.as_str())])
        .await
        .expect("same origin");
    app.ws_with("", &[("origin", "https://agentry.example.com")])
        .await
        .expect("allow-listed");
    let err = app
        .ws_with("", &[("origin", "https://evil.example")])
        .await
        .err()
        .expect("refused");
    assert!(err.to_string().contains("403"), "{err}");
}

async fn token_by_header_or_first_message(backend: Backend) {
    let token = "ws-token-0123456789abcdef";
    let mut app = TestApp::spawn_with(backend, |c| {
        c.api_token = Some(token.to_owned());
        c.ws.auth_timeout = Duration::from_millis(500);
    })
    .await;
    // Header: works like any client.
    let mut by_header = app.ws("providers").await;
    // First message: what browsers do.
    app.token = None;
    let mut by_message = app.ws_with("?topics=providers", &[]).await.unwrap();
    by_message
        .send_json(&json!({"type": "auth", "token": token}))
        .await;
    assert_eq!(by_message.next_json().await["type"], "subscribed");
    // Silent clients are closed; wrong tokens are refused.
    let mut silent = app.ws_with("?topics=providers", &[]).await.unwrap();
    assert_eq!(silent.closed().await, Some(code(CloseCode::Policy)));
    let mut wrong = app.ws_with("", &[]).await.unwrap();
    wrong
        .send_json(&json!({"type": "auth", "token": "nope"}))
        .await;
    assert_eq!(wrong.closed().await, Some(code(CloseCode::Policy)));
    let mut premature = app.ws_with("", &[]).await.unwrap();
    premature
        .send_json(&json!({"type": "subscribe", "topics": ["providers"]}))
        .await;
    assert_eq!(premature.closed().await, Some(code(CloseCode::Policy)));
    let err = app
        .ws_with("", &[("authorization", "Bearer wrong-token-0123456789")])
        .await
        .err()
        .expect("refused");
    assert!(err.to_string().contains("401"), "{err}");
    // Authenticated sockets get events.
    app.token = Some(token.to_owned());
    let id = app.ollama_provider("p").await;
    assert_eq!(by_header.next_change().await["id"], id.to_string());
    assert_eq!(by_message.next_change().await["id"], id.to_string());
}

async fn shutdown_closes_sockets_with_1001(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let mut ws = app.ws("providers").await;
    let closed = tokio::spawn(async move { ws.closed().await });
    let _ = app.stop().await;
    assert_eq!(closed.await.unwrap(), Some(code(CloseCode::Away)));
}

async fn server_pings_and_drops_clients_that_never_answer(backend: Backend) {
    use futures_util::StreamExt;
    use tokio_tungstenite::tungstenite::Message;
    let app = TestApp::spawn_with(backend, |c| {
        c.ws.ping_interval = Duration::from_millis(100);
    })
    .await;
    // A client that keeps reading (tungstenite answers pings as it reads) sees pings and
    // stays connected.
    let mut live = app.ws("providers").await;
    let (ready, ready_rx) = tokio::sync::oneshot::channel();
    let reader = tokio::spawn(async move {
        let mut ready = Some(ready);
        loop {
            match live.stream.next().await {
                Some(Ok(Message::Ping(_))) => {
                    if let Some(ready) = ready.take() {
                        let _ = ready.send(());
                    }
                }
                Some(Ok(Message::Text(text))) => {
                    let event: Value = serde_json::from_str(text.as_str()).unwrap();
                    if event["event"] == "created" {
                        return event;
                    }
                }
                Some(Ok(_)) => {}
                other => panic!("live client dropped: {other:?}"),
            }
        }
    });
    tokio::time::timeout(Duration::from_secs(10), ready_rx)
        .await
        .expect("a keepalive ping")
        .unwrap();
    // A client that never reads never answers: dropped after three silent periods. Not
    // reading is the point here, so this one pause is a sleep.
    let mut mute = app.ws("providers").await;
    tokio::time::sleep(Duration::from_millis(800)).await;
    mute.closed().await;
    let id = app.ollama_provider("p").await;
    let event = reader.await.unwrap();
    assert_eq!(event["id"], id.to_string(), "the live client still works");
}

db_tests!(
    server_pings_and_drops_clients_that_never_answer,
    three_clients_on_one_topic_receive_the_same_event,
    a_client_receives_only_its_topics,
    every_crud_change_is_published,
    subscribe_unsubscribe_and_ping,
    unknown_topic_in_query_is_400,
    oversized_message_closes_with_1009,
    a_client_that_never_reads_delays_nobody_and_is_closed,
    foreign_origin_is_refused,
    token_by_header_or_first_message,
    shutdown_closes_sockets_with_1001,
);
