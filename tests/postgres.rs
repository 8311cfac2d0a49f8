//! A PostgreSQL database per test, created on the local server and dropped afterwards.

use sea_orm::{ConnectionTrait, Database};
use uuid::Uuid;

/// Admin URL of the local PostgreSQL (trust auth). Override with AGENTRY_TEST_PG_URL.
pub fn admin_url() -> String {
    std::env::var("AGENTRY_TEST_PG_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".to_owned())
}

/// A fresh database; dropped (with its connections) when this value is dropped.
pub struct PgDatabase {
    pub name: String,
    pub url: String,
}

impl PgDatabase {
    /// Creates the database. An unreachable server fails the test: PostgreSQL is part of the
    /// test environment, never silently skipped.
    pub async fn create() -> PgDatabase {
        let admin = admin_url();
        let name = format!("agentry_test_{}", Uuid::new_v4().simple());
        let conn = Database::connect(&admin).await.unwrap_or_else(|e| {
            panic!(
                "PostgreSQL at {admin} is unreachable ({e}); start it or set AGENTRY_TEST_PG_URL"
            )
        });
        conn.execute_unprepared(&format!("CREATE DATABASE \"{name}\""))
            .await
            .expect("create test database");
        conn.close().await.ok();
        let url = match admin.rfind('/') {
            Some(slash) => format!("{}/{name}", &admin[..slash]),
            None => panic!("AGENTRY_TEST_PG_URL has no database part: {admin}"),
        };
        PgDatabase { name, url }
    }
}

impl Drop for PgDatabase {
    fn drop(&mut self) {
        // Drop runs inside the test's runtime, which cannot block on itself: use a thread
        // with its own small runtime.
        let name = self.name.clone();
        let result = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()?;
            runtime.block_on(async move {
                let conn = Database::connect(&admin_url()).await?;
                conn.execute_unprepared(&format!(
                    "DROP DATABASE IF EXISTS \"{name}\" WITH (FORCE)"
                ))
                .await?;
                conn.close().await.ok();
                Ok::<(), anyhow::Error>(())
            })?;
            Ok::<(), anyhow::Error>(())
        })
        .join();
        if !matches!(result, Ok(Ok(()))) {
            eprintln!("warning: could not drop test database {}", self.name);
        }
    }
}
