//! The `agent_task_assignments` table: which tasks each agent may run.

use sea_orm::entity::prelude::*;
use sea_orm::{ConnectionTrait, DbErr, QueryOrder};

#[derive(Clone, Debug, PartialEq, DeriveEntityModel)]
#[sea_orm(table_name = "agent_task_assignments")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub agent_id: Uuid,
    #[sea_orm(primary_key, auto_increment = false)]
    pub task_id: Uuid,
    pub created_at: DateTimeUtc,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}

pub async fn insert(db: &impl ConnectionTrait, model: Model) -> Result<Model, DbErr> {
    super::insert_returning::<Entity>(db, ActiveModel::from(model)).await
}

pub async fn delete(
    db: &impl ConnectionTrait,
    agent_id: Uuid,
    task_id: Uuid,
) -> Result<bool, DbErr> {
    let result = Entity::delete_by_id((agent_id, task_id)).exec(db).await?;
    Ok(result.rows_affected == 1)
}

/// Assignments of these agents, oldest first.
pub async fn for_agents(
    db: &impl ConnectionTrait,
    agent_ids: &[Uuid],
) -> Result<Vec<Model>, DbErr> {
    if agent_ids.is_empty() {
        return Ok(Vec::new());
    }
    Entity::find()
        .filter(Column::AgentId.is_in(agent_ids.iter().copied()))
        .order_by_asc(Column::CreatedAt)
        .order_by_asc(Column::TaskId)
        .all(db)
        .await
}

/// Assignments of these tasks, oldest first.
pub async fn for_tasks(db: &impl ConnectionTrait, task_ids: &[Uuid]) -> Result<Vec<Model>, DbErr> {
    if task_ids.is_empty() {
        return Ok(Vec::new());
    }
    Entity::find()
        .filter(Column::TaskId.is_in(task_ids.iter().copied()))
        .order_by_asc(Column::CreatedAt)
        .order_by_asc(Column::AgentId)
        .all(db)
        .await
}

pub async fn count_for_task(db: &impl ConnectionTrait, task_id: Uuid) -> Result<u64, DbErr> {
    Entity::find()
        .filter(Column::TaskId.eq(task_id))
        .count(db)
        .await
}

/// The task, if it exists and is assigned to the agent: one query for the hot path of
/// starting a run (`None` says neither which; the caller asks again on that rare path).
pub async fn assigned_task(
    db: &impl ConnectionTrait,
    agent_id: Uuid,
    task_id: Uuid,
) -> Result<Option<super::tasks::Model>, DbErr> {
    use sea_orm::sea_query::Query;
    super::tasks::Entity::find_by_id(task_id)
        .filter(
            super::tasks::Column::Id.in_subquery(
                Query::select()
                    .column(Column::TaskId)
                    .from(Entity)
                    .and_where(Column::AgentId.eq(agent_id))
                    .and_where(Column::TaskId.eq(task_id))
                    .to_owned(),
            ),
        )
        .one(db)
        .await
}
