//! The real test LLM and the Ollama-API shim in front of it.

use std::time::Instant;

use agentry_tests::fakes::ollama;
use agentry_tests::llm::{self, llama_server};
use serde_json::{Value, json};

use super::{assert_schema_valid, body, client, sentiment_messages, sentiment_schema};

#[tokio::test]
async fn llama_server_lists_its_model_and_answers_a_json_schema_with_valid_json() {
    let server = llama_server().await;
    let client = client();

    let (status, models) = body(
        client
            .get(format!("{}/v1/models", server.base_url()))
            .send()
            .await
            .expect("GET /v1/models"),
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(models["data"][0]["id"], llm::MODEL, "models: {models}");

    let started = Instant::now();
    let (status, completion) = body(
        client
            .post(format!("{}/v1/chat/completions", server.base_url()))
            .json(&json!({
                "model": server.model(),
                "messages": sentiment_messages(),
                "response_format": {"type": "json_schema", "json_schema": {
                    "name": "sentiment", "schema": sentiment_schema(), "strict": true
                }},
                "temperature": 0,
                "max_tokens": 64
            }))
            .send()
            .await
            .expect("POST /v1/chat/completions"),
    )
    .await;
    assert_eq!(status, 200, "completion: {completion}");
    let content = completion["choices"][0]["message"]["content"]
        .as_str()
        .expect("content");
    assert_schema_valid(content);
    eprintln!(
        "llama-server: started in {:?}, json_schema completion in {:?} ({} tokens)",
        server.startup_time(),
        started.elapsed(),
        completion["usage"]["completion_tokens"]
    );
}

#[tokio::test]
async fn ollama_shim_lists_the_model_in_ollama_shapes() {
    let shim = ollama::start().await;
    let client = client();

    let (status, tags) = body(client.get(shim.url("/api/tags")).send().await.unwrap()).await;
    assert_eq!(status, 200);
    let model = &tags["models"][0];
    assert_eq!(model["name"], ollama::MODEL);
    assert_eq!(model["model"], ollama::MODEL);
    assert!(model["size"].as_u64().is_some_and(|s| s > 0), "{model}");
    assert_eq!(model["digest"].as_str().map(str::len), Some(64));
    assert!(model["modified_at"].is_string());
    for field in [
        "format",
        "family",
        "families",
        "parameter_size",
        "quantization_level",
    ] {
        assert!(
            !model["details"][field].is_null(),
            "details.{field}: {model}"
        );
    }

    let (status, version) = body(client.get(shim.url("/api/version")).send().await.unwrap()).await;
    assert_eq!(
        (status, &version["version"]),
        (200, &json!(ollama::VERSION))
    );

    // A bare name means `:latest`, which Ollama does not have either.
    let (status, error) = body(
        client
            .post(shim.url("/api/chat"))
            .json(&json!({"model": "smollm2", "messages": [{"role": "user", "content": "hi"}]}))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, 404);
    assert_eq!(error, json!({"error": "model 'smollm2' not found"}));
}

#[tokio::test]
async fn ollama_chat_with_a_schema_format_returns_valid_json_without_streaming() {
    let shim = ollama::start().await;
    let response = client()
        .post(shim.url("/api/chat"))
        .json(&json!({
            "model": ollama::MODEL,
            "messages": sentiment_messages(),
            "format": sentiment_schema(),
            "options": {"temperature": 0, "num_predict": 64, "seed": 7},
            "stream": false
        }))
        .send()
        .await
        .unwrap();
    assert_eq!(
        response
            .headers()
            .get("content-type")
            .and_then(|v| v.to_str().ok()),
        Some("application/json; charset=utf-8")
    );
    let (status, chat) = body(response).await;
    assert_eq!(status, 200, "{chat}");
    assert_eq!(chat["model"], ollama::MODEL);
    assert_eq!(chat["done"], true);
    assert_eq!(chat["done_reason"], "stop");
    assert_eq!(chat["message"]["role"], "assistant");
    assert!(chat["eval_count"].as_u64().is_some_and(|n| n > 0), "{chat}");
    assert!(chat["total_duration"].as_u64().is_some_and(|n| n > 0));
    assert_schema_valid(chat["message"]["content"].as_str().expect("content"));

    let forwarded = shim.last_request().expect("recorded");
    assert_eq!(forwarded.path, "/api/chat");
    assert_eq!(forwarded.body["stream"], false);
}

#[tokio::test]
async fn ollama_chat_streams_ndjson_by_default_and_the_chunks_assemble_to_valid_json() {
    let shim = ollama::start().await;
    // No `stream` field: Ollama streams unless told otherwise.
    let response = client()
        .post(shim.url("/api/chat"))
        .json(&json!({
            "model": ollama::MODEL,
            "messages": sentiment_messages(),
            "format": sentiment_schema(),
            "options": {"temperature": 0, "num_predict": 64}
        }))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(
        response
            .headers()
            .get("content-type")
            .and_then(|v| v.to_str().ok()),
        Some("application/x-ndjson")
    );
    let text = response.text().await.unwrap();
    let lines: Vec<Value> = text
        .lines()
        .map(|line| serde_json::from_str(line).expect("each line is a JSON object"))
        .collect();
    let (last, chunks) = lines.split_last().expect("at least the final line");
    assert!(chunks.len() > 1, "streamed in pieces: {text}");
    for chunk in chunks {
        assert_eq!(chunk["done"], false, "{chunk}");
        assert_eq!(chunk["model"], ollama::MODEL);
        assert_eq!(chunk["message"]["role"], "assistant");
        assert!(chunk["created_at"].is_string());
    }
    assert_eq!(last["done"], true, "{last}");
    assert_eq!(last["done_reason"], "stop");
    assert!(last["eval_count"].as_u64().is_some_and(|n| n > 0), "{last}");
    assert!(last["prompt_eval_count"].as_u64().is_some_and(|n| n > 0));
    let content: String = chunks
        .iter()
        .filter_map(|c| c["message"]["content"].as_str())
        .collect();
    assert_schema_valid(&content);
}
