//! Standalone migration CLI: `migration -u <DATABASE_URL> up | down | status | fresh`.

#[tokio::main]
async fn main() {
    sea_orm_migration::cli::run_cli(migration::Migrator).await;
}
