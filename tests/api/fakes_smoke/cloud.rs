//! The cloud fakes (Anthropic, Gemini, OpenAI) answer in their providers' shapes and refuse
//! keys as the providers do.

use agentry_tests::fakes::{Fake, Options, Reply, anthropic, gemini, openai};
use serde_json::{Value, json};

use super::{assert_schema_valid, body, client, sentiment_messages, sentiment_schema};

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
