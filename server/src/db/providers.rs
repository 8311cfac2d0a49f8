//! The `llm_providers` table.

use contracts::{CredentialLocation, Provider, ProviderKind, ProviderSummary, ValidationStatus};
use sea_orm::entity::prelude::*;
use sea_orm::{ConnectionTrait, DbErr, ExprTrait, QueryOrder};

use super::{Wire, to_u64};

#[derive(Clone, Debug, PartialEq, DeriveEntityModel)]
#[sea_orm(table_name = "llm_providers")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Uuid,
    pub name: String,
    pub kind: Wire<ProviderKind>,
    pub base_url: Option<String>,
    pub api_key_ciphertext: Option<Vec<u8>>,
    pub api_key_hint: Option<String>,
    /// `server`: the key is sealed in `api_key_ciphertext`; `worker`: the server has none.
    pub credential_location: Wire<CredentialLocation>,
    /// Worker names that alone may run its calls, a JSON array (empty: any).
    pub credential_workers: String,
    /// The worker that ran the last check, when one did.
    pub checked_by: Option<String>,
    pub validation_status: Wire<ValidationStatus>,
    pub validation_error: Option<String>,
    pub validated_at: Option<DateTimeUtc>,
    pub latency_ms: Option<i64>,
    #[sea_orm(column_type = "JsonBinary")]
    pub models: Json,
    pub is_active: bool,
    pub revision: i64,
    pub created_at: DateTimeUtc,
    pub updated_at: DateTimeUtc,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}

impl Model {
    /// The wire form. The ciphertext never leaves this function.
    pub fn to_contract(&self) -> Provider {
        Provider {
            id: self.id,
            name: self.name.clone(),
            kind: *self.kind,
            base_url: self.base_url.clone(),
            has_api_key: self.api_key_ciphertext.is_some(),
            api_key_hint: self.api_key_hint.clone(),
            credential_location: *self.credential_location,
            credential_workers: self.key_workers(),
            checked_by: self.checked_by.clone(),
            validation_status: *self.validation_status,
            validation_error: self.validation_error.clone(),
            validated_at: self.validated_at,
            latency_ms: self.latency_ms.map(to_u64),
            models: serde_json::from_value(self.models.clone()).unwrap_or_default(),
            is_active: self.is_active,
            revision: to_u64(self.revision),
            created_at: self.created_at,
            updated_at: self.updated_at,
        }
    }

    /// The workers that alone may run its calls (empty: any).
    pub fn key_workers(&self) -> Vec<String> {
        serde_json::from_str(&self.credential_workers).unwrap_or_default()
    }

    /// Whether its key lives on workers.
    pub fn key_on_workers(&self) -> bool {
        *self.credential_location == CredentialLocation::Worker
    }

    pub fn to_summary(&self) -> ProviderSummary {
        ProviderSummary {
            id: self.id,
            name: self.name.clone(),
            kind: *self.kind,
            validation_status: *self.validation_status,
            is_active: self.is_active,
        }
    }
}

pub async fn find(db: &impl ConnectionTrait, id: Uuid) -> Result<Option<Model>, DbErr> {
    Entity::find_by_id(id).one(db).await
}

/// Active providers in creation order (ids are time-ordered).
pub async fn list_active(
    db: &impl ConnectionTrait,
    limit: u64,
    offset: u64,
) -> Result<(Vec<Model>, u64), DbErr> {
    let query = Entity::find().filter(Column::IsActive.eq(true));
    super::paginate(db, query, Column::Id, limit, offset).await
}

pub async fn find_many(db: &impl ConnectionTrait, ids: &[Uuid]) -> Result<Vec<Model>, DbErr> {
    if ids.is_empty() {
        return Ok(Vec::new());
    }
    Entity::find()
        .filter(Column::Id.is_in(ids.iter().copied()))
        .all(db)
        .await
}

pub async fn insert(db: &impl ConnectionTrait, model: Model) -> Result<Model, DbErr> {
    super::insert_returning::<Entity>(db, ActiveModel::from(model)).await
}

/// Replaces the configuration of an active provider, bumping its revision and resetting its
/// validation state. Returns the row as stored; `None` when no active provider has this id.
pub async fn update(db: &impl ConnectionTrait, model: Model) -> Result<Option<Model>, DbErr> {
    Ok(Entity::update_many()
        .col_expr(Column::Name, Expr::value(model.name))
        .col_expr(Column::Kind, Expr::value(model.kind))
        .col_expr(Column::BaseUrl, Expr::value(model.base_url))
        .col_expr(
            Column::ApiKeyCiphertext,
            Expr::value(model.api_key_ciphertext),
        )
        .col_expr(Column::ApiKeyHint, Expr::value(model.api_key_hint))
        .col_expr(
            Column::CredentialLocation,
            Expr::value(model.credential_location),
        )
        .col_expr(
            Column::CredentialWorkers,
            Expr::value(model.credential_workers),
        )
        .col_expr(Column::CheckedBy, Expr::value(Option::<String>::None))
        .col_expr(
            Column::ValidationStatus,
            Expr::value(Wire(ValidationStatus::Pending)),
        )
        .col_expr(Column::ValidationError, Expr::value(Option::<String>::None))
        .col_expr(Column::Revision, Expr::col(Column::Revision).add(1))
        .col_expr(Column::UpdatedAt, Expr::value(model.updated_at))
        .filter(Column::Id.eq(model.id))
        .filter(Column::IsActive.eq(true))
        .exec_with_returning(db)
        .await?
        .pop())
}

