//! Run execution: mark running → ask the provider for JSON in its strongest structured mode →
//! parse and validate against the response schema → on failure send the errors back and try
//! again, up to the agent's `max_retries` → succeeded with valid output, or failed with every
//! attempt's error. Transient provider errors retry with capped, jittered backoff honouring
//! `Retry-After`; the agent's timeout bounds the whole run; cancel aborts the in-flight call.
//! A run never succeeds with output that does not validate.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use contracts::{EventKind, FieldError, RunEventKind, RunStatus, Topic};
use sea_orm::{DatabaseConnection, DbErr};
use serde_json::{Value, json};
use tokio::task::AbortHandle;
use uuid::Uuid;

use crate::db::runs::{self, Finish};
use crate::domain::now;
use crate::events::EventHub;
use crate::llm::{JsonCompletion, JsonRequest, Message, ProviderError, Role, Usage};
use crate::registry::RunnableAgent;

/// Transient provider errors retried per attempt before the run fails.
pub const MAX_TRANSIENT_RETRIES: u32 = 4;
/// Backoff for transient errors: 0.5 s doubling, capped (Retry-After is honoured up to the cap
/// of a minute; the run's own timeout still bounds everything).
const BACKOFF_BASE: Duration = Duration::from_millis(500);
const BACKOFF_CAP: Duration = Duration::from_secs(8);
const RETRY_AFTER_CAP: Duration = Duration::from_secs(60);
/// Raw output kept per attempt event and in error messages.
const RAW_EVENT_BYTES: usize = 16 * 1024;

/// Starts, tracks and cancels runs.
pub struct Runs {
    db: DatabaseConnection,
    events: Arc<EventHub>,
    inflight: Mutex<HashMap<Uuid, AbortHandle>>,
}

/// How a run ended, before it is stored.
enum Outcome {
    /// `attempt` is the winning attempt's event, not yet stored: it is written together with
    /// the final status event (one statement fewer per run).
    Succeeded {
        output: Value,
        raw: String,
        attempt: Value,
    },
    Failed {
        error: String,
        raw: Option<String>,
    },
}

impl Runs {
    pub fn new(db: DatabaseConnection, events: Arc<EventHub>) -> Arc<Runs> {
        Arc::new(Runs {
            db,
            events,
            inflight: Mutex::new(HashMap::new()),
        })
    }

    /// Executes a stored, queued run in the background. The returned handle completes when
    /// the run has finished, with the run as its final update stored it (`None` when a cancel
    /// or an error wrote the final state instead); sync requests wait on it, and dropping it
    /// does not stop the run.
    pub fn spawn(
        self: &Arc<Self>,
        run_id: Uuid,
        agent: Arc<RunnableAgent>,
        prompt: String,
    ) -> tokio::task::JoinHandle<Option<runs::run::Model>> {
        let runs = Arc::clone(self);
        // Registered before the task can finish, so a cancel always finds it while it runs.
        let inflight = self.inflight.lock();
        let handle = tokio::spawn(async move {
            let finished = runs.execute(run_id, &agent, prompt).await;
            if let Ok(mut inflight) = runs.inflight.lock() {
                inflight.remove(&run_id);
            }
            finished
        });
        if let Ok(mut inflight) = inflight {
            inflight.insert(run_id, handle.abort_handle());
        }
        handle
    }

    /// Cancels a queued or running run: the database decides (only unfinished runs move to
    /// `canceled`), then the in-flight provider call is aborted (its connection closed).
    /// `Ok(false)` when the run had already finished.
    pub async fn cancel(&self, run_id: Uuid) -> Result<bool, DbErr> {
        let Some(canceled) = runs::transition(
            &self.db,
            run_id,
            RunStatus::Canceled,
            now(),
            Finish {
                error: Some("canceled: the run was canceled on request".to_owned()),
                ..Finish::default()
            },
        )
        .await?
        else {
            return Ok(false);
        };
        let handle = self
            .inflight
            .lock()
            .ok()
            .and_then(|mut m| m.remove(&run_id));
        if let Some(handle) = handle {
            handle.abort();
        }
        self.event(run_id, RunEventKind::Status, json!({"status": "canceled"}))
            .await;
        self.publish(&canceled);
        Ok(true)
    }

