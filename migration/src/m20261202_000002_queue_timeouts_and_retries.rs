//! `agent_configs.queue_timeout_secs` (how long an agent's runs wait for a worker, default
//! 300 s) and `runs.retry_of` (the run a retry repeats).

use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .alter_table(
                Table::alter()
                    .table(AgentConfigs::Table)
                    .add_column(integer(AgentConfigs::QueueTimeoutSecs).default(300))
                    .to_owned(),
            )
            .await?;
        manager
            .alter_table(
                Table::alter()
                    .table(Runs::Table)
                    .add_column(uuid_null(Runs::RetryOf))
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .alter_table(
                Table::alter()
                    .table(Runs::Table)
                    .drop_column(Runs::RetryOf)
                    .to_owned(),
            )
            .await?;
        manager
            .alter_table(
                Table::alter()
                    .table(AgentConfigs::Table)
                    .drop_column(AgentConfigs::QueueTimeoutSecs)
                    .to_owned(),
            )
            .await
    }

    fn use_transaction(&self) -> Option<bool> {
        Some(true)
    }
}

#[derive(DeriveIden)]
enum AgentConfigs {
    Table,
    QueueTimeoutSecs,
}

#[derive(DeriveIden)]
enum Runs {
    Table,
    RetryOf,
}
