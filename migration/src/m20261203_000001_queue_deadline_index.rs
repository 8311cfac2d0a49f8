//! `ix_runs_queue_deadline (status, queue_deadline)`: the sweeper looks every second for
//! queued runs whose deadline passed, and without it reads every queued row to find them. It
//! replaces `ix_runs_status`, whose lookups `ix_runs_queue (status, queued_at)` and this one
//! serve as well: one index less to update on every status change.

use sea_orm_migration::prelude::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_index(
                Index::create()
                    .name("ix_runs_queue_deadline")
                    .table(Runs::Table)
                    .col(Runs::Status)
                    .col(Runs::QueueDeadline)
                    .to_owned(),
            )
            .await?;
        manager
            .drop_index(
                Index::drop()
                    .name("ix_runs_status")
                    .table(Runs::Table)
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_index(
                Index::create()
                    .name("ix_runs_status")
                    .table(Runs::Table)
                    .col(Runs::Status)
                    .to_owned(),
            )
            .await?;
        manager
            .drop_index(
                Index::drop()
                    .name("ix_runs_queue_deadline")
                    .table(Runs::Table)
                    .to_owned(),
            )
            .await
    }

    fn use_transaction(&self) -> Option<bool> {
        Some(true)
    }
}

#[derive(DeriveIden)]
enum Runs {
    Table,
    Status,
    QueueDeadline,
}
