//! Routing: an agent's rules (`agent_configs.worker_names`, `agent_configs.required_tags`, JSON
//! arrays of names) and, on each run, the rules it was created with as one key
//! (`runs.route_key`: empty for "any worker", otherwise the rules as canonical JSON) and why
//! no worker can take it (`runs.waiting_reason`, while that is so).
//!
//! One `ALTER TABLE` per column: SQLite adds only one column per statement.

use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        for mut column in [
            text(AgentConfigs::WorkerNames).default("[]").to_owned(),
            text(AgentConfigs::RequiredTags).default("[]").to_owned(),
        ] {
            manager
                .alter_table(
                    Table::alter()
                        .table(AgentConfigs::Table)
                        .add_column(&mut column)
                        .to_owned(),
                )
                .await?;
        }
        for mut column in [
            text(Runs::RouteKey).default("").to_owned(),
            text_null(Runs::WaitingReason),
        ] {
            manager
                .alter_table(
                    Table::alter()
                        .table(Runs::Table)
                        .add_column(&mut column)
                        .to_owned(),
                )
                .await?;
        }
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        for column in [Runs::RouteKey, Runs::WaitingReason] {
            manager
                .alter_table(
                    Table::alter()
                        .table(Runs::Table)
                        .drop_column(column)
                        .to_owned(),
                )
                .await?;
        }
        for column in [AgentConfigs::WorkerNames, AgentConfigs::RequiredTags] {
            manager
                .alter_table(
                    Table::alter()
                        .table(AgentConfigs::Table)
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
enum AgentConfigs {
    Table,
    WorkerNames,
    RequiredTags,
}

#[derive(DeriveIden)]
enum Runs {
    Table,
    RouteKey,
    WaitingReason,
}
