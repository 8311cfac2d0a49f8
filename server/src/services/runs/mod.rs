//! Runs: the one owner of a run's lifecycle and of the `runs` and `run_events` tables.
//! `create` checks the input, renders the prompt, stores the run `queued` and starts it;
//! the run task marks it `running`, hands it to the attempt loop (`executor`) and stores the
//! outcome; `cancel` moves it to `canceled` and aborts its provider call. Every status change
//! is a conditional update (the database decides, so a run only moves forward) and every
//! stored row is published on topic `runs` as the write returned it.
//!
//! This is the seam the queue cuts along: a run is created here, executed by an executor
//! that only reports through a `Journal`, and nothing else writes run rows.

mod executor;
pub mod runnable;

use std::collections::HashMap;
use std::panic::AssertUnwindSafe;
use std::sync::Arc;
use std::time::{Duration, Instant};

use contracts::{
    CreateRun, EventKind, FieldError, Page, Run, RunEvent, RunEventKind, RunMode, RunQuery,
    RunStatus, Topic,
};
use futures_util::FutureExt;
use parking_lot::Mutex;
use sea_orm::{DatabaseConnection, DbErr};
use serde_json::{Value, json};
use tokio::task::AbortHandle;
use tokio_util::sync::CancellationToken;
use tracing::Instrument;
use tracing::field::{Empty, display};
use uuid::Uuid;

pub use executor::MAX_TRANSIENT_RETRIES;
use executor::{Journal, Outcome, Verdict};
use runnable::{BuildError, RunnableAgent, Runnables};

use crate::background::Background;
use crate::db::runs::{self, Finish, run};
use crate::db::{Wire, agents, assignments, providers, tasks};
use crate::domain::fields::{Problems, check_json_text};
use crate::domain::{Invalid, new_id, now};
use crate::events::EventHub;
use crate::llm::ProviderError;
use crate::prompt::Renderer;

