//! Runs the migrations on real SQLite and PostgreSQL databases and checks the resulting schema.
//!
//! Every test owns its database: a temp-file SQLite database, or a PostgreSQL database with a
//! random name created on the local server (trust auth) and dropped afterwards. PostgreSQL
//! being unreachable is a failure, never a skip.
#![expect(clippy::expect_used, reason = "a test stops at the first broken step")]

mod support;

use migration::Migrator;
use migration::sea_orm_migration::MigratorTrait;
use sea_orm::prelude::{ChronoDateTimeUtc, Json, Uuid};
use sea_orm::sea_query::{Expr, ExprTrait, Query};
use sea_orm::{ConnectionTrait, DatabaseConnection, DbErr, SqlErr, Value};
use support::{our_indexes, our_tables, with_postgres, with_sqlite};

const TABLES: [&str; 14] = [
    "agent_configs",
    "agent_task_assignments",
    "concurrency_groups",
    "llm_providers",
    "run_events",
    "runs",
    "schedules",
    "tags",
    "task_configs",
    "worker_health",
    "worker_tags",
    "worker_token_tags",
    "worker_tokens",
    "workers",
];

const INDEXES: [&str; 19] = [
    "ix_agent_configs_provider_id",
    "ix_agent_task_assignments_task_id",
    "ix_run_events_run_id",
    "ix_runs_agent_id",
    "ix_runs_group",
    "ix_runs_lease_expires_at",
    "ix_runs_queue",
    "ix_runs_queue_deadline",
    "ix_runs_task_id",
    "ix_runs_worker_id",
    "ix_schedules_assignment",
    "ix_schedules_due",
    "ix_worker_health_worker_at",
    "ix_worker_tags_tag",
    "ux_agent_configs_name",
    "ux_llm_providers_active_name",
    "ux_runs_schedule_fire",
    "ux_runs_schedule_pending",
    "ux_task_configs_name",
];

// ---------------------------------------------------------------------------------------------
// Tests

#[tokio::test]
async fn sqlite_migrations_go_up_down_and_up_again() {
    with_sqlite(|db| async move { up_down_up(&db).await }).await;
}

#[tokio::test]
async fn postgres_migrations_go_up_down_and_up_again() {
    with_postgres(|db| async move { up_down_up(&db).await }).await;
}

#[tokio::test]
async fn sqlite_provider_names_are_unique_among_active_rows_only() {
    with_sqlite(|db| async move { provider_names_unique_among_active(&db).await }).await;
}

#[tokio::test]
async fn postgres_provider_names_are_unique_among_active_rows_only() {
    with_postgres(|db| async move { provider_names_unique_among_active(&db).await }).await;
}

#[tokio::test]
async fn sqlite_foreign_keys_restrict_and_cascade_as_designed() {
    with_sqlite(|db| async move { foreign_keys_and_uniques(&db).await }).await;
}

#[tokio::test]
async fn postgres_foreign_keys_restrict_and_cascade_as_designed() {
    with_postgres(|db| async move { foreign_keys_and_uniques(&db).await }).await;
}

#[tokio::test]
async fn sqlite_entity_column_types_round_trip() {
    with_sqlite(|db| async move { entity_types_round_trip(&db).await }).await;
}

#[tokio::test]
async fn postgres_entity_column_types_round_trip() {
    with_postgres(|db| async move { entity_types_round_trip(&db).await }).await;
}

// ---------------------------------------------------------------------------------------------
// Scenarios shared by both backends

async fn up_down_up(db: &DatabaseConnection) {
    // Arrange: a fresh, empty database.
    assert_eq!(our_tables(db).await, Vec::<String>::new());

    // Act + Assert: up creates every table and named index.
    Migrator::up(db, None).await.expect("first up");
    assert_eq!(our_tables(db).await, TABLES);
    assert_eq!(our_indexes(db).await, INDEXES);
    let pending = Migrator::get_pending_migrations(db)
        .await
        .expect("pending migrations");
    assert!(pending.is_empty(), "nothing pending after up");

    // down removes all of it.
    Migrator::down(db, None).await.expect("down");
    assert_eq!(our_tables(db).await, Vec::<String>::new());
    assert_eq!(our_indexes(db).await, Vec::<String>::new());
    let applied = Migrator::get_applied_migrations(db)
        .await
        .expect("applied migrations");
    assert!(applied.is_empty(), "nothing applied after down");

    // and up works again after down.
    Migrator::up(db, None).await.expect("second up");
    assert_eq!(our_tables(db).await, TABLES);
    assert_eq!(our_indexes(db).await, INDEXES);
}

