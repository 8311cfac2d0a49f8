//! Connectivity checks run on a worker: a provider whose key lives on workers can only be
//! checked by one that holds the key, so the validator asks the run service, which sends
//! `probe` to a connected worker that may use the key (the provider's allowed workers, and
//! holding it) and waits for its `probed`.

use std::time::Duration;

use contracts::worker::{ProbeOutcome, ServerMessage};
use tokio::sync::oneshot;
use uuid::Uuid;

use super::routing::Route;
use super::{Inner, Runs};
use crate::db::providers;

/// Probes waiting for their worker's answer.
pub(super) type Pending =
    parking_lot::Mutex<std::collections::HashMap<Uuid, oneshot::Sender<ProbeOutcome>>>;

/// How a check on a worker went: the outcome, and which worker gave it.
#[derive(Debug, Clone)]
pub struct WorkerProbe {
    pub worker: String,
    pub outcome: ProbeOutcome,
}

impl Runs {
    /// Checks `provider` on a connected worker that holds its key; `Err` says why none could
    /// (none connected holds it, or the one asked did not answer within `timeout`).
    pub async fn probe_on_worker(
        &self,
        provider: &providers::Model,
        timeout: Duration,
    ) -> Result<WorkerProbe, String> {
        let inner = &self.inner;
        let route = Route::default().with_provider(&provider.key_workers(), Some(&provider.name));
        let endpoint = crate::llm::endpoint_of(provider, inner.runnables.keyring())
            .map_err(|e| e.to_string())?;
        let chosen = {
            let fleet = inner.fleet.lock();
            fleet
                .members
                .values()
                .filter(|m| !m.unhealthy && route.admits(&m.facts))
                .max_by_key(|m| m.slots as usize - m.runs.len().min(m.slots as usize))
                .map(|m| (m.facts.name.clone(), m.tx.clone()))
        };
        let Some((worker, tx)) = chosen else {
            return Err(
                match route.unroutable(inner.placement.lock().registered()) {
                    Some(reason) => reason,
                    None => format!(
                        "no worker that holds the key of provider {} is connected",
                        provider.name
                    ),
                },
            );
        };
        let probe_id = Uuid::new_v4();
        let (done, answer) = oneshot::channel();
        inner.probes.lock().insert(probe_id, done);
        let probe = ServerMessage::Probe {
            probe_id,
            provider: endpoint,
        };
        if tx.send(probe).await.is_err() {
            inner.probes.lock().remove(&probe_id);
            return Err(format!("worker {worker} went away before the check"));
        }
        match tokio::time::timeout(timeout, answer).await {
            Ok(Ok(outcome)) => Ok(WorkerProbe { worker, outcome }),
            Ok(Err(_)) | Err(_) => {
                inner.probes.lock().remove(&probe_id);
                Err(format!(
                    "worker {worker} did not answer the check within {} s",
                    timeout.as_secs()
                ))
            }
        }
    }
}

impl Runs {
    /// Calls `f` with the providers a worker holds keys for whenever one connects holding
    /// some or reports new ones (set once, at start).
    pub fn on_worker_credentials(&self, f: impl Fn(Vec<String>) + Send + Sync + 'static) {
        if self.inner.on_credentials.set(Box::new(f)).is_err() {
            tracing::warn!("worker credential listener already set");
        }
    }
}

impl Inner {
    /// A worker holds keys for these providers now.
    pub(super) fn credentials_reported(&self, providers: &[String]) {
        if !providers.is_empty()
            && let Some(listener) = self.on_credentials.get()
        {
            listener(providers.to_vec());
        }
    }

    /// A worker answered a probe.
    pub(super) fn probed(&self, probe_id: Uuid, outcome: ProbeOutcome) {
        if let Some(waiting) = self.probes.lock().remove(&probe_id) {
            waiting.send(outcome).ok();
        }
    }
}
