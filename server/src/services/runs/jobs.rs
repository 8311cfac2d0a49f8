//! The jobs workers receive: the stored job of a run (stored without the provider's key)
//! with the key added at assignment, from the keys of prepared agents or, after a restart,
//! decrypted from the provider row — unless the key lives on workers, where the job names
//! the provider whose key the worker uses.

use contracts::worker::Job;

use super::Inner;
use super::runnable::RunnableAgent;
use crate::db::providers;
use crate::db::runs::run;

impl Inner {
    /// Keeps the provider key of a prepared agent for the assignments of its runs.
    pub(super) fn remember_key(&self, runnable: &RunnableAgent) {
        let snapshot = &runnable.snapshot;
        let mut keys = self.keys.lock();
        let newer = keys
            .get(&snapshot.provider_id)
            .is_none_or(|(revision, _)| *revision < snapshot.provider_revision);
        if newer {
            keys.insert(
                snapshot.provider_id,
                (
                    snapshot.provider_revision,
                    runnable.endpoint.api_key.clone(),
                ),
            );
        }
    }

    /// The job of a stored run, with the provider's key added.
    pub(super) async fn job_of(&self, row: &run::Model) -> Result<Job, String> {
        let stored = row
            .job
            .clone()
            .ok_or_else(|| "the run has no job".to_owned())?;
        let mut job: Job = serde_json::from_value(stored)
            .map_err(|e| format!("the stored job is unreadable: {e}"))?;
        if job.provider.credential.is_some() {
            // The key lives on the workers: the server has none to add.
            return Ok(job);
        }
        let provider_id = job.snapshot.provider_id;
        let cached = self
            .keys
            .lock()
            .get(&provider_id)
            .map(|(_, key)| key.clone());
        job.provider.api_key = match cached {
            Some(key) => key,
            None => {
                let row = providers::find(&self.db, provider_id)
                    .await
                    .map_err(|e| e.to_string())?
                    .ok_or_else(|| "the run's provider no longer exists".to_owned())?;
                let endpoint = crate::llm::endpoint_of(&row, self.runnables.keyring())
                    .map_err(|e| e.to_string())?;
                self.keys.lock().insert(
                    provider_id,
                    (crate::db::to_u64(row.revision), endpoint.api_key.clone()),
                );
                endpoint.api_key
            }
        };
        Ok(job)
    }
}
