//! The server's own check of what workers report: a `succeeded` result is stored only when
//! its output matches the run's response schema. Workers validate too, but a remote worker
//! may run another build or be wrong, and "succeeded" must keep meaning "valid output" for
//! every run. Each run's validator is picked when the run is offered (shared by task
//! revision through a weak-reference registry); a result that arrives after a restart, for
//! a run offered by the previous process, has its validator built from the stored job.

use std::collections::HashMap;
use std::sync::Arc;

use contracts::FieldError;
use contracts::worker::{Job, JobOutcome, JobResult};
use jsonschema::Validator;
use parking_lot::Mutex;
use uuid::Uuid;

use super::Inner;
use crate::db::runs;
use crate::registry::Registry;
use crate::schema;

/// At most this many of an invalid output's problems are named in the run's error.
const PROBLEMS_SHOWN: usize = 3;

#[derive(Default)]
pub(super) struct Checks {
    /// Response validators by task id and revision.
    validators: Registry<(Uuid, u64), Validator>,
    /// The validator of each offered run, until the run ends.
    by_run: Mutex<HashMap<Uuid, Arc<Validator>>>,
}

impl Checks {
    /// Remembers how the output of run `run_id` is checked.
    pub(super) async fn expect(&self, run_id: Uuid, job: &Job) -> Result<(), String> {
        let validator = self.validator(job).await?;
        self.by_run.lock().insert(run_id, validator);
        Ok(())
    }

    /// The run ended: its validator is no longer needed.
    pub(super) fn forget(&self, run_id: Uuid) {
        self.by_run.lock().remove(&run_id);
    }

    async fn validator(&self, job: &Job) -> Result<Arc<Validator>, String> {
        let key = (job.snapshot.task_id, job.snapshot.task_revision);
        self.validators
            .get_or_try_build(key, || schema::compile(&job.response_schema))
            .await
            .map_err(|e| format!("the response schema does not compile: {e}"))
    }
}

impl Inner {
    /// `result` as it may be stored: a `succeeded` outcome whose output does not match the
    /// run's response schema becomes `failed`, saying why (the raw output is kept).
    pub(super) async fn checked(&self, run_id: Uuid, mut result: JobResult) -> JobResult {
        let JobOutcome::Succeeded { output, .. } = &result.outcome else {
            return result;
        };
        let known = self.checks.by_run.lock().get(&run_id).cloned();
        let validator = match known {
            Some(validator) => Ok(validator),
            None => self.stored_validator(run_id).await,
        };
        let problems = match &validator {
            Ok(validator) => schema::problems(validator, output, ""),
            Err(why) => vec![FieldError {
                path: String::new(),
                message: why.clone(),
            }],
        };
        if !problems.is_empty() {
            let shown = schema::describe(&problems[..problems.len().min(PROBLEMS_SHOWN)]);
            let more = problems.len().saturating_sub(PROBLEMS_SHOWN);
            let more = if more > 0 {
                format!(" (and {more} more)")
            } else {
                String::new()
            };
            tracing::warn!(run.id = %run_id, "a worker reported output that does not match \
                the response schema");
            result.outcome = JobOutcome::Failed {
                error: format!(
                    "invalid output: the worker reported output that does not match the \
                     response schema: {shown}{more}"
                ),
            };
        }
        result
    }

    /// The validator of a run offered before this process started, from its stored job.
    async fn stored_validator(&self, run_id: Uuid) -> Result<Arc<Validator>, String> {
        let row = runs::find(&self.db, run_id)
            .await
            .map_err(|e| format!("the run cannot be read: {e}"))?
            .ok_or_else(|| "the run no longer exists".to_owned())?;
        let stored = row.job.ok_or_else(|| "the run has no job".to_owned())?;
        let job: Job = serde_json::from_value(stored)
            .map_err(|e| format!("the stored job is unreadable: {e}"))?;
        self.checks.validator(&job).await
    }
}
