//! Runs: the one owner of a run's lifecycle and of the `runs` and `run_events` tables.
//! `create` checks the input, renders the prompt, stores the run `queued` with the job a
//! worker needs and wakes the dispatcher (`dispatch`), which offers queued runs to connected
//! workers with free slots; each worker's session (`session`) stores what its worker reports
//! under the run's current lease; the sweeper requeues runs whose worker was lost and fails
//! runs no worker took in time; `cancel` moves a run to `canceled` and tells its worker.
//! Every status change is a conditional update (the database decides) and every stored row
//! is published on topic `runs` as the write returned it; a sync request waits for the
//! publication of its run's final state.

mod batch;
mod checks;
mod dispatch;
mod fleet;
mod groups;
mod input;
mod inserts;
mod jobs;
mod origin;
mod placement;
mod prepared;
mod probes;
mod reports;
pub mod routing;
pub mod runnable;
mod session;

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use contracts::{
    CreateRun, EventKind, Page, Run, RunEvent, RunEventKind, RunMode, RunQuery, RunStatus, Topic,
};
use parking_lot::Mutex;
use sea_orm::{DatabaseConnection, DbErr};
use serde_json::{Value, json};
use tokio::sync::{Notify, mpsc, oneshot};
use tokio_util::sync::CancellationToken;
use tracing::field::{Empty, display};
use uuid::Uuid;

use runnable::{BuildError, Runnables};

use crate::background::Background;
use crate::config::QueueSettings;
use crate::db::runs::{self, Finish, run};
use crate::db::{Wire, queue, workers};
use crate::domain::{Invalid, new_id, now};
use crate::events::EventHub;
use crate::outbound::GuardedClient;
use crate::prompt::Renderer;
use crate::worker::transport::{ConnectError, InProcess, WorkerLink};
use crate::worker::{Worker, WorkerSettings};

pub use crate::worker::MAX_TRANSIENT_RETRIES;
use dispatch::Fleet;
pub use fleet::Live;
use origin::Origin;
pub use probes::WorkerProbe;
pub use reports::MIN_FREE_DISK_BYTES;

/// Error of unfinished runs stored before the queue existed: no worker can execute them.
const INTERRUPTED: &str = "interrupted: the server stopped while the run was in progress";
/// How often the registries of runnable agents forget instances no run holds.
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
    /// The prompt could not be rendered for a reason of the server's (see the log).
    #[error("{0}")]
    RendererUnavailable(String),
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

/// What the run service is started with.
pub struct RunsConfig {
    pub queue: QueueSettings,
    /// Whether the built-in worker is started (the stored switch must allow it too).
    pub builtin_worker: bool,
    pub builtin_slots: u32,
    /// The outbound client the built-in worker calls providers through.
    pub outbound: GuardedClient,
    /// The server's data directory: the disk the built-in worker reports on.
    pub data_dir: std::path::PathBuf,
    /// The server's outbound policy, which the built-in worker's calls go through.
    pub outbound_reach: contracts::worker::OutboundReach,
}

