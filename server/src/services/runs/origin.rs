//! What started a run besides a request: a retry of another run, or a schedule's fire.

use chrono::{DateTime, Utc};
use contracts::{CreateRun, Run, RunMode};
use serde_json::Value;
use tracing::field::Empty;
use uuid::Uuid;

use super::{Error, Runs};

/// Where a run came from.
#[derive(Debug, Default, Clone, Copy)]
pub(super) struct Origin {
    pub retry_of: Option<Uuid>,
    /// The schedule and the fire time.
    pub schedule: Option<(Uuid, DateTime<Utc>)>,
}

impl Error {
    /// The database refused the run as a duplicate: a schedule's fire that already has its
    /// run, or a schedule whose previous run is unfinished.
    pub fn is_duplicate(&self) -> bool {
        matches!(self, Error::Db(err)
            if matches!(err.sql_err(), Some(sea_orm::SqlErr::UniqueConstraintViolation(_))))
    }
}

impl Runs {
    /// Starts the run of a schedule's fire at `fire_at` (async). Refused by the database
    /// (`Error::Db`, a unique violation: see `is_duplicate`) when this fire already has its
    /// run or the schedule's previous run is unfinished.
    #[tracing::instrument(name = "runs.scheduled", skip_all,
        fields(schedule.id = %schedule_id, run.id = Empty))]
    pub async fn start_scheduled(
        &self,
        agent_id: Uuid,
        task_id: Uuid,
        input: Value,
        schedule_id: Uuid,
        fire_at: DateTime<Utc>,
    ) -> Result<Run, Error> {
        let body = CreateRun {
            input,
            mode: RunMode::Async,
        };
        let origin = Origin {
            schedule: Some((schedule_id, fire_at)),
            ..Origin::default()
        };
        Ok(self.enqueue(agent_id, task_id, body, origin).await?.run)
    }
}