    async fn execute(
        &self,
        run_id: Uuid,
        agent: &RunnableAgent,
        prompt: String,
    ) -> Option<runs::run::Model> {
        let started = Instant::now();
        match runs::transition(
            &self.db,
            run_id,
            RunStatus::Running,
            now(),
            Finish::default(),
        )
        .await
        {
            Ok(Some(running)) => {
                self.event(run_id, RunEventKind::Status, json!({"status": "running"}))
                    .await;
                self.publish(&running);
            }
            Ok(None) => return None, // canceled before it started
            Err(err) => {
                tracing::error!(run.id = %run_id, error = %err, "cannot start run");
                return None;
            }
        }

        let mut progress = Progress::default();
        let outcome = match tokio::time::timeout(
            agent.timeout,
            self.attempts(run_id, agent, prompt, &mut progress),
        )
        .await
        {
            Ok(outcome) => outcome,
            Err(_) => Outcome::Failed {
                error: progress.with_history(format!(
                    "timeout: the run did not finish within {} s",
                    agent.timeout.as_secs()
                )),
                raw: progress.last_raw.clone(),
            },
        };
        let latency = i64::try_from(started.elapsed().as_millis()).unwrap_or(i64::MAX);
        let mut pending = Vec::new();
        let (status, finish) = match outcome {
            Outcome::Succeeded {
                output,
                raw,
                attempt,
            } => {
                pending.push((RunEventKind::Attempt, attempt));
                (
                    RunStatus::Succeeded,
                    Finish {
                        output: Some(output),
                        raw_output: Some(raw),
                        ..progress.finish(latency)
                    },
                )
            }
            Outcome::Failed { error, raw } => (
                RunStatus::Failed,
                Finish {
                    error: Some(error),
                    raw_output: raw,
                    ..progress.finish(latency)
                },
            ),
        };
        let finished = match runs::transition(&self.db, run_id, status, now(), finish).await {
            Ok(Some(finished)) => {
                pending.push((RunEventKind::Status, json!({"status": status.as_str()})));
                Some(finished)
            }
            Ok(None) => None, // canceled meanwhile: the cancel wrote the final state
            Err(err) => {
                tracing::error!(run.id = %run_id, error = %err, "cannot finish run");
                None
            }
        };
        if let Err(err) = runs::append_events(&self.db, run_id, pending, now()).await {
            tracing::warn!(run.id = %run_id, error = %err, "run events not stored");
        }
        if let Some(finished) = &finished {
            self.publish(finished);
        }
        finished
    }

