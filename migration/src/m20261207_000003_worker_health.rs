//! Worker health: each worker's latest report (`workers.health`, JSON, and `health_at`) and
//! the reports of the last hour (`worker_health`, pruned as new ones arrive; deleted with
//! their worker).

use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        for mut column in [
            text_null(Workers::Health),
            timestamp_with_time_zone_null(Workers::HealthAt),
        ] {
            manager
                .alter_table(
                    Table::alter()
                        .table(Workers::Table)
                        .add_column(&mut column)
                        .to_owned(),
                )
                .await?;
        }
        manager
            .create_table(
                Table::create()
                    .table(WorkerHealth::Table)
                    .col(pk_uuid(WorkerHealth::Id))
                    .col(uuid(WorkerHealth::WorkerId))
                    .col(timestamp_with_time_zone(WorkerHealth::At))
                    .col(text(WorkerHealth::Health))
                    .foreign_key(
                        ForeignKey::create()
                            .name("fk_worker_health_worker")
                            .from(WorkerHealth::Table, WorkerHealth::WorkerId)
                            .to(Workers::Table, Workers::Id)
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("ix_worker_health_worker_at")
                    .table(WorkerHealth::Table)
                    .col(WorkerHealth::WorkerId)
                    .col(WorkerHealth::At)
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_table(Table::drop().table(WorkerHealth::Table).to_owned())
            .await?;
        for column in [Workers::Health, Workers::HealthAt] {
            manager
                .alter_table(
                    Table::alter()
                        .table(Workers::Table)
                        .drop_column(column)
                        .to_owned(),
                )
                .await?;
        }
        Ok(())
    }

    fn use_transaction(&self) -> Option<bool> {
        Some(true)
    }
}

#[derive(DeriveIden)]
enum Workers {
    Table,
    Id,
    Health,
    HealthAt,
}

#[derive(DeriveIden)]
enum WorkerHealth {
    Table,
    Id,
    WorkerId,
    At,
    Health,
}
