//! The test doubles themselves: the real test LLM and the Ollama shim produce schema-valid
//! JSON, and the cloud fakes answer in their providers' shapes, refuse keys as the providers
//! do, and fail, hang or stop on demand. No database involved.

use std::time::{Duration, Instant};

use agentry_tests::fakes::{Behavior, Fake, Options, Reply, anthropic, gemini, ollama, openai};
use agentry_tests::install_crypto_provider;
use agentry_tests::llm::{self, llama_server};
use serde_json::{Value, json};

/// Generous: requests to the real model queue behind each other on one llama-server slot.
fn client() -> reqwest::Client {
    install_crypto_provider();
    reqwest::Client::builder()
        .no_proxy()
        .timeout(Duration::from_secs(120))
        .build()
        .expect("client")
}

/// A closed schema: the model's answer ends after a few dozen tokens.
fn sentiment_schema() -> Value {
    json!({
        "type": "object",
        "properties": {
            "sentiment": {"type": "string", "enum": ["positive", "negative", "neutral"]},
            "score": {"type": "number", "minimum": 0, "maximum": 1}
        },
        "required": ["sentiment", "score"],
        "additionalProperties": false
    })
}

/// Temperature 0 keeps the tiny model's score inside 0..1: llama.cpp's grammar enforces the
/// enum and the shape but not `minimum`/`maximum` on numbers.
fn sentiment_messages() -> Value {
    json!([
        {"role": "system", "content": "Classify the sentiment of the text. Answer in JSON with a score between 0 and 1."},
        {"role": "user", "content": "I love this product, it is wonderful!"}
    ])
}

#[track_caller]
fn assert_schema_valid(content: &str) -> Value {
    let value: Value = serde_json::from_str(content)
        .unwrap_or_else(|e| panic!("model output is not JSON ({e}): {content:?}"));
    if let Err(error) = jsonschema::validate(&sentiment_schema(), &value) {
        panic!("model output does not match the schema ({error}): {content}");
    }
    value
}

async fn body(response: reqwest::Response) -> (u16, Value) {
    let status = response.status().as_u16();
    let text = response.text().await.expect("read body");
    (status, serde_json::from_str(&text).unwrap_or(Value::Null))
}

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

fn anthropic_get(fake: &Fake, path: &str, key: Option<&str>) -> reqwest::RequestBuilder {
    let mut request = client()
        .get(fake.url(path))
        .header("anthropic-version", "2023-06-01");
    if let Some(key) = key {
        request = request.header("x-api-key", key);
    }
    request
}

