//! The attempt loop, the part of a run that talks to the model: ask the provider for JSON in
//! its strongest structured mode → parse and validate against the response schema → on
//! failure send the errors back and try again, up to the agent's `max_retries` → the valid
//! answer, or every attempt's error. Transient provider errors retry with capped, jittered
//! backoff honouring `Retry-After`; the agent's timeout bounds the whole loop. A run never
//! succeeds with output that does not validate.
//!
//! It stores nothing: what happens along the way goes to a `Journal`, which a worker
//! implements by sending protocol events to the server; every worker, built-in or remote,
//! runs this one loop.

use std::future::Future;
use std::time::Duration;

use contracts::FieldError;
use serde_json::{Value, json};

use super::runnable::RunnableAgent;
use crate::llm::{JsonCompletion, JsonRequest, Message, ProviderError, Role, Usage};
use crate::schema::describe;

/// Transient provider errors retried per attempt before the run fails.
pub const MAX_TRANSIENT_RETRIES: u32 = 4;
/// Backoff for transient errors: 0.5 s doubling, capped (Retry-After is honoured up to the cap
/// of a minute; the run's own timeout still bounds everything).
const BACKOFF_BASE: Duration = Duration::from_millis(500);
const BACKOFF_CAP: Duration = Duration::from_secs(8);
const RETRY_AFTER_CAP: Duration = Duration::from_secs(60);
/// Raw output kept per attempt event and in error messages.
const RAW_EVENT_BYTES: usize = 16 * 1024;

/// What the loop reports while it works, in order.
pub trait Journal: Sync {
    /// A provider call failed; `retry_in` says when it is tried again (`None`: it is not).
    fn provider_error(
        &self,
        error: &ProviderError,
        retry_in: Option<Duration>,
    ) -> impl Future<Output = ()> + Send;

    /// An answer did not parse or validate, and another attempt follows. `attempt` is the
    /// event data of the answer (`{attempt, raw_output}`), `errors` why it was refused.
    fn invalid_answer(
        &self,
        attempt: u32,
        answer: Value,
        raw: &str,
        errors: &[FieldError],
    ) -> impl Future<Output = ()> + Send;
}

/// How the loop ended.
#[derive(Debug)]
pub enum Verdict {
    /// `attempt` is the winning answer's event data, for the final record.
    Succeeded {
        output: Value,
        raw: String,
        attempt: Value,
    },
    Failed {
        error: String,
    },
}

/// The verdict and what every attempt produced.
#[derive(Debug)]
pub struct Outcome {
    pub verdict: Verdict,
    pub attempts: u32,
    pub usage: Usage,
    /// The last answer's text, kept on failure too.
    pub last_raw: Option<String>,
}

/// Runs the attempt loop for `prompt` (the rendered user message), bounded by the agent's
/// timeout.
pub async fn execute(agent: &RunnableAgent, prompt: String, journal: &impl Journal) -> Outcome {
    let mut progress = Progress::default();
    let verdict = match tokio::time::timeout(
        agent.timeout,
        attempts(agent, prompt, journal, &mut progress),
    )
    .await
    {
        Ok(verdict) => verdict,
        Err(_) => Verdict::Failed {
            error: progress.with_history(format!(
                "timeout: the run did not finish within {} s",
                agent.timeout.as_secs()
            )),
        },
    };
    Outcome {
        verdict,
        attempts: progress.attempts,
        usage: progress.usage,
        last_raw: progress.last_raw,
    }
}

/// Model calls until one answer validates or the repair budget is spent.
async fn attempts(
    agent: &RunnableAgent,
    prompt: String,
    journal: &impl Journal,
    progress: &mut Progress,
) -> Verdict {
    let mut request = JsonRequest {
        model: agent.model.clone(),
        system: agent.system_prompt.clone(),
        messages: vec![Message {
            role: Role::User,
            content: prompt,
        }],
        schema: agent.response_schema.clone(),
        schema_name: "result".to_owned(),
        temperature: agent.temperature,
        max_tokens: agent.max_tokens,
    };
    for attempt in 1..=agent.max_retries + 1 {
        let completion = match call(agent, &request, journal).await {
            Ok(completion) => completion,
            Err(err) => {
                return Verdict::Failed {
                    error: progress.with_history(format!("provider error: {err}")),
                };
            }
        };
        progress.record(attempt, &completion);
        let answer = json!({"attempt": attempt, "raw_output": clip(&completion.text)});
        let errors = match parse(&completion) {
            Ok(value) => {
                let errors = agent.check_output(&value);
                if errors.is_empty() {
                    return Verdict::Succeeded {
                        output: value,
                        raw: completion.text,
                        attempt: answer,
                    };
                }
                errors
            }
            Err(message) => vec![FieldError {
                path: String::new(),
                message,
            }],
        };
        journal
            .invalid_answer(attempt, answer, &completion.text, &errors)
            .await;
        progress
            .failures
            .push(format!("attempt {attempt}: {}", describe(&errors)));
        // Repair: show the model its answer and what was wrong with it.
        request.messages.push(Message {
            role: Role::Assistant,
            content: completion.text,
        });
        request.messages.push(Message {
            role: Role::User,
            content: format!(
                "Your answer does not match the required JSON Schema:\n{}\nAnswer again \
                 with only the corrected JSON.",
                describe(&errors)
            ),
        });
    }
    Verdict::Failed {
        error: format!(
            "invalid output: no answer matched the response schema in {} attempt(s): {}",
            agent.max_retries + 1,
            progress.failures.join("; ")
        ),
    }
}

