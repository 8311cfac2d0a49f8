//! The server's side of one worker session, whatever the transport: `hello` → `welcome`,
//! then everything the worker reports, stored under the run's current lease (a stale lease's
//! messages are refused and the worker told it lost the run), and pings: a worker that
//! misses two is offline and its session ends (its leases run out and its runs are
//! requeued unless it reconnects in time).

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

use contracts::worker::{
    HeldLease, Hello, JobEvent, JobOutcome, JobProgress, JobResult, PROTOCOL, PROTOCOL_VERSION,
    ServerMessage, WorkerMessage,
};
use contracts::{RunEventKind, RunStatus};
use sea_orm::TransactionTrait;
use serde_json::json;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

use super::batch::{self, Batch};
use super::dispatch::Member;
use super::reports::{disk_full, plausible, reported_credentials};
use super::{Inner, status_data};
use crate::db::runs::{self, Finish};
use crate::db::{queue, workers};
use crate::domain::{new_id, now};
use crate::worker::transport::ServerLink;

/// Time a worker has to say `hello`.
const HELLO_DEADLINE: Duration = Duration::from_secs(10);

/// Serves one session of worker `worker_id` until it ends.
pub(super) async fn serve(
    inner: Arc<Inner>,
    worker_id: Uuid,
    address: Option<String>,
    mut link: ServerLink,
) {
    let hello = match tokio::time::timeout(HELLO_DEADLINE, link.rx.recv()).await {
        Ok(Some(WorkerMessage::Hello(hello))) => hello,
        Ok(Some(_)) => return reject(&link, "the first message must be `hello`").await,
        Ok(None) | Err(_) => return,
    };
    if hello.protocol != PROTOCOL || hello.version != PROTOCOL_VERSION {
        let reason = format!(
            "unsupported protocol {} version {}; this server speaks {PROTOCOL} version \
             {PROTOCOL_VERSION}",
            hello.protocol, hello.version
        );
        return reject(&link, &reason).await;
    }
    if let Err(reason) = reported_credentials(&hello.credentials) {
        return reject(&link, &reason).await;
    }
    // The credentials it holds and what it may reach now, before its facts are read.
    let reported = async {
        let credentials =
            workers::set_credentials(&inner.db, worker_id, &hello.credentials).await?;
        let outbound = workers::set_reported(
            &inner.db,
            worker_id,
            hello.outbound.as_ref(),
            &hello.capabilities,
        )
        .await?;
        Ok::<_, sea_orm::DbErr>(credentials.or(outbound))
    };
    match reported.await {
        Ok(Some(_)) => {
            if let Err(err) = inner.facts_changed(worker_id).await {
                tracing::warn!(error = %err, "routing not updated for the worker's credentials");
            }
        }
        Ok(None) => {}
        Err(err) => {
            tracing::error!(error = %err, "cannot store the worker's credentials");
            return;
        }
    }
    let row = match workers::find(&inner.db, worker_id).await {
        Ok(Some(row)) if row.enabled => row,
        Ok(Some(_)) => return reject(&link, "the worker is disabled").await,
        Ok(None) => return reject(&link, "the worker is not registered").await,
        Err(err) => {
            tracing::error!(error = %err, "cannot read the worker");
            return;
        }
    };
    let facts = match super::placement::facts_of(&inner, row).await {
        Ok(facts) => facts,
        Err(err) => {
            tracing::error!(error = %err, "cannot read the worker's tags");
            return;
        }
    };
    let Some(session) = open(&inner, worker_id, &hello, address, &link, facts).await else {
        return;
    };
    let welcome = ServerMessage::Welcome {
        worker_id,
        heartbeat_secs: inner.settings.heartbeat.as_secs().max(1),
        lease_secs: inner.settings.lease.as_secs().max(1),
        ack_timeout_secs: inner.settings.ack_timeout.as_secs().max(1),
    };
    if link.tx.send(welcome).await.is_err() {
        inner.fleet.lock().leave(worker_id, session.number);
        return;
    }
    tracing::info!(worker.id = %worker_id, slots = hello.slots, build = %hello.build,
        "worker connected");
    inner.wake.notify_one();
    inner.worker_changed(worker_id);
    inner.credentials_reported(&hello.credentials);
    session.run(&inner, &mut link).await;
    inner.fleet.lock().leave(worker_id, session.number);
    inner.worker_changed(worker_id);
    tracing::info!(worker.id = %worker_id, "worker disconnected");
}

async fn reject(link: &ServerLink, reason: &str) {
    tracing::warn!(%reason, "worker session refused");
    let rejected = ServerMessage::Rejected {
        reason: reason.to_owned(),
    };
    link.tx.send(rejected).await.ok();
}

