//! Credentials that live on workers: where each provider's key lives
//! (`llm_providers.credential_location`, `server` or `worker`), which workers alone may run
//! its calls (`llm_providers.credential_workers`, a JSON array of names), which worker ran
//! its last check (`llm_providers.checked_by`), and the providers whose keys each worker
//! reports holding (`workers.credentials`, a JSON array of names; never a key).
//!
//! One `ALTER TABLE` per column: SQLite adds only one column per statement.

use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        for mut column in [
            text(LlmProviders::CredentialLocation)
                .default("server")
                .to_owned(),
            text(LlmProviders::CredentialWorkers)
                .default("[]")
                .to_owned(),
            text_null(LlmProviders::CheckedBy),
        ] {
            manager
                .alter_table(
                    Table::alter()
                        .table(LlmProviders::Table)
                        .add_column(&mut column)
                        .to_owned(),
                )
                .await?;
        }
        manager
            .alter_table(
                Table::alter()
                    .table(Workers::Table)
                    .add_column(text(Workers::Credentials).default("[]"))
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .alter_table(
                Table::alter()
                    .table(Workers::Table)
                    .drop_column(Workers::Credentials)
                    .to_owned(),
            )
            .await?;
        for column in [
            LlmProviders::CredentialLocation,
            LlmProviders::CredentialWorkers,
            LlmProviders::CheckedBy,
        ] {
            manager
                .alter_table(
                    Table::alter()
                        .table(LlmProviders::Table)
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
enum LlmProviders {
    Table,
    CredentialLocation,
    CredentialWorkers,
    CheckedBy,
}

#[derive(DeriveIden)]
enum Workers {
    Table,
    Credentials,
}
