//! The `schedules` table. The scheduler moves a schedule on with a conditional update
//! (`… WHERE next_fire_at = <the fire it handled>`), so of several servers racing, one
//! moves it and the others see it moved.

use chrono::{DateTime, Utc};
use sea_orm::entity::prelude::*;
use sea_orm::{ConnectionTrait, DbErr, QueryOrder, QuerySelect, Set};

pub mod schedule {
    use sea_orm::entity::prelude::*;

    #[derive(Clone, Debug, PartialEq, DeriveEntityModel)]
    #[sea_orm(table_name = "schedules")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub id: Uuid,
        pub agent_id: Uuid,
        pub task_id: Uuid,
        pub input: Json,
        pub cron: Option<String>,
        pub every_secs: Option<i64>,
        pub timezone: String,
        pub enabled: bool,
        /// `skip` | `one`.
        pub catch_up: String,
        /// `None` while disabled.
        pub next_fire_at: Option<DateTimeUtc>,
        pub last_fired_at: Option<DateTimeUtc>,
        pub last_run_id: Option<Uuid>,
        pub last_error: Option<String>,
        pub created_at: DateTimeUtc,
        pub updated_at: DateTimeUtc,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

pub use schedule::Model;

pub async fn insert(db: &impl ConnectionTrait, row: Model) -> Result<Model, DbErr> {
    schedule::ActiveModel::from(row).insert(db).await
}

/// Replaces every field but the id, the creation time and what the last fire left.
pub async fn replace(db: &impl ConnectionTrait, row: Model) -> Result<Option<Model>, DbErr> {
    let id = row.id;
    let updated = schedule::Entity::update_many()
        .set(schedule::ActiveModel {
            agent_id: Set(row.agent_id),
            task_id: Set(row.task_id),
            input: Set(row.input),
            cron: Set(row.cron),
            every_secs: Set(row.every_secs),
            timezone: Set(row.timezone),
            enabled: Set(row.enabled),
            catch_up: Set(row.catch_up),
            next_fire_at: Set(row.next_fire_at),
            updated_at: Set(row.updated_at),
            ..Default::default()
        })
        .filter(schedule::Column::Id.eq(id))
        .exec_with_returning(db)
        .await?;
    Ok(updated.into_iter().next())
}

pub async fn find(db: &impl ConnectionTrait, id: Uuid) -> Result<Option<Model>, DbErr> {
    schedule::Entity::find_by_id(id).one(db).await
}

/// Schedules, optionally of one agent and/or task, oldest first.
pub async fn list(
    db: &impl ConnectionTrait,
    agent_id: Option<Uuid>,
    task_id: Option<Uuid>,
) -> Result<Vec<Model>, DbErr> {
    let mut query = schedule::Entity::find();
    if let Some(agent_id) = agent_id {
        query = query.filter(schedule::Column::AgentId.eq(agent_id));
    }
    if let Some(task_id) = task_id {
        query = query.filter(schedule::Column::TaskId.eq(task_id));
    }
    query
        .order_by_asc(schedule::Column::CreatedAt)
        .order_by_asc(schedule::Column::Id)
        .all(db)
        .await
}

pub async fn delete(db: &impl ConnectionTrait, id: Uuid) -> Result<bool, DbErr> {
    let result = schedule::Entity::delete_by_id(id).exec(db).await?;
    Ok(result.rows_affected == 1)
}

/// Enabled schedules due at `now`, soonest first (at most `limit`).
pub async fn due(
    db: &impl ConnectionTrait,
    now: DateTime<Utc>,
    limit: u64,
) -> Result<Vec<Model>, DbErr> {
    schedule::Entity::find()
        .filter(schedule::Column::Enabled.eq(true))
        .filter(schedule::Column::NextFireAt.lte(now))
        .order_by_asc(schedule::Column::NextFireAt)
        .limit(limit)
        .all(db)
        .await
}

/// When the next enabled schedule is due.
pub async fn next_due(db: &impl ConnectionTrait) -> Result<Option<DateTime<Utc>>, DbErr> {
    Ok(schedule::Entity::find()
        .select_only()
        .column(schedule::Column::NextFireAt)
        .filter(schedule::Column::Enabled.eq(true))
        .filter(schedule::Column::NextFireAt.is_not_null())
        .order_by_asc(schedule::Column::NextFireAt)
        .limit(1)
        .into_tuple::<Option<DateTime<Utc>>>()
        .one(db)
        .await?
        .flatten())
}

/// What a fire did.
pub struct Fired {
    pub at: DateTime<Utc>,
    pub run_id: Option<Uuid>,
    pub error: Option<String>,
}

impl Fired {
    /// The fire started run `run_id`.
    pub fn ran(at: DateTime<Utc>, run_id: Uuid) -> Fired {
        Fired {
            at,
            run_id: Some(run_id),
            error: None,
        }
    }

    /// The fire started no run, for this reason.
    pub fn skipped(at: DateTime<Utc>, error: impl Into<String>) -> Fired {
        Fired {
            at,
            run_id: None,
            error: Some(error.into()),
        }
    }
}

/// Moves the schedule on to `next`, recording what the fire did (the last run id only
/// changes when the fire started one). With `from` (the fire it handled), only if the
/// schedule is still at it: `None` when another server moved it, or it was edited, disabled
/// or deleted meanwhile. Without (`run now`), whatever its next fire time was.
pub async fn advance(
    db: &impl ConnectionTrait,
    id: Uuid,
    from: Option<DateTime<Utc>>,
    next: Option<DateTime<Utc>>,
    fired: Fired,
) -> Result<Option<Model>, DbErr> {
    let mut set = schedule::ActiveModel {
        next_fire_at: Set(next),
        last_fired_at: Set(Some(fired.at)),
        last_error: Set(fired.error),
        ..Default::default()
    };
    if fired.run_id.is_some() {
        set.last_run_id = Set(fired.run_id);
    }
    let mut update = schedule::Entity::update_many()
        .set(set)
        .filter(schedule::Column::Id.eq(id));
    if let Some(from) = from {
        update = update.filter(schedule::Column::NextFireAt.eq(from));
    }
    Ok(update.exec_with_returning(db).await?.into_iter().next())
}
