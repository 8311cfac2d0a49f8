//! Concurrency groups: `concurrency_groups` (a name and how many runs of its agents may hold a
//! worker at once, `max_running`), the group an agent is in
//! (`agent_configs.concurrency_group_id`) and the group each run counts against
//! (`runs.concurrency_group_id`, the agent's when the run was created).
//!
//! `ix_runs_group (status, concurrency_group_id, queued_at)` serves the three lookups of
//! the dispatcher: a group's oldest queued runs, the oldest runs of no group (`IS NULL` is an
//! equality for the index), and how many runs of a group workers hold.
//!
//! No foreign keys on the two new columns (SQLite cannot add one to an existing table): the
//! service refuses to delete a group agents are in, and clears it from unfinished runs.

use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(ConcurrencyGroups::Table)
                    .col(pk_uuid(ConcurrencyGroups::Id))
                    .col(string_uniq(ConcurrencyGroups::Name))
                    .col(integer(ConcurrencyGroups::MaxRunning))
                    .col(string(ConcurrencyGroups::Note))
                    .col(timestamp_with_time_zone(ConcurrencyGroups::CreatedAt))
                    .col(timestamp_with_time_zone(ConcurrencyGroups::UpdatedAt))
                    .to_owned(),
            )
            .await?;
        manager
            .alter_table(
                Table::alter()
                    .table(AgentConfigs::Table)
                    .add_column(uuid_null(AgentConfigs::ConcurrencyGroupId))
                    .to_owned(),
            )
            .await?;
        manager
            .alter_table(
                Table::alter()
                    .table(Runs::Table)
                    .add_column(uuid_null(Runs::ConcurrencyGroupId))
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("ix_runs_group")
                    .table(Runs::Table)
                    .col(Runs::Status)
                    .col(Runs::ConcurrencyGroupId)
                    .col(Runs::QueuedAt)
                    .to_owned(),
            )
            .await?;
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_index(
                Index::drop()
                    .name("ix_runs_group")
                    .table(Runs::Table)
                    .to_owned(),
            )
            .await?;
        manager
            .alter_table(
                Table::alter()
                    .table(Runs::Table)
                    .drop_column(Runs::ConcurrencyGroupId)
                    .to_owned(),
            )
            .await?;
        manager
            .alter_table(
                Table::alter()
                    .table(AgentConfigs::Table)
                    .drop_column(AgentConfigs::ConcurrencyGroupId)
                    .to_owned(),
            )
            .await?;
        manager
            .drop_table(Table::drop().table(ConcurrencyGroups::Table).to_owned())
            .await
    }

    fn use_transaction(&self) -> Option<bool> {
        Some(true)
    }
}

#[derive(DeriveIden)]
enum ConcurrencyGroups {
    Table,
    Id,
    Name,
    MaxRunning,
    Note,
    CreatedAt,
    UpdatedAt,
}

#[derive(DeriveIden)]
enum AgentConfigs {
    Table,
    ConcurrencyGroupId,
}

#[derive(DeriveIden)]
enum Runs {
    Table,
    Status,
    ConcurrencyGroupId,
    QueuedAt,
}
