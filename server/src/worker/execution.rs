//! One run on a worker: build (or reuse) its runnable agent, run the attempt loop with a
//! journal that reports to the worker's loop, and turn the outcome into a protocol result.

use std::time::Duration;

use contracts::worker::{Job, JobEvent, JobOutcome, JobProgress, JobResult};
use contracts::{FieldError, RunEventKind};
use serde_json::{Value, json};
use tokio::sync::mpsc;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

use super::Report;
use super::executor::{self, Journal, Verdict};
use super::runnable::Runnables;
use crate::llm::ProviderError;

/// Builds the runnable agent and runs the attempt loop; `cancel` ends it as canceled.
pub(super) async fn execute(
    runnables: &Runnables,
    job: Job,
    journal: &WorkerJournal,
    cancel: &CancellationToken,
) -> JobResult {
    let started = Instant::now();
    let agent = match runnables.get(&job).await {
        Ok(agent) => agent,
        Err(err) => return failed(&format!("the worker cannot execute the run: {err}")),
    };
    let outcome = tokio::select! {
        outcome = executor::execute(&agent, job.prompt, journal) => outcome,
        () = cancel.cancelled() => {
            return JobResult {
                outcome: JobOutcome::Canceled,
                attempts: 0,
                prompt_tokens: None,
                completion_tokens: None,
                raw_output: None,
                latency_ms: elapsed_ms(started),
            };
        }
    };
    let (verdict, raw_output) = match outcome.verdict {
        Verdict::Succeeded {
            output,
            raw,
            attempt,
        } => (JobOutcome::Succeeded { output, attempt }, Some(raw)),
        Verdict::Failed { error } => (JobOutcome::Failed { error }, outcome.last_raw),
    };
    JobResult {
        outcome: verdict,
        attempts: outcome.attempts,
        prompt_tokens: outcome.usage.prompt_tokens,
        completion_tokens: outcome.usage.completion_tokens,
        raw_output,
        latency_ms: elapsed_ms(started),
    }
}

pub(super) fn failed(error: &str) -> JobResult {
    JobResult {
        outcome: JobOutcome::Failed {
            error: error.to_owned(),
        },
        attempts: 0,
        prompt_tokens: None,
        completion_tokens: None,
        raw_output: None,
        latency_ms: 0,
    }
}

fn elapsed_ms(started: Instant) -> u64 {
    u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX)
}

/// The attempt loop's reports, sent to the worker's loop as protocol events.
pub(super) struct WorkerJournal {
    pub(super) run_id: Uuid,
    pub(super) reports: mpsc::UnboundedSender<Report>,
}

impl WorkerJournal {
    fn send(&self, events: Vec<JobEvent>, progress: Option<JobProgress>) {
        self.reports
            .send(Report::Events {
                run_id: self.run_id,
                events,
                progress,
            })
            .ok();
    }
}

impl Journal for WorkerJournal {
    async fn provider_error(&self, error: &ProviderError, retry_in: Option<Duration>) {
        let mut data = json!({"class": error.class.as_str(), "error": error.to_string()});
        if let Some(delay) = retry_in {
            data["retry_in_ms"] = json!(u64::try_from(delay.as_millis()).unwrap_or(u64::MAX));
        }
        let event = JobEvent {
            kind: RunEventKind::ProviderError,
            data,
        };
        self.send(vec![event], None);
    }

    async fn invalid_answer(&self, attempt: u32, answer: Value, raw: &str, errors: &[FieldError]) {
        let events = vec![
            JobEvent {
                kind: RunEventKind::Attempt,
                data: answer,
            },
            JobEvent {
                kind: RunEventKind::ValidationError,
                data: json!({"attempt": attempt, "errors": errors}),
            },
        ];
        let progress = JobProgress {
            attempts: attempt,
            raw_output: Some(raw.to_owned()),
        };
        self.send(events, Some(progress));
    }
}