/// Deletes a provider no agent references; `Ok(false)` when agents still do (the caller then
/// soft-deletes). Relying on the foreign key makes this race-free.
pub async fn delete(db: &impl ConnectionTrait, id: Uuid) -> Result<bool, DbErr> {
    match Entity::delete_by_id(id).exec(db).await {
        Ok(_) => Ok(true),
        Err(err) => match err.sql_err() {
            Some(sea_orm::SqlErr::ForeignKeyConstraintViolation(_)) => Ok(false),
            _ => Err(err),
        },
    }
}

/// Hides a provider that agents still reference; returns it as stored.
pub async fn soft_delete(
    db: &impl ConnectionTrait,
    id: Uuid,
    now: DateTimeUtc,
) -> Result<Option<Model>, DbErr> {
    Ok(Entity::update_many()
        .col_expr(Column::IsActive, Expr::value(false))
        .col_expr(Column::Revision, Expr::col(Column::Revision).add(1))
        .col_expr(Column::UpdatedAt, Expr::value(now))
        .filter(Column::Id.eq(id))
        .exec_with_returning(db)
        .await?
        .pop())
}

/// Every provider with a stored key, for key rotation.
pub async fn with_keys(db: &impl ConnectionTrait) -> Result<Vec<Model>, DbErr> {
    Entity::find()
        .filter(Column::ApiKeyCiphertext.is_not_null())
        .order_by_asc(Column::Id)
        .all(db)
        .await
}

/// Replaces one ciphertext if it is still the one that was read (rotation may race an update).
pub async fn replace_ciphertext(
    db: &impl ConnectionTrait,
    id: Uuid,
    old: Vec<u8>,
    new: Vec<u8>,
) -> Result<bool, DbErr> {
    let result = Entity::update_many()
        .col_expr(Column::ApiKeyCiphertext, Expr::value(new))
        .filter(Column::Id.eq(id))
        .filter(Column::ApiKeyCiphertext.eq(old))
        .exec(db)
        .await?;
    Ok(result.rows_affected == 1)
}

/// The outcome of one connectivity check.
#[derive(Debug, Clone)]
pub struct ValidationResult {
    pub status: ValidationStatus,
    pub error: Option<String>,
    pub latency_ms: Option<i64>,
    /// `None` keeps the models found by the last successful check.
    pub models: Option<Vec<String>>,
    pub validated_at: DateTimeUtc,
    /// The worker that ran the check (`None`: the server did).
    pub checked_by: Option<String>,
}

/// Marks an active provider's check as started and returns it as stored (the configuration
/// the check is about); `None` when it is gone or soft-deleted.
pub async fn set_validating(db: &impl ConnectionTrait, id: Uuid) -> Result<Option<Model>, DbErr> {
    Ok(Entity::update_many()
        .col_expr(
            Column::ValidationStatus,
            Expr::value(Wire(ValidationStatus::Validating)),
        )
        .filter(Column::Id.eq(id))
        .filter(Column::IsActive.eq(true))
        .exec_with_returning(db)
        .await?
        .pop())
}

/// Stores a check's outcome, if the configuration is still at `revision` (an update during
/// the check makes this result stale; the update has queued a fresh check). Returns the row
/// as stored.
pub async fn set_validation_result(
    db: &impl ConnectionTrait,
    id: Uuid,
    revision: i64,
    result: ValidationResult,
) -> Result<Option<Model>, DbErr> {
    let mut update = Entity::update_many()
        .col_expr(Column::ValidationStatus, Expr::value(Wire(result.status)))
        .col_expr(
            Column::ValidationError,
            Expr::value(result.error.map(super::storable)),
        )
        .col_expr(Column::LatencyMs, Expr::value(result.latency_ms))
        .col_expr(Column::CheckedBy, Expr::value(result.checked_by))
        .col_expr(Column::ValidatedAt, Expr::value(Some(result.validated_at)));
    if let Some(models) = result.models {
        let models: Vec<String> = models.into_iter().map(super::storable).collect();
        update = update.col_expr(Column::Models, Expr::value(serde_json::json!(models)));
    }
    Ok(update
        .filter(Column::Id.eq(id))
        .filter(Column::Revision.eq(revision))
        .exec_with_returning(db)
        .await?
        .pop())
}

/// Ids of active providers in one of `statuses`.
pub async fn ids_with_status(
    db: &impl ConnectionTrait,
    statuses: &[ValidationStatus],
) -> Result<Vec<Uuid>, DbErr> {
    Ok(Entity::find()
        .filter(Column::IsActive.eq(true))
        .filter(Column::ValidationStatus.is_in(statuses.iter().copied().map(Wire)))
        .all(db)
        .await?
        .into_iter()
        .map(|p| p.id)
        .collect())
}

/// Ids of the active providers named `names` whose keys live on workers.
pub async fn active_on_workers_named(
    db: &impl ConnectionTrait,
    names: &[String],
) -> Result<Vec<Uuid>, DbErr> {
    if names.is_empty() {
        return Ok(Vec::new());
    }
    Ok(Entity::find()
        .filter(Column::IsActive.eq(true))
        .filter(Column::CredentialLocation.eq(Wire(CredentialLocation::Worker)))
        .filter(Column::Name.is_in(names.iter().cloned()))
        .all(db)
        .await?
        .into_iter()
        .map(|p| p.id)
        .collect())
}

/// Ids of every active provider.
pub async fn active_ids(db: &impl ConnectionTrait) -> Result<Vec<Uuid>, DbErr> {
    Ok(Entity::find()
        .filter(Column::IsActive.eq(true))
        .all(db)
        .await?
        .into_iter()
        .map(|p| p.id)
        .collect())
}
