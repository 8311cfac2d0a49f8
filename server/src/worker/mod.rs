//! A worker: connects to the server, takes the runs it is offered and executes them with the
//! attempt loop (`executor`), reporting progress and the result as protocol messages. The
//! built-in worker (in-process transport) and `agentry worker` (WebSocket) are this same
//! code.
//!
//! One loop owns the session and every execution's lease: executions only report to it, and
//! it stamps each message with the run's current lease id when it sends it. While a lease is
//! being extended, or while the worker is disconnected, messages wait in order; after a
//! reconnect the worker says which leases it still holds and sends what waited. A run whose
//! lease could not be renewed in time is aborted (the server has requeued it).

mod backoff;
pub mod command;
pub mod credentials;
mod execution;
pub mod executor;
pub mod health;
pub mod runnable;
pub mod transport;
pub mod websocket;

use std::collections::HashMap;
use std::panic::AssertUnwindSafe;
use std::sync::Arc;
use std::time::Duration;

use contracts::worker::{
    HeldLease, Hello, Job, JobEvent, JobProgress, JobResult, PROTOCOL, PROTOCOL_VERSION,
    ProbeOutcome, ServerMessage, WorkerMessage,
};
use futures_util::FutureExt;
use tokio::sync::mpsc;
use tokio::task::AbortHandle;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use tracing::Instrument;
use uuid::Uuid;

use crate::background::Background;
use execution::{WorkerJournal, execute, failed};
use runnable::Runnables;
use transport::{ConnectError, Connector, WorkerLink};

pub use backoff::backoff;
pub use executor::MAX_TRANSIENT_RETRIES;

/// Time the server has to answer `hello`.
const WELCOME_DEADLINE: Duration = Duration::from_secs(10);
/// How often the worker looks whether its own credentials changed.
const CREDENTIALS_EVERY: Duration = Duration::from_secs(1);

/// Runs a worker executes at once unless told otherwise: 8 per CPU core, at least 8 (provider
/// calls mostly wait on the network).
pub fn default_slots() -> u32 {
    let cores = std::thread::available_parallelism().map_or(1, std::num::NonZero::get);
    u32::try_from(cores * 8).unwrap_or(u32::MAX).max(8)
}

/// Who the worker is and how much it takes on.
#[derive(Debug, Clone)]
pub struct WorkerSettings {
    /// Runs executed at once.
    pub slots: u32,
    /// Reported in `hello.build`.
    pub build: String,
    /// Where it keeps its data: the disk whose free space it reports.
    pub data_dir: std::path::PathBuf,
    /// Its outbound policy, reported in `hello` for routing.
    pub outbound: contracts::worker::OutboundReach,
}

/// A worker, ready to run against a server.
pub struct Worker {
    settings: WorkerSettings,
    runnables: Arc<Runnables>,
    background: Background,
    /// Cancelled to abort every execution at once (a stop that waited long enough).
    halt: CancellationToken,
}

impl Worker {
    pub fn new(settings: WorkerSettings, runnables: Runnables, background: Background) -> Worker {
        Worker {
            settings,
            runnables: Arc::new(runnables),
            background,
            halt: CancellationToken::new(),
        }
    }

    /// Aborts every execution; their runs stay leased and the server requeues them.
    pub fn halt(&self) {
        self.halt.cancel();
    }

    pub fn runnables(&self) -> &Runnables {
        &self.runnables
    }

    /// Connects and works until `stop` is cancelled (then finishes its runs, delivers their
    /// results and returns) or the server refuses it for good. Reconnects with backoff
    /// whenever the session ends.
    pub async fn run(&self, connector: impl Connector, stop: CancellationToken) {
        let (reports, inbox) = mpsc::unbounded_channel();
        let mut state = State {
            worker: self,
            reports,
            executions: HashMap::new(),
            lease: Duration::from_secs(30),
            stopping: false,
            health: health::HealthMeter::new(self.settings.data_dir.clone()),
        };
        state.run(connector, stop, inbox).await;
    }
}

/// What an execution tells the worker's loop.
enum Report {
    Events {
        run_id: Uuid,
        events: Vec<JobEvent>,
        progress: Option<JobProgress>,
    },
    Done {
        run_id: Uuid,
        result: JobResult,
    },
    /// A connectivity check the server asked for ended.
    Probed {
        probe_id: Uuid,
        outcome: ProbeOutcome,
    },
}

/// A message of a run waiting to be sent (stamped with the lease when it is).
enum Pending {
    Events {
        seq: u64,
        events: Vec<JobEvent>,
        progress: Option<JobProgress>,
    },
    Result(JobResult),
}