async fn provider_names_unique_among_active(db: &DatabaseConnection) {
    Migrator::up(db, None).await.expect("up");

    // An active provider and a soft-deleted one may share a name.
    insert_provider(db, 1, "local", true)
        .await
        .expect("first active");
    insert_provider(db, 2, "local", false)
        .await
        .expect("inactive duplicate is allowed");
    insert_provider(db, 3, "local", false)
        .await
        .expect("several inactive duplicates are allowed");

    // A second active one may not.
    let err = insert_provider(db, 4, "local", true)
        .await
        .expect_err("second active duplicate must be rejected");
    assert_eq!(violation(&err), Some(Violation::Unique), "got {err:?}");

    // Soft-deleting the active one frees the name again.
    db.execute(
        Query::update()
            .table("llm_providers")
            .value("is_active", false)
            .and_where(Expr::col("id").eq(id(1))),
    )
    .await
    .expect("soft delete");
    insert_provider(db, 4, "local", true)
        .await
        .expect("name is free once the active row is soft-deleted");
}

async fn foreign_keys_and_uniques(db: &DatabaseConnection) {
    Migrator::up(db, None).await.expect("up");
    insert_provider(db, 1, "local", true)
        .await
        .expect("provider");
    insert_agent(db, 10, "writer", 1).await.expect("agent");
    insert_task(db, 20, "summarize").await.expect("task");
    insert_assignment(db, 10, 20).await.expect("assignment");

    let cases: Vec<(Result<(), DbErr>, &str, Violation)> = vec![
        (
            insert_agent(db, 11, "writer", 1).await,
            "agent names are unique",
            Violation::Unique,
        ),
        (
            insert_task(db, 21, "summarize").await,
            "task names are unique",
            Violation::Unique,
        ),
        (
            insert_assignment(db, 10, 20).await,
            "an assignment exists once",
            Violation::Unique,
        ),
        (
            insert_agent(db, 12, "orphan", 99).await,
            "an agent needs an existing provider",
            Violation::ForeignKey,
        ),
        (
            insert_assignment(db, 10, 99).await,
            "an assignment needs an existing task",
            Violation::ForeignKey,
        ),
        (
            delete_by_id(db, "llm_providers", 1).await,
            "a provider used by an agent cannot be deleted",
            Violation::ForeignKey,
        ),
        (
            delete_by_id(db, "task_configs", 20).await,
            "an assigned task cannot be deleted",
            Violation::ForeignKey,
        ),
    ];
    // sql_err() is what the server maps to 409s, so it must classify both backends' errors.
    for (result, why, expected) in cases {
        let err = result.expect_err(why);
        assert_eq!(violation(&err), Some(expected), "{why}: got {err:?}");
    }

    // Deleting an agent takes its assignments with it; then the task is free to go.
    delete_by_id(db, "agent_configs", 10)
        .await
        .expect("agent delete cascades");
    assert_eq!(count(db, "agent_task_assignments").await, 0);
    delete_by_id(db, "task_configs", 20)
        .await
        .expect("unassigned task can be deleted");
}

/// The server's own entities read back exactly what they wrote, on both backends (uuid →
/// BLOB, JSON/timestamps → TEXT and enums → their wire names on SQLite).
async fn entity_types_round_trip(db: &DatabaseConnection) {
    use agentry::db::{Wire, providers, tasks};
    use contracts::{ProviderKind, ValidationStatus};
    use sea_orm::{ActiveModelTrait, ColumnTrait, EntityTrait, IntoActiveModel, QueryFilter};

    Migrator::up(db, None).await.expect("up");
    // PostgreSQL keeps microseconds, so the sample has no finer digits.
    let at = ChronoDateTimeUtc::from_timestamp_micros(1_790_000_000_123_456).expect("timestamp");
    let provider = providers::Model {
        id: id(1),
        name: "local".into(),
        kind: Wire(ProviderKind::Ollama),
        base_url: Some("http://127.0.0.1:11434".into()),
        api_key_ciphertext: Some(vec![0, 1, 2, 255]),
        api_key_hint: None,
        credential_location: Wire(contracts::CredentialLocation::Worker),
        credential_workers: r#"["gpu-1"]"#.into(),
        checked_by: Some("gpu-1".into()),
        validation_status: Wire(ValidationStatus::Connected),
        validation_error: None,
        validated_at: Some(at),
        latency_ms: Some(42),
        models: Json::Array(vec![Json::String("llama3".into())]),
        is_active: true,
        revision: 1,
        created_at: at,
        updated_at: at,
    };
    provider
        .clone()
        .into_active_model()
        .insert(db)
        .await
        .expect("insert provider");
    let task = tasks::Model {
        id: id(2),
        name: "summarize".into(),
        description: String::new(),
        request_schema: None,
        response_schema: Json::Object(Default::default()),
        revision: 1,
        created_at: at,
        updated_at: at,
    };
    task.clone()
        .into_active_model()
        .insert(db)
        .await
        .expect("insert task");

    let found = providers::Entity::find()
        .filter(providers::Column::IsActive.eq(true))
        .filter(providers::Column::Name.eq("local"))
        .one(db)
        .await
        .expect("select provider");
    assert_eq!(found, Some(provider));
    let found = tasks::Entity::find_by_id(id(2))
        .one(db)
        .await
        .expect("select task");
    assert_eq!(found, Some(task));
}

