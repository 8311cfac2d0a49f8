//! The `runs` and `run_events` tables. Status changes are conditional updates
//! (`… WHERE status IN (predecessors)`), so a run's status only ever moves forward, whoever
//! races to change it.

use contracts::{Run, RunEvent, RunEventKind, RunQuery, RunSnapshot, RunStatus};
use sea_orm::entity::prelude::*;
use sea_orm::{ConnectionTrait, DbErr, QueryOrder};
use serde_json::Value;

use super::{Wire, corrupt, storable, storable_json, to_u64};

pub mod run {
    use contracts::RunStatus;
    use sea_orm::entity::prelude::*;

    use crate::db::Wire;

    #[derive(Clone, Debug, PartialEq, DeriveEntityModel)]
    #[sea_orm(table_name = "runs")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub id: Uuid,
        pub agent_id: Uuid,
        pub task_id: Uuid,
        pub status: Wire<RunStatus>,
        #[sea_orm(column_type = "JsonBinary")]
        pub input: Json,
        #[sea_orm(column_type = "JsonBinary", nullable)]
        pub output: Option<Json>,
        pub raw_output: Option<String>,
        pub error: Option<String>,
        pub attempts: i32,
        pub prompt_tokens: Option<i64>,
        pub completion_tokens: Option<i64>,
        pub latency_ms: Option<i64>,
        #[sea_orm(column_type = "JsonBinary")]
        pub snapshot: Json,
        pub created_at: DateTimeUtc,
        pub started_at: Option<DateTimeUtc>,
        pub finished_at: Option<DateTimeUtc>,
        /// The prepared `contracts::worker::Job`, without the provider's key (added when it
        /// is assigned). `None` for runs stored before the queue existed.
        #[sea_orm(column_type = "JsonBinary", nullable)]
        pub job: Option<Json>,
        pub worker_id: Option<Uuid>,
        /// The current lease; only its holder's events and result are accepted.
        pub lease_id: Option<Uuid>,
        /// When the current lease (or the offer, while `assigned`) runs out.
        pub lease_expires_at: Option<DateTimeUtc>,
        pub deliveries: i32,
        pub queued_at: Option<DateTimeUtc>,
        pub assigned_at: Option<DateTimeUtc>,
        /// A queued run still waiting then fails: no worker took it in time.
        pub queue_deadline: Option<DateTimeUtc>,
        /// The run this one repeats (`POST /api/runs/{id}/retry`).
        pub retry_of: Option<Uuid>,
        /// The agent's routing rules when the run was created (`routing::Route::key`;
        /// empty: any worker).
        pub route_key: String,
        /// Why no registered worker can take the run, while that is so.
        pub waiting_reason: Option<String>,
        /// The concurrency group the run counts against (its agent's when it was created).
        pub concurrency_group_id: Option<Uuid>,
        /// The schedule that started the run, and the fire time it was started for (unique
        /// together: one run per fire).
        pub schedule_id: Option<Uuid>,
        pub scheduled_for: Option<DateTimeUtc>,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

pub mod event {
    use contracts::RunEventKind;
    use sea_orm::entity::prelude::*;

    use crate::db::Wire;

