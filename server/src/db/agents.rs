//! The `agent_configs` table.

use contracts::AgentSummary;
use sea_orm::entity::prelude::*;
use sea_orm::{ConnectionTrait, DbErr, ExprTrait, QueryOrder};

#[derive(Clone, Debug, PartialEq, DeriveEntityModel)]
#[sea_orm(table_name = "agent_configs")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Uuid,
    pub name: String,
    pub description: String,
    pub provider_id: Uuid,
    pub model: String,
    pub system_prompt: String,
    pub user_prompt: Option<String>,
    pub temperature: Option<f64>,
    pub max_tokens: Option<i32>,
    pub max_retries: i32,
    pub timeout_secs: i32,
    pub queue_timeout_secs: i32,
    /// Routing: worker names, a JSON array (any of them; empty: any worker).
    pub worker_names: String,
    /// Routing: tag names, a JSON array (all of them).
    pub required_tags: String,
    /// The concurrency group its runs count against.
    pub concurrency_group_id: Option<Uuid>,
    pub revision: i64,
    pub created_at: DateTimeUtc,
    pub updated_at: DateTimeUtc,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}

impl Model {
    /// The worker names its runs may execute on (empty: any).
    pub fn workers(&self) -> Vec<String> {
        names(&self.worker_names)
    }

    /// The tags the worker must carry.
    pub fn tags(&self) -> Vec<String> {
        names(&self.required_tags)
    }

    pub fn to_summary(&self) -> AgentSummary {
        AgentSummary {
            id: self.id,
            name: self.name.clone(),
            model: self.model.clone(),
        }
    }
}

/// A stored list of names (written by `to_names`; anything else reads as none).
fn names(stored: &str) -> Vec<String> {
    serde_json::from_str(stored).unwrap_or_default()
}

/// A list of names as stored.
pub fn to_names(names: &[String]) -> String {
    serde_json::to_string(names).unwrap_or_else(|_| "[]".to_owned())
}

/// The names of the agents in a concurrency group.
pub async fn in_group(db: &impl ConnectionTrait, group: Uuid) -> Result<Vec<String>, DbErr> {
    Ok(Entity::find()
        .filter(Column::ConcurrencyGroupId.eq(group))
        .order_by_asc(Column::Name)
        .all(db)
        .await?
        .into_iter()
        .map(|agent| agent.name)
        .collect())
}

/// The names of the agents that require `tag`.
pub async fn requiring_tag(db: &impl ConnectionTrait, tag: &str) -> Result<Vec<String>, DbErr> {
    Ok(Entity::find()
        .filter(Column::RequiredTags.ne("[]"))
        .order_by_asc(Column::Name)
        .all(db)
        .await?
        .into_iter()
        .filter(|agent| agent.tags().iter().any(|t| t == tag))
        .map(|agent| agent.name)
        .collect())
}

pub async fn find(db: &impl ConnectionTrait, id: Uuid) -> Result<Option<Model>, DbErr> {
    Entity::find_by_id(id).one(db).await
}

pub async fn find_many(db: &impl ConnectionTrait, ids: &[Uuid]) -> Result<Vec<Model>, DbErr> {
    if ids.is_empty() {
        return Ok(Vec::new());
    }
    Entity::find()
        .filter(Column::Id.is_in(ids.iter().copied()))
        .order_by_asc(Column::Id)
        .all(db)
        .await
}

/// Agents in creation order (ids are time-ordered), with the total count.
pub async fn list(
    db: &impl ConnectionTrait,
    limit: u64,
    offset: u64,
) -> Result<(Vec<Model>, u64), DbErr> {
    super::paginate(db, Entity::find(), Column::Id, limit, offset).await
}

pub async fn insert(db: &impl ConnectionTrait, model: Model) -> Result<Model, DbErr> {
    super::insert_returning::<Entity>(db, ActiveModel::from(model)).await
}

/// Replaces an agent's configuration and bumps its revision; returns it as stored,
/// `None` if it does not exist.
pub async fn update(db: &impl ConnectionTrait, model: Model) -> Result<Option<Model>, DbErr> {
    Ok(Entity::update_many()
        .col_expr(Column::Name, Expr::value(model.name))
        .col_expr(Column::Description, Expr::value(model.description))
        .col_expr(Column::ProviderId, Expr::value(model.provider_id))
        .col_expr(Column::Model, Expr::value(model.model))
        .col_expr(Column::SystemPrompt, Expr::value(model.system_prompt))
        .col_expr(Column::UserPrompt, Expr::value(model.user_prompt))
        .col_expr(Column::Temperature, Expr::value(model.temperature))
        .col_expr(Column::MaxTokens, Expr::value(model.max_tokens))
        .col_expr(Column::MaxRetries, Expr::value(model.max_retries))
        .col_expr(Column::TimeoutSecs, Expr::value(model.timeout_secs))
        .col_expr(
            Column::QueueTimeoutSecs,
            Expr::value(model.queue_timeout_secs),
        )
        .col_expr(Column::WorkerNames, Expr::value(model.worker_names))
        .col_expr(Column::RequiredTags, Expr::value(model.required_tags))
        .col_expr(
            Column::ConcurrencyGroupId,
            Expr::value(model.concurrency_group_id),
        )
        .col_expr(Column::Revision, Expr::col(Column::Revision).add(1))
        .col_expr(Column::UpdatedAt, Expr::value(model.updated_at))
        .filter(Column::Id.eq(model.id))
        .exec_with_returning(db)
        .await?
        .pop())
}

/// Hard delete; assignments go with it (ON DELETE CASCADE). `false` if it did not exist.
pub async fn delete(db: &impl ConnectionTrait, id: Uuid) -> Result<bool, DbErr> {
    let result = Entity::delete_by_id(id).exec(db).await?;
    Ok(result.rows_affected == 1)
}
