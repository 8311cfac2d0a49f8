//! Worker health: the latest report on the worker's row (`workers.health`, `health_at`) and
//! the reports of the last hour in `worker_health`, pruned as new ones arrive.

use chrono::{DateTime, Utc};
use contracts::{WorkerHealth, WorkerHealthSample};
use sea_orm::entity::prelude::*;
use sea_orm::{ConnectionTrait, DbErr, QueryOrder};

use super::workers;

/// How long reports are kept.
pub const HISTORY: chrono::Duration = chrono::Duration::hours(1);

pub mod sample {
    use sea_orm::entity::prelude::*;

    #[derive(Clone, Debug, PartialEq, DeriveEntityModel)]
    #[sea_orm(table_name = "worker_health")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub id: Uuid,
        pub worker_id: Uuid,
        pub at: DateTimeUtc,
        /// The report as JSON (`contracts::WorkerHealth`).
        pub health: String,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

/// Stores a report as the worker's latest and in its history, dropping reports older than
/// `HISTORY`.
pub async fn record(
    db: &impl ConnectionTrait,
    worker_id: Uuid,
    health: &WorkerHealth,
    at: DateTime<Utc>,
) -> Result<(), DbErr> {
    let text = serde_json::to_string(health).map_err(|e| DbErr::Json(e.to_string()))?;
    workers::Entity::update_many()
        .col_expr(workers::Column::Health, Expr::value(Some(text.clone())))
        .col_expr(workers::Column::HealthAt, Expr::value(Some(at)))
        .filter(workers::Column::Id.eq(worker_id))
        .exec(db)
        .await?;
    sample::Entity::insert(sample::ActiveModel {
        id: sea_orm::ActiveValue::Set(crate::domain::new_id()),
        worker_id: sea_orm::ActiveValue::Set(worker_id),
        at: sea_orm::ActiveValue::Set(at),
        health: sea_orm::ActiveValue::Set(text),
    })
    .exec_without_returning(db)
    .await?;
    sample::Entity::delete_many()
        .filter(sample::Column::WorkerId.eq(worker_id))
        .filter(sample::Column::At.lt(at - HISTORY))
        .exec(db)
        .await?;
    Ok(())
}

/// A worker's reports of the last hour, oldest first.
pub async fn history(
    db: &impl ConnectionTrait,
    worker_id: Uuid,
) -> Result<Vec<WorkerHealthSample>, DbErr> {
    Ok(sample::Entity::find()
        .filter(sample::Column::WorkerId.eq(worker_id))
        .order_by_asc(sample::Column::At)
        .all(db)
        .await?
        .into_iter()
        .filter_map(|row| {
            let health = serde_json::from_str(&row.health).ok()?;
            Some(WorkerHealthSample { at: row.at, health })
        })
        .collect())
}
