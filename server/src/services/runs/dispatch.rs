//! The dispatcher and the sweeper. The dispatcher pushes queued runs to connected workers
//! with free slots; it is woken in-process (a run queued, a slot freed, a worker connected),
//! never polls per run, and claims runs with one statement per batch (`db::queue::claim`). The
//! sweeper is the only periodic work: it requeues runs whose offer or lease ran out and fails
//! runs that waited in the queue past their deadline.

use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::Arc;

use contracts::RunEventKind;
use contracts::RunStatus;
use contracts::worker::ServerMessage;
use tokio::sync::mpsc;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

use super::routing::Facts;
use super::{Inner, status_data};
use crate::db::queue;
use crate::db::runs::run;
use crate::domain::now;

/// Most runs offered to one worker per claim statement.
const CLAIM_BATCH: usize = 64;

/// Among workers with as many free slots, the one offered fewest runs in this window gets
/// the next, so equal workers share the work instead of the first one taking it all.
const RECENT: std::time::Duration = std::time::Duration::from_secs(60);

/// A connected worker as the dispatcher sees it.
pub(super) struct Member {
    /// Tells apart a worker's successive sessions.
    pub session: u64,
    pub tx: mpsc::Sender<ServerMessage>,
    pub slots: u32,
    /// Runs offered to it or executing on it.
    pub runs: HashSet<Uuid>,
    /// Offers in a row it did not accept in time.
    pub missed_acks: u32,
    /// Too many missed acks: it only gets a probe now and then until it accepts one.
    pub unhealthy: bool,
    /// Its last health report said its disk is full: no work at all until one does not.
    pub disk_full: bool,
    pub last_probe: Option<Instant>,
    /// Cancelled to end the session (the worker was replaced by a newer session of its own).
    pub close: CancellationToken,
    /// Its name and tags, for routing.
    pub facts: Facts,
    /// When runs were offered to it, within `RECENT`.
    pub offered: VecDeque<Instant>,
}

/// Connected workers.
#[derive(Default)]
pub(super) struct Fleet {
    pub members: HashMap<Uuid, Member>,
    sessions: u64,
}

impl Fleet {
    /// Adds a worker's session (ending an older one of the same worker); returns its number.
    pub fn join(&mut self, worker_id: Uuid, mut member: Member) -> u64 {
        self.sessions += 1;
        member.session = self.sessions;
        if let Some(old) = self.members.insert(worker_id, member) {
            old.close.cancel();
        }
        self.sessions
    }

    /// Removes the session `session` of a worker, if it is still the current one.
    pub fn leave(&mut self, worker_id: Uuid, session: u64) {
        if self
            .members
            .get(&worker_id)
            .is_some_and(|m| m.session == session)
        {
            self.members.remove(&worker_id);
        }
    }

    /// The worker to offer the next runs to and how many: the healthy one with the most free
    /// slots (of those, the one offered fewest runs recently) gets as many as bring it down to
    /// the next one's free slots (at least one), as offering one run at a time to the freest
    /// worker would; an unhealthy one only a single probe, when idle and not probed for
    /// `probe_every`.
    fn pick(
        &mut self,
        probe_every: std::time::Duration,
        skip: &HashSet<Uuid>,
    ) -> Option<(Uuid, mpsc::Sender<ServerMessage>, u32, Facts)> {
        let now = Instant::now();
        let free = |m: &Member| (m.slots as usize).saturating_sub(m.runs.len());
        let mut candidates: Vec<(&Uuid, &mut Member)> = self
            .members
            .iter_mut()
            .filter(|(id, m)| !skip.contains(*id) && !m.disk_full)
            .filter(|(_, m)| {
                let probe_due = m.runs.is_empty()
                    && m.last_probe
                        .is_none_or(|at| now.duration_since(at) >= probe_every);
                free(m) > 0 && (!m.unhealthy || probe_due)
            })
            .collect();
        for (_, member) in &mut candidates {
            while member
                .offered
                .front()
                .is_some_and(|at| now.duration_since(*at) > RECENT)
            {
                member.offered.pop_front();
            }
        }
        candidates
            .sort_by_key(|(_, m)| (std::cmp::Reverse((!m.unhealthy, free(m))), m.offered.len()));
        let next_free = candidates
            .get(1)
            .filter(|(_, m)| !m.unhealthy)
            .map_or(0, |(_, m)| free(m));
        let (id, member) = candidates.into_iter().next()?;
        let count = if member.unhealthy {
            member.last_probe = Some(now);
            1
        } else {
            free(member).saturating_sub(next_free).clamp(1, CLAIM_BATCH)
        };
        Some((
            *id,
            member.tx.clone(),
            u32::try_from(count).unwrap_or(1),
            member.facts.clone(),
        ))
    }