struct Inner {
    db: DatabaseConnection,
    events: Arc<EventHub>,
    runnables: Runnables,
    /// Renders user prompt templates in helper processes.
    renderer: Renderer,
    background: Background,
    settings: QueueSettings,
    /// Connected workers, their slots and the runs they hold.
    fleet: Mutex<Fleet>,
    /// Wakes the dispatcher: a run was queued, a slot freed, a worker connected.
    wake: Notify,
    /// Sync requests waiting for their run's final state.
    waiters: Mutex<HashMap<Uuid, Vec<oneshot::Sender<run::Model>>>>,
    /// Decrypted provider keys by provider id with the revision they belong to, so an
    /// assignment needs no read; filled when runs are created, read from the database on a
    /// miss (after a restart).
    keys: Mutex<HashMap<Uuid, (u64, Option<String>)>>,
    /// How the outputs of offered runs are checked before they are stored.
    checks: checks::Checks,
    /// The runnable agent of each unfinished run: runs in flight share it, so a new run of
    /// the same configuration finds it prepared.
    in_use: inserts::InUse,
    /// Stores new runs, together when they come together.
    inserts: inserts::Inserts,
    /// The configuration last prepared for each agent/task pair.
    recent: Mutex<HashMap<(Uuid, Uuid), runnable::Key>>,
    /// The built-in worker, while it runs.
    builtin: Mutex<Option<Arc<Worker>>>,
    /// The outbound client the built-in worker calls providers through.
    outbound: GuardedClient,
    data_dir: std::path::PathBuf,
    outbound_reach: contracts::worker::OutboundReach,
    /// Workers whose connection or health changed (topic `workers`).
    changes_tx: mpsc::UnboundedSender<Uuid>,
    changes_rx: Mutex<Option<mpsc::UnboundedReceiver<Uuid>>>,
    /// Runs or workers changed since the pool's counts were last computed.
    pool_dirty: AtomicBool,
    /// Registered workers' facts and queued runs' routes, for routing.
    placement: Mutex<placement::Placement>,
    /// Whether any concurrency group exists (claims ignore groups while none does).
    has_groups: AtomicBool,
    /// Groups whose runs changed since their counts were last published.
    group_changes: groups::Changed,
    /// Connectivity checks sent to workers, waiting for their answer.
    probes: probes::Pending,
    /// Told the providers a worker now holds keys for (it connected, or they changed), so
    /// their checks run again on it.
    on_credentials: std::sync::OnceLock<Box<dyn Fn(Vec<String>) + Send + Sync>>,
}

impl Runs {
    /// The run service: starts the dispatcher, the sweeper and (unless disabled) the
    /// built-in worker. Runs a previous process left unfinished stay where they are: queued
    /// runs wait for a worker, leased runs are honoured when their worker reconnects and
    /// requeued when their lease has expired.
    pub async fn start(
        db: DatabaseConnection,
        events: Arc<EventHub>,
        runnables: Runnables,
        renderer: Renderer,
        background: Background,
        config: RunsConfig,
    ) -> Result<Runs, DbErr> {
        let jobless = queue::fail_jobless(&db, now(), INTERRUPTED).await?;
        if !jobless.is_empty() {
            tracing::warn!(
                runs = jobless.len(),
                "failed unfinished runs stored before the queue existed (interrupted)"
            );
        }
        let mut builtin = workers::builtin(&db, new_id(), config.builtin_slots, now()).await?;
        if !config.builtin_worker
            && builtin.enabled
            && let Some(row) = workers::set_enabled(&db, builtin.id, false, now()).await?
        {
            builtin = row;
        }
        let (changes_tx, changes_rx) = mpsc::unbounded_channel();
        let in_use = inserts::InUse::default();
        let inserts = inserts::Inserts::start(db.clone(), Arc::clone(&in_use), &background);
        let runs = Runs {
            inner: Arc::new(Inner {
                db,
                events,
                runnables,
                renderer,
                background,
                settings: config.queue,
                fleet: Mutex::new(Fleet::default()),
                wake: Notify::new(),
                waiters: Mutex::new(HashMap::new()),
                keys: Mutex::new(HashMap::new()),
                checks: checks::Checks::default(),
                in_use,
                inserts,
                recent: Mutex::new(HashMap::new()),
                builtin: Mutex::new(None),
                outbound: config.outbound.clone(),
                data_dir: config.data_dir.clone(),
                outbound_reach: config.outbound_reach.clone(),
                changes_tx,
                changes_rx: Mutex::new(Some(changes_rx)),
                pool_dirty: AtomicBool::new(true),
                placement: Mutex::new(placement::Placement::default()),
                has_groups: AtomicBool::new(true),
                group_changes: groups::Changed::default(),
                probes: probes::Pending::default(),
                on_credentials: std::sync::OnceLock::new(),
            }),
        };
        runs.inner.load_placement().await?;
        runs.inner.load_groups().await?;
        runs.spawn_registry_sweeper();
        dispatch::spawn(&runs.inner);
        if builtin.enabled && config.builtin_worker {
            runs.start_builtin(builtin.id, config.builtin_slots, config.outbound);
        } else {
            tracing::info!("the built-in worker is disabled");
        }
        Ok(runs)
    }

