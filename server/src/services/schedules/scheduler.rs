//! The scheduler: sleeps until the next enabled schedule is due (or a schedule changes),
//! then fires what is due. A fire starts the run first and moves the schedule on after, so
//! a crash in between fires the same time again after the restart, which the database
//! refuses as a duplicate (one run per schedule and fire time): exactly one run per fire.
//! A fire time more than `MISSED` in the past was missed (the server was down): `catch_up`
//! decides whether it starts one run or none.

use std::time::Duration;

use chrono::{DateTime, Utc};
use contracts::CatchUp;

use super::{Schedules, when_of};
use crate::background::Background;
use crate::db::schedules::{self, Fired};
use crate::domain::now;

/// A fire time this far in the past was missed, not merely late.
const MISSED: chrono::Duration = chrono::Duration::seconds(60);

/// The scheduler looks again at least this often (other servers may have changed the
/// schedules).
const LOOK_AGAIN: Duration = Duration::from_secs(60);

/// Most schedules fired per look.
const BATCH: u64 = 64;

pub(super) fn spawn(schedules: Schedules, background: &Background) {
    let stopping = background.stopping();
    background.spawn(async move {
        let mut stopping = std::pin::pin!(stopping);
        loop {
            let wait = match schedules.fire_due().await {
                Ok(wait) => wait,
                Err(err) => {
                    tracing::error!(error = %err, "scheduler: cannot read the schedules");
                    Duration::from_secs(1)
                }
            };
            tokio::select! {
                () = &mut stopping => return,
                () = schedules.wake.notified() => {}
                () = tokio::time::sleep(wait) => {}
            }
        }
    });
}

impl Schedules {
    /// Fires every due schedule; returns how long to sleep until the next one.
    async fn fire_due(&self) -> Result<Duration, sea_orm::DbErr> {
        loop {
            let due = schedules::due(&self.db, now(), BATCH).await?;
            let full = due.len() as u64 == BATCH;
            for row in due {
                self.fire(row).await?;
            }
            if !full {
                break;
            }
        }
        let wait = match schedules::next_due(&self.db).await? {
            Some(at) => (at - now()).to_std().unwrap_or(Duration::ZERO),
            None => LOOK_AGAIN,
        };
        // A millisecond more: a fire time is due once `now` has reached it.
        Ok(wait.min(LOOK_AGAIN) + Duration::from_millis(1))
    }

    async fn fire(&self, row: schedules::Model) -> Result<(), sea_orm::DbErr> {
        let Some(fire_at) = row.next_fire_at else {
            return Ok(());
        };
        let at = now();
        let when = when_of(&row);
        let next = when.as_ref().and_then(|when| when.following(fire_at, at));
        let missed = at - fire_at > MISSED;
        let catch_up = CatchUp::parse(&row.catch_up).unwrap_or_default();
        let fired = if when.is_none() {
            Fired::skipped(at, "the schedule's timing is unreadable")
        } else if missed && catch_up == CatchUp::Skip {
            tracing::info!(schedule.id = %row.id, missed = %fire_at, "missed fire skipped");
            Fired::skipped(
                at,
                format!(
                    "missed fire time(s) from {} skipped (catch_up: skip)",
                    fire_at.to_rfc3339()
                ),
            )
        } else {
            self.start_run(&row, fire_at, at).await
        };
        if schedules::advance(&self.db, row.id, Some(fire_at), next, fired)
            .await?
            .is_none()
        {
            tracing::debug!(schedule.id = %row.id, "schedule moved on elsewhere");
        }
        Ok(())
    }

    /// Starts the run of the fire at `fire_at`.
    async fn start_run(
        &self,
        row: &schedules::Model,
        fire_at: DateTime<Utc>,
        at: DateTime<Utc>,
    ) -> Fired {
        let started = self
            .runs
            .start_scheduled(
                row.agent_id,
                row.task_id,
                row.input.clone(),
                row.id,
                fire_at,
            )
            .await;
        match started {
            Ok(run) => {
                tracing::info!(schedule.id = %row.id, run.id = %run.id, "schedule fired");
                Fired::ran(at, run.id)
            }
            Err(err) if err.is_duplicate() => {
                if let Ok(Some(run_id)) = crate::db::runs::of_fire(&self.db, row.id, fire_at).await
                {
                    // Started before a restart: this fire is done.
                    return Fired::ran(at, run_id);
                }
                let error = "skipped: the previous run was not finished yet";
                tracing::info!(schedule.id = %row.id, "{error}");
                Fired::skipped(at, error)
            }
            Err(err) => {
                tracing::warn!(schedule.id = %row.id, error = %err, "schedule fired no run");
                Fired::skipped(at, format!("no run started: {err}"))
            }
        }
    }
}