/// One model call, retrying transient errors (connect failures, timeouts, 429, 5xx).
async fn call(
    agent: &RunnableAgent,
    request: &JsonRequest,
    journal: &impl Journal,
) -> Result<JsonCompletion, ProviderError> {
    let mut retries = 0;
    loop {
        match agent.provider.complete_json(request).await {
            Ok(completion) => return Ok(completion),
            Err(err) if err.class.is_transient() && retries < MAX_TRANSIENT_RETRIES => {
                let delay = match err.retry_after {
                    Some(after) => after.min(RETRY_AFTER_CAP),
                    None => backoff(retries),
                };
                journal.provider_error(&err, Some(delay)).await;
                retries += 1;
                tokio::time::sleep(delay).await;
            }
            Err(err) => {
                journal.provider_error(&err, None).await;
                return Err(err);
            }
        }
    }
}

/// What the attempts so far produced.
#[derive(Default)]
struct Progress {
    attempts: u32,
    usage: Usage,
    last_raw: Option<String>,
    failures: Vec<String>,
}

impl Progress {
    fn record(&mut self, attempt: u32, completion: &JsonCompletion) {
        self.attempts = attempt;
        self.last_raw = Some(completion.text.clone());
        let add = |total: Option<u64>, more: Option<u64>| match (total, more) {
            (None, None) => None,
            (a, b) => Some(a.unwrap_or(0) + b.unwrap_or(0)),
        };
        self.usage.prompt_tokens = add(self.usage.prompt_tokens, completion.usage.prompt_tokens);
        self.usage.completion_tokens = add(
            self.usage.completion_tokens,
            completion.usage.completion_tokens,
        );
    }

    /// `error`, preceded by the validation failures of earlier attempts.
    fn with_history(&self, error: String) -> String {
        if self.failures.is_empty() {
            error
        } else {
            format!("{error}; earlier: {}", self.failures.join("; "))
        }
    }
}

/// The answer as JSON: structured data when the provider returned it, else the text,
/// tolerating a Markdown code fence around it.
fn parse(completion: &JsonCompletion) -> Result<Value, String> {
    if let Some(value) = &completion.value {
        if contains_nul(value) {
            return Err(
                "the answer contains the character U+0000 (NUL), which cannot be stored".into(),
            );
        }
        return Ok(value.clone());
    }
    let text = completion.text.trim();
    let unfenced = text
        .strip_prefix("```json")
        .or_else(|| text.strip_prefix("```"))
        .and_then(|t| t.strip_suffix("```"))
        .map(str::trim)
        .unwrap_or(text);
    let value: Value =
        serde_json::from_str(unfenced).map_err(|e| format!("the answer is not valid JSON: {e}"))?;
    if contains_nul(&value) {
        // Neither database stores it; a repair usually drops it.
        return Err(
            "the answer contains the character U+0000 (NUL), which cannot be stored".into(),
        );
    }
    Ok(value)
}

fn contains_nul(value: &Value) -> bool {
    match value {
        Value::String(text) => text.contains('\0'),
        Value::Array(items) => items.iter().any(contains_nul),
        Value::Object(map) => map.iter().any(|(k, v)| k.contains('\0') || contains_nul(v)),
        Value::Null | Value::Bool(_) | Value::Number(_) => false,
    }
}

fn clip(text: &str) -> String {
    crate::llm::truncate(text, RAW_EVENT_BYTES)
}

/// 0.5 s, 1 s, 2 s, … capped at 8 s, ± 20 % jitter so retries from many runs spread out.
fn backoff(retry: u32) -> Duration {
    let base = BACKOFF_BASE
        .saturating_mul(1 << retry.min(10))
        .min(BACKOFF_CAP);
    let noise = f64::from(chrono::Utc::now().timestamp_subsec_nanos() % 1_000) / 1_000.0;
    base.mul_f64(0.8 + 0.4 * noise)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_accepts_fenced_json_and_rejects_prose() {
        let text = |t: &str| JsonCompletion {
            text: t.to_owned(),
            value: None,
            usage: Usage::default(),
        };
        assert_eq!(parse(&text("{\"a\":1}")), Ok(json!({"a": 1})));
        assert_eq!(parse(&text("```json\n{\"a\":1}\n```")), Ok(json!({"a": 1})));
        assert!(parse(&text("Sure! Here it is")).is_err());
        assert!(
            parse(&text(r#"{"a":"x\u0000"}"#)).is_err(),
            "NUL cannot be stored"
        );
    }

    #[test]
    fn backoff_grows_and_is_capped() {
        assert!(backoff(0) <= Duration::from_millis(600));
        assert!(backoff(10) <= Duration::from_millis(9_600));
        assert!(backoff(3) >= Duration::from_millis(3_200));
    }
}
