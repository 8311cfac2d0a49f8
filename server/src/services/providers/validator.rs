//! Background provider checks: `pending → validating → connected | error`, on create, on
//! update, on demand and periodically with jitter. Bounded concurrency, one check per provider
//! at a time (a second trigger during a check coalesces into one re-check), a deadline per
//! check, and every transition stored and published. API calls never wait for a check.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::Utc;
use contracts::{EventKind, ValidationStatus};
use parking_lot::Mutex;
use sea_orm::DatabaseConnection;
use tokio::sync::Semaphore;
use tracing::Instrument;
use uuid::Uuid;

use contracts::worker::ProbeOutcome;

use crate::background::Background;
use crate::db::providers::{self, ValidationResult};
use crate::events::EventHub;
use crate::llm::{self, ClientError, ErrorClass, ProviderError};
use crate::outbound::GuardedClient;
use crate::secrets::Keyring;
use crate::services::runs::{Runs, WorkerProbe};

/// Validator tuning; production defaults, shortened by tests.
#[derive(Debug, Clone)]
pub struct ValidatorSettings {
    /// Off only in tests about other things, so they never reach out to provider URLs.
    pub enabled: bool,
    /// Checks running at once.
    pub concurrency: usize,
    /// Deadline for one whole check (connect, answer, body).
    pub check_timeout: Duration,
    /// Period of the background re-check of every active provider (0 disables it).
    pub interval: Duration,
}

impl Default for ValidatorSettings {
    fn default() -> Self {
        ValidatorSettings {
            enabled: true,
            concurrency: 8,
            check_timeout: Duration::from_secs(20),
            interval: Duration::from_secs(300),
        }
    }
}

/// What a provider's check is doing right now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Slot {
    /// Waiting for a concurrency permit.
    Queued,
    /// Running; `true` when another trigger arrived meanwhile (re-check after).
    Running(bool),
}

pub struct Validator {
    db: DatabaseConnection,
    keyring: Arc<Keyring>,
    events: Arc<EventHub>,
    client: GuardedClient,
    settings: ValidatorSettings,
    permits: Arc<Semaphore>,
    slots: Mutex<HashMap<Uuid, Slot>>,
    background: Background,
    /// Where checks of providers whose keys live on workers go.
    workers: std::sync::OnceLock<Runs>,
}

/// What one check found, and which worker ran it (`None`: the server).
struct Checked {
    outcome: Result<(Vec<String>, Duration), String>,
    by: Option<String>,
}

impl Validator {
    pub fn new(
        db: DatabaseConnection,
        keyring: Arc<Keyring>,
        events: Arc<EventHub>,
        client: GuardedClient,
        settings: ValidatorSettings,
        background: Background,
    ) -> Arc<Validator> {
        Arc::new(Validator {
            permits: Arc::new(Semaphore::new(settings.concurrency.max(1))),
            db,
            keyring,
            events,
            client,
            settings,
            slots: Mutex::new(HashMap::new()),
            background,
            workers: std::sync::OnceLock::new(),
        })
    }

    /// Schedules a check of `id` and returns at once. A check already queued absorbs this
    /// trigger; one already running is followed by exactly one more.
    pub fn trigger(self: &Arc<Self>, id: Uuid) {
        if !self.settings.enabled {
            return;
        }
        let mut slots = self.slots.lock();
        match slots.get_mut(&id) {
            Some(Slot::Queued) | Some(Slot::Running(true)) => return,
            Some(Slot::Running(rerun)) => {
                *rerun = true;
                return;
            }
            None => {
                slots.insert(id, Slot::Queued);
            }
        }
        drop(slots);
        let validator = Arc::clone(self);
        let span = tracing::info_span!("providers.check", provider.id = %id);
        self.background
            .spawn(async move { validator.run_checks(id).await }.instrument(span));
    }

    /// Re-queues checks interrupted by a stop and those never run, then re-checks every
    /// active provider each interval (± 10 % jitter so many servers do not probe in step).
    pub fn start(self: &Arc<Self>) {
        if !self.settings.enabled {
            return;
        }
        let validator = Arc::clone(self);
        self.background.spawn(async move {
            match providers::ids_with_status(
                &validator.db,
                &[ValidationStatus::Pending, ValidationStatus::Validating],
            )
            .await
            {
                Ok(ids) => ids.into_iter().for_each(|id| validator.trigger(id)),
                Err(err) => {
                    tracing::warn!(error = %err, "validator: cannot list unchecked providers")
                }
            }
            if validator.settings.interval.is_zero() {
                return;
            }
            let mut stopping = std::pin::pin!(validator.background.stopping());
            loop {
                let pause = jitter(validator.settings.interval);
                tokio::select! {
                    () = &mut stopping => return,
                    () = tokio::time::sleep(pause) => {}
                }
                match providers::active_ids(&validator.db).await {
                    Ok(ids) => ids.into_iter().for_each(|id| validator.trigger(id)),
                    Err(err) => tracing::warn!(error = %err, "validator: cannot list providers"),
                }
            }
        });
    }

    async fn run_checks(self: Arc<Self>, id: Uuid) {
        let mut stopping = std::pin::pin!(self.background.stopping());
        let permit = tokio::select! {
            permit = Arc::clone(&self.permits).acquire_owned() => permit,
            () = &mut stopping => return self.clear(id),
        };
        let Ok(_permit) = permit else {
            return self.clear(id);
        };
        loop {
            self.slots.lock().insert(id, Slot::Running(false));
            tokio::select! {
                () = self.check(id) => {}
                () = &mut stopping => return self.clear(id),
            }
            let mut slots = self.slots.lock();
            if slots.get(&id) != Some(&Slot::Running(true)) {
                slots.remove(&id);
                return;
            }
        }
    }