    /// Starts the built-in worker: the worker code, connected over the in-process transport.
    fn start_builtin(&self, worker_id: Uuid, slots: u32, outbound: GuardedClient) {
        let inner = &self.inner;
        let worker = Arc::new(Worker::new(
            WorkerSettings {
                slots,
                build: env!("CARGO_PKG_VERSION").to_owned(),
                data_dir: inner.data_dir.clone(),
                outbound: inner.outbound_reach.clone(),
            },
            crate::worker::runnable::Runnables::new(outbound),
            inner.background.clone(),
        ));
        let accepting = Arc::downgrade(inner);
        let connector = InProcess::new(move |link| {
            let inner = accepting
                .upgrade()
                .ok_or_else(|| ConnectError::Unavailable("the server is stopping".into()))?;
            let background = inner.background.clone();
            background.spawn(session::serve(inner, worker_id, None, link));
            Ok(())
        });
        let stop = CancellationToken::new();
        let stopping = inner.background.stopping();
        let stop_on_stop = stop.clone();
        inner.background.spawn(async move {
            stopping.await;
            stop_on_stop.cancel();
        });
        *inner.builtin.lock() = Some(Arc::clone(&worker));
        inner.background.spawn(async move {
            worker.run(connector, stop).await;
        });
    }

    /// Opens a session for worker `worker_id` over the in-process transport: the returned
    /// link speaks the worker protocol (`hello` first). The built-in worker connects this
    /// way; so do protocol tests.
    pub fn attach(&self, worker_id: Uuid) -> WorkerLink {
        let (worker, server) = crate::worker::transport::pair();
        let inner = Arc::clone(&self.inner);
        self.inner
            .background
            .spawn(session::serve(inner, worker_id, None, server));
        worker
    }

