//! The `concurrency_groups` table and the counts the dispatcher and the API read from `runs`
//! (`ix_runs_group`). Counts are always read, never kept: nothing drifts after a restart or
//! a crash.

use std::collections::HashMap;

use contracts::RunStatus;
use sea_orm::entity::prelude::*;
use sea_orm::{ConnectionTrait, DbErr, FromQueryResult, QueryOrder, QuerySelect};

use super::Wire;
use super::runs::run;

pub mod group {
    use sea_orm::entity::prelude::*;

    #[derive(Clone, Debug, PartialEq, DeriveEntityModel)]
    #[sea_orm(table_name = "concurrency_groups")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub id: Uuid,
        pub name: String,
        /// Runs of the group's agents workers may hold at once (`limit` on the wire).
        pub max_running: i32,
        pub note: String,
        pub created_at: DateTimeUtc,
        pub updated_at: DateTimeUtc,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

/// A run holds a slot of its group from the offer on: an offer accepted later must not make
/// the group exceed its limit.
pub const HOLDING: [RunStatus; 2] = [RunStatus::Assigned, RunStatus::Running];

/// By name.
pub async fn list(db: &impl ConnectionTrait) -> Result<Vec<group::Model>, DbErr> {
    group::Entity::find()
        .order_by_asc(group::Column::Name)
        .all(db)
        .await
}

pub async fn find(db: &impl ConnectionTrait, id: Uuid) -> Result<Option<group::Model>, DbErr> {
    group::Entity::find_by_id(id).one(db).await
}

pub async fn find_by_name(
    db: &impl ConnectionTrait,
    name: &str,
) -> Result<Option<group::Model>, DbErr> {
    group::Entity::find()
        .filter(group::Column::Name.eq(name))
        .one(db)
        .await
}

pub async fn any(db: &impl ConnectionTrait) -> Result<bool, DbErr> {
    Ok(group::Entity::find().count(db).await? > 0)
}

pub async fn insert(db: &impl ConnectionTrait, row: group::Model) -> Result<group::Model, DbErr> {
    super::insert_returning::<group::Entity>(db, group::ActiveModel::from(row)).await
}

/// Replaces name, limit and note; the group as stored, `None` if it does not exist.
pub async fn update(
    db: &impl ConnectionTrait,
    row: group::Model,
) -> Result<Option<group::Model>, DbErr> {
    Ok(group::Entity::update_many()
        .col_expr(group::Column::Name, Expr::value(row.name))
        .col_expr(group::Column::MaxRunning, Expr::value(row.max_running))
        .col_expr(group::Column::Note, Expr::value(row.note))
        .col_expr(group::Column::UpdatedAt, Expr::value(row.updated_at))
        .filter(group::Column::Id.eq(row.id))
        .exec_with_returning(db)
        .await?
        .pop())
}

/// Deletes a group (its unfinished runs are let go by `queue::leave_group`).
pub async fn delete(db: &impl ConnectionTrait, id: Uuid) -> Result<bool, DbErr> {
    let deleted = group::Entity::delete_by_id(id).exec(db).await?;
    Ok(deleted.rows_affected == 1)
}

/// A group's counts.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Counts {
    /// Runs offered to or running on a worker.
    pub active: u32,
    pub queued: u32,
}

#[derive(Debug, FromQueryResult)]
struct Count {
    group: Uuid,
    status: Wire<RunStatus>,
    count: i64,
}

/// Active and queued runs of each group in `ids` (all groups when `None`); groups with none
/// are absent.
pub async fn counts(
    db: &impl ConnectionTrait,
    ids: Option<&[Uuid]>,
) -> Result<HashMap<Uuid, Counts>, DbErr> {
    let statuses = [RunStatus::Queued, HOLDING[0], HOLDING[1]].map(Wire);
    let mut query = run::Entity::find()
        .select_only()
        .column_as(run::Column::ConcurrencyGroupId, "group")
        .column(run::Column::Status)
        .column_as(run::Column::Id.count(), "count")
        .filter(run::Column::Status.is_in(statuses))
        .filter(run::Column::ConcurrencyGroupId.is_not_null())
        .group_by(run::Column::ConcurrencyGroupId)
        .group_by(run::Column::Status);
    if let Some(ids) = ids {
        query = query.filter(run::Column::ConcurrencyGroupId.is_in(ids.iter().copied()));
    }
    let mut counts: HashMap<Uuid, Counts> = HashMap::new();
    for row in query.into_model::<Count>().all(db).await? {
        let entry = counts.entry(row.group).or_default();
        let count = u32::try_from(row.count).unwrap_or(u32::MAX);
        if row.status.0 == RunStatus::Queued {
            entry.queued += count;
        } else {
            entry.active += count;
        }
    }
    Ok(counts)
}

/// How many more runs each group may have offered or running now, for the groups with room
/// (on PostgreSQL call it in the claim's transaction, after `lock_all`).
pub async fn room(db: &impl ConnectionTrait) -> Result<Vec<(Uuid, u32)>, DbErr> {
    let groups = list(db).await?;
    if groups.is_empty() {
        return Ok(Vec::new());
    }
    let ids: Vec<Uuid> = groups.iter().map(|g| g.id).collect();
    let counts = counts(db, Some(&ids)).await?;
    Ok(groups
        .into_iter()
        .filter_map(|g| {
            let limit = u32::try_from(g.max_running).unwrap_or(0);
            let active = counts.get(&g.id).map_or(0, |c| c.active);
            let free = limit.saturating_sub(active);
            (free > 0).then_some((g.id, free))
        })
        .collect())
}

/// Locks every group row until the transaction ends, so servers sharing a PostgreSQL
/// database count and claim one at a time.
pub async fn lock_all(db: &impl ConnectionTrait) -> Result<(), DbErr> {
    group::Entity::find()
        .order_by_asc(group::Column::Id)
        .lock_exclusive()
        .all(db)
        .await?;
    Ok(())
}

/// How many agents are in each group.
pub async fn agent_counts(db: &impl ConnectionTrait) -> Result<HashMap<Uuid, u32>, DbErr> {
    let mut counts = HashMap::new();
    for agent in super::agents::Entity::find()
        .filter(super::agents::Column::ConcurrencyGroupId.is_not_null())
        .all(db)
        .await?
    {
        if let Some(id) = agent.concurrency_group_id {
            *counts.entry(id).or_insert(0) += 1;
        }
    }
    Ok(counts)
}