    /// The run no longer occupies a slot of its worker.
    pub fn release(&mut self, worker_id: Option<Uuid>, run_id: Uuid) {
        if let Some(member) = worker_id.and_then(|id| self.members.get_mut(&id)) {
            member.runs.remove(&run_id);
        }
    }

    /// Tells the worker holding the run to abort it (its slot is freed when it reports).
    pub fn cancel(&self, worker_id: Uuid, run_id: Uuid) {
        if let Some(member) = self.members.get(&worker_id)
            && member.runs.contains(&run_id)
        {
            member.tx.try_send(ServerMessage::Cancel { run_id }).ok();
        }
    }

    /// An offer to the worker ran out: three in a row make it unhealthy (then `true`).
    fn missed_ack(&mut self, worker_id: Uuid, run_id: Uuid, max: u32) -> bool {
        if let Some(member) = self.members.get_mut(&worker_id) {
            member.runs.remove(&run_id);
            member.missed_acks += 1;
            if member.missed_acks >= max && !member.unhealthy {
                member.unhealthy = true;
                // The first probe comes after a heartbeat, not at once.
                member.last_probe = Some(Instant::now());
                tracing::warn!(worker.id = %worker_id, missed = member.missed_acks,
                    "worker accepts no assignments: marked unhealthy");
                return true;
            }
        }
        false
    }

    pub fn online(&self) -> usize {
        self.members.len()
    }
}

/// Starts the dispatcher and the sweeper.
pub(super) fn spawn(inner: &Arc<Inner>) {
    let dispatcher = Arc::clone(inner);
    let stopping = inner.background.stopping();
    inner.background.spawn(async move {
        let mut stopping = std::pin::pin!(stopping);
        loop {
            tokio::select! {
                () = &mut stopping => return,
                () = dispatcher.wake.notified() => dispatcher.dispatch().await,
            }
        }
    });
    let sweeper = Arc::clone(inner);
    let stopping = inner.background.stopping();
    inner.background.spawn(async move {
        let mut stopping = std::pin::pin!(stopping);
        let mut tick = tokio::time::interval(sweeper.settings.sweep_interval);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                () = &mut stopping => return,
                _ = tick.tick() => sweeper.sweep().await,
            }
        }
    });
}

impl Inner {
    /// Offers queued runs until no worker with a free slot has anything it may take. Each
    /// worker claims only the routes its facts admit; a route found empty is not asked for
    /// again in this round, so idle workers cost one empty claim per set of routes, not one
    /// each.
    async fn dispatch(&self) {
        let mut skip: HashSet<Uuid> = HashSet::new();
        let mut exhausted: HashSet<String> = HashSet::new();
        loop {
            let Some((worker_id, tx, count, facts)) =
                self.fleet.lock().pick(self.settings.heartbeat, &skip)
            else {
                return;
            };
            let keys: Vec<String> = self
                .placement
                .lock()
                .keys_for(&facts)
                .into_iter()
                .filter(|key| !exhausted.contains(key))
                .collect();
            if keys.is_empty() {
                skip.insert(worker_id);
                continue;
            }
            let at = now();
            let deadline = queue::after(at, self.settings.ack_timeout);
            let claimed = match self.claim(worker_id, count, &keys, at, deadline).await {
                Ok(rows) => rows,
                Err(err) => {
                    tracing::error!(error = %err, "cannot claim queued runs");
                    return;
                }
            };
            if claimed.len() < count as usize {
                // Fewer than asked for: nothing else of these routes is queued, or may start
                // (groups only fill up within a round; a freed slot wakes a new one).
                exhausted.extend(keys);
                skip.insert(worker_id);
            }
            for claimed in claimed {
                self.offer(worker_id, &tx, claimed).await;
            }
        }
    }

    /// Sends a claimed run to its worker (back to the queue if the session cannot take it).
    async fn offer(&self, worker_id: Uuid, tx: &mpsc::Sender<ServerMessage>, claimed: run::Model) {
        let run_id = claimed.id;
        let Some(lease_id) = claimed.lease_id else {
            return tracing::error!(run.id = %run_id, "a claimed run has no lease");
        };
        let prepared = async {
            let job = self.job_of(&claimed).await?;
            self.checks.expect(run_id, &job).await?;
            Ok::<_, String>(job)
        };
        let job = match prepared.await {
            Ok(job) => job,
            Err(reason) => {
                self.fail(
                    run_id,
                    &format!("internal: the run cannot be assigned: {reason}"),
                )
                .await;
                return;
            }
        };
        self.fleet.lock().members.get_mut(&worker_id).map(|m| {
            m.offered.push_back(Instant::now());
            m.runs.insert(run_id)
        });
        let assign = ServerMessage::Assign {
            run_id,
            lease_id,
            job: Box::new(job),
        };
        if tx.try_send(assign).is_err() {
            // The session ended or is not reading: back to the queue at once.
            self.fleet.lock().release(Some(worker_id), run_id);
            if let Ok(Some(row)) = queue::take_back(&self.db, run_id, lease_id, now()).await {
                self.publish(&row);
            }
            self.wake.notify_one();
            return;
        }
        self.publish(&claimed);
    }