/// Error of runs a previous process (or a stop) left unfinished.
const INTERRUPTED: &str = "interrupted: the server stopped while the run was in progress";
/// How often the registry of runnable agents forgets instances no run holds.
const SWEEP_INTERVAL: Duration = Duration::from_secs(60);

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("no {resource} with id {id}")]
    NotFound { resource: &'static str, id: Uuid },
    #[error("the task is not assigned to this agent")]
    TaskNotAssigned,
    #[error("the agent's provider no longer exists")]
    ProviderGone,
    #[error(transparent)]
    NotRunnable(#[from] BuildError),
    #[error(transparent)]
    Invalid(#[from] Invalid),
    #[error("the run has already finished ({0})")]
    Finished(RunStatus),
    #[error(transparent)]
    Db(#[from] DbErr),
}

/// A started run: finished when the request asked to wait (`sync`), else as queued.
#[derive(Debug)]
pub struct Created {
    pub run: Run,
    pub finished: bool,
}

/// Cheap to clone: one shared inner state.
#[derive(Clone)]
pub struct Runs {
    inner: Arc<Inner>,
}

struct Inner {
    db: DatabaseConnection,
    events: Arc<EventHub>,
    runnables: Runnables,
    /// Renders user prompt templates in helper processes.
    renderer: Renderer,
    background: Background,
    /// Runs executing in this process, for cancel.
    inflight: Mutex<HashMap<Uuid, AbortHandle>>,
    /// Cancelled when a stop has waited long enough: runs still going record that they were
    /// interrupted.
    halt: CancellationToken,
}

impl Runs {
    /// The run service. Runs a previous process left unfinished (it crashed or was killed)
    /// are failed first: nothing executes them any more.
    pub async fn start(
        db: DatabaseConnection,
        events: Arc<EventHub>,
        runnables: Runnables,
        renderer: Renderer,
        background: Background,
    ) -> Result<Runs, DbErr> {
        let interrupted =
            runs::transition_all(&db, RunStatus::Failed, now(), interrupted()).await?;
        if !interrupted.is_empty() {
            tracing::warn!(
                runs = interrupted.len(),
                "marked runs left unfinished by the previous process as failed (interrupted)"
            );
        }
        let runs = Runs {
            inner: Arc::new(Inner {
                db,
                events,
                runnables,
                renderer,
                background,
                inflight: Mutex::new(HashMap::new()),
                halt: CancellationToken::new(),
            }),
        };
        runs.spawn_sweeper();
        Ok(runs)
    }

    /// Runs a task with an agent: checks the input against the request schema (nothing is
    /// stored when it does not match), stores the run `queued` and starts it. `sync` waits for
    /// the run to finish; `async` answers at once.
    #[tracing::instrument(name = "runs.create", skip_all,
        fields(agent.id = %agent_id, task.id = %task_id, run.id = Empty))]
    pub async fn create(
        &self,
        agent_id: Uuid,
        task_id: Uuid,
        body: CreateRun,
    ) -> Result<Created, Error> {
        let inner = &self.inner;
        let runnable = inner.runnable(agent_id, task_id).await?;
        let mut problems = Problems::new();
        check_json_text(&mut problems, "/input", &body.input);
        problems.extend(runnable.check_input(&body.input));
        problems.finish(())?;
        let prompt = runnable
            .render(&inner.renderer, &body.input)
            .await
            .map_err(|e| {
                Invalid::field(
                    "/input",
                    format!("does not fill the agent's user prompt template: {e}"),
                )
            })?;
        let id = new_id();
        tracing::Span::current().record("run.id", display(id));
        let row = run::Model {
            id,
            agent_id,
            task_id,
            status: Wire(RunStatus::Queued),
            input: body.input,
            output: None,
            raw_output: None,
            error: None,
            attempts: 0,
            prompt_tokens: None,
            completion_tokens: None,
            latency_ms: None,
            snapshot: serde_json::to_value(&runnable.snapshot)
                .map_err(|e| DbErr::Json(e.to_string()))?,
            created_at: now(),
            started_at: None,
            finished_at: None,
        };
        let queued = runs::insert(&inner.db, row).await?;
        runs::append_event(
            &inner.db,
            id,
            RunEventKind::Status,
            status_data(RunStatus::Queued),
            now(),
        )
        .await?;
        inner.publish(&queued);
        tracing::info!("run queued");

        let handle = Arc::clone(inner).spawn(id, runnable, prompt);
        match body.mode {
            RunMode::Async => Ok(Created {
                run: queued.to_contract()?,
                finished: false,
            }),
            RunMode::Sync => {
                // The run continues if this request goes away; cancel is explicit.
                let finished = match handle.await {
                    Ok(Some(finished)) => finished,
                    // Canceled meanwhile (or the final write failed): read what is stored.
                    _ => runs::find(&inner.db, id).await?.ok_or(Error::NotFound {
                        resource: "run",
                        id,
                    })?,
                };
                Ok(Created {
                    run: finished.to_contract()?,
                    finished: true,
                })
            }
        }
    }

    /// Runs, newest first, filtered by agent, task and status.
    pub async fn list(
        &self,
        query: &RunQuery,
        limit: u64,
        offset: u64,
    ) -> Result<Page<Run>, Error> {
        let (rows, total) = runs::list(&self.inner.db, query, limit, offset).await?;
        Ok(Page {
            items: rows
                .iter()
                .map(run::Model::to_contract)
                .collect::<Result<_, _>>()?,
            total,
            limit,
            offset,
        })
    }

    pub async fn get(&self, id: Uuid) -> Result<Run, Error> {
        Ok(self.inner.find(id).await?.to_contract()?)
    }

    /// A run's history, oldest first.
    pub async fn events(&self, id: Uuid) -> Result<Vec<RunEvent>, Error> {
        self.inner.find(id).await?;
        Ok(runs::events(&self.inner.db, id).await?)
    }

    /// Cancels a queued or running run: the database decides (only unfinished runs move to
    /// `canceled`), then the in-flight provider call is aborted (its connection closed).
    #[tracing::instrument(name = "runs.cancel", skip_all, fields(run.id = %id))]
    pub async fn cancel(&self, id: Uuid) -> Result<Run, Error> {
        let inner = &self.inner;
        let finish = Finish {
            error: Some("canceled: the run was canceled on request".to_owned()),
            ..Finish::default()
        };
        let Some(canceled) =
            runs::transition(&inner.db, id, RunStatus::Canceled, now(), finish).await?
        else {
            return Err(Error::Finished(*inner.find(id).await?.status));
        };
        if let Some(handle) = inner.inflight.lock().remove(&id) {
            handle.abort();
        }
        inner
            .event(id, RunEventKind::Status, status_data(RunStatus::Canceled))
            .await;
        inner.publish(&canceled);
        tracing::info!("run canceled");
        Ok(canceled.to_contract()?)
    }

    /// Interrupts every run still executing: each records that the server stopped. Called by a
    /// stop that has waited long enough for them.
    pub fn halt(&self) {
        self.inner.halt.cancel();
    }

    pub fn runnables(&self) -> &Runnables {
        &self.inner.runnables
    }

    /// Forgets registry entries whose instance is gone, every minute, and logs how many agents
    /// are live (a metric until metrics exist).
    fn spawn_sweeper(&self) {
        let inner = Arc::clone(&self.inner);
        let stopping = inner.background.stopping();
        self.inner.background.spawn(async move {
            let mut stopping = std::pin::pin!(stopping);
            let mut tick = tokio::time::interval(SWEEP_INTERVAL);
            tick.tick().await;
            loop {
                tokio::select! {
                    () = &mut stopping => return,
                    _ = tick.tick() => {
                        let registry = inner.runnables.registry();
                        registry.sweep();
                        tracing::debug!(
                            live = registry.live_instances(),
                            entries = registry.entries(),
                            builds = registry.builds(),
                            "runnable agent registry"
                        );
                    }
                }
            }
        });
    }
}

impl Inner {
    async fn find(&self, id: Uuid) -> Result<run::Model, Error> {
        runs::find(&self.db, id).await?.ok_or(Error::NotFound {
            resource: "run",
            id,
        })
    }

    /// The runnable agent for a run of `task_id` by `agent_id`: the task must be assigned,
    /// and the agent keeps its provider even when that was soft-deleted (until re-pointed).
    async fn runnable(&self, agent_id: Uuid, task_id: Uuid) -> Result<Arc<RunnableAgent>, Error> {
        // Independent reads, at once; the task only if it is assigned (one query on the hot
        // path).
        let (agent, task) = tokio::try_join!(
            agents::find(&self.db, agent_id),
            assignments::assigned_task(&self.db, agent_id, task_id),
        )?;
        let agent = agent.ok_or(Error::NotFound {
            resource: "agent",
            id: agent_id,
        })?;
        let Some(task) = task else {
            return Err(match tasks::find(&self.db, task_id).await? {
                None => Error::NotFound {
                    resource: "task",
                    id: task_id,
                },
                Some(_) => Error::TaskNotAssigned,
            });
        };
        let provider = providers::find(&self.db, agent.provider_id)
            .await?
            .ok_or(Error::ProviderGone)?;
        Ok(self.runnables.get(&agent, &task, &provider).await?)
    }

    /// Executes a stored, queued run in the background. The returned handle completes when
    /// the run has finished, with the run as its final update stored it (`None` when a cancel
    /// or an error wrote the final state instead); dropping it does not stop the run.
    fn spawn(
        self: Arc<Self>,
        run_id: Uuid,
        agent: Arc<RunnableAgent>,
        prompt: String,
    ) -> tokio::task::JoinHandle<Option<run::Model>> {
        let inner = Arc::clone(&self);
        let span = tracing::info_span!("runs.execute", run.id = %run_id);
        // Held while spawning, so a cancel always finds the run while it executes and the
        // task's own removal cannot come first.
        let mut inflight = self.inflight.lock();
        let handle = self.background.spawn(
            async move {
                // A panic in the attempt loop must not leave the run `running` forever.
                let finished = match AssertUnwindSafe(inner.execute(run_id, &agent, prompt))
                    .catch_unwind()
                    .await
                {
                    Ok(finished) => finished,
                    Err(_) => {
                        tracing::error!("run execution panicked");
                        inner
                            .fail(
                                run_id,
                                "internal: the run failed unexpectedly; see the server log",
                            )
                            .await
                    }
                };
                inner.inflight.lock().remove(&run_id);
                finished
            }
            .instrument(span),
        );
        inflight.insert(run_id, handle.abort_handle());
        handle
    }

    async fn execute(
        &self,
        run_id: Uuid,
        agent: &RunnableAgent,
        prompt: String,
    ) -> Option<run::Model> {
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
                self.event(
                    run_id,
                    RunEventKind::Status,
                    status_data(RunStatus::Running),
                )
                .await;
                self.publish(&running);
            }
            Ok(None) => return None, // canceled before it started
            Err(err) => {
                tracing::error!(error = %err, "cannot start run");
                return None;
            }
        }
        let journal = RunJournal {
            inner: self,
            run_id,
        };
        let outcome = tokio::select! {
            outcome = executor::execute(agent, prompt, &journal) => Some(outcome),
            () = self.halt.cancelled() => None,
        };
        let latency = i64::try_from(started.elapsed().as_millis()).unwrap_or(i64::MAX);
        self.finish(run_id, outcome, latency).await
    }

    /// Stores how the run ended (`None`: interrupted by a stop) and publishes it.
    async fn finish(
        &self,
        run_id: Uuid,
        outcome: Option<Outcome>,
        latency_ms: i64,
    ) -> Option<run::Model> {
        let mut pending = Vec::new();
        let (status, finish) = match outcome {
            None => (RunStatus::Failed, interrupted()),
            Some(outcome) => {
                let signed = |v: Option<u64>| v.map(|v| i64::try_from(v).unwrap_or(i64::MAX));
                let recorded = Finish {
                    attempts: Some(i32::try_from(outcome.attempts).unwrap_or(i32::MAX)),
                    prompt_tokens: signed(outcome.usage.prompt_tokens),
                    completion_tokens: signed(outcome.usage.completion_tokens),
                    latency_ms: Some(latency_ms),
                    ..Finish::default()
                };
                match outcome.verdict {
                    Verdict::Succeeded {
                        output,
                        raw,
                        attempt,
                    } => {
                        // The winning answer's event is stored with the final one: no
                        // progress write for an answer that is already the result.
                        pending.push((RunEventKind::Attempt, attempt));
                        let finish = Finish {
                            output: Some(output),
                            raw_output: Some(raw),
                            ..recorded
                        };
                        (RunStatus::Succeeded, finish)
                    }
                    Verdict::Failed { error } => {
                        let finish = Finish {
                            error: Some(error),
                            raw_output: outcome.last_raw,
                            ..recorded
                        };
                        (RunStatus::Failed, finish)
                    }
                }
            }
        };
        let finished = match runs::transition(&self.db, run_id, status, now(), finish).await {
            Ok(Some(finished)) => {
                pending.push((RunEventKind::Status, status_data(status)));
                Some(finished)
            }
            Ok(None) => None, // canceled meanwhile: the cancel wrote the final state
            Err(err) => {
                tracing::error!(error = %err, "cannot finish run");
                None
            }
        };
        if let Err(err) = runs::append_events(&self.db, run_id, pending, now()).await {
            tracing::warn!(error = %err, "run events not stored");
        }
        if let Some(finished) = &finished {
            self.publish(finished);
        }
        finished
    }

    /// Ends a run as `failed` with `error`, if it has not ended yet.
    async fn fail(&self, run_id: Uuid, error: &str) -> Option<run::Model> {
        let finish = Finish {
            error: Some(error.to_owned()),
            ..Finish::default()
        };
        match runs::transition(&self.db, run_id, RunStatus::Failed, now(), finish).await {
            Ok(Some(failed)) => {
                self.event(run_id, RunEventKind::Status, status_data(RunStatus::Failed))
                    .await;
                self.publish(&failed);
                Some(failed)
            }
            Ok(None) => None,
            Err(err) => {
                tracing::error!(error = %err, "cannot fail run");
                None
            }
        }
    }

    async fn event(&self, run_id: Uuid, kind: RunEventKind, data: Value) {
        if let Err(err) = runs::append_event(&self.db, run_id, kind, data, now()).await {
            tracing::warn!(error = %err, "run event not stored");
        }
    }

    /// The one place events on topic `runs` are published: a run as the write that returned
    /// it stored it.
    fn publish(&self, run: &run::Model) {
        match run.to_contract() {
            Ok(contract) => {
                let kind = if contract.status == RunStatus::Queued {
                    EventKind::Created
                } else {
                    EventKind::Updated
                };
                self.events.publish(Topic::Runs, kind, run.id, &contract);
            }
            Err(err) => tracing::warn!(error = %err, "run event not published"),
        }
    }
}

