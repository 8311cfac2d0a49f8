//! Creates the configuration tables: providers, agents, tasks and agent↔task assignments.
//!
//! Column types come from `sea_orm_migration::schema`, which renders portable DDL: on SQLite
//! uuids are stored as 16-byte BLOBs, JSON and timestamps as TEXT and booleans as 0/1; on
//! PostgreSQL they are `uuid`, `jsonb`, `timestamptz` and `bool`.
//!
//! Foreign keys are declared inside `CREATE TABLE` because SQLite cannot add them later.
//! "Refuse to delete a referenced row" is spelled `NO ACTION`, not `RESTRICT`: on SQLite a
//! RESTRICT violation reports extended code 1811 (SQLITE_CONSTRAINT_TRIGGER), which
//! `DbErr::sql_err()` does not recognise, while NO ACTION reports 787 (→
//! `ForeignKeyConstraintViolation`). For non-deferred constraints both refuse the delete, on
//! both backends.
//! SQLite ignores constraint names on foreign keys (sea-query does not emit them there), so
//! the names below only show up on PostgreSQL; indexes are named on both.

use sea_orm_migration::{prelude::*, schema::*};

const UX_PROVIDERS_ACTIVE_NAME: &str = "ux_llm_providers_active_name";
const FK_AGENT_CONFIGS_PROVIDER: &str = "fk_agent_configs_provider";
const IX_AGENT_CONFIGS_PROVIDER_ID: &str = "ix_agent_configs_provider_id";
const UX_AGENT_CONFIGS_NAME: &str = "ux_agent_configs_name";
const UX_TASK_CONFIGS_NAME: &str = "ux_task_configs_name";
const PK_AGENT_TASK_ASSIGNMENTS: &str = "pk_agent_task_assignments";
const FK_ASSIGNMENTS_AGENT: &str = "fk_agent_task_assignments_agent";
const FK_ASSIGNMENTS_TASK: &str = "fk_agent_task_assignments_task";
const IX_ASSIGNMENTS_TASK_ID: &str = "ix_agent_task_assignments_task_id";

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        create_llm_providers(manager).await?;
        create_agent_configs(manager).await?;
        create_task_configs(manager).await?;
        create_agent_task_assignments(manager).await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        // Children before parents so no foreign key blocks a drop. Dropping a table drops its
        // indexes and constraints on both backends.
        for table in [
            AgentTaskAssignments::Table.into_iden(),
            TaskConfigs::Table.into_iden(),
            AgentConfigs::Table.into_iden(),
            LlmProviders::Table.into_iden(),
        ] {
            manager
                .drop_table(Table::drop().table(table).to_owned())
                .await?;
        }
        Ok(())
    }

    // SQLite has transactional DDL too: a failed step must not leave half a schema behind
    // (sea-orm only wraps PostgreSQL migrations in a transaction by default).
    fn use_transaction(&self) -> Option<bool> {
        Some(true)
    }
}

async fn create_llm_providers(manager: &SchemaManager<'_>) -> Result<(), DbErr> {
    manager
        .create_table(
            Table::create()
                .table(LlmProviders::Table)
                .col(pk_uuid(LlmProviders::Id))
                .col(string(LlmProviders::Name))
                .col(string(LlmProviders::Kind))
                .col(string_null(LlmProviders::BaseUrl))
                .col(blob_null(LlmProviders::ApiKeyCiphertext))
                .col(string_null(LlmProviders::ApiKeyHint))
                .col(string(LlmProviders::ValidationStatus))
                .col(text_null(LlmProviders::ValidationError))
                .col(timestamp_with_time_zone_null(LlmProviders::ValidatedAt))
                .col(big_integer_null(LlmProviders::LatencyMs))
                .col(json_binary(LlmProviders::Models))
                .col(boolean(LlmProviders::IsActive))
                .col(big_integer(LlmProviders::Revision))
                .col(timestamp_with_time_zone(LlmProviders::CreatedAt))
                .col(timestamp_with_time_zone(LlmProviders::UpdatedAt))
                .to_owned(),
        )
        .await?;
    // Soft-deleted providers keep their name, so the name only has to be unique among active
    // rows: a partial index (`WHERE is_active`). Both backends support it, and on SQLite the
    // predicate holds for the 1 that sqlx stores for `true`.
    manager.create_index(active_provider_name_index()).await
}

fn active_provider_name_index() -> IndexCreateStatement {
    Index::create()
        .name(UX_PROVIDERS_ACTIVE_NAME)
        .table(LlmProviders::Table)
        .col(LlmProviders::Name)
        .unique()
        .and_where(Expr::col(LlmProviders::IsActive))
        .to_owned()
}

