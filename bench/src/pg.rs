//! A PostgreSQL database per benchmark run on the local server, dropped afterwards.

use anyhow::Context;
use sea_orm::{ConnectionTrait, Database};
use uuid::Uuid;

/// Admin URL of the local PostgreSQL. Override with AGENTRY_BENCH_PG_URL.
pub fn admin_url() -> String {
    std::env::var("AGENTRY_BENCH_PG_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".to_owned())
}

/// A fresh, empty database.
pub struct PgDatabase {
    pub name: String,
    pub url: String,
}

impl PgDatabase {
    pub async fn create() -> anyhow::Result<PgDatabase> {
        let admin = admin_url();
        let name = format!("agentry_bench_{}", Uuid::new_v4().simple());
        let conn = Database::connect(&admin)
            .await
            .with_context(|| format!("PostgreSQL at {admin} (set AGENTRY_BENCH_PG_URL)"))?;
        conn.execute_unprepared(&format!("CREATE DATABASE \"{name}\""))
            .await?;
        conn.close().await.ok();
        let slash = admin
            .rfind('/')
            .context("the admin URL has no database part")?;
        let url = format!("{}/{name}", &admin[..slash]);
        Ok(PgDatabase { name, url })
    }

    /// The server's version string.
    pub async fn version() -> anyhow::Result<String> {
        let conn = Database::connect(&admin_url()).await?;
        let row = conn
            .query_one_raw(sea_orm::Statement::from_string(
                conn.get_database_backend(),
                "SHOW server_version",
            ))
            .await?
            .context("no version row")?;
        let version: String = row.try_get("", "server_version")?;
        conn.close().await.ok();
        Ok(version)
    }

    pub async fn drop_database(self) -> anyhow::Result<()> {
        let conn = Database::connect(&admin_url()).await?;
        conn.execute_unprepared(&format!(
            "DROP DATABASE IF EXISTS \"{}\" WITH (FORCE)",
            self.name
        ))
        .await?;
        conn.close().await.ok();
        Ok(())
    }
}
