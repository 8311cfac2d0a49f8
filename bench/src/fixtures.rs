//! What the scenarios measure with, created through the REST API like a user would: a provider
//! on the stub, a sentiment task with request and response schemas, an agent with a prompt
//! template, and the assignment.

use anyhow::{Context, bail};
use reqwest::{Client, StatusCode};
use serde_json::{Value, json};

/// The response schema; [`crate::stub::ANSWER`] is valid against it.
pub fn response_schema() -> Value {
    json!({
        "type": "object",
        "properties": {
            "sentiment": {"enum": ["positive", "negative", "neutral"]},
            "score": {"type": "number", "minimum": 0, "maximum": 1}
        },
        "required": ["sentiment", "score"],
        "additionalProperties": false
    })
}

pub fn request_schema() -> Value {
    json!({
        "type": "object",
        "properties": {"text": {"type": "string", "minLength": 1, "maxLength": 2000}},
        "required": ["text"]
    })
}

/// The input of every run.
pub fn run_input() -> Value {
    json!({"input": {"text": "What a wonderful day: the benchmark finished early!"}})
}

/// The chat completion a client sends the stub directly: what the server sends it for one run
/// (system prompt, rendered user prompt, strict JSON-schema response format).
pub fn direct_chat_body() -> Value {
    json!({
        "model": crate::stub::MODEL,
        "messages": [
            {"role": "system", "content": "You classify the sentiment of texts."},
            {"role": "user", "content": "Text: What a wonderful day: the benchmark finished early!"}
        ],
        "response_format": {
            "type": "json_schema",
            "json_schema": {"name": "result", "schema": response_schema(), "strict": true}
        },
        "temperature": 0.0
    })
}

/// A mid-size task schema (~2.5 KB: nested objects, arrays of objects, enums, patterns,
/// bounds) for the create-task benchmark.
pub fn mid_size_task(name: &str) -> Value {
    let address = json!({
        "type": "object",
        "properties": {
            "street": {"type": "string", "maxLength": 200},
            "city": {"type": "string", "maxLength": 100},
            "postcode": {"type": "string", "pattern": "^[0-9A-Z -]{3,10}$"},
            "country": {"enum": ["DE", "FR", "GB", "IT", "NL", "US"]}
        },
        "required": ["city", "country"]
    });
    let line = json!({
        "type": "object",
        "properties": {
            "sku": {"type": "string", "pattern": "^[A-Z]{3}-[0-9]{4}$"},
            "description": {"type": "string", "maxLength": 500},
            "quantity": {"type": "integer", "minimum": 1, "maximum": 10000},
            "unit_price": {"type": "number", "minimum": 0},
            "tax_rate": {"enum": [0, 7, 19, 20]}
        },
        "required": ["sku", "quantity", "unit_price"]
    });
    json!({
        "name": name,
        "description": "Extract an invoice from a scanned document's text.",
        "request_schema": {
            "type": "object",
            "properties": {
                "document": {"type": "string", "minLength": 1, "maxLength": 100000},
                "language": {"enum": ["de", "en", "fr", "it", "nl"]}
            },
            "required": ["document"]
        },
        "response_schema": {
            "type": "object",
            "properties": {
                "invoice_number": {"type": "string", "maxLength": 64},
                "issued_on": {"type": "string", "pattern": "^[0-9]{4}-[0-9]{2}-[0-9]{2}$"},
                "due_on": {"type": "string", "pattern": "^[0-9]{4}-[0-9]{2}-[0-9]{2}$"},
                "currency": {"enum": ["EUR", "GBP", "USD", "CHF"]},
                "seller": {"type": "object", "properties": {
                    "name": {"type": "string"}, "vat_id": {"type": "string"}, "address": address.clone()
                }, "required": ["name"]},
                "buyer": {"type": "object", "properties": {
                    "name": {"type": "string"}, "address": address
                }, "required": ["name"]},
                "lines": {"type": "array", "items": line, "minItems": 1, "maxItems": 500},
                "total": {"type": "number", "minimum": 0},
                "notes": {"type": "array", "items": {"type": "string", "maxLength": 1000}},
                "confidence": {"type": "number", "minimum": 0, "maximum": 1}
            },
            "required": ["invoice_number", "currency", "seller", "lines", "total"]
        }
    })
}

/// Ids of a runnable agent/task pair.
#[derive(Debug, Clone)]
pub struct Runnable {
    /// The agent's name (its label).
    pub name: String,
    pub provider_id: String,
    pub agent_id: String,
    pub task_id: String,
}

impl Runnable {
    pub fn runs_url(&self, base: &str) -> String {
        format!(
            "{base}/api/agents/{}/tasks/{}/runs",
            self.agent_id, self.task_id
        )
    }
}

/// Creates provider, task, agent and assignment; `label` keeps names unique.
pub async fn runnable(
    client: &Client,
    base: &str,
    stub_base_url: &str,
    label: &str,
) -> anyhow::Result<Runnable> {
    let provider = create(
        client,
        &format!("{base}/api/providers"),
        &json!({"name": format!("stub-{label}"), "kind": "openai_compatible", "base_url": stub_base_url}),
    )
    .await?;
    let task = create(
        client,
        &format!("{base}/api/tasks"),
        &json!({"name": format!("sentiment-{label}"), "request_schema": request_schema(),
                "response_schema": response_schema()}),
    )
    .await?;
    let provider_id = id_of(&provider)?;
    let agent = create(
        client,
        &format!("{base}/api/agents"),
        &agent_body(label, &provider_id),
    )
    .await?;
    let agent_id = id_of(&agent)?;
    let task_id = id_of(&task)?;
    create(
        client,
        &format!("{base}/api/agents/{agent_id}/tasks"),
        &json!({"task_id": task_id}),
    )
    .await?;
    Ok(Runnable {
        name: label.to_owned(),
        provider_id,
        agent_id,
        task_id,
    })
}

/// The body of an agent on `provider` (also used to update it).
pub fn agent_body(name: &str, provider_id: &str) -> Value {
    json!({
        "name": name,
        "provider_id": provider_id,
        "model": crate::stub::MODEL,
        "system_prompt": "You classify the sentiment of texts.",
        "user_prompt": "Text: {{ text }}",
        "temperature": 0.0,
        "max_retries": 2,
        "timeout_secs": 30
    })
}

/// POST that must answer 201; returns the body.
pub async fn create(client: &Client, url: &str, body: &Value) -> anyhow::Result<Value> {
    let response = client.post(url).json(body).send().await?;
    let status = response.status();
    let text = response.text().await?;
    if status != StatusCode::CREATED {
        bail!("POST {url} answered {status}: {text}");
    }
    Ok(serde_json::from_str(&text)?)
}

pub fn id_of(value: &Value) -> anyhow::Result<String> {
    value["id"]
        .as_str()
        .map(str::to_owned)
        .with_context(|| format!("no id in {value}"))
}
