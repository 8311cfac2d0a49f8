//! Scheduled runs: an assignment's input, run on a cron expression (in a time zone) or every
//! N seconds. Owns the `schedules` table; the scheduler (`scheduler`) fires due schedules
//! through the run service, where the database keeps one run per fire and at most one
//! unfinished run per schedule (migration m20261208_000001).

mod scheduler;
mod timing;

use std::sync::Arc;

use chrono::{DateTime, Utc};
use contracts::{CatchUp, CreateSchedule, Run, Schedule, UpdateSchedule};
use sea_orm::{DatabaseConnection, DbErr};
use tokio::sync::Notify;
use uuid::Uuid;

use super::Runs;
use super::runs;
use crate::background::Background;
use crate::db::schedules::{self, Fired};
use crate::domain::fields::Problems;
use crate::domain::{Invalid, new_id, now};
use timing::When;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(transparent)]
    Invalid(#[from] Invalid),
    #[error("no schedule with id {0}")]
    NotFound(Uuid),
    #[error("{0}")]
    Busy(String),
    #[error(transparent)]
    Runs(#[from] runs::Error),
    #[error(transparent)]
    Db(#[from] DbErr),
}

#[derive(Clone)]
pub struct Schedules {
    db: DatabaseConnection,
    runs: Runs,
    /// Wakes the scheduler: a schedule was created, changed or deleted.
    wake: Arc<Notify>,
}

impl Schedules {
    /// The service, and its scheduler.
    pub fn start(db: DatabaseConnection, runs: Runs, background: &Background) -> Schedules {
        let schedules = Schedules {
            db,
            runs,
            wake: Arc::new(Notify::new()),
        };
        scheduler::spawn(schedules.clone(), background);
        schedules
    }

    pub async fn list(
        &self,
        agent_id: Option<Uuid>,
        task_id: Option<Uuid>,
    ) -> Result<Vec<Schedule>, Error> {
        let rows = schedules::list(&self.db, agent_id, task_id).await?;
        Ok(rows.into_iter().map(contract).collect())
    }

    pub async fn get(&self, id: Uuid) -> Result<Schedule, Error> {
        Ok(contract(self.find(id).await?))
    }

    pub async fn create(&self, body: CreateSchedule) -> Result<Schedule, Error> {
        let at = now();
        let row = self.checked(new_id(), body, at, at).await?;
        let row = schedules::insert(&self.db, row).await?;
        tracing::info!(schedule.id = %row.id, next = ?row.next_fire_at, "schedule created");
        self.wake.notify_one();
        Ok(contract(row))
    }

    /// Replaces the schedule; its next fire time is counted again from now.
    pub async fn update(&self, id: Uuid, body: UpdateSchedule) -> Result<Schedule, Error> {
        let old = self.find(id).await?;
        let row = self.checked(id, body, old.created_at, now()).await?;
        let row = schedules::replace(&self.db, row)
            .await?
            .ok_or(Error::NotFound(id))?;
        self.wake.notify_one();
        Ok(contract(row))
    }

    pub async fn delete(&self, id: Uuid) -> Result<(), Error> {
        if !schedules::delete(&self.db, id).await? {
            return Err(Error::NotFound(id));
        }
        self.wake.notify_one();
        Ok(())
    }

    /// Starts a run now (enabled or not) and counts the next fire time again from now.
    /// Refused while the schedule's previous run is unfinished.
    pub async fn run_now(&self, id: Uuid) -> Result<Run, Error> {
        let row = self.find(id).await?;
        let at = now();
        let run = match self
            .runs
            .start_scheduled(row.agent_id, row.task_id, row.input.clone(), id, at)
            .await
        {
            Ok(run) => run,
            Err(err) if err.is_duplicate() => {
                return Err(Error::Busy(
                    "the schedule's previous run is not finished yet".to_owned(),
                ));
            }
            Err(err) => return Err(err.into()),
        };
        let next = if row.enabled {
            when_of(&row).and_then(|when| when.after(at))
        } else {
            None
        };
        schedules::advance(&self.db, id, None, next, Fired::ran(at, run.id)).await?;
        self.wake.notify_one();
        Ok(run)
    }

    async fn find(&self, id: Uuid) -> Result<schedules::Model, Error> {
        schedules::find(&self.db, id)
            .await?
            .ok_or(Error::NotFound(id))
    }

    /// The row `body` describes, checked: its timing parses, its agent has its task
    /// assigned and its input matches the task's request schema and fills the template.
    async fn checked(
        &self,
        id: Uuid,
        body: CreateSchedule,
        created_at: DateTime<Utc>,
        at: DateTime<Utc>,
    ) -> Result<schedules::Model, Error> {
        let mut problems = Problems::new();
        let timezone = body.timezone.clone().unwrap_or_else(|| "UTC".to_owned());
        let cron = body.cron.as_deref().map(str::trim).map(str::to_owned);
        let when = When::parse(&mut problems, cron.as_deref(), body.every_secs, &timezone);
        problems.finish(())?;
        self.runs
            .check_input(body.agent_id, body.task_id, &body.input)
            .await?;
        let next = match (&when, body.enabled) {
            (Some(when), true) => when.after(at),
            _ => None,
        };
        Ok(schedules::Model {
            id,
            agent_id: body.agent_id,
            task_id: body.task_id,
            input: body.input,
            cron,
            every_secs: body.every_secs.map(i64::from),
            timezone,
            enabled: body.enabled,
            catch_up: body.catch_up.as_str().to_owned(),
            next_fire_at: next,
            last_fired_at: None,
            last_run_id: None,
            last_error: None,
            created_at,
            updated_at: at,
        })
    }
}

/// A stored schedule's timing (`None` only if the row is unreadable).
fn when_of(row: &schedules::Model) -> Option<When> {
    let every = row.every_secs.and_then(|secs| u32::try_from(secs).ok());
    When::parse(
        &mut Problems::new(),
        row.cron.as_deref(),
        every,
        &row.timezone,
    )
}

fn contract(row: schedules::Model) -> Schedule {
    let upcoming = match (row.next_fire_at, when_of(&row)) {
        (Some(first), Some(when)) => when.upcoming(first),
        (Some(first), None) => vec![first],
        _ => Vec::new(),
    };
    Schedule {
        id: row.id,
        agent_id: row.agent_id,
        task_id: row.task_id,
        input: row.input,
        cron: row.cron,
        every_secs: row.every_secs.and_then(|secs| u32::try_from(secs).ok()),
        timezone: row.timezone,
        enabled: row.enabled,
        catch_up: CatchUp::parse(&row.catch_up).unwrap_or_default(),
        next_fire_at: row.next_fire_at,
        upcoming,
        last_fired_at: row.last_fired_at,
        last_run_id: row.last_run_id,
        last_error: row.last_error,
        created_at: row.created_at,
        updated_at: row.updated_at,
    }
}