/// Registers the session: runs leased to this worker that it no longer holds go back to
/// the queue, those it still holds keep their slots.
async fn open(
    inner: &Inner,
    worker_id: Uuid,
    hello: &Hello,
    address: Option<String>,
    link: &ServerLink,
    facts: super::routing::Facts,
) -> Option<Session> {
    if let Err(err) = workers::connected(&inner.db, worker_id, hello, address, now()).await {
        tracing::warn!(error = %err, "worker details not stored");
    }
    let keep: Vec<Uuid> = hello
        .leases
        .iter()
        .map(|l: &HeldLease| l.lease_id)
        .collect();
    match queue::take_back_worker(&inner.db, worker_id, &keep, now()).await {
        Ok(rows) => {
            for row in &rows {
                inner
                    .requeued(row, "the worker reconnected without the run")
                    .await;
            }
        }
        Err(err) => {
            tracing::error!(error = %err, "cannot take back the worker's runs");
            return None;
        }
    }
    let held: HashSet<Uuid> = match queue::leased_to(&inner.db, worker_id).await {
        Ok(rows) => rows.into_iter().map(|r| r.id).collect(),
        Err(err) => {
            tracing::error!(error = %err, "cannot read the worker's runs");
            return None;
        }
    };
    let close = CancellationToken::new();
    let number = inner.fleet.lock().join(
        worker_id,
        Member {
            session: 0,
            tx: link.tx.clone(),
            slots: hello.slots,
            runs: held,
            missed_acks: 0,
            unhealthy: false,
            disk_full: false,
            last_probe: None,
            close: close.clone(),
            facts,
            offered: std::collections::VecDeque::new(),
        },
    );
    Some(Session {
        worker_id,
        number,
        close,
    })
}

struct Session {
    worker_id: Uuid,
    number: u64,
    close: CancellationToken,
}

impl Session {
    async fn run(&self, inner: &Inner, link: &mut ServerLink) {
        let heartbeat = inner.settings.heartbeat;
        let mut ping = tokio::time::interval_at(Instant::now() + heartbeat, heartbeat);
        let mut heard = Instant::now();
        let mut nonce: u64 = 0;
        loop {
            tokio::select! {
                () = self.close.cancelled() => return,
                message = link.rx.recv() => match message {
                    Some(message) => {
                        heard = Instant::now();
                        let mut next = Some(message);
                        while let Some(first) = next.take() {
                            let (batch, after) = batch::gather(first, &mut link.rx);
                            next = after;
                            match batch {
                                Batch::Accepts(offers) => self.accepted(inner, link, offers).await,
                                Batch::Results(results) => {
                                    self.results(inner, link, results).await;
                                }
                                Batch::One(message) => self.handle(inner, link, message).await,
                            }
                        }
                    }
                    None => return,
                },
                _ = ping.tick() => {
                    if heard.elapsed() > heartbeat * 2 {
                        tracing::warn!(worker.id = %self.worker_id,
                            "worker missed two heartbeats: offline");
                        return;
                    }
                    nonce += 1;
                    if link.tx.try_send(ServerMessage::Ping { nonce }).is_err() {
                        return;
                    }
                }
            }
        }
    }

    async fn handle(&self, inner: &Inner, link: &ServerLink, message: WorkerMessage) {
        match message {
            WorkerMessage::Accept { run_id, lease_id } => {
                self.accepted(inner, link, vec![(run_id, lease_id)]).await;
            }
            WorkerMessage::Decline {
                run_id,
                lease_id,
                reason,
            } => {
                tracing::info!(run.id = %run_id, %reason, "worker declined the run");
                inner.fleet.lock().release(Some(self.worker_id), run_id);
                if let Ok(Some(row)) = queue::take_back(&inner.db, run_id, lease_id, now()).await {
                    inner.requeued(&row, "the worker declined the run").await;
                }
                inner.wake.notify_one();
            }
            WorkerMessage::Extend { run_id, lease_id } => {
                let new_lease = new_id();
                let expires = queue::after(now(), inner.settings.lease);
                match queue::extend(&inner.db, run_id, lease_id, new_lease, expires).await {
                    Ok(true) => {
                        let extended = ServerMessage::Extended {
                            run_id,
                            lease_id: new_lease,
                        };
                        link.tx.send(extended).await.ok();
                    }
                    Ok(false) => {
                        self.lost(inner, link, run_id, "the lease is not current")
                            .await
                    }
                    Err(err) => tracing::error!(error = %err, "cannot extend a lease"),
                }
            }
            WorkerMessage::Event {
                run_id,
                lease_id,
                events,
                progress,
                ..
            } => {
                self.events(inner, link, run_id, lease_id, events, progress)
                    .await
            }
            WorkerMessage::Result {
                run_id,
                lease_id,
                result,
            } => {
                self.results(inner, link, vec![(run_id, lease_id, result)])
                    .await
            }
            WorkerMessage::Pong { .. } => {
                if let Err(err) = workers::seen(&inner.db, self.worker_id, now()).await {
                    tracing::warn!(error = %err, "worker heartbeat not stored");
                }
            }
            WorkerMessage::Hello(_) => {
                tracing::warn!(worker.id = %self.worker_id, "second hello ignored");
            }
            WorkerMessage::Credentials { providers } => {
                self.credentials_changed(inner, &providers).await;
            }
            WorkerMessage::Probed { probe_id, outcome } => inner.probed(probe_id, outcome),
            WorkerMessage::Health { health } => self.health(inner, health).await,
        }
    }