/// What the attempt loop reports, stored as the run's events.
struct RunJournal<'a> {
    inner: &'a Inner,
    run_id: Uuid,
}

impl Journal for RunJournal<'_> {
    async fn provider_error(&self, error: &ProviderError, retry_in: Option<Duration>) {
        let mut data = json!({"class": error.class.as_str(), "error": error.to_string()});
        if let Some(delay) = retry_in {
            data["retry_in_ms"] = json!(u64::try_from(delay.as_millis()).unwrap_or(u64::MAX));
        }
        self.inner
            .event(self.run_id, RunEventKind::ProviderError, data)
            .await;
    }

    /// The answer and why it was refused, in one statement; then the progress (attempt count,
    /// last answer) on the run itself, published.
    async fn invalid_answer(&self, attempt: u32, answer: Value, raw: &str, errors: &[FieldError]) {
        let inner = self.inner;
        let events = vec![
            (RunEventKind::Attempt, answer),
            (
                RunEventKind::ValidationError,
                json!({"attempt": attempt, "errors": errors}),
            ),
        ];
        if let Err(err) = runs::append_events(&inner.db, self.run_id, events, now()).await {
            tracing::warn!(error = %err, "run events not stored");
        }
        let attempts = i32::try_from(attempt).unwrap_or(i32::MAX);
        match runs::record_attempt(&inner.db, self.run_id, attempts, Some(raw.to_owned())).await {
            Ok(Some(run)) => inner.publish(&run),
            Ok(None) => {} // canceled meanwhile
            Err(err) => tracing::warn!(error = %err, "attempt not stored"),
        }
    }
}

fn status_data(status: RunStatus) -> Value {
    json!({"status": status.as_str()})
}

fn interrupted() -> Finish {
    Finish {
        error: Some(INTERRUPTED.to_owned()),
        ..Finish::default()
    }
}