    /// Requeues runs whose offer or lease ran out, fails those delivered too often and those
    /// that waited in the queue past their deadline.
    async fn sweep(&self) {
        let at = now();
        let mut requeued = false;
        match queue::expire_offers(&self.db, at).await {
            Ok(rows) => {
                for row in &rows {
                    if let Some(worker_id) = row.worker_id {
                        self.fleet.lock().missed_ack(
                            worker_id,
                            row.id,
                            self.settings.max_missed_acks,
                        );
                        tracing::warn!(run.id = %row.id, worker.id = %worker_id,
                            "assignment not accepted in time; requeued");
                    }
                    self.requeued(row, "the worker did not accept the run in time")
                        .await;
                    requeued = true;
                }
            }
            Err(err) => tracing::error!(error = %err, "cannot expire offers"),
        }
        let lost = format!(
            "worker lost: the run's worker stopped renewing its lease, {} time(s)",
            self.settings.max_deliveries
        );
        match queue::expire_leases(&self.db, at, self.settings.max_deliveries, &lost).await {
            Ok((back, failed)) => {
                for row in &back {
                    self.fleet.lock().release(row.worker_id, row.id);
                    tracing::warn!(run.id = %row.id, "lease expired; run requeued");
                    self.requeued(row, "the worker's lease expired").await;
                    requeued = true;
                }
                for row in &failed {
                    self.fleet.lock().release(row.worker_id, row.id);
                    tracing::warn!(run.id = %row.id, "lease expired too often; run failed");
                    self.event(row.id, RunEventKind::Status, status_data(RunStatus::Failed))
                        .await;
                    self.publish(row);
                }
            }
            Err(err) => tracing::error!(error = %err, "cannot expire leases"),
        }
        match queue::overdue(&self.db, at).await {
            Ok(rows) => {
                for row in rows {
                    let id = row.id;
                    let waited = match (row.queue_deadline, row.queued_at) {
                        (Some(deadline), Some(queued)) => (deadline - queued).num_seconds(),
                        _ => 0,
                    };
                    let error = match &row.waiting_reason {
                        Some(reason) => format!(
                            "no worker available: {reason}, so nothing took the run within its \
                             queue timeout ({waited} s)"
                        ),
                        None => match self.group_full(&row, waited).await {
                            Some(full) => full,
                            None => self.no_worker_reason(waited),
                        },
                    };
                    match queue::fail_overdue(&self.db, id, at, error).await {
                        Ok(Some(row)) => {
                            self.event(id, RunEventKind::Status, status_data(RunStatus::Failed))
                                .await;
                            self.publish(&row);
                        }
                        Ok(None) => {}
                        Err(err) => tracing::error!(error = %err, "cannot fail an overdue run"),
                    }
                }
            }
            Err(err) => tracing::error!(error = %err, "cannot look for overdue runs"),
        }
        if requeued {
            self.wake.notify_one();
        }
    }

    /// Why a run waited in vain.
    fn no_worker_reason(&self, timeout: i64) -> String {
        let fleet = self.fleet.lock();
        if fleet.online() == 0 {
            format!(
                "no worker available: no enabled worker was connected to take the run within \
                 its queue timeout ({timeout} s)"
            )
        } else {
            format!(
                "no worker available: none of the {} connected worker(s) took the run within \
                 its queue timeout ({timeout} s)",
                fleet.online()
            )
        }
    }

    /// Records and publishes a run put back in the queue; it waits its whole queue timeout
    /// again.
    pub(super) async fn requeued(&self, row: &run::Model, why: &str) {
        if let (Some(deadline), Some(queued)) = (row.queue_deadline, row.queued_at) {
            let timeout = deadline.signed_duration_since(row.created_at);
            if let Err(err) = queue::reset_deadline(&self.db, row.id, queued + timeout).await {
                tracing::warn!(error = %err, "queue deadline not reset");
            }
        }
        self.event(
            row.id,
            RunEventKind::Status,
            serde_json::json!({"status": RunStatus::Queued.as_str(), "reason": why}),
        )
        .await;
        self.publish(row);
    }
}
