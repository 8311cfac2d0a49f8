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

/// The revisions of an assigned agent/task pair and of the agent's provider.
#[derive(Debug, Clone, Copy, PartialEq, Eq, sea_orm::FromQueryResult)]
pub struct Revisions {
    pub agent_revision: i64,
    pub task_revision: i64,
    pub provider_id: Uuid,
    pub provider_revision: i64,
}

/// The revisions of the configuration a run of `agent_id` on `task_id` would use, in one
/// statement; `None` when the agent, the task, the assignment or the provider is missing.
/// Enough to find a prepared runnable agent without reading the three rows.
pub async fn revisions(
    db: &impl ConnectionTrait,
    agent_id: Uuid,
    task_id: Uuid,
) -> Result<Option<Revisions>, DbErr> {
    use sea_orm::{FromQueryResult, Statement};
    let sql = "SELECT a.revision AS agent_revision, t.revision AS task_revision, \
               p.id AS provider_id, p.revision AS provider_revision \
               FROM agent_task_assignments x \
               JOIN agent_configs a ON a.id = x.agent_id \
               JOIN task_configs t ON t.id = x.task_id \
               JOIN llm_providers p ON p.id = a.provider_id \
               WHERE x.agent_id = $1 AND x.task_id = $2";
    let statement = Statement::from_sql_and_values(
        db.get_database_backend(),
        sql,
        [agent_id.into(), task_id.into()],
    );
    Revisions::find_by_statement(statement).one(db).await
}
