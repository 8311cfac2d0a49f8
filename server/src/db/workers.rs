//! The `workers` table: the built-in worker and every registered remote worker.

use sea_orm::entity::prelude::*;
use sea_orm::{ConnectionTrait, DbErr, ExprTrait, QueryOrder};

/// The name of the worker that runs inside the server.
pub const BUILTIN_NAME: &str = "built-in";

#[derive(Clone, Debug, PartialEq, DeriveEntityModel)]
#[sea_orm(table_name = "workers")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Uuid,
    pub name: String,
    pub builtin: bool,
    pub enabled: bool,
    /// SHA-256 of the worker's key (remote workers only).
    pub key_hash: Option<String>,
    pub slots: i32,
    pub build: Option<String>,
    pub os: Option<String>,
    pub arch: Option<String>,
    pub address: Option<String>,
    pub last_seen_at: Option<DateTimeUtc>,
    /// Providers (names) whose keys it reports holding, a JSON array; never a key.
    pub credentials: String,
    /// Its latest health report (`contracts::WorkerHealth` as JSON), and when it arrived.
    pub health: Option<String>,
    pub health_at: Option<DateTimeUtc>,
    /// Its outbound policy as it reported it (`contracts::worker::OutboundReach` as JSON).
    pub outbound: Option<String>,
    /// The provider kinds it reported serving, a JSON array.
    pub capabilities: Option<String>,
    pub created_at: DateTimeUtc,
    pub updated_at: DateTimeUtc,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}

pub async fn find(db: &impl ConnectionTrait, id: Uuid) -> Result<Option<Model>, DbErr> {
    Entity::find_by_id(id).one(db).await
}

pub async fn list(db: &impl ConnectionTrait) -> Result<Vec<Model>, DbErr> {
    Entity::find().order_by_asc(Column::Id).all(db).await
}

/// A new, enabled worker that has not connected yet.
fn new_row(
    id: Uuid,
    name: &str,
    builtin: bool,
    key_hash: Option<String>,
    slots: u32,
    now: DateTimeUtc,
) -> Model {
    Model {
        id,
        name: name.to_owned(),
        builtin,
        enabled: true,
        key_hash,
        slots: i32::try_from(slots).unwrap_or(i32::MAX),
        build: None,
        os: None,
        arch: None,
        address: None,
        last_seen_at: None,
        credentials: "[]".to_owned(),
        health: None,
        health_at: None,
        outbound: None,
        capabilities: None,
        created_at: now,
        updated_at: now,
    }
}

/// The built-in worker's row, created (enabled) on first start.
pub async fn builtin(
    db: &impl ConnectionTrait,
    id: Uuid,
    slots: u32,
    now: DateTimeUtc,
) -> Result<Model, DbErr> {
    if let Some(row) = Entity::find()
        .filter(Column::Builtin.eq(true))
        .one(db)
        .await?
    {
        return Ok(row);
    }
    let row = new_row(id, BUILTIN_NAME, true, None, slots, now);
    super::insert_returning::<Entity>(db, ActiveModel::from(row)).await
}

/// Stores a remote worker (`key_hash`: SHA-256 of its key); its slots are known once it
/// connects.
pub async fn insert_remote(
    db: &impl ConnectionTrait,
    id: Uuid,
    name: &str,
    key_hash: Option<String>,
    now: DateTimeUtc,
) -> Result<Model, DbErr> {
    let row = new_row(id, name, false, key_hash, 0, now);
    super::insert_returning::<Entity>(db, ActiveModel::from(row)).await
}

impl Model {
    /// Its latest health report.
    pub fn health(&self) -> Option<contracts::WorkerHealth> {
        serde_json::from_str(self.health.as_deref()?).ok()
    }

    /// The provider kinds it last reported serving (`None`: it never said).
    pub fn kinds(&self) -> Option<std::collections::BTreeSet<String>> {
        serde_json::from_str(self.capabilities.as_deref()?).ok()
    }

    /// Its outbound policy as it last reported it.
    pub fn outbound(&self) -> Option<contracts::worker::OutboundReach> {
        serde_json::from_str(self.outbound.as_deref()?).ok()
    }

    /// The providers whose keys it reports holding, sorted.
    pub fn credentials(&self) -> Vec<String> {
        serde_json::from_str(&self.credentials).unwrap_or_default()
    }
}

/// The providers whose keys a worker holds, as stored (sorted, each once).
pub fn to_credentials(names: &[String]) -> String {
    let names: std::collections::BTreeSet<&String> = names.iter().collect();
    serde_json::to_string(&names).unwrap_or_else(|_| "[]".to_owned())
}

