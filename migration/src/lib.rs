//! Database schema migrations for Agentry, portable between SQLite and PostgreSQL.
//!
//! The server runs [`Migrator`] at start-up (`agentry migrate …` as well); the standalone
//! `migration` binary (feature `cli`) offers sea-orm's `up | down | status | fresh` commands.

pub use sea_orm_migration;

use sea_orm_migration::prelude::*;

mod m20261121_000001_create_config_tables;
mod m20261122_000001_create_runs;
mod m20261202_000001_create_queue;
mod m20261202_000002_queue_timeouts_and_retries;
mod m20261203_000001_queue_deadline_index;
mod m20261204_000001_tags;
mod m20261204_000002_routing;
mod m20261207_000001_concurrency_groups;
mod m20261207_000002_worker_credentials;
mod m20261207_000003_worker_health;
mod m20261207_000004_worker_outbound;
mod m20261207_000005_worker_capabilities;
mod m20261208_000001_schedules;

/// Every migration of the schema, oldest first.
pub struct Migrator;

#[async_trait::async_trait]
impl MigratorTrait for Migrator {
    fn migrations() -> Vec<Box<dyn MigrationTrait>> {
        vec![
            Box::new(m20261121_000001_create_config_tables::Migration),
            Box::new(m20261122_000001_create_runs::Migration),
            Box::new(m20261202_000001_create_queue::Migration),
            Box::new(m20261202_000002_queue_timeouts_and_retries::Migration),
            Box::new(m20261203_000001_queue_deadline_index::Migration),
            Box::new(m20261204_000001_tags::Migration),
            Box::new(m20261204_000002_routing::Migration),
            Box::new(m20261207_000001_concurrency_groups::Migration),
            Box::new(m20261207_000002_worker_credentials::Migration),
            Box::new(m20261207_000003_worker_health::Migration),
            Box::new(m20261207_000004_worker_outbound::Migration),
            Box::new(m20261207_000005_worker_capabilities::Migration),
            Box::new(m20261208_000001_schedules::Migration),
        ]
    }
}
