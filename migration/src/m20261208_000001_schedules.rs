//! Scheduled runs: `schedules` (an assignment's input, when it fires — a cron expression in a
//! time zone, or every N seconds — and its next fire time) and, on `runs`, the schedule a run
//! was started by and the fire time it was started for.
//!
//! Two unique indexes make the scheduler's guarantees the database's, not checks in code:
//! - `ux_runs_schedule_fire (schedule_id, scheduled_for)`: one run per fire, whatever
//!   restarts or servers race (runs of no schedule have NULLs, which never collide);
//! - `ux_runs_schedule_pending (schedule_id) WHERE status IN (queued, assigned, running)`:
//!   at most one unfinished run per schedule.
//!
//! A schedule belongs to its assignment (`(agent_id, task_id)`, cascading): deleting the
//! agent, or unassigning the task (which a task's deletion requires), deletes its schedules.

use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(Schedules::Table)
                    .col(pk_uuid(Schedules::Id))
                    .col(uuid(Schedules::AgentId))
                    .col(uuid(Schedules::TaskId))
                    .col(json_binary(Schedules::Input))
                    .col(string_null(Schedules::Cron))
                    .col(big_integer_null(Schedules::EverySecs))
                    .col(string(Schedules::Timezone))
                    .col(boolean(Schedules::Enabled))
                    .col(string(Schedules::CatchUp))
                    .col(timestamp_with_time_zone_null(Schedules::NextFireAt))
                    .col(timestamp_with_time_zone_null(Schedules::LastFiredAt))
                    .col(uuid_null(Schedules::LastRunId))
                    .col(string_null(Schedules::LastError))
                    .col(timestamp_with_time_zone(Schedules::CreatedAt))
                    .col(timestamp_with_time_zone(Schedules::UpdatedAt))
                    .foreign_key(
                        ForeignKey::create()
                            .name("fk_schedules_assignment")
                            .from_tbl(Schedules::Table)
                            .from_col(Schedules::AgentId)
                            .from_col(Schedules::TaskId)
                            .to_tbl(AgentTaskAssignments::Table)
                            .to_col(AgentTaskAssignments::AgentId)
                            .to_col(AgentTaskAssignments::TaskId)
                            .on_delete(ForeignKeyAction::Cascade)
                            .on_update(ForeignKeyAction::NoAction),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("ix_schedules_assignment")
                    .table(Schedules::Table)
                    .col(Schedules::AgentId)
                    .col(Schedules::TaskId)
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("ix_schedules_due")
                    .table(Schedules::Table)
                    .col(Schedules::Enabled)
                    .col(Schedules::NextFireAt)
                    .to_owned(),
            )
            .await?;
        for column in [
            uuid_null(Runs::ScheduleId),
            timestamp_with_time_zone_null(Runs::ScheduledFor),
        ] {
            let mut column = column;
            manager
                .alter_table(
                    Table::alter()
                        .table(Runs::Table)
                        .add_column(&mut column)
                        .to_owned(),
                )
                .await?;
        }
        manager
            .create_index(
                Index::create()
                    .name("ux_runs_schedule_fire")
                    .table(Runs::Table)
                    .col(Runs::ScheduleId)
                    .col(Runs::ScheduledFor)
                    .unique()
                    .to_owned(),
            )
            .await?;
        // A partial index: sea-query has no builder for its WHERE on both backends.
        manager
            .get_connection()
            .execute_unprepared(
                "CREATE UNIQUE INDEX ux_runs_schedule_pending ON runs (schedule_id) \
                 WHERE status IN ('queued', 'assigned', 'running')",
            )
            .await?;
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        for index in ["ux_runs_schedule_pending", "ux_runs_schedule_fire"] {
            manager
                .drop_index(Index::drop().name(index).table(Runs::Table).to_owned())
                .await?;
        }
        for column in [Runs::ScheduledFor, Runs::ScheduleId] {
            manager
                .alter_table(
                    Table::alter()
                        .table(Runs::Table)
                        .drop_column(column)
                        .to_owned(),
                )
                .await?;
        }
        manager
            .drop_table(Table::drop().table(Schedules::Table).to_owned())
            .await
    }

    fn use_transaction(&self) -> Option<bool> {
        Some(true)
    }
}

#[derive(DeriveIden)]
enum Schedules {
    Table,
    Id,
    AgentId,
    TaskId,
    Input,
    Cron,
    EverySecs,
    Timezone,
    Enabled,
    CatchUp,
    NextFireAt,
    LastFiredAt,
    LastRunId,
    LastError,
    CreatedAt,
    UpdatedAt,
}

#[derive(DeriveIden)]
enum AgentTaskAssignments {
    Table,
    AgentId,
    TaskId,
}

#[derive(DeriveIden)]
enum Runs {
    Table,
    ScheduleId,
    ScheduledFor,
}