async fn create_agent_configs(manager: &SchemaManager<'_>) -> Result<(), DbErr> {
    manager
        .create_table(
            Table::create()
                .table(AgentConfigs::Table)
                .col(pk_uuid(AgentConfigs::Id))
                .col(string(AgentConfigs::Name))
                .col(text(AgentConfigs::Description))
                .col(uuid(AgentConfigs::ProviderId))
                .col(string(AgentConfigs::Model))
                .col(text(AgentConfigs::SystemPrompt))
                .col(text_null(AgentConfigs::UserPrompt))
                .col(double_null(AgentConfigs::Temperature))
                .col(integer_null(AgentConfigs::MaxTokens))
                .col(integer(AgentConfigs::MaxRetries))
                .col(integer(AgentConfigs::TimeoutSecs))
                .col(big_integer(AgentConfigs::Revision))
                .col(timestamp_with_time_zone(AgentConfigs::CreatedAt))
                .col(timestamp_with_time_zone(AgentConfigs::UpdatedAt))
                // A provider referenced by an agent is soft-deleted instead (DESIGN §2).
                .foreign_key(
                    ForeignKey::create()
                        .name(FK_AGENT_CONFIGS_PROVIDER)
                        .from(AgentConfigs::Table, AgentConfigs::ProviderId)
                        .to(LlmProviders::Table, LlmProviders::Id)
                        .on_delete(ForeignKeyAction::NoAction)
                        .on_update(ForeignKeyAction::NoAction),
                )
                .to_owned(),
        )
        .await?;
    manager
        .create_index(
            Index::create()
                .name(UX_AGENT_CONFIGS_NAME)
                .table(AgentConfigs::Table)
                .col(AgentConfigs::Name)
                .unique()
                .to_owned(),
        )
        .await?;
    manager
        .create_index(
            Index::create()
                .name(IX_AGENT_CONFIGS_PROVIDER_ID)
                .table(AgentConfigs::Table)
                .col(AgentConfigs::ProviderId)
                .to_owned(),
        )
        .await
}

async fn create_task_configs(manager: &SchemaManager<'_>) -> Result<(), DbErr> {
    manager
        .create_table(
            Table::create()
                .table(TaskConfigs::Table)
                .col(pk_uuid(TaskConfigs::Id))
                .col(string(TaskConfigs::Name))
                .col(text(TaskConfigs::Description))
                .col(json_binary_null(TaskConfigs::RequestSchema))
                .col(json_binary(TaskConfigs::ResponseSchema))
                .col(big_integer(TaskConfigs::Revision))
                .col(timestamp_with_time_zone(TaskConfigs::CreatedAt))
                .col(timestamp_with_time_zone(TaskConfigs::UpdatedAt))
                .to_owned(),
        )
        .await?;
    manager
        .create_index(
            Index::create()
                .name(UX_TASK_CONFIGS_NAME)
                .table(TaskConfigs::Table)
                .col(TaskConfigs::Name)
                .unique()
                .to_owned(),
        )
        .await
}

async fn create_agent_task_assignments(manager: &SchemaManager<'_>) -> Result<(), DbErr> {
    manager
        .create_table(
            Table::create()
                .table(AgentTaskAssignments::Table)
                .col(uuid(AgentTaskAssignments::AgentId))
                .col(uuid(AgentTaskAssignments::TaskId))
                .col(timestamp_with_time_zone(AgentTaskAssignments::CreatedAt))
                .primary_key(
                    Index::create()
                        .name(PK_AGENT_TASK_ASSIGNMENTS)
                        .col(AgentTaskAssignments::AgentId)
                        .col(AgentTaskAssignments::TaskId),
                )
                // Hard-deleting an agent takes its assignments with it (DESIGN §2).
                .foreign_key(
                    ForeignKey::create()
                        .name(FK_ASSIGNMENTS_AGENT)
                        .from(AgentTaskAssignments::Table, AgentTaskAssignments::AgentId)
                        .to(AgentConfigs::Table, AgentConfigs::Id)
                        .on_delete(ForeignKeyAction::Cascade)
                        .on_update(ForeignKeyAction::NoAction),
                )
                // A task that is still assigned cannot be deleted (409, DESIGN §2).
                .foreign_key(
                    ForeignKey::create()
                        .name(FK_ASSIGNMENTS_TASK)
                        .from(AgentTaskAssignments::Table, AgentTaskAssignments::TaskId)
                        .to(TaskConfigs::Table, TaskConfigs::Id)
                        .on_delete(ForeignKeyAction::NoAction)
                        .on_update(ForeignKeyAction::NoAction),
                )
                .to_owned(),
        )
        .await?;
    // The primary key (agent_id, task_id) already serves lookups by agent; "which agents run
    // this task" and the RESTRICT check on task deletion need task_id first.
    manager
        .create_index(
            Index::create()
                .name(IX_ASSIGNMENTS_TASK_ID)
                .table(AgentTaskAssignments::Table)
                .col(AgentTaskAssignments::TaskId)
                .to_owned(),
        )
        .await
}

#[derive(DeriveIden)]
enum LlmProviders {
    Table,
    Id,
    Name,
    Kind,
    BaseUrl,
    ApiKeyCiphertext,
    ApiKeyHint,
    ValidationStatus,
    ValidationError,
    ValidatedAt,
    LatencyMs,
    Models,
    IsActive,
    Revision,
    CreatedAt,
    UpdatedAt,
}

#[derive(DeriveIden)]
enum AgentConfigs {
    Table,
    Id,
    Name,
    Description,
    ProviderId,
    Model,
    SystemPrompt,
    UserPrompt,
    Temperature,
    MaxTokens,
    MaxRetries,
    TimeoutSecs,
    Revision,
    CreatedAt,
    UpdatedAt,
}

#[derive(DeriveIden)]
enum TaskConfigs {
    Table,
    Id,
    Name,
    Description,
    RequestSchema,
    ResponseSchema,
    Revision,
    CreatedAt,
    UpdatedAt,
}

#[derive(DeriveIden)]
enum AgentTaskAssignments {
    Table,
    AgentId,
    TaskId,
    CreatedAt,
}
