//! The provider kinds each worker reports serving (`workers.capabilities`, a JSON array of
//! kind names; null until it says): runs of a kind a worker does not serve (an older build)
//! are not offered to it, connected or not.

use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .alter_table(
                Table::alter()
                    .table(Workers::Table)
                    .add_column(text_null(Workers::Capabilities))
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .alter_table(
                Table::alter()
                    .table(Workers::Table)
                    .drop_column(Workers::Capabilities)
                    .to_owned(),
            )
            .await
    }

    fn use_transaction(&self) -> Option<bool> {
        Some(true)
    }
}

#[derive(DeriveIden)]
enum Workers {
    Table,
    Capabilities,
}
