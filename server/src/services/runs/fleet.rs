//! What the rest of the server asks of the connected workers: who is connected with what,
//! switching the built-in worker, disconnecting a worker (disabled or revoked), and sessions
//! of remote workers arriving over WebSocket.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::Ordering;

use contracts::worker::ServerMessage;
use sea_orm::DbErr;
use uuid::Uuid;

use super::{Runs, session};
use crate::db::{queue, workers};
use crate::domain::now;
use crate::worker::transport::ServerLink;

/// A connected worker, as the dispatcher sees it now.
#[derive(Debug, Clone)]
pub struct Live {
    pub slots: u32,
    pub runs: Vec<Uuid>,
    /// It stopped accepting assignments.
    pub unhealthy: bool,
    /// Its last health report said its disk is full (it gets no work until one does not).
    pub disk_full: bool,
}

impl Runs {
    /// Every connected worker.
    pub fn live(&self) -> HashMap<Uuid, Live> {
        self.inner
            .fleet
            .lock()
            .members
            .iter()
            .map(|(id, m)| {
                let live = Live {
                    slots: m.slots,
                    runs: m.runs.iter().copied().collect(),
                    unhealthy: m.unhealthy,
                    disk_full: m.disk_full,
                };
                (*id, live)
            })
            .collect()
    }

    /// Runs workers hold (offered or running) and runs queued, for the pool's counts.
    pub async fn counts(&self) -> Result<(u64, u64), DbErr> {
        queue::unfinished(&self.inner.db).await
    }

    /// Serves a session of a remote worker that connected from `address`.
    pub fn accept_remote(&self, worker_id: Uuid, address: String, link: ServerLink) {
        let inner = Arc::clone(&self.inner);
        self.inner
            .background
            .spawn(session::serve(inner, worker_id, Some(address), link));
    }

    /// Ends the worker's session (telling it `reason`) and puts every run it holds back in
    /// the queue at once.
    pub async fn disconnect(&self, worker_id: Uuid, reason: &str) -> Result<(), DbErr> {
        let inner = &self.inner;
        if let Some(member) = inner.fleet.lock().members.remove(&worker_id) {
            let rejected = ServerMessage::Rejected {
                reason: reason.to_owned(),
            };
            member.tx.try_send(rejected).ok();
            member.close.cancel();
        }
        let rows = queue::take_back_worker(&inner.db, worker_id, &[], now()).await?;
        for row in &rows {
            inner.requeued(row, reason).await;
        }
        inner.wake.notify_one();
        inner.worker_changed(worker_id);
        Ok(())
    }

    /// Starts or stops the built-in worker. Stopping disconnects it: its runs go back to the
    /// queue for other workers.
    pub async fn set_builtin(&self, row: &workers::Model, enabled: bool) -> Result<(), DbErr> {
        if enabled {
            let running = self.inner.builtin.lock().is_some();
            if !running {
                let slots = u32::try_from(row.slots).unwrap_or(1).max(1);
                self.start_builtin(row.id, slots, self.inner.outbound.clone());
            }
            return Ok(());
        }
        let worker = self.inner.builtin.lock().take();
        if let Some(worker) = worker {
            worker.halt();
        }
        self.disconnect(row.id, "the built-in worker was disabled")
            .await
    }

    /// A worker was registered, renamed, re-tagged, enabled, disabled or revoked: routing
    /// follows at once (which runs it may take, and why runs no worker can take wait).
    pub async fn worker_facts_changed(&self, worker_id: Uuid) -> Result<(), DbErr> {
        self.inner.facts_changed(worker_id).await
    }

    /// Changes of connected workers (joined, left, health), for the topic `workers`.
    pub fn take_worker_changes(&self) -> Option<tokio::sync::mpsc::UnboundedReceiver<Uuid>> {
        self.inner.changes_rx.lock().take()
    }

    /// Whether runs or workers changed since the last call (the pool's counts are
    /// recomputed then).
    pub fn pool_changed(&self) -> bool {
        self.inner.pool_dirty.swap(false, Ordering::Relaxed)
    }
}
