//! Concurrency groups as the run service sees them: whether any exists (while none does,
//! claims take no group into account, as before groups existed), which
//! groups' counts changed (for the topic `concurrency`), and why a run of a full group waited
//! in vain.

use std::collections::HashSet;
use std::sync::atomic::Ordering;

use chrono::{DateTime, Utc};
use sea_orm::DbErr;
use uuid::Uuid;

use super::{Inner, Runs};
use crate::db::concurrency;
use crate::db::queue;
use crate::db::runs::run;

/// Groups whose runs changed since the counts were last published.
pub(super) type Changed = parking_lot::Mutex<HashSet<Uuid>>;

impl Runs {
    /// A group was created or changed (`any`: whether groups exist now): the next dispatch
    /// round uses the new limits.
    pub fn groups_changed(&self, any: bool) {
        self.inner.has_groups.store(any, Ordering::Relaxed);
        self.inner.wake.notify_one();
    }

    /// A group was deleted: its unfinished runs count against no group any more.
    pub async fn group_deleted(&self, group: Uuid, any: bool) -> Result<(), DbErr> {
        let freed = queue::leave_group(&self.inner.db, group).await?;
        tracing::info!(group.id = %group, runs = freed, "runs left a deleted concurrency group");
        self.groups_changed(any);
        Ok(())
    }

    /// The groups whose runs changed since the last call.
    pub fn take_group_changes(&self) -> Vec<Uuid> {
        self.inner.group_changes.lock().drain().collect()
    }
}

impl Inner {
    /// Whether groups exist, read once at start (then kept by `groups_changed`).
    pub(super) async fn load_groups(&self) -> Result<(), DbErr> {
        let any = concurrency::any(&self.db).await?;
        self.has_groups.store(any, Ordering::Relaxed);
        Ok(())
    }

    /// A run of `group` changed: its counts are published soon.
    pub(super) fn group_touched(&self, group: Option<Uuid>) {
        if let Some(group) = group {
            self.group_changes.lock().insert(group);
        }
    }

    /// Claims runs for a worker: within the groups' limits once any group exists.
    pub(super) async fn claim(
        &self,
        worker_id: Uuid,
        count: u32,
        keys: &[String],
        at: DateTime<Utc>,
        ack_deadline: DateTime<Utc>,
    ) -> Result<Vec<run::Model>, DbErr> {
        if self.has_groups.load(Ordering::Relaxed) {
            queue::claim_within_limits(&self.db, worker_id, count, keys, at, ack_deadline).await
        } else {
            queue::claim(&self.db, worker_id, count, keys, None, at, ack_deadline).await
        }
    }

    /// Why a queued run of a full group did not start in time; `None` when its group (if
    /// any) had room, so the workers are to blame.
    pub(super) async fn group_full(&self, row: &run::Model, waited: i64) -> Option<String> {
        let db = &self.db;
        let group = concurrency::find(db, row.concurrency_group_id?)
            .await
            .ok()??;
        let counts = concurrency::counts(db, Some(&[group.id])).await.ok()?;
        let active = counts.get(&group.id).map_or(0, |c| c.active);
        (i64::from(active) >= i64::from(group.max_running)).then(|| {
            format!(
                "no worker available: concurrency group {} had no free slot ({active} of \
                 {} running), so nothing took the run within its queue timeout ({waited} s)",
                group.name, group.max_running
            )
        })
    }
}
