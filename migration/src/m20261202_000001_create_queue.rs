//! The run queue and its workers: `workers` (the built-in one and every registered remote
//! worker), `worker_tokens` (single-use registration tokens, stored hashed) and the columns a
//! run needs to wait in the queue and be leased to a worker.
//!
//! One `ALTER TABLE` per column: SQLite adds only one column per statement.

use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(Workers::Table)
                    .col(pk_uuid(Workers::Id))
                    .col(string_uniq(Workers::Name))
                    .col(boolean(Workers::Builtin))
                    .col(boolean(Workers::Enabled))
                    .col(string_null(Workers::KeyHash))
                    .col(integer(Workers::Slots))
                    .col(string_null(Workers::Build))
                    .col(string_null(Workers::Os))
                    .col(string_null(Workers::Arch))
                    .col(string_null(Workers::Address))
                    .col(timestamp_with_time_zone_null(Workers::LastSeenAt))
                    .col(timestamp_with_time_zone(Workers::CreatedAt))
                    .col(timestamp_with_time_zone(Workers::UpdatedAt))
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(WorkerTokens::Table)
                    .col(pk_uuid(WorkerTokens::Id))
                    .col(string_uniq(WorkerTokens::TokenHash))
                    .col(string(WorkerTokens::Note))
                    .col(timestamp_with_time_zone(WorkerTokens::ExpiresAt))
                    .col(timestamp_with_time_zone_null(WorkerTokens::UsedAt))
                    .col(uuid_null(WorkerTokens::WorkerId))
                    .col(timestamp_with_time_zone(WorkerTokens::CreatedAt))
                    .to_owned(),
            )
            .await?;
        let columns = [
            json_binary_null(Runs::Job),
            uuid_null(Runs::WorkerId),
            uuid_null(Runs::LeaseId),
            timestamp_with_time_zone_null(Runs::LeaseExpiresAt),
            integer(Runs::Deliveries).default(0).to_owned(),
            timestamp_with_time_zone_null(Runs::QueuedAt),
            timestamp_with_time_zone_null(Runs::AssignedAt),
            timestamp_with_time_zone_null(Runs::QueueDeadline),
        ];
        for mut column in columns {
            manager
                .alter_table(
                    Table::alter()
                        .table(Runs::Table)
                        .add_column(&mut column)
                        .to_owned(),
                )
                .await?;
        }
        for (name, columns) in [
            ("ix_runs_queue", vec![Runs::Status, Runs::QueuedAt]),
            ("ix_runs_lease_expires_at", vec![Runs::LeaseExpiresAt]),
            ("ix_runs_worker_id", vec![Runs::WorkerId]),
        ] {
            let mut index = Index::create();
            index.name(name).table(Runs::Table);
            for column in columns {
                index.col(column);
            }
            manager.create_index(index.to_owned()).await?;
        }
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        for name in [
            "ix_runs_queue",
            "ix_runs_lease_expires_at",
            "ix_runs_worker_id",
        ] {
            manager
                .drop_index(Index::drop().name(name).table(Runs::Table).to_owned())
                .await?;
        }
        for column in [
            Runs::Job,
            Runs::WorkerId,
            Runs::LeaseId,
            Runs::LeaseExpiresAt,
            Runs::Deliveries,
            Runs::QueuedAt,
            Runs::AssignedAt,
            Runs::QueueDeadline,
        ] {
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
            .drop_table(Table::drop().table(WorkerTokens::Table).to_owned())
            .await?;
        manager
            .drop_table(Table::drop().table(Workers::Table).to_owned())
            .await
    }

    fn use_transaction(&self) -> Option<bool> {
        Some(true)
    }
}

#[derive(DeriveIden)]
enum Workers {
    Table,
    Id,
    Name,
    Builtin,
    Enabled,
    KeyHash,
    Slots,
    Build,
    Os,
    Arch,
    Address,
    LastSeenAt,
    CreatedAt,
    UpdatedAt,
}

#[derive(DeriveIden)]
enum WorkerTokens {
    Table,
    Id,
    TokenHash,
    Note,
    ExpiresAt,
    UsedAt,
    WorkerId,
    CreatedAt,
}

#[derive(DeriveIden)]
enum Runs {
    Table,
    Status,
    Job,
    WorkerId,
    LeaseId,
    LeaseExpiresAt,
    Deliveries,
    QueuedAt,
    AssignedAt,
    QueueDeadline,
}
