//! The `worker_tokens` table: single-use registration tokens, stored as their hash.

use contracts::{WorkerToken, WorkerTokenStatus};
use sea_orm::entity::prelude::*;
use sea_orm::{ConnectionTrait, DbErr, QueryOrder};

#[derive(Clone, Debug, PartialEq, DeriveEntityModel)]
#[sea_orm(table_name = "worker_tokens")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Uuid,
    pub token_hash: String,
    pub note: String,
    pub expires_at: DateTimeUtc,
    pub used_at: Option<DateTimeUtc>,
    pub worker_id: Option<Uuid>,
    pub created_at: DateTimeUtc,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}

impl Model {
    /// The token as listed, with the tags it gives (sorted names).
    pub fn to_contract(&self, now: DateTimeUtc, tags: Vec<String>) -> WorkerToken {
        let status = if self.used_at.is_some() {
            WorkerTokenStatus::Used
        } else if self.expires_at <= now {
            WorkerTokenStatus::Expired
        } else {
            WorkerTokenStatus::Unused
        };
        WorkerToken {
            id: self.id,
            note: self.note.clone(),
            status,
            expires_at: self.expires_at,
            used_at: self.used_at,
            worker_id: self.worker_id,
            tags,
            created_at: self.created_at,
        }
    }
}

pub async fn insert(db: &impl ConnectionTrait, row: Model) -> Result<Model, DbErr> {
    super::insert_returning::<Entity>(db, ActiveModel::from(row)).await
}

/// Newest first.
pub async fn list(db: &impl ConnectionTrait) -> Result<Vec<Model>, DbErr> {
    Entity::find().order_by_desc(Column::Id).all(db).await
}

pub async fn find(db: &impl ConnectionTrait, id: Uuid) -> Result<Option<Model>, DbErr> {
    Entity::find_by_id(id).one(db).await
}

pub async fn find_by_hash(
    db: &impl ConnectionTrait,
    token_hash: &str,
) -> Result<Option<Model>, DbErr> {
    Entity::find()
        .filter(Column::TokenHash.eq(token_hash))
        .one(db)
        .await
}

/// Uses the token for `worker_id`, if it is unused and unexpired: one statement, so two
/// registrations racing with one token cannot both succeed.
pub async fn redeem(
    db: &impl ConnectionTrait,
    token_hash: &str,
    worker_id: Uuid,
    now: DateTimeUtc,
) -> Result<Option<Uuid>, DbErr> {
    let updated = Entity::update_many()
        .col_expr(Column::UsedAt, Expr::value(Some(now)))
        .col_expr(Column::WorkerId, Expr::value(Some(worker_id)))
        .filter(Column::TokenHash.eq(token_hash))
        .filter(Column::UsedAt.is_null())
        .filter(Column::ExpiresAt.gt(now))
        .exec_with_returning(db)
        .await?;
    Ok(updated.first().map(|token| token.id))
}

/// Deletes an unused token; `false` when there is none (or it was used).
pub async fn delete_unused(db: &impl ConnectionTrait, id: Uuid) -> Result<bool, DbErr> {
    let deleted = Entity::delete_many()
        .filter(Column::Id.eq(id))
        .filter(Column::UsedAt.is_null())
        .exec(db)
        .await?;
    Ok(deleted.rows_affected == 1)
}