/// A run this worker holds: executing, or finished with its result not yet acknowledged.
struct Execution {
    lease_id: Uuid,
    /// An `extend` is in flight: messages wait for the new lease id.
    extending: bool,
    /// Until when the lease is known to be valid.
    valid_until: Instant,
    pending: Vec<Pending>,
    seq: u64,
    /// Cancelled on `cancel`: the execution reports `canceled`.
    cancel: CancellationToken,
    /// Aborts the execution without a report (lease lost).
    abort: AbortHandle,
    finished: bool,
}

/// The session currently open, after `welcome`.
struct Session {
    link: WorkerLink,
    extend_every: Duration,
}

struct State<'a> {
    worker: &'a Worker,
    reports: mpsc::UnboundedSender<Report>,
    executions: HashMap<Uuid, Execution>,
    lease: Duration,
    /// Asked to stop: new offers are declined, the loop ends when nothing is held.
    stopping: bool,
    /// Measures what each heartbeat reports.
    health: health::HealthMeter,
}

impl State<'_> {
    async fn run(
        &mut self,
        connector: impl Connector,
        stop: CancellationToken,
        mut inbox: mpsc::UnboundedReceiver<Report>,
    ) {
        let mut session: Option<Session> = None;
        let mut failures: u32 = 0;
        let mut reconnect_at = Instant::now();
        let mut extend_tick = tokio::time::interval(Duration::from_secs(1));
        extend_tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut credentials_tick = tokio::time::interval(CREDENTIALS_EVERY);
        credentials_tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            if self.stopping && self.executions.is_empty() {
                return;
            }
            tokio::select! {
                () = stop.cancelled(), if !self.stopping => {
                    tracing::info!(held = self.executions.len(), "worker stopping: finishing its runs");
                    self.stopping = true;
                }
                () = self.worker.halt.cancelled() => {
                    for execution in self.executions.values() {
                        execution.abort.abort();
                    }
                    return;
                }
                () = tokio::time::sleep_until(reconnect_at), if session.is_none() => {
                    match self.open(&connector).await {
                        Ok(open) => {
                            failures = 0;
                            extend_tick = tokio::time::interval(open.extend_every);
                            extend_tick.set_missed_tick_behavior(
                                tokio::time::MissedTickBehavior::Delay,
                            );
                            session = Some(open);
                            self.flush_all(&mut session).await;
                        }
                        Err(ConnectError::Refused(reason)) => {
                            tracing::error!(%reason, "the server refused this worker; giving up");
                            return;
                        }
                        Err(ConnectError::Unavailable(reason)) => {
                            let delay = backoff(failures);
                            failures = failures.saturating_add(1);
                            tracing::warn!(%reason, retry_in_ms = delay.as_millis(), "cannot connect to the server");
                            reconnect_at = Instant::now() + delay;
                        }
                    }
                }
                message = next(&mut session) => match message {
                    Some(message) => self.handle(message, &mut session).await,
                    None => {
                        tracing::warn!("the server closed the session; reconnecting");
                        session = None;
                        let delay = backoff(failures);
                        failures = failures.saturating_add(1);
                        reconnect_at = Instant::now() + delay;
                    }
                },
                Some(report) = inbox.recv() => self.report(report, &mut session).await,
                _ = extend_tick.tick() => self.extend(&mut session).await,
                _ = credentials_tick.tick() => {
                    // `agentry worker credentials` changed the store: tell the server.
                    if let Some(providers) = self.worker.runnables.credentials_changed()
                        && let Some(open) = session.as_ref()
                    {
                        tracing::info!(credentials = providers.len(), "held credentials changed");
                        send(&open.link, WorkerMessage::Credentials { providers }).await.ok();
                    }
                }
            }
        }
    }

    /// Connects, says hello (with the leases still held) and waits for `welcome`.
    async fn open(&mut self, connector: &impl Connector) -> Result<Session, ConnectError> {
        let mut link = connector.connect().await?;
        let hello = Hello {
            protocol: PROTOCOL.to_owned(),
            version: PROTOCOL_VERSION,
            build: self.worker.settings.build.clone(),
            os: std::env::consts::OS.to_owned(),
            arch: std::env::consts::ARCH.to_owned(),
            slots: self.worker.settings.slots,
            // Every kind this build has a client for.
            capabilities: contracts::ProviderKind::ALL
                .iter()
                .map(|kind| kind.as_str().to_owned())
                .collect(),
            credentials: self.worker.runnables.credential_names(),
            outbound: Some(self.worker.settings.outbound.clone()),
            leases: self
                .executions
                .iter()
                .map(|(run_id, e)| HeldLease {
                    run_id: *run_id,
                    lease_id: e.lease_id,
                })
                .collect(),
        };
        send(&link, WorkerMessage::Hello(hello))
            .await
            .map_err(|()| ConnectError::Unavailable("the session closed at once".into()))?;
        let answer = tokio::time::timeout(WELCOME_DEADLINE, link.rx.recv())
            .await
            .map_err(|_| ConnectError::Unavailable("no welcome from the server".into()))?;
        match answer {
            Some(ServerMessage::Welcome {
                worker_id,
                lease_secs,
                ..
            }) => {
                self.lease = Duration::from_secs(lease_secs.max(1));
                tracing::info!(worker.id = %worker_id, "connected to the server");
                let now = Instant::now();
                for execution in self.executions.values_mut() {
                    // The server honours the lease if it is still valid; from now on it
                    // counts from here.
                    execution.extending = false;
                    execution.valid_until = execution.valid_until.max(now);
                }
                Ok(Session {
                    link,
                    extend_every: (self.lease / 3).max(Duration::from_millis(100)),
                })
            }
            Some(ServerMessage::Rejected { reason }) => Err(ConnectError::Refused(reason)),
            Some(other) => Err(ConnectError::Unavailable(format!(
                "unexpected first message from the server: {other:?}"
            ))),
            None => Err(ConnectError::Unavailable(
                "the server closed the session".into(),
            )),
        }
    }

    async fn handle(&mut self, message: ServerMessage, session: &mut Option<Session>) {
        match message {
            ServerMessage::Assign {
                run_id,
                lease_id,
                job,
            } => self.assigned(run_id, lease_id, *job, session).await,
            ServerMessage::Extended { run_id, lease_id } => {
                if let Some(execution) = self.executions.get_mut(&run_id) {
                    execution.lease_id = lease_id;
                    execution.extending = false;
                    execution.valid_until = Instant::now() + self.lease;
                }
                self.flush(run_id, session).await;
            }
            ServerMessage::LeaseLost { run_id, reason } => {
                if let Some(execution) = self.executions.remove(&run_id) {
                    tracing::warn!(run.id = %run_id, %reason, "lease lost; run aborted");
                    execution.abort.abort();
                }
            }
            ServerMessage::Cancel { run_id } => {
                if let Some(execution) = self.executions.get(&run_id) {
                    execution.cancel.cancel();
                }
            }
            ServerMessage::ResultAck { run_id, accepted } => {
                if !accepted {
                    tracing::warn!(run.id = %run_id, "the server refused the run's result");
                }
                self.executions.remove(&run_id);
            }
            ServerMessage::Ping { nonce } => {
                if let Some(open) = session.as_ref() {
                    send(&open.link, WorkerMessage::Pong { nonce }).await.ok();
                    let health = self.health.sample();
                    send(&open.link, WorkerMessage::Health { health })
                        .await
                        .ok();
                }
            }
            ServerMessage::Draining => {
                tracing::info!("the server is stopping; will reconnect");
            }
            ServerMessage::Probe { probe_id, provider } => {
                let runnables = Arc::clone(&self.worker.runnables);
                let reports = self.reports.clone();
                self.worker.background.spawn(async move {
                    let outcome = runnables.probe(&provider).await;
                    reports.send(Report::Probed { probe_id, outcome }).ok();
                });
            }
            ServerMessage::Welcome { .. } | ServerMessage::Rejected { .. } => {
                tracing::warn!("unexpected session message ignored");
            }
        }
    }

    /// An offer: accepted when a slot is free, then executed in the background.
    async fn assigned(
        &mut self,
        run_id: Uuid,
        lease_id: Uuid,
        job: Job,
        session: &mut Option<Session>,
    ) {
        let Some(open) = session.as_ref() else {
            return;
        };
        let busy = self.executions.values().filter(|e| !e.finished).count();
        if self.stopping
            || busy >= usize::try_from(self.worker.settings.slots).unwrap_or(usize::MAX)
            || self.executions.contains_key(&run_id)
        {
            let reason = if self.stopping {
                "the worker is stopping"
            } else {
                "no free slot"
            };
            let decline = WorkerMessage::Decline {
                run_id,
                lease_id,
                reason: reason.to_owned(),
            };
            send(&open.link, decline).await.ok();
            return;
        }
        if send(&open.link, WorkerMessage::Accept { run_id, lease_id })
            .await
            .is_err()
        {
            return;
        }
        let cancel = CancellationToken::new();
        let abort = self.spawn(run_id, job, cancel.clone());
        self.executions.insert(
            run_id,
            Execution {
                lease_id,
                extending: false,
                valid_until: Instant::now() + self.lease,
                pending: Vec::new(),
                seq: 0,
                cancel,
                abort,
                finished: false,
            },
        );
    }

    fn spawn(&self, run_id: Uuid, job: Job, cancel: CancellationToken) -> AbortHandle {
        let runnables = Arc::clone(&self.worker.runnables);
        let reports = self.reports.clone();
        let span = tracing::info_span!("worker.execute", run.id = %run_id);
        self.worker
            .background
            .spawn(
                async move {
                    let journal = WorkerJournal {
                        run_id,
                        reports: reports.clone(),
                    };
                    let result = AssertUnwindSafe(execute(&runnables, job, &journal, &cancel))
                        .catch_unwind()
                        .await
                        .unwrap_or_else(|_| {
                            tracing::error!("run execution panicked");
                            failed("internal: the run failed unexpectedly on the worker")
                        });
                    reports.send(Report::Done { run_id, result }).ok();
                }
                .instrument(span),
            )
            .abort_handle()
    }

    /// An execution reported: queue its message and send what can be sent.
    async fn report(&mut self, report: Report, session: &mut Option<Session>) {
        let run_id = match report {
            Report::Events {
                run_id,
                events,
                progress,
            } => {
                let Some(execution) = self.executions.get_mut(&run_id) else {
                    return;
                };
                execution.seq += 1;
                execution.pending.push(Pending::Events {
                    seq: execution.seq,
                    events,
                    progress,
                });
                run_id
            }
            Report::Done { run_id, result } => {
                let Some(execution) = self.executions.get_mut(&run_id) else {
                    return;
                };
                execution.finished = true;
                execution.pending.push(Pending::Result(result));
                run_id
            }
            Report::Probed { probe_id, outcome } => {
                // A check whose session ended is of no use to a later one: not resent.
                if let Some(open) = session.as_ref() {
                    send(&open.link, WorkerMessage::Probed { probe_id, outcome })
                        .await
                        .ok();
                }
                return;
            }
        };
        self.flush(run_id, session).await;
    }

    /// Sends a run's waiting messages under its current lease, unless an extension is in
    /// flight or there is no session. A result stays held (resent after a reconnect) until
    /// it is acknowledged.
    async fn flush(&mut self, run_id: Uuid, session: &mut Option<Session>) {
        let Some(open) = session.as_ref() else {
            return;
        };
        let Some(execution) = self.executions.get_mut(&run_id) else {
            return;
        };
        if execution.extending {
            return;
        }
        let lease_id = execution.lease_id;
        let mut kept = Vec::new();
        for pending in std::mem::take(&mut execution.pending) {
            let message = match &pending {
                Pending::Events {
                    seq,
                    events,
                    progress,
                } => WorkerMessage::Event {
                    run_id,
                    lease_id,
                    seq: *seq,
                    events: events.clone(),
                    progress: progress.clone(),
                },
                Pending::Result(result) => WorkerMessage::Result {
                    run_id,
                    lease_id,
                    result: result.clone(),
                },
            };
            if send(&open.link, message).await.is_err() {
                kept.push(pending);
                continue;
            }
            if let Pending::Result(_) = pending {
                kept.push(pending); // until `result_ack`
            }
        }
        execution.pending = kept;
    }

    /// Sends everything that waited for a session: results held across a reconnect first
    /// in line with their events.
    async fn flush_all(&mut self, session: &mut Option<Session>) {
        let runs: Vec<Uuid> = self.executions.keys().copied().collect();
        for run_id in runs {
            self.flush(run_id, session).await;
        }
    }

    /// Asks for fresh leases on runs still executing, and aborts those whose lease ran out
    /// while no renewal was possible.
    async fn extend(&mut self, session: &mut Option<Session>) {
        let now = Instant::now();
        self.executions.retain(|run_id, execution| {
            let expired = !execution.finished && execution.valid_until <= now;
            if expired {
                tracing::warn!(run.id = %run_id, "lease not renewed in time; run aborted");
                execution.abort.abort();
            }
            !expired
        });
        let Some(open) = session.as_ref() else {
            return;
        };
        for (run_id, execution) in &mut self.executions {
            if execution.finished || execution.extending {
                continue;
            }
            let extend = WorkerMessage::Extend {
                run_id: *run_id,
                lease_id: execution.lease_id,
            };
            if send(&open.link, extend).await.is_ok() {
                execution.extending = true;
            }
        }
    }
}

/// The next message of the open session; never, when there is none.
async fn next(session: &mut Option<Session>) -> Option<ServerMessage> {
    match session {
        Some(open) => open.link.rx.recv().await,
        None => std::future::pending().await,
    }
}

async fn send(link: &WorkerLink, message: WorkerMessage) -> Result<(), ()> {
    link.tx.send(message).await.map_err(|_| ())
}