#[tokio::test]
async fn anthropic_fake_lists_models_and_refuses_keys_like_anthropic() {
    let fake = anthropic::start_with(Options {
        forbidden_key: Some("sk-ant-no-access".to_owned()),
        ..anthropic::options()
    })
    .await;

    let (status, models) = body(
        anthropic_get(&fake, "/v1/models", Some(anthropic::KEY))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(models["data"][0]["type"], "model");
    assert!(models["data"][0]["display_name"].is_string());
    assert!(models["data"][0]["created_at"].is_string());
    assert_eq!(models["has_more"], false);
    assert_eq!(models["first_id"], models["data"][0]["id"]);

    let (_, page) = body(
        anthropic_get(&fake, "/v1/models?limit=1", Some(anthropic::KEY))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(page["has_more"], true);
    assert_eq!(page["data"].as_array().map(Vec::len), Some(1));

    let cases = [
        (Some("sk-ant-wrong"), 401, "authentication_error"),
        (None, 401, "authentication_error"),
        (Some("sk-ant-no-access"), 403, "permission_error"),
    ];
    for (key, expected, kind) in cases {
        let (status, error) = body(
            anthropic_get(&fake, "/v1/models", key)
                .send()
                .await
                .unwrap(),
        )
        .await;
        assert_eq!((status, &error["error"]["type"]), (expected, &json!(kind)));
        assert_eq!(error["type"], "error");
    }
    let (status, error) = body(
        client()
            .get(fake.url("/v1/models"))
            .header("x-api-key", anthropic::KEY)
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, 400);
    assert_eq!(
        error["error"]["message"],
        "anthropic-version: header is required"
    );
    assert_eq!(fake.request_count(), 6);
}

#[tokio::test]
async fn anthropic_fake_answers_scripted_tool_use_then_text() {
    let fake = anthropic::start().await;
    fake.push_replies([
        Reply::ToolInput(json!({"sentiment": "positive", "score": 0.9})),
        Reply::Text("{not json".to_owned()),
    ]);
    let request = json!({
        "model": "claude-haiku-4-5-20251001",
        "max_tokens": 256,
        "messages": [{"role": "user", "content": "Classify: great"}],
        "tools": [{"name": "respond", "input_schema": sentiment_schema()}],
        "tool_choice": {"type": "tool", "name": "respond"}
    });
    let send = || {
        client()
            .post(fake.url("/v1/messages"))
            .header("x-api-key", anthropic::KEY)
            .header("anthropic-version", "2023-06-01")
            .json(&request)
            .send()
    };

    let (status, message) = body(send().await.unwrap()).await;
    assert_eq!(status, 200, "{message}");
    assert_eq!(message["type"], "message");
    assert_eq!(message["role"], "assistant");
    assert_eq!(message["stop_reason"], "tool_use");
    let tool_use = &message["content"][0];
    assert_eq!(tool_use["type"], "tool_use");
    assert_eq!(tool_use["name"], "respond");
    assert_eq!(
        tool_use["input"],
        json!({"sentiment": "positive", "score": 0.9})
    );
    assert!(message["usage"]["input_tokens"].as_u64().is_some());

    let (_, message) = body(send().await.unwrap()).await;
    assert_eq!(message["stop_reason"], "end_turn");
    assert_eq!(
        message["content"],
        json!([{"type": "text", "text": "{not json"}])
    );
    assert_eq!(fake.pending_replies(), 0);

    let (status, error) = body(
        client()
            .post(fake.url("/v1/messages"))
            .header("x-api-key", anthropic::KEY)
            .header("anthropic-version", "2023-06-01")
            .json(&json!({"model": "claude-nope", "max_tokens": 1, "messages": []}))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(
        (status, &error["error"]["type"]),
        (404, &json!("not_found_error"))
    );

    let recorded = fake.requests_to("/v1/messages");
    assert_eq!(recorded.len(), 3);
    assert_eq!(recorded[0].header("x-api-key"), Some(anthropic::KEY));
    assert_eq!(recorded[0].body["tool_choice"]["name"], "respond");
}

#[tokio::test]
async fn gemini_fake_lists_models_and_refuses_keys_like_google() {
    let fake = gemini::start_with(Options {
        forbidden_key: Some("AIza-no-access".to_owned()),
        ..gemini::options()
    })
    .await;
    let get = |key: Option<&str>| {
        let request = client().get(fake.url("/v1beta/models"));
        match key {
            Some(key) => request.header("x-goog-api-key", key),
            None => request,
        }
    };

    let (status, models) = body(get(Some(gemini::KEY)).send().await.unwrap()).await;
    assert_eq!(status, 200);
    assert_eq!(models["models"][0]["name"], "models/gemini-2.5-flash");
    assert!(models["models"][0]["displayName"].is_string());
    assert_eq!(
        models["models"][0]["supportedGenerationMethods"][0],
        "generateContent"
    );
    assert!(models.get("nextPageToken").is_none());

    let cases = [
        (Some("AIza-wrong"), 400, "INVALID_ARGUMENT"),
        (None, 403, "PERMISSION_DENIED"),
        (Some("AIza-no-access"), 403, "PERMISSION_DENIED"),
    ];
    for (key, expected, code) in cases {
        let (status, error) = body(get(key).send().await.unwrap()).await;
        assert_eq!(status, expected, "{error}");
        assert_eq!(error["error"]["code"], expected);
        assert_eq!(error["error"]["status"], code);
    }
    let (_, error) = body(get(Some("AIza-wrong")).send().await.unwrap()).await;
    assert_eq!(
        error["error"]["message"],
        "API key not valid. Please pass a valid API key."
    );
    assert_eq!(error["error"]["details"][0]["reason"], "API_KEY_INVALID");

    let generate = |model: &str| {
        client()
            .post(fake.url(&format!("/v1beta/models/{model}:generateContent")))
            .header("x-goog-api-key", gemini::KEY)
            .json(&json!({"contents": [{"role": "user", "parts": [{"text": "hi"}]}]}))
            .send()
    };
    fake.push_reply(Reply::Text(
        "{\"sentiment\":\"neutral\",\"score\":0.5}".to_owned(),
    ));
    let (status, answer) = body(generate("gemini-2.5-flash").await.unwrap()).await;
    assert_eq!(status, 200, "{answer}");
    let candidate = &answer["candidates"][0];
    assert_eq!(candidate["content"]["role"], "model");
    assert_eq!(candidate["finishReason"], "STOP");
    assert_schema_valid(candidate["content"]["parts"][0]["text"].as_str().unwrap());
    assert!(
        answer["usageMetadata"]["totalTokenCount"]
            .as_u64()
            .is_some()
    );

    // Listed, but not a generateContent model.
    let (status, error) = body(generate("gemini-embedding-001").await.unwrap()).await;
    assert_eq!(
        (status, &error["error"]["status"]),
        (404, &json!("NOT_FOUND"))
    );
}

#[tokio::test]
async fn gemini_fake_flags_a_key_in_the_url_query() {
    let fake = gemini::start().await;
    let (status, _) = body(
        client()
            .get(fake.url(&format!("/v1beta/models?key={}", gemini::KEY)))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, 400);
    assert_eq!(
        fake.last_request().unwrap().query_param("key").as_deref(),
        Some(gemini::KEY)
    );
    // Taken here; left in place, dropping the fake would fail the test.
    let violations = fake.take_violations();
    assert_eq!(violations.len(), 1, "{violations:?}");
}

#[tokio::test]
async fn openai_fake_lists_models_and_completes_with_bearer_auth() {
    let fake = openai::start().await;

    let (status, models) = body(
        client()
            .get(fake.url("/v1/models"))
            .bearer_auth(openai::KEY)
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(models["object"], "list");
    assert_eq!(models["data"][0]["object"], "model");
    assert!(models["data"][0]["created"].is_u64());
    assert!(models["data"][0]["owned_by"].is_string());

    let (status, error) = body(client().get(fake.url("/v1/models")).send().await.unwrap()).await;
    assert_eq!(status, 401);
    assert_eq!(error["error"]["type"], "invalid_request_error");
    let wrong = "sk-proj-wrong-key-0123456789";
    let (status, error) = body(
        client()
            .get(fake.url("/v1/models"))
            .bearer_auth(wrong)
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(
        (status, &error["error"]["code"]),
        (401, &json!("invalid_api_key"))
    );
    let message = error["error"]["message"].as_str().unwrap();
    assert!(
        !message.contains(wrong) && message.contains("6789"),
        "masked like OpenAI: {message}"
    );

    fake.push_reply(Reply::ToolInput(
        json!({"sentiment": "negative", "score": 0.1}),
    ));
    let (status, completion) = body(
        client()
            .post(fake.url("/v1/chat/completions"))
            .bearer_auth(openai::KEY)
            .json(&json!({
                "model": "gpt-4o-mini",
                "messages": sentiment_messages(),
                "tools": [{"type": "function", "function": {"name": "classify", "parameters": sentiment_schema()}}]
            }))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, 200, "{completion}");
    assert_eq!(completion["object"], "chat.completion");
    let choice = &completion["choices"][0];
    assert_eq!(choice["finish_reason"], "tool_calls");
    let call = &choice["message"]["tool_calls"][0];
    assert_eq!(call["function"]["name"], "classify");
    let arguments: Value =
        serde_json::from_str(call["function"]["arguments"].as_str().unwrap()).unwrap();
    assert_eq!(arguments, json!({"sentiment": "negative", "score": 0.1}));
    let usage = &completion["usage"];
    assert_eq!(
        usage["total_tokens"].as_u64(),
        Some(
            usage["prompt_tokens"].as_u64().unwrap() + usage["completion_tokens"].as_u64().unwrap()
        )
    );

    // An OpenAI-compatible server without auth.
    let open = openai::start_with(Options {
        api_key: None,
        ..openai::options()
    })
    .await;
    let (status, _) = body(client().get(open.url("/v1/models")).send().await.unwrap()).await;
    assert_eq!(status, 200);
}

#[tokio::test]
async fn fakes_answer_429_with_retry_after_and_one_off_errors_on_demand() {
    let anthropic = anthropic::start().await;
    let gemini = gemini::start().await;
    let openai = openai::start().await;
    let requests = [
        (
            &anthropic,
            client()
                .get(anthropic.url("/v1/models"))
                .header("x-api-key", anthropic::KEY)
                .header("anthropic-version", "2023-06-01"),
            "/error/type",
            json!("rate_limit_error"),
        ),
        (
            &gemini,
            client()
                .get(gemini.url("/v1beta/models"))
                .header("x-goog-api-key", gemini::KEY),
            "/error/status",
            json!("RESOURCE_EXHAUSTED"),
        ),
        (
            &openai,
            client()
                .get(openai.url("/v1/models"))
                .bearer_auth(openai::KEY),
            "/error/code",
            json!("rate_limit_exceeded"),
        ),
    ];
    for (fake, request, pointer, expected) in requests {
        fake.set_behavior(Behavior::rate_limited(1));
        let response = request.try_clone().unwrap().send().await.unwrap();
        assert_eq!(
            response
                .headers()
                .get("retry-after")
                .and_then(|v| v.to_str().ok()),
            Some("1")
        );
        let (status, error) = body(response).await;
        assert_eq!(status, 429);
        assert_eq!(error.pointer(pointer), Some(&expected), "{error}");

        // One 500, then the provider answers normally again.
        fake.set_behavior(Behavior::Normal);
        fake.push_once(Behavior::status(500));
        let (first, _) = body(request.try_clone().unwrap().send().await.unwrap()).await;
        let (second, _) = body(request.send().await.unwrap()).await;
        assert_eq!((first, second), (500, 200));
    }
    assert_eq!(
        gemini.requests()[0].headers.get("x-goog-api-key").unwrap(),
        gemini::KEY
    );
}

#[tokio::test]
async fn a_hung_fake_is_observed_as_a_client_timeout_and_a_slow_one_answers_late() {
    let fake = openai::start_with(Options {
        api_key: None,
        ..openai::options()
    })
    .await;
    install_crypto_provider();
    let quick = reqwest::Client::builder()
        .no_proxy()
        .timeout(Duration::from_millis(300))
        .build()
        .unwrap();

    fake.set_behavior(Behavior::Hang);
    let error = quick
        .get(fake.url("/v1/models"))
        .send()
        .await
        .expect_err("a hung server never answers");
    assert!(error.is_timeout(), "{error}");
    fake.wait_for_requests(1, Duration::from_secs(5)).await;

    fake.set_behavior(Behavior::Delay(Duration::from_millis(200)));
    let started = Instant::now();
    let (status, _) = body(client().get(fake.url("/v1/models")).send().await.unwrap()).await;
    assert_eq!(status, 200);
    assert!(started.elapsed() >= Duration::from_millis(200));
}

#[tokio::test]
async fn a_stopped_fake_refuses_connections() {
    let mut fake = anthropic::start().await;
    let url = fake.url("/v1/models");
    fake.stop().await;
    let error = client()
        .get(url)
        .send()
        .await
        .expect_err("nothing listens any more");
    assert!(error.is_connect(), "{error}");
}
