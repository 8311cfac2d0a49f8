//! Creates `runs` (one execution of a task by an agent, with a snapshot of the configuration
//! it used) and `run_events` (each run's append-only history, ordered by id).
//!
//! Runs have no foreign keys to agents or tasks on purpose: deleting an agent must not delete
//! or block its history, which keeps its own snapshot.

use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(Runs::Table)
                    .col(pk_uuid(Runs::Id))
                    .col(uuid(Runs::AgentId))
                    .col(uuid(Runs::TaskId))
                    .col(string(Runs::Status))
                    .col(json_binary(Runs::Input))
                    .col(json_binary_null(Runs::Output))
                    .col(text_null(Runs::RawOutput))
                    .col(text_null(Runs::Error))
                    .col(integer(Runs::Attempts))
                    .col(big_integer_null(Runs::PromptTokens))
                    .col(big_integer_null(Runs::CompletionTokens))
                    .col(big_integer_null(Runs::LatencyMs))
                    .col(json_binary(Runs::Snapshot))
                    .col(timestamp_with_time_zone(Runs::CreatedAt))
                    .col(timestamp_with_time_zone_null(Runs::StartedAt))
                    .col(timestamp_with_time_zone_null(Runs::FinishedAt))
                    .to_owned(),
            )
            .await?;
        for (name, column) in [
            ("ix_runs_agent_id", Runs::AgentId),
            ("ix_runs_task_id", Runs::TaskId),
            ("ix_runs_status", Runs::Status),
        ] {
            manager
                .create_index(
                    Index::create()
                        .name(name)
                        .table(Runs::Table)
                        .col(column)
                        .to_owned(),
                )
                .await?;
        }
        manager
            .create_table(
                Table::create()
                    .table(RunEvents::Table)
                    .col(big_pk_auto(RunEvents::Id))
                    .col(uuid(RunEvents::RunId))
                    .col(string(RunEvents::Kind))
                    .col(json_binary(RunEvents::Data))
                    .col(timestamp_with_time_zone(RunEvents::CreatedAt))
                    .foreign_key(
                        ForeignKey::create()
                            .name("fk_run_events_run")
                            .from(RunEvents::Table, RunEvents::RunId)
                            .to(Runs::Table, Runs::Id)
                            .on_delete(ForeignKeyAction::Cascade)
                            .on_update(ForeignKeyAction::NoAction),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("ix_run_events_run_id")
                    .table(RunEvents::Table)
                    .col(RunEvents::RunId)
                    .col(RunEvents::Id)
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_table(Table::drop().table(RunEvents::Table).to_owned())
            .await?;
        manager
            .drop_table(Table::drop().table(Runs::Table).to_owned())
            .await
    }

    fn use_transaction(&self) -> Option<bool> {
        Some(true)
    }
}

#[derive(DeriveIden)]
enum Runs {
    Table,
    Id,
    AgentId,
    TaskId,
    Status,
    Input,
    Output,
    RawOutput,
    Error,
    Attempts,
    PromptTokens,
    CompletionTokens,
    LatencyMs,
    Snapshot,
    CreatedAt,
    StartedAt,
    FinishedAt,
}

#[derive(DeriveIden)]
enum RunEvents {
    Table,
    Id,
    RunId,
    Kind,
    Data,
    CreatedAt,
}