    /// Stores a health report; a full disk takes the worker out of dispatch until a report
    /// says otherwise.
    async fn health(&self, inner: &Inner, health: contracts::WorkerHealth) {
        let health = plausible(health);
        if let Err(err) = crate::db::health::record(&inner.db, self.worker_id, &health, now()).await
        {
            tracing::warn!(error = %err, "worker health not stored");
        }
        let full = disk_full(&health);
        let changed = inner
            .fleet
            .lock()
            .members
            .get_mut(&self.worker_id)
            .filter(|m| m.session == self.number)
            .is_some_and(|m| std::mem::replace(&mut m.disk_full, full) != full);
        if changed {
            if full {
                tracing::warn!(worker.id = %self.worker_id, free = ?health.disk_free_bytes,
                    "worker disk full: it gets no work");
            } else {
                tracing::info!(worker.id = %self.worker_id, "worker disk has room again");
                inner.wake.notify_one();
            }
        }
        inner.worker_changed(self.worker_id);
    }

    /// The worker now holds keys for these providers: routing follows at once.
    async fn credentials_changed(&self, inner: &Inner, providers: &[String]) {
        if let Err(reason) = reported_credentials(providers) {
            return tracing::warn!(worker.id = %self.worker_id, %reason,
                "worker credentials ignored");
        }
        match workers::set_credentials(&inner.db, self.worker_id, providers).await {
            Ok(Some(_)) => {
                tracing::info!(worker.id = %self.worker_id, credentials = providers.len(),
                    "worker credentials changed");
                if let Err(err) = inner.facts_changed(self.worker_id).await {
                    tracing::warn!(error = %err, "routing not updated for the worker's credentials");
                }
                inner.worker_changed(self.worker_id);
                inner.credentials_reported(providers);
            }
            Ok(None) => {}
            Err(err) => tracing::warn!(error = %err, "worker credentials not stored"),
        }
    }

    /// Starts the runs of the offers the worker accepted (one transaction for all of them);
    /// an offer withdrawn meanwhile is lost to it.
    async fn accepted(&self, inner: &Inner, link: &ServerLink, offers: Vec<(Uuid, Uuid)>) {
        let at = now();
        let expires = queue::after(at, inner.settings.lease);
        let leases: Vec<Uuid> = offers.iter().map(|(_, lease)| *lease).collect();
        let stored = async {
            let txn = inner.db.begin().await?;
            let running = queue::accept(&txn, &leases, at, expires).await?;
            let events = running
                .iter()
                .map(|run| {
                    let data = json!({
                        "status": RunStatus::Running.as_str(),
                        "worker_id": self.worker_id,
                        "delivery": run.deliveries,
                    });
                    (run.id, RunEventKind::Status, data)
                })
                .collect();
            runs::append_events_of_runs(&txn, events, at).await?;
            txn.commit().await?;
            Ok::<_, sea_orm::DbErr>(running)
        };
        let running = match stored.await {
            Ok(running) => running,
            // The offers run out and are requeued by the sweep.
            Err(err) => return tracing::error!(error = %err, "cannot start runs"),
        };
        if !running.is_empty() {
            let recovered = inner
                .fleet
                .lock()
                .members
                .get_mut(&self.worker_id)
                .is_some_and(|member| {
                    member.missed_acks = 0;
                    std::mem::replace(&mut member.unhealthy, false)
                });
            if recovered {
                tracing::info!(worker.id = %self.worker_id, "worker accepts again: healthy");
                inner.worker_changed(self.worker_id);
            }
        }
        let started: HashSet<Uuid> = running.iter().map(|run| run.id).collect();
        for run in &running {
            inner.publish(run);
        }
        for (run_id, _) in offers {
            if !started.contains(&run_id) {
                self.lost(
                    inner,
                    link,
                    run_id,
                    "the offer was withdrawn (taken back or canceled)",
                )
                .await;
            }
        }
    }

    /// Tells the worker it no longer holds the run.
    async fn lost(&self, inner: &Inner, link: &ServerLink, run_id: Uuid, reason: &str) {
        inner.fleet.lock().release(Some(self.worker_id), run_id);
        let lost = ServerMessage::LeaseLost {
            run_id,
            reason: reason.to_owned(),
        };
        link.tx.send(lost).await.ok();
    }