    /// Model calls until one answer validates or the repair budget is spent.
    async fn attempts(
        &self,
        run_id: Uuid,
        agent: &RunnableAgent,
        prompt: String,
        progress: &mut Progress,
    ) -> Outcome {
        let mut request = JsonRequest {
            model: agent.model.clone(),
            system: system_prompt(agent),
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
            let completion = match self.call(run_id, agent, &request).await {
                Ok(completion) => completion,
                Err(err) => {
                    return Outcome::Failed {
                        error: progress.with_history(format!("provider error: {err}")),
                        raw: progress.last_raw.clone(),
                    };
                }
            };
            progress.record(attempt, &completion);
            let attempt_event = json!({"attempt": attempt, "raw_output": clip(&completion.text)});
            let errors = match parse(&completion) {
                Ok(value) => {
                    let errors = agent.check_output(&value);
                    if errors.is_empty() {
                        // The final update stores the answer and the attempt count, and the
                        // attempt's event goes with the final one: no progress writes for an
                        // answer that is already the result.
                        return Outcome::Succeeded {
                            output: value,
                            raw: completion.text,
                            attempt: attempt_event,
                        };
                    }
                    errors
                }
                Err(message) => vec![FieldError {
                    path: String::new(),
                    message,
                }],
            };
            // Another attempt follows: show the progress (attempt count, last answer).
            self.event(run_id, RunEventKind::Attempt, attempt_event)
                .await;
            match runs::record_attempt(
                &self.db,
                run_id,
                i32::try_from(attempt).unwrap_or(i32::MAX),
                Some(completion.text.clone()),
            )
            .await
            {
                Ok(Some(run)) => self.publish(&run),
                Ok(None) => {} // canceled meanwhile
                Err(err) => tracing::warn!(run.id = %run_id, error = %err, "attempt not stored"),
            }
            self.event(
                run_id,
                RunEventKind::ValidationError,
                json!({"attempt": attempt, "errors": errors}),
            )
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
        Outcome::Failed {
            error: format!(
                "invalid output: no answer matched the response schema in {} attempt(s): {}",
                agent.max_retries + 1,
                progress.failures.join("; ")
            ),
            raw: progress.last_raw.clone(),
        }
    }

    /// One model call, retrying transient errors (connect failures, timeouts, 429, 5xx).
    async fn call(
        &self,
        run_id: Uuid,
        agent: &RunnableAgent,
        request: &JsonRequest,
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
                    self.event(
                        run_id,
                        RunEventKind::ProviderError,
                        json!({"class": err.class.as_str(), "error": err.to_string(),
                               "retry_in_ms": delay.as_millis() as u64}),
                    )
                    .await;
                    retries += 1;
                    tokio::time::sleep(delay).await;
                }
                Err(err) => {
                    self.event(
                        run_id,
                        RunEventKind::ProviderError,
                        json!({"class": err.class.as_str(), "error": err.to_string()}),
                    )
                    .await;
                    return Err(err);
                }
            }
        }
    }

    async fn event(&self, run_id: Uuid, kind: RunEventKind, data: Value) {
        if let Err(err) = runs::append_event(&self.db, run_id, kind, data, now()).await {
            tracing::warn!(run.id = %run_id, error = %err, "run event not stored");
        }
    }

    /// Publishes a run on topic `runs`, as stored by the write that returned it.
    pub fn publish(&self, run: &runs::run::Model) {
        match run.to_contract() {
            Ok(contract) => {
                let kind = if contract.status == RunStatus::Queued {
                    EventKind::Created
                } else {
                    EventKind::Updated
                };
                self.events.publish(Topic::Runs, kind, run.id, &contract);
            }
            Err(err) => tracing::warn!(run.id = %run.id, error = %err, "run event not published"),
        }
    }
}

/// What the attempts so far produced, for the final record.
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

    fn finish(&self, latency_ms: i64) -> Finish {
        let signed = |v: Option<u64>| v.map(|v| i64::try_from(v).unwrap_or(i64::MAX));
        Finish {
            attempts: Some(i32::try_from(self.attempts).unwrap_or(i32::MAX)),
            prompt_tokens: signed(self.usage.prompt_tokens),
            completion_tokens: signed(self.usage.completion_tokens),
            latency_ms: Some(latency_ms),
            ..Finish::default()
        }
    }
}

/// The agent's system prompt plus the schema: even with native structured output, models
/// answer better when they can read what is expected.
fn system_prompt(agent: &RunnableAgent) -> String {
    format!(
        "{}\n\nRespond with only a JSON value that matches this JSON Schema:\n{}",
        agent.system_prompt.trim_end(),
        agent.response_schema
    )
}

/// The answer as JSON: structured data when the provider returned it, else the text,
/// tolerating a Markdown code fence around it.
fn parse(completion: &JsonCompletion) -> Result<Value, String> {
    if let Some(value) = &completion.value {
        return Ok(value.clone());
    }
    let text = completion.text.trim();
    let unfenced = text
        .strip_prefix("```json")
        .or_else(|| text.strip_prefix("```"))
        .and_then(|t| t.strip_suffix("```"))
        .map(str::trim)
        .unwrap_or(text);
    serde_json::from_str(unfenced).map_err(|e| format!("the answer is not valid JSON: {e}"))
}

fn describe(errors: &[FieldError]) -> String {
    errors
        .iter()
        .map(|e| {
            if e.path.is_empty() {
                e.message.clone()
            } else {
                format!("{}: {}", e.path, e.message)
            }
        })
        .collect::<Vec<_>>()
        .join("; ")
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
    }

    #[test]
    fn backoff_grows_and_is_capped() {
        assert!(backoff(0) <= Duration::from_millis(600));
        assert!(backoff(10) <= Duration::from_millis(9_600));
        assert!(backoff(3) >= Duration::from_millis(3_200));
    }
}
