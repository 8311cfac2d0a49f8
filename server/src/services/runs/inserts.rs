//! New runs on SQLite are stored by one writer, together (group commit): runs created while
//! the previous ones are being written wait in a channel and are stored next, up to `MAX` in
//! one transaction of two statements (the runs, their `queued` events). A lone run is a
//! transaction too: the run must not be visible without its `queued` event, or a dispatcher
//! already awake claims it in between and its `running` event is stored first. SQLite has one
//! writer anyway; this way a burst of requests costs a few statements per batch instead of
//! two per run, and fewer writers collide on its lock. PostgreSQL takes concurrent inserts
//! on several connections, and one writer there measured slower (queue bench: 724 → 327
//! submitted/s), so there each request stores its own run.
//!
//! A batch that fails is retried run by run, so one bad row fails only its own request.
//! On SQLite the writer is the only place new runs are stored, except while the server stops.

use std::collections::HashMap;
use std::sync::Arc;

use parking_lot::Mutex;
use sea_orm::{DatabaseConnection, DbBackend, DbErr, TransactionTrait};
use tokio::sync::{mpsc, oneshot};
use uuid::Uuid;

use super::runnable::RunnableAgent;
use crate::background::Background;
use crate::db::runs::{self, run};

/// Most runs stored in one transaction.
const MAX: usize = 64;

/// Runs created, not yet stored.
const QUEUED: usize = 4096;

/// The runnable agent of each unfinished run (see `Inner::in_use`).
pub(super) type InUse = Arc<Mutex<HashMap<Uuid, Arc<RunnableAgent>>>>;

struct Pending {
    row: run::Model,
    runnable: Arc<RunnableAgent>,
    stored: oneshot::Sender<Result<(), DbErr>>,
}

pub(super) struct Inserts {
    /// The writer's inbox (SQLite); `None`: requests store their own runs.
    tx: Option<mpsc::Sender<Pending>>,
    db: DatabaseConnection,
    in_use: InUse,
}

impl Inserts {
    /// Starts the writer (SQLite). When the server stops it stores what was sent and ends; runs
    /// created after that (requests finishing during the stop) are stored by their request.
    pub(super) fn start(db: DatabaseConnection, in_use: InUse, background: &Background) -> Inserts {
        if db.get_database_backend() != DbBackend::Sqlite {
            return Inserts {
                tx: None,
                db,
                in_use,
            };
        }
        let (tx, rx) = mpsc::channel(QUEUED);
        background.spawn(writer(
            db.clone(),
            Arc::clone(&in_use),
            rx,
            background.clone(),
        ));
        Inserts {
            tx: Some(tx),
            db,
            in_use,
        }
    }

    /// Stores `row` (a new `queued` run) and its `queued` event; `runnable` is kept for the
    /// run from before it is stored until it ends.
    pub(super) async fn insert(
        &self,
        row: run::Model,
        runnable: Arc<RunnableAgent>,
    ) -> Result<(), DbErr> {
        let (stored, done) = oneshot::channel();
        let pending = Pending {
            row,
            runnable,
            stored,
        };
        let unsent = match &self.tx {
            Some(tx) => tx.send(pending).await.err().map(|e| e.0),
            None => Some(pending),
        };
        if let Some(pending) = unsent {
            store(&self.db, &self.in_use, vec![pending]).await;
        }
        done.await
            .map_err(|_| DbErr::Custom("the run was not stored: the server is stopping".into()))?
    }
}

async fn writer(
    db: DatabaseConnection,
    in_use: InUse,
    mut rx: mpsc::Receiver<Pending>,
    background: Background,
) {
    let stopping = background.stopping();
    tokio::pin!(stopping);
    let mut closed = false;
    loop {
        let first = if closed {
            rx.recv().await
        } else {
            tokio::select! {
                biased;
                first = rx.recv() => first,
                () = &mut stopping => {
                    // Store what was already sent, then let requests store their own.
                    closed = true;
                    rx.close();
                    rx.recv().await
                }
            }
        };
        let Some(first) = first else { return };
        let mut batch = vec![first];
        while batch.len() < MAX {
            match rx.try_recv() {
                Ok(pending) => batch.push(pending),
                Err(_) => break,
            }
        }
        store(&db, &in_use, batch).await;
    }
}

async fn store(db: &DatabaseConnection, in_use: &InUse, batch: Vec<Pending>) {
    {
        // Before the rows exist: a run can end as soon as it is stored.
        let mut in_use = in_use.lock();
        for pending in &batch {
            in_use.insert(pending.row.id, Arc::clone(&pending.runnable));
        }
    }
    if batch.len() > 1 {
        let rows = batch.iter().map(|p| p.row.clone()).collect();
        match stored_together(db, rows).await {
            Ok(()) => {
                for pending in batch {
                    pending.stored.send(Ok(())).ok();
                }
                return;
            }
            Err(err) => tracing::warn!(error = %err, runs = batch.len(),
                "storing new runs together failed; storing them one by one"),
        }
    }
    for pending in batch {
        let id = pending.row.id;
        let result = stored_together(db, vec![pending.row]).await;
        if result.is_err() {
            in_use.lock().remove(&id);
        }
        pending.stored.send(result).ok();
    }
}

async fn stored_together(db: &DatabaseConnection, rows: Vec<run::Model>) -> Result<(), DbErr> {
    let txn = db.begin().await?;
    runs::insert_queued(&txn, rows).await?;
    txn.commit().await
}