#[derive(Debug, PartialEq, Eq)]
enum Violation {
    Unique,
    ForeignKey,
}

fn violation(err: &DbErr) -> Option<Violation> {
    match err.sql_err()? {
        SqlErr::UniqueConstraintViolation(_) => Some(Violation::Unique),
        SqlErr::ForeignKeyConstraintViolation(_) => Some(Violation::ForeignKey),
        _ => None,
    }
}

// ---------------------------------------------------------------------------------------------
// Row helpers (values go through sea-query so each backend gets its own encoding)

fn id(n: u128) -> Uuid {
    Uuid::from_u128(n)
}

fn now() -> ChronoDateTimeUtc {
    ChronoDateTimeUtc::from(std::time::SystemTime::now())
}

async fn insert_provider(
    db: &DatabaseConnection,
    n: u128,
    name: &str,
    is_active: bool,
) -> Result<(), DbErr> {
    let values: [Value; 15] = [
        id(n).into(),
        name.into(),
        "openai".into(),
        Value::String(None),
        vec![1_u8, 2, 3].into(),
        "sk-…abcd".into(),
        "pending".into(),
        Value::String(None),
        Value::ChronoDateTimeUtc(None),
        Value::BigInt(None),
        Json::Array(vec![Json::String("gpt-4o-mini".into())]).into(),
        is_active.into(),
        1_i64.into(),
        now().into(),
        now().into(),
    ];
    db.execute(
        Query::insert()
            .into_table("llm_providers")
            .columns([
                "id",
                "name",
                "kind",
                "base_url",
                "api_key_ciphertext",
                "api_key_hint",
                "validation_status",
                "validation_error",
                "validated_at",
                "latency_ms",
                "models",
                "is_active",
                "revision",
                "created_at",
                "updated_at",
            ])
            .values_panic(values.into_iter().map(Expr::val)),
    )
    .await
    .map(drop)
}

async fn insert_agent(
    db: &DatabaseConnection,
    n: u128,
    name: &str,
    provider: u128,
) -> Result<(), DbErr> {
    let values: [Value; 14] = [
        id(n).into(),
        name.into(),
        "writes things".into(),
        id(provider).into(),
        "gpt-4o-mini".into(),
        "You write.".into(),
        Value::String(None),
        0.2_f64.into(),
        512_i32.into(),
        2_i32.into(),
        60_i32.into(),
        1_i64.into(),
        now().into(),
        now().into(),
    ];
    db.execute(
        Query::insert()
            .into_table("agent_configs")
            .columns([
                "id",
                "name",
                "description",
                "provider_id",
                "model",
                "system_prompt",
                "user_prompt",
                "temperature",
                "max_tokens",
                "max_retries",
                "timeout_secs",
                "revision",
                "created_at",
                "updated_at",
            ])
            .values_panic(values.into_iter().map(Expr::val)),
    )
    .await
    .map(drop)
}

async fn insert_task(db: &DatabaseConnection, n: u128, name: &str) -> Result<(), DbErr> {
    let schema = Json::Object(
        [("type".to_owned(), Json::String("object".into()))]
            .into_iter()
            .collect(),
    );
    let values: [Value; 8] = [
        id(n).into(),
        name.into(),
        "sums up".into(),
        Value::Json(None),
        schema.into(),
        1_i64.into(),
        now().into(),
        now().into(),
    ];
    db.execute(
        Query::insert()
            .into_table("task_configs")
            .columns([
                "id",
                "name",
                "description",
                "request_schema",
                "response_schema",
                "revision",
                "created_at",
                "updated_at",
            ])
            .values_panic(values.into_iter().map(Expr::val)),
    )
    .await
    .map(drop)
}

async fn insert_assignment(db: &DatabaseConnection, agent: u128, task: u128) -> Result<(), DbErr> {
    let values: [Value; 3] = [id(agent).into(), id(task).into(), now().into()];
    db.execute(
        Query::insert()
            .into_table("agent_task_assignments")
            .columns(["agent_id", "task_id", "created_at"])
            .values_panic(values.into_iter().map(Expr::val)),
    )
    .await
    .map(drop)
}

async fn delete_by_id(db: &DatabaseConnection, table: &'static str, n: u128) -> Result<(), DbErr> {
    db.execute(
        Query::delete()
            .from_table(table)
            .and_where(Expr::col("id").eq(id(n))),
    )
    .await
    .map(drop)
}

async fn count(db: &DatabaseConnection, table: &'static str) -> i64 {
    let row = db
        .query_one(
            Query::select()
                .expr_as(Expr::cust("COUNT(*)"), "n")
                .from(table),
        )
        .await
        .expect("count query")
        .expect("count row");
    row.try_get::<i64>("", "n").expect("count value")
}
