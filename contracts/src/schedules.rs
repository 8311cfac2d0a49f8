//! Scheduled runs: an assignment's input run on a cron expression or every N seconds.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use uuid::Uuid;

use crate::wire::wire_enum;

wire_enum! {
    /// What happens to fire times missed while the server was down (or too busy to fire
    /// them within a minute).
    #[derive(Default)]
    pub enum CatchUp {
        /// Missed fire times start no run; the schedule goes on from the next one.
        #[default]
        Skip = "skip",
        /// However many were missed, one run starts at once, then the schedule goes on.
        One = "one",
    }
}

/// A schedule as the API returns it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Schedule {
    pub id: Uuid,
    pub agent_id: Uuid,
    pub task_id: Uuid,
    /// The run's input, checked against the task's request schema when the schedule is
    /// saved and again at every fire.
    pub input: Value,
    /// A cron expression (5 fields, or 6 with seconds first), in `timezone`; or `null` when
    /// the schedule fires every `every_secs`.
    pub cron: Option<String>,
    pub every_secs: Option<u32>,
    /// An IANA time zone (`Europe/Paris`) the cron expression is read in; `UTC` by default.
    pub timezone: String,
    pub enabled: bool,
    pub catch_up: CatchUp,
    /// When it fires next; `null` while it is disabled.
    pub next_fire_at: Option<DateTime<Utc>>,
    /// The next fire times (up to 5), the first being `next_fire_at`.
    pub upcoming: Vec<DateTime<Utc>>,
    pub last_fired_at: Option<DateTime<Utc>>,
    /// The run its last fire (or "run now") started.
    pub last_run_id: Option<Uuid>,
    /// Why its last fire started no run (its previous run was still unfinished, the input no
    /// longer matches the task's schema…); `null` after a fire that started one.
    pub last_error: Option<String>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

/// Body of `POST /api/schedules`, and of `PUT /api/schedules/{id}` (which replaces it all;
/// the next fire time is computed again from now).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct CreateSchedule {
    pub agent_id: Uuid,
    /// A task assigned to the agent.
    pub task_id: Uuid,
    /// Must match the task's `request_schema`.
    pub input: Value,
    /// Exactly one of `cron` and `every_secs`. Cron: 5 fields (minute hour day-of-month
    /// month day-of-week) or 6 with seconds first; names (`MON`, `JAN`), ranges, steps,
    /// `L`, `W` and `#`; at most 200 characters.
    #[serde(default)]
    #[cfg_attr(feature = "openapi", schema(max_length = 200, pattern = r"^[^\x00]*$"))]
    pub cron: Option<String>,
    /// 1–31,536,000 seconds (a year).
    #[serde(default, deserialize_with = "crate::rules::int::opt_u32")]
    #[cfg_attr(feature = "openapi", schema(minimum = 1, maximum = 31536000))]
    pub every_secs: Option<u32>,
    /// An IANA time zone name; `UTC` when absent.
    #[serde(default)]
    #[cfg_attr(feature = "openapi", schema(max_length = 64, pattern = r"^[^\x00]*$"))]
    pub timezone: Option<String>,
    #[serde(default = "enabled")]
    pub enabled: bool,
    #[serde(default)]
    pub catch_up: CatchUp,
}

fn enabled() -> bool {
    true
}

/// `PUT /api/schedules/{id}` takes the same body as create.
pub type UpdateSchedule = CreateSchedule;

/// `?agent_id&task_id` for `GET /api/schedules`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::IntoParams))]
#[cfg_attr(feature = "openapi", into_params(parameter_in = Query))]
#[serde(deny_unknown_fields)]
pub struct ScheduleQuery {
    pub agent_id: Option<Uuid>,
    pub task_id: Option<Uuid>,
}

/// Longest interval of `every_secs`.
pub const MAX_EVERY_SECS: u32 = 31_536_000;