    fn clear(&self, id: Uuid) {
        self.slots.lock().remove(&id);
    }

    /// One check. It is about the configuration `set_validating` returns; the result is
    /// stored only if that is still the configuration (an update meanwhile has triggered a
    /// newer check). Two statements, each publishing the row it returns.
    async fn check(&self, id: Uuid) {
        let provider = match providers::set_validating(&self.db, id).await {
            Ok(Some(row)) => row,
            Ok(None) => return, // deleted meanwhile
            Err(err) => {
                tracing::warn!(error = %err, "validator: cannot store state");
                return;
            }
        };
        super::publish(&self.events, EventKind::ValidationUpdate, &provider);
        let checked = if provider.key_on_workers() {
            self.probe_on_worker(&provider).await
        } else {
            let started = Instant::now();
            let outcome = self.probe(&provider).await;
            Checked {
                outcome: outcome
                    .map(|models| (models, started.elapsed()))
                    .map_err(|e| e.summary()),
                by: None,
            }
        };
        match &checked.outcome {
            Ok((models, latency)) => tracing::info!(
                latency_ms = latency.as_millis() as u64,
                models = models.len(),
                checked_by = checked.by.as_deref().unwrap_or("server"),
                "provider connected"
            ),
            Err(error) => tracing::info!(%error, "provider check failed"),
        }
        let result = match checked.outcome {
            Ok((models, latency)) => ValidationResult {
                status: ValidationStatus::Connected,
                error: None,
                latency_ms: Some(i64::try_from(latency.as_millis()).unwrap_or(i64::MAX)),
                models: Some(models),
                validated_at: Utc::now(),
                checked_by: checked.by,
            },
            Err(error) => ValidationResult {
                status: ValidationStatus::Error,
                error: Some(error),
                latency_ms: None,
                models: None,
                validated_at: Utc::now(),
                checked_by: checked.by,
            },
        };
        match providers::set_validation_result(&self.db, id, provider.revision, result).await {
            Ok(Some(row)) => super::publish(&self.events, EventKind::ValidationUpdate, &row),
            Ok(None) => {}
            Err(err) => tracing::warn!(error = %err, "validator: cannot store result"),
        }
    }

    /// A provider whose key lives on workers is checked by one that holds it.
    async fn probe_on_worker(&self, provider: &providers::Model) -> Checked {
        let Some(runs) = self.workers.get() else {
            return Checked {
                outcome: Err("no worker can check it yet (the server is starting)".into()),
                by: None,
            };
        };
        // The worker's own deadline is the same; a little more for the round trip.
        let wait = self.settings.check_timeout + Duration::from_secs(5);
        match runs.probe_on_worker(provider, wait).await {
            Ok(WorkerProbe { worker, outcome }) => Checked {
                outcome: match outcome {
                    ProbeOutcome::Connected { models, latency_ms } => {
                        Ok((models, Duration::from_millis(latency_ms)))
                    }
                    ProbeOutcome::Failed { error } => Err(error),
                },
                by: Some(worker),
            },
            Err(why) => Checked {
                outcome: Err(format!("not checked: {why}")),
                by: None,
            },
        }
    }

    /// Checks again the providers (names) whose keys live on workers, now that a worker
    /// holds keys for them.
    pub fn recheck_named(self: &Arc<Self>, names: Vec<String>) {
        let validator = Arc::clone(self);
        self.background.spawn(async move {
            match providers::active_on_workers_named(&validator.db, &names).await {
                Ok(ids) => ids.into_iter().for_each(|id| validator.trigger(id)),
                Err(err) => tracing::warn!(error = %err, "validator: cannot find providers"),
            }
        });
    }

    /// Lets checks of providers whose keys live on workers go to the workers (set once,
    /// before `start`).
    pub fn use_workers(&self, runs: Runs) {
        if self.workers.set(runs).is_err() {
            tracing::warn!("validator: workers already set");
        }
    }

    async fn probe(&self, provider: &providers::Model) -> Result<Vec<String>, ProviderError> {
        let client =
            llm::from_row(provider, &self.keyring, self.client.clone()).map_err(|e| match e {
                ClientError::Key(e) => ProviderError::new(
                    ErrorClass::CredentialsRejected,
                    format!(
                        "the stored API key cannot be decrypted ({e}); check AGENTRY_ENCRYPTION_KEY"
                    ),
                ),
                ClientError::Provider(e) => e,
            })?;
        match tokio::time::timeout(self.settings.check_timeout, client.probe()).await {
            Ok(result) => result.map(|probe| probe.models),
            Err(_) => Err(ProviderError::new(
                ErrorClass::Timeout,
                format!(
                    "no complete answer within {} s",
                    self.settings.check_timeout.as_secs_f32()
                ),
            )),
        }
    }
}

/// `base` ± 10 %, from the clock's sub-second noise (no RNG dependency needed for this).
fn jitter(base: Duration) -> Duration {
    let noise = f64::from(Utc::now().timestamp_subsec_nanos() % 1_000) / 1_000.0; // 0..1
    base.mul_f64(0.9 + 0.2 * noise)
}