    /// Runs a task with an agent: checks the input against the request schema (nothing is
    /// stored when it does not match), stores the run `queued` and wakes the dispatcher.
    /// `sync` waits for the run to finish; `async` answers at once.
    #[tracing::instrument(name = "runs.create", skip_all,
        fields(agent.id = %agent_id, task.id = %task_id, run.id = Empty))]
    pub async fn create(
        &self,
        agent_id: Uuid,
        task_id: Uuid,
        body: CreateRun,
    ) -> Result<Created, Error> {
        self.enqueue(agent_id, task_id, body, Origin::default())
            .await
    }

    /// Starts a new run with the input of run `id`, by the same agent and task, linked to it
    /// (`retry_of`); answers at once with the queued run.
    #[tracing::instrument(name = "runs.retry", skip_all, fields(run.id = %id))]
    pub async fn retry(&self, id: Uuid) -> Result<Run, Error> {
        let original = self.inner.find(id).await?;
        let body = CreateRun {
            input: original.input,
            mode: RunMode::Async,
        };
        let created = self
            .enqueue(
                original.agent_id,
                original.task_id,
                body,
                Origin {
                    retry_of: Some(id),
                    ..Origin::default()
                },
            )
            .await?;
        Ok(created.run)
    }

    async fn enqueue(
        &self,
        agent_id: Uuid,
        task_id: Uuid,
        body: CreateRun,
        origin: Origin,
    ) -> Result<Created, Error> {
        let inner = &self.inner;
        let runnable = inner.runnable(agent_id, task_id).await?;
        let prompt = input::prompt(&runnable, &inner.renderer, &body.input).await?;
        let id = new_id();
        tracing::Span::current().record("run.id", display(id));
        inner.remember_key(&runnable);
        let job = serde_json::to_value(runnable.job(prompt, false))
            .map_err(|e| DbErr::Json(e.to_string()))?;
        let created = now();
        let route_key = runnable.route.key();
        let waiting_reason = {
            let mut placement = inner.placement.lock();
            placement.remember(&route_key, &runnable.route);
            placement.waiting_reason(&runnable.route)
        };
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
            created_at: created,
            started_at: None,
            finished_at: None,
            job: Some(job),
            worker_id: None,
            lease_id: None,
            lease_expires_at: None,
            deliveries: 0,
            queued_at: Some(created),
            assigned_at: None,
            queue_deadline: Some(queue::after(created, runnable.queue_timeout)),
            retry_of: origin.retry_of,
            route_key,
            waiting_reason,
            concurrency_group_id: runnable.concurrency_group,
            schedule_id: origin.schedule.map(|(id, _)| id),
            scheduled_for: origin.schedule.map(|(_, at)| at),
        };
        // Registered first: the run may finish before the insert returns.
        let finished = (body.mode == RunMode::Sync).then(|| inner.wait_for(id));
        let queued = row.clone();
        if let Err(err) = inner.inserts.insert(row, Arc::clone(&runnable)).await {
            inner.waiters.lock().remove(&id);
            return Err(err.into());
        }
        inner.publish(&queued);
        inner.wake.notify_one();
        tracing::info!("run queued");
        match finished {
            None => Ok(Created {
                run: queued.to_contract()?,
                finished: false,
            }),
            Some(finished) => {
                // The run continues if this request goes away; cancel is explicit.
                let finished = match finished.await {
                    Ok(finished) => finished,
                    Err(_) => inner.find(id).await?,
                };
                Ok(Created {
                    run: finished.to_contract()?,
                    finished: true,
                })
            }
        }
    }

    /// Runs, newest first, filtered by agent, task, worker and status.
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

    /// Cancels an unfinished run: the database decides (only unfinished runs move to
    /// `canceled`), then the worker holding it is told to abort its provider call.
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
        if let Some(worker_id) = canceled.worker_id {
            inner.fleet.lock().cancel(worker_id, id);
        }
        inner
            .event(id, RunEventKind::Status, status_data(RunStatus::Canceled))
            .await;
        inner.publish(&canceled);
        tracing::info!("run canceled");
        Ok(canceled.to_contract()?)
    }

    /// Interrupts every run the built-in worker still executes (they stay leased and are
    /// requeued at the next start). Called by a stop that has waited long enough for them.
    pub fn halt(&self) {
        if let Some(worker) = self.inner.builtin.lock().as_ref() {
            worker.halt();
        }
    }

    pub fn runnables(&self) -> &Runnables {
        &self.inner.runnables
    }

    /// Forgets registry entries whose instance is gone, every minute, and logs how many agents
    /// are live (a metric until metrics exist).
    fn spawn_registry_sweeper(&self) {
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
                        let builtin = inner.builtin.lock().clone();
                        if let Some(worker) = builtin {
                            worker.runnables().registry().sweep();
                        }
                        tracing::debug!(
                            live = registry.live_instances(),
                            entries = registry.entries(),
                            builds = registry.builds(),
                            "prepared agent registry"
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

    /// A worker connected, left or changed health.
    fn worker_changed(&self, worker_id: Uuid) {
        self.changes_tx.send(worker_id).ok();
        self.pool_dirty.store(true, Ordering::Relaxed);
    }

    /// A receiver of the run's final state, as stored.
    fn wait_for(&self, id: Uuid) -> oneshot::Receiver<run::Model> {
        let (tx, rx) = oneshot::channel();
        self.waiters.lock().entry(id).or_default().push(tx);
        rx
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
    /// it stored it. A final state also answers the sync requests waiting for it.
    fn publish(&self, run: &run::Model) {
        self.pool_dirty.store(true, Ordering::Relaxed);
        self.group_touched(run.concurrency_group_id);
        match run.to_contract() {
            Ok(contract) => {
                let kind = if contract.status == RunStatus::Queued && run.assigned_at.is_none() {
                    EventKind::Created
                } else {
                    EventKind::Updated
                };
                self.events.publish(Topic::Runs, kind, run.id, &contract);
            }
            Err(err) => tracing::warn!(error = %err, "run event not published"),
        }
        if run.status.is_finished() {
            self.checks.forget(run.id);
            self.in_use.lock().remove(&run.id);
            if let Some(waiters) = self.waiters.lock().remove(&run.id) {
                for waiter in waiters {
                    waiter.send(run.clone()).ok();
                }
            }
        }
    }
}

fn status_data(status: RunStatus) -> Value {
    json!({"status": status.as_str()})
}
