//! SQLite's WAL is copied back into the database file by a background checkpoint, not by
//! the statement that happens to fill it. With the default (a checkpoint by whichever commit
//! passes 1,000 WAL pages) a busy queue checkpoints several times a second inside request
//! and dispatch statements, each a few milliseconds of copying and fsync. A `PASSIVE`
//! checkpoint every `INTERVAL` neither waits for nor blocks other connections; the automatic
//! one stays as a safety net at `AUTOCHECKPOINT_PAGES` in case this loop falls behind.

use std::time::Duration;

use sea_orm::{ConnectionTrait, DatabaseConnection, DbBackend};

use crate::background::Background;

/// WAL pages (4 KiB each) at which a commit checkpoints by itself.
pub const AUTOCHECKPOINT_PAGES: u32 = 10_000;

const INTERVAL: Duration = Duration::from_millis(500);

/// Starts the checkpoint loop (SQLite only); it ends when the server stops.
pub fn spawn(db: &DatabaseConnection, background: &Background) {
    if db.get_database_backend() != DbBackend::Sqlite {
        return;
    }
    let db = db.clone();
    let stopping = background.stopping();
    background.spawn(async move {
        tokio::pin!(stopping);
        let mut tick = tokio::time::interval(INTERVAL);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                () = &mut stopping => return,
                _ = tick.tick() => {}
            }
            if let Err(err) = db
                .execute_unprepared("PRAGMA wal_checkpoint(PASSIVE)")
                .await
            {
                tracing::warn!(error = %err, "WAL checkpoint failed");
            }
        }
    });
}

#[cfg(test)]
mod tests {
    use sea_orm::{FromQueryResult, Statement};

    use super::*;

    #[derive(Debug, FromQueryResult)]
    struct Limit {
        wal_autocheckpoint: i64,
    }

    async fn insert_rows(db: &DatabaseConnection) {
        for _ in 0..25 {
            db.execute_unprepared("INSERT INTO t VALUES (randomblob(8000))")
                .await
                .unwrap();
        }
    }

    #[tokio::test]
    async fn commits_leave_checkpoints_to_the_loop_and_the_loop_checkpoints() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("t.db");
        let url = format!("sqlite://{}?mode=rwc", file.display());
        let db = crate::db::connect::connect(&url).await.unwrap();
        let statement = Statement::from_string(DbBackend::Sqlite, "PRAGMA wal_autocheckpoint");
        let limit = Limit::find_by_statement(statement).one(&db).await.unwrap();
        assert_eq!(
            limit.unwrap().wal_autocheckpoint,
            i64::from(AUTOCHECKPOINT_PAGES)
        );
        db.execute_unprepared("CREATE TABLE t (x BLOB)")
            .await
            .unwrap();
        insert_rows(&db).await;
        let wal = dir.path().join("t.db-wal");
        let size = || std::fs::metadata(&wal).unwrap().len();
        let background = Background::new();
        spawn(&db, &background);
        // Without a checkpoint every batch makes the WAL longer (far below the automatic
        // limit); once the loop has copied it into the database, the next batch starts the
        // WAL over and the file does not grow.
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        loop {
            tokio::time::sleep(INTERVAL).await;
            let before = size();
            insert_rows(&db).await;
            if size() == before {
                break;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "the WAL kept growing: {}",
                size()
            );
        }
        background.stop();
        assert!(background.wait(Duration::from_secs(5)).await);
    }
}