/// Records the providers whose keys a worker reports holding; the row as stored when that
/// changed it, `None` otherwise.
pub async fn set_credentials(
    db: &impl ConnectionTrait,
    id: Uuid,
    names: &[String],
) -> Result<Option<Model>, DbErr> {
    let stored = to_credentials(names);
    Ok(Entity::update_many()
        .col_expr(Column::Credentials, Expr::value(stored.clone()))
        .filter(Column::Id.eq(id))
        .filter(Column::Credentials.ne(stored))
        .exec_with_returning(db)
        .await?
        .pop())
}

/// Records the outbound policy and the provider kinds a worker reports (empty kinds: not
/// said); the row as stored when that changed it.
pub async fn set_reported(
    db: &impl ConnectionTrait,
    id: Uuid,
    reach: Option<&contracts::worker::OutboundReach>,
    kinds: &[String],
) -> Result<Option<Model>, DbErr> {
    let outbound = reach.and_then(|r| serde_json::to_string(r).ok());
    let kinds: Option<String> = (!kinds.is_empty())
        .then(|| kinds.iter().collect::<std::collections::BTreeSet<_>>())
        .and_then(|set| serde_json::to_string(&set).ok());
    let differs = |column: Column, value: &Option<String>| match value {
        Some(text) => column.is_null().or(column.ne(text.clone())),
        None => column.is_not_null(),
    };
    let changed = differs(Column::Outbound, &outbound).or(differs(Column::Capabilities, &kinds));
    Ok(Entity::update_many()
        .col_expr(Column::Outbound, Expr::value(outbound))
        .col_expr(Column::Capabilities, Expr::value(kinds))
        .filter(Column::Id.eq(id))
        .filter(changed)
        .exec_with_returning(db)
        .await?
        .pop())
}

/// Records what a worker said about itself when it connected.
pub async fn connected(
    db: &impl ConnectionTrait,
    id: Uuid,
    hello: &contracts::worker::Hello,
    address: Option<String>,
    now: DateTimeUtc,
) -> Result<(), DbErr> {
    Entity::update_many()
        .col_expr(
            Column::Slots,
            Expr::value(i32::try_from(hello.slots).unwrap_or(i32::MAX)),
        )
        .col_expr(Column::Build, Expr::value(Some(hello.build.clone())))
        .col_expr(Column::Os, Expr::value(Some(hello.os.clone())))
        .col_expr(Column::Arch, Expr::value(Some(hello.arch.clone())))
        .col_expr(Column::Address, Expr::value(address))
        .col_expr(Column::LastSeenAt, Expr::value(Some(now)))
        .filter(Column::Id.eq(id))
        .exec(db)
        .await?;
    Ok(())
}

/// The worker was heard from at `now`.
pub async fn seen(db: &impl ConnectionTrait, id: Uuid, now: DateTimeUtc) -> Result<(), DbErr> {
    Entity::update_many()
        .col_expr(Column::LastSeenAt, Expr::value(Some(now)))
        .filter(Column::Id.eq(id))
        .exec(db)
        .await?;
    Ok(())
}

pub async fn set_enabled(
    db: &impl ConnectionTrait,
    id: Uuid,
    enabled: bool,
    now: DateTimeUtc,
) -> Result<Option<Model>, DbErr> {
    Ok(Entity::update_many()
        .col_expr(Column::Enabled, Expr::value(enabled))
        .col_expr(Column::UpdatedAt, Expr::value(now))
        .filter(Column::Id.eq(id))
        .exec_with_returning(db)
        .await?
        .pop())
}

/// The worker whose key hashes to `key_hash`.
pub async fn find_by_key_hash(
    db: &impl ConnectionTrait,
    key_hash: &str,
) -> Result<Option<Model>, DbErr> {
    Entity::find()
        .filter(Column::KeyHash.eq(key_hash))
        .one(db)
        .await
}

pub async fn find_by_name(db: &impl ConnectionTrait, name: &str) -> Result<Option<Model>, DbErr> {
    Entity::find().filter(Column::Name.eq(name)).one(db).await
}

pub async fn rename(
    db: &impl ConnectionTrait,
    id: Uuid,
    name: &str,
    now: DateTimeUtc,
) -> Result<Option<Model>, DbErr> {
    Ok(Entity::update_many()
        .col_expr(Column::Name, Expr::value(name.to_owned()))
        .col_expr(Column::UpdatedAt, Expr::value(now))
        .filter(Column::Id.eq(id))
        .exec_with_returning(db)
        .await?
        .pop())
}

/// Deletes a remote worker (the built-in one stays); whether it existed.
pub async fn delete_remote(db: &impl ConnectionTrait, id: Uuid) -> Result<bool, DbErr> {
    let deleted = Entity::delete_many()
        .filter(Column::Id.eq(id))
        .filter(Column::Builtin.eq(false))
        .exec(db)
        .await?;
    Ok(deleted.rows_affected == 1)
}
