//! The test doubles themselves: the real test LLM and the Ollama shim produce schema-valid
//! JSON, and the cloud fakes answer in their providers' shapes, refuse keys as the providers
//! do, and fail, hang or stop on demand. No database involved.

mod cloud;
mod failures;
mod local;

use std::time::Duration;

use agentry_tests::install_crypto_provider;
use serde_json::{Value, json};

/// Generous: requests to the real model queue behind each other on one llama-server slot.
pub fn client() -> reqwest::Client {
    install_crypto_provider();
    reqwest::Client::builder()
        .no_proxy()
        .timeout(Duration::from_secs(120))
        .build()
        .expect("client")
}

/// A closed schema: the model's answer ends after a few dozen tokens.
pub fn sentiment_schema() -> Value {
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
pub fn sentiment_messages() -> Value {
    json!([
        {"role": "system", "content": "Classify the sentiment of the text. Answer in JSON with a score between 0 and 1."},
        {"role": "user", "content": "I love this product, it is wonderful!"}
    ])
}

#[track_caller]
pub fn assert_schema_valid(content: &str) -> Value {
    let value: Value = serde_json::from_str(content)
        .unwrap_or_else(|e| panic!("model output is not JSON ({e}): {content:?}"));
    if let Err(error) = jsonschema::validate(&sentiment_schema(), &value) {
        panic!("model output does not match the schema ({error}): {content}");
    }
    value
}

pub async fn body(response: reqwest::Response) -> (u16, Value) {
    let status = response.status().as_u16();
    let text = response.text().await.expect("read body");
    (status, serde_json::from_str(&text).unwrap_or(Value::Null))
}