    async fn events(
        &self,
        inner: &Inner,
        link: &ServerLink,
        run_id: Uuid,
        lease_id: Uuid,
        events: Vec<JobEvent>,
        progress: Option<JobProgress>,
    ) {
        match queue::holds(&inner.db, run_id, lease_id).await {
            Ok(true) => {}
            Ok(false) => {
                return self
                    .lost(inner, link, run_id, "the lease is not current")
                    .await;
            }
            Err(err) => return tracing::error!(error = %err, "cannot check a lease"),
        }
        let events = events.into_iter().map(|e| (e.kind, e.data)).collect();
        if let Err(err) = runs::append_events(&inner.db, run_id, events, now()).await {
            tracing::warn!(error = %err, "run events not stored");
        }
        if let Some(progress) = progress {
            let attempts = i32::try_from(progress.attempts).unwrap_or(i32::MAX);
            match queue::record_progress(&inner.db, run_id, lease_id, attempts, progress.raw_output)
                .await
            {
                Ok(Some(row)) => inner.publish(&row),
                Ok(None) => {}
                Err(err) => tracing::warn!(error = %err, "attempt not stored"),
            }
        }
    }

    /// Stores the results the worker reported (one transaction for all of them), each only
    /// if its lease is still the run's current lease, and acknowledges each: accepted or not.
    async fn results(
        &self,
        inner: &Inner,
        link: &ServerLink,
        results: Vec<(Uuid, Uuid, JobResult)>,
    ) {
        let mut checked = Vec::with_capacity(results.len());
        for (run_id, lease_id, result) in results {
            checked.push((run_id, lease_id, inner.checked(run_id, result).await));
        }
        let results = checked;
        let at = now();
        let ids: Vec<Uuid> = results.iter().map(|(run_id, _, _)| *run_id).collect();
        let stored = async move {
            let txn = inner.db.begin().await?;
            let mut finished = Vec::new();
            let mut events = Vec::new();
            for (run_id, lease_id, result) in results {
                let (status, finish, mut pending) = outcome(result);
                match queue::finish(&txn, run_id, lease_id, status, at, finish).await? {
                    Some(row) => {
                        pending.push((RunEventKind::Status, status_data(status)));
                        events.extend(pending.into_iter().map(|(kind, data)| (run_id, kind, data)));
                        finished.push(row);
                    }
                    None => {
                        tracing::info!(run.id = %run_id, "result refused: the lease is not current");
                    }
                }
            }
            runs::append_events_of_runs(&txn, events, at).await?;
            txn.commit().await?;
            Ok::<_, sea_orm::DbErr>(finished)
        };
        let finished = stored.await.unwrap_or_else(|err| {
            tracing::error!(error = %err, "cannot finish runs");
            Vec::new()
        });
        let accepted: HashSet<Uuid> = finished.iter().map(|run| run.id).collect();
        {
            let mut fleet = inner.fleet.lock();
            for run_id in &ids {
                fleet.release(Some(self.worker_id), *run_id);
            }
        }
        inner.wake.notify_one();
        for run in &finished {
            inner.publish(run);
        }
        for run_id in ids {
            let ack = ServerMessage::ResultAck {
                run_id,
                accepted: accepted.contains(&run_id),
            };
            link.tx.send(ack).await.ok();
        }
    }
}

/// A reported result as stored: the final status, what the run produced and the events to
/// record before the final status (the winning answer's).
fn outcome(result: JobResult) -> (RunStatus, Finish, Vec<(RunEventKind, serde_json::Value)>) {
    let signed = |v: Option<u64>| v.map(|v| i64::try_from(v).unwrap_or(i64::MAX));
    let recorded = Finish {
        attempts: Some(i32::try_from(result.attempts).unwrap_or(i32::MAX)),
        prompt_tokens: signed(result.prompt_tokens),
        completion_tokens: signed(result.completion_tokens),
        latency_ms: Some(i64::try_from(result.latency_ms).unwrap_or(i64::MAX)),
        raw_output: result.raw_output,
        ..Finish::default()
    };
    match result.outcome {
        JobOutcome::Succeeded { output, attempt } => {
            let finish = Finish {
                output: Some(output),
                ..recorded
            };
            (
                RunStatus::Succeeded,
                finish,
                vec![(RunEventKind::Attempt, attempt)],
            )
        }
        JobOutcome::Failed { error } => {
            let finish = Finish {
                error: Some(error),
                ..recorded
            };
            (RunStatus::Failed, finish, Vec::new())
        }
        JobOutcome::Canceled => {
            let finish = Finish {
                error: Some("canceled: the worker aborted the run".to_owned()),
                ..recorded
            };
            (RunStatus::Canceled, finish, Vec::new())
        }
    }
}