    #[derive(Clone, Debug, PartialEq, DeriveEntityModel)]
    #[sea_orm(table_name = "run_events")]
    pub struct Model {
        #[sea_orm(primary_key)]
        pub id: i64,
        pub run_id: Uuid,
        pub kind: Wire<RunEventKind>,
        #[sea_orm(column_type = "JsonBinary")]
        pub data: Json,
        pub created_at: DateTimeUtc,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

impl run::Model {
    pub fn to_contract(&self) -> Result<Run, DbErr> {
        let snapshot: RunSnapshot = serde_json::from_value(self.snapshot.clone())
            .map_err(|e| corrupt("run snapshot", e))?;
        Ok(Run {
            id: self.id,
            agent_id: self.agent_id,
            task_id: self.task_id,
            status: *self.status,
            input: self.input.clone(),
            output: self.output.clone(),
            raw_output: self.raw_output.clone(),
            error: self.error.clone(),
            attempts: u32::try_from(self.attempts).unwrap_or(0),
            prompt_tokens: self.prompt_tokens.map(to_u64),
            completion_tokens: self.completion_tokens.map(to_u64),
            latency_ms: self.latency_ms.map(to_u64),
            snapshot,
            worker_id: self.worker_id,
            deliveries: u32::try_from(self.deliveries).unwrap_or(0),
            created_at: self.created_at,
            queued_at: self.queued_at.unwrap_or(self.created_at),
            assigned_at: self.assigned_at,
            retry_of: self.retry_of,
            waiting_reason: self.waiting_reason.clone(),
            concurrency_group_id: self.concurrency_group_id,
            schedule_id: self.schedule_id,
            started_at: self.started_at,
            finished_at: self.finished_at,
        })
    }
}

/// Stores new `queued` runs, each with its `queued` status event (at the run's creation
/// time), in two statements however many runs.
pub async fn insert_queued(db: &impl ConnectionTrait, rows: Vec<run::Model>) -> Result<(), DbErr> {
    if rows.is_empty() {
        return Ok(());
    }
    let queued = || serde_json::json!({"status": RunStatus::Queued.as_str()});
    let events = rows
        .iter()
        .map(|row| (row.id, RunEventKind::Status, queued(), row.created_at))
        .collect();
    run::Entity::insert_many(rows.into_iter().map(run::ActiveModel::from))
        .exec_without_returning(db)
        .await?;
    append_events_at(db, events).await
}

pub async fn find(db: &impl ConnectionTrait, id: Uuid) -> Result<Option<run::Model>, DbErr> {
    run::Entity::find_by_id(id).one(db).await
}

/// Newest first, filtered.
pub async fn list(
    db: &impl ConnectionTrait,
    query: &RunQuery,
    limit: u64,
    offset: u64,
) -> Result<(Vec<run::Model>, u64), DbErr> {
    let mut select = run::Entity::find();
    if let Some(agent) = query.agent_id {
        select = select.filter(run::Column::AgentId.eq(agent));
    }
    if let Some(task) = query.task_id {
        select = select.filter(run::Column::TaskId.eq(task));
    }
    if let Some(worker) = query.worker_id {
        select = select.filter(run::Column::WorkerId.eq(worker));
    }
    if let Some(status) = query.status {
        select = select.filter(run::Column::Status.eq(Wire(status)));
    }
    let total = select.clone().count(db).await?;
    let items = sea_orm::QuerySelect::offset(
        sea_orm::QuerySelect::limit(select.order_by_desc(run::Column::Id), limit),
        offset,
    )
    .all(db)
    .await?;
    Ok((items, total))
}

/// The fields a status change may set besides the status.
#[derive(Debug, Default, Clone)]
pub struct Finish {
    pub output: Option<Value>,
    pub raw_output: Option<String>,
    pub error: Option<String>,
    pub attempts: Option<i32>,
    pub prompt_tokens: Option<i64>,
    pub completion_tokens: Option<i64>,
    pub latency_ms: Option<i64>,
}

/// Moves a run to `to` if it is in one of `to`'s predecessor states and returns it as stored;
/// `None` when it was not (already finished, canceled meanwhile, …). The database decides, so
/// concurrent writers cannot move a run backwards. One statement (`UPDATE … RETURNING`): the
/// caller publishes the returned row instead of reading it again.
pub async fn transition(
    db: &impl ConnectionTrait,
    id: Uuid,
    to: RunStatus,
    now: DateTimeUtc,
    finish: Finish,
) -> Result<Option<run::Model>, DbErr> {
    let Some(update) = moving_to(to, now, finish) else {
        return Ok(None);
    };
    Ok(update
        .filter(run::Column::Id.eq(id))
        .exec_with_returning(db)
        .await?
        .pop())
}

/// The update of a status change, guarded by the predecessor states; `None` for a state no
/// run can move to.
fn moving_to(
    to: RunStatus,
    now: DateTimeUtc,
    finish: Finish,
) -> Option<sea_orm::UpdateMany<run::Entity>> {
    let from = to.predecessors();
    if from.is_empty() {
        return None;
    }
    let update = run::Entity::update_many()
        .col_expr(run::Column::Status, Expr::value(Wire(to)))
        .filter(run::Column::Status.is_in(from.iter().copied().map(Wire)));
    Some(finishing(update, to, now, finish))
}

/// The columns a move to `to` sets besides the status: the finish time and what the run
/// produced for a final state (the lease ends with it).
pub(super) fn finishing(
    mut update: sea_orm::UpdateMany<run::Entity>,
    to: RunStatus,
    now: DateTimeUtc,
    finish: Finish,
) -> sea_orm::UpdateMany<run::Entity> {
    if to == RunStatus::Running {
        update = update.col_expr(run::Column::StartedAt, Expr::value(Some(now)));
    }
    if to.is_finished() {
        update = update
            .col_expr(run::Column::FinishedAt, Expr::value(Some(now)))
            .col_expr(
                run::Column::LeaseExpiresAt,
                Expr::value(Option::<DateTimeUtc>::None),
            )
            .col_expr(run::Column::Output, Expr::value(finish.output))
            .col_expr(
                run::Column::RawOutput,
                Expr::value(finish.raw_output.map(storable)),
            )
            .col_expr(run::Column::Error, Expr::value(finish.error.map(storable)))
            .col_expr(run::Column::PromptTokens, Expr::value(finish.prompt_tokens))
            .col_expr(
                run::Column::CompletionTokens,
                Expr::value(finish.completion_tokens),
            )
            .col_expr(run::Column::LatencyMs, Expr::value(finish.latency_ms));
        if let Some(attempts) = finish.attempts {
            update = update.col_expr(run::Column::Attempts, Expr::value(attempts));
        }
    }
    update
}

/// Appends one event.
pub async fn append_event(
    db: &impl ConnectionTrait,
    run_id: Uuid,
    kind: RunEventKind,
    data: Value,
    now: DateTimeUtc,
) -> Result<(), DbErr> {
    append_events(db, run_id, vec![(kind, data)], now).await
}

/// Appends several events in order, in one statement.
pub async fn append_events(
    db: &impl ConnectionTrait,
    run_id: Uuid,
    events: Vec<(RunEventKind, Value)>,
    now: DateTimeUtc,
) -> Result<(), DbErr> {
    let events = events
        .into_iter()
        .map(|(kind, data)| (run_id, kind, data))
        .collect();
    append_events_of_runs(db, events, now).await
}

/// Appends events of several runs in order, in one statement.
pub async fn append_events_of_runs(
    db: &impl ConnectionTrait,
    events: Vec<(Uuid, RunEventKind, Value)>,
    now: DateTimeUtc,
) -> Result<(), DbErr> {
    let events = events
        .into_iter()
        .map(|(run_id, kind, data)| (run_id, kind, data, now))
        .collect();
    append_events_at(db, events).await
}

/// Appends events, each at its own time, in order, in one statement.
async fn append_events_at(
    db: &impl ConnectionTrait,
    events: Vec<(Uuid, RunEventKind, Value, DateTimeUtc)>,
) -> Result<(), DbErr> {
    if events.is_empty() {
        return Ok(());
    }
    let rows = events
        .into_iter()
        .map(|(run_id, kind, data, at)| event::ActiveModel {
            id: sea_orm::ActiveValue::NotSet,
            run_id: sea_orm::ActiveValue::Set(run_id),
            kind: sea_orm::ActiveValue::Set(Wire(kind)),
            data: sea_orm::ActiveValue::Set(storable_json(data)),
            created_at: sea_orm::ActiveValue::Set(at),
        });
    event::Entity::insert_many(rows)
        .exec_without_returning(db)
        .await?;
    Ok(())
}

pub async fn events(db: &impl ConnectionTrait, run_id: Uuid) -> Result<Vec<RunEvent>, DbErr> {
    Ok(event::Entity::find()
        .filter(event::Column::RunId.eq(run_id))
        .order_by_asc(event::Column::Id)
        .all(db)
        .await?
        .into_iter()
        .map(|model| RunEvent {
            seq: to_u64(model.id),
            run_id: model.run_id,
            kind: *model.kind,
            data: model.data,
            created_at: model.created_at,
        })
        .collect())
}

/// A worker's most recent runs, newest first.
pub async fn recent_of_worker(
    db: &impl ConnectionTrait,
    worker_id: Uuid,
    limit: u64,
) -> Result<Vec<run::Model>, DbErr> {
    sea_orm::QuerySelect::limit(
        run::Entity::find()
            .filter(run::Column::WorkerId.eq(worker_id))
            .order_by_desc(run::Column::Id),
        limit,
    )
    .all(db)
    .await
}

/// The run started for a schedule's fire at `fire_at`, if any.
pub async fn of_fire(
    db: &impl ConnectionTrait,
    schedule_id: Uuid,
    fire_at: chrono::DateTime<chrono::Utc>,
) -> Result<Option<Uuid>, DbErr> {
    use sea_orm::QuerySelect;
    run::Entity::find()
        .select_only()
        .column(run::Column::Id)
        .filter(run::Column::ScheduleId.eq(schedule_id))
        .filter(run::Column::ScheduledFor.eq(fire_at))
        .into_tuple::<Uuid>()
        .one(db)
        .await
}
