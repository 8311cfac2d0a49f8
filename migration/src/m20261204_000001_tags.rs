//! Tags: `tags` (a label with a note), `worker_tags` (the tags each worker carries) and
//! `worker_token_tags` (the tags a registration token gives the worker it registers). Deleting
//! a tag, a worker or a token deletes its links (cascade on both backends; the server turns
//! SQLite's foreign keys on for every connection).

use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(Tags::Table)
                    .col(pk_uuid(Tags::Id))
                    .col(string_uniq(Tags::Name))
                    .col(string(Tags::Note))
                    .col(timestamp_with_time_zone(Tags::CreatedAt))
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(WorkerTags::Table)
                    .col(uuid(WorkerTags::WorkerId))
                    .col(uuid(WorkerTags::TagId))
                    .primary_key(
                        Index::create()
                            .col(WorkerTags::WorkerId)
                            .col(WorkerTags::TagId),
                    )
                    .foreign_key(
                        ForeignKey::create()
                            .name("fk_worker_tags_worker")
                            .from(WorkerTags::Table, WorkerTags::WorkerId)
                            .to(Workers::Table, Workers::Id)
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .foreign_key(
                        ForeignKey::create()
                            .name("fk_worker_tags_tag")
                            .from(WorkerTags::Table, WorkerTags::TagId)
                            .to(Tags::Table, Tags::Id)
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(WorkerTokenTags::Table)
                    .col(uuid(WorkerTokenTags::TokenId))
                    .col(uuid(WorkerTokenTags::TagId))
                    .primary_key(
                        Index::create()
                            .col(WorkerTokenTags::TokenId)
                            .col(WorkerTokenTags::TagId),
                    )
                    .foreign_key(
                        ForeignKey::create()
                            .name("fk_worker_token_tags_token")
                            .from(WorkerTokenTags::Table, WorkerTokenTags::TokenId)
                            .to(WorkerTokens::Table, WorkerTokens::Id)
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .foreign_key(
                        ForeignKey::create()
                            .name("fk_worker_token_tags_tag")
                            .from(WorkerTokenTags::Table, WorkerTokenTags::TagId)
                            .to(Tags::Table, Tags::Id)
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .to_owned(),
            )
            .await?;
        // "Which workers carry this tag" (counts, and routing later) reads by tag.
        manager
            .create_index(
                Index::create()
                    .name("ix_worker_tags_tag")
                    .table(WorkerTags::Table)
                    .col(WorkerTags::TagId)
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        for table in [
            WorkerTokenTags::Table.into_iden(),
            WorkerTags::Table.into_iden(),
            Tags::Table.into_iden(),
        ] {
            manager
                .drop_table(Table::drop().table(table).to_owned())
                .await?;
        }
        Ok(())
    }

    fn use_transaction(&self) -> Option<bool> {
        Some(true)
    }
}

#[derive(DeriveIden)]
enum Tags {
    Table,
    Id,
    Name,
    Note,
    CreatedAt,
}

#[derive(DeriveIden)]
enum WorkerTags {
    Table,
    WorkerId,
    TagId,
}

#[derive(DeriveIden)]
enum WorkerTokenTags {
    Table,
    TokenId,
    TagId,
}

#[derive(DeriveIden)]
enum Workers {
    Table,
    Id,
}

#[derive(DeriveIden)]
enum WorkerTokens {
    Table,
    Id,
}
