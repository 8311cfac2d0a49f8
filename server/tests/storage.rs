//! SQLite on storage that fails: a data directory that is read-only at start-up stops the
//! server with a clear message; a disk that fills up while it runs makes writes answer 503
//! problem+json (never a 500, a hang, or a 201 for a row that was not stored), reads keep
//! working, writes resume once there is room again, and the database file passes
//! `PRAGMA integrity_check`. (A file system cannot be remounted read-only under open files, so
//! read-only is tested at start-up; a read-only database at run time answers 503 by the same
//! mapping as a full one.)
//!
//! The data directory is a small tmpfs the test mounts, so it needs root (as CI and these
//! machines run); elsewhere it fails saying so.
#![expect(clippy::expect_used, clippy::unwrap_used, reason = "tests")]
#![expect(
    clippy::disallowed_methods,
    reason = "the test drives the binary from outside with its own client and tasks"
)]

mod processes;

use std::path::{Path, PathBuf};
use std::process::Stdio;

use sea_orm::{ConnectionTrait, Database, Statement};
use serde_json::{Value, json};
use tokio::process::{Child, Command};

/// A tmpfs of `size` mounted on a fresh directory, unmounted on drop.
struct Tmpfs(
    PathBuf,
    #[expect(dead_code, reason = "kept for its Drop")] tempfile::TempDir,
);

impl Tmpfs {
    fn mount(size: &str, options: &str) -> Tmpfs {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("mnt");
        std::fs::create_dir(&path).unwrap();
        let status = std::process::Command::new("mount")
            .args([
                "-t",
                "tmpfs",
                "-o",
                &format!("size={size}{options}"),
                "tmpfs",
            ])
            .arg(&path)
            .status()
            .expect("run mount");
        assert!(
            status.success(),
            "mounting a tmpfs failed: these tests need root (they give SQLite a small disk \
             that fills up)"
        );
        Tmpfs(path, dir)
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = std::process::Command::new("umount").arg(&self.0).status();
    }
}

fn command(data_dir: &Path) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_agentry"));
    command
        .env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .env("AGENTRY_DATA_DIR", data_dir)
        .env(
            "AGENTRY_ENCRYPTION_KEY",
            "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=",
        )
        .env("AGENTRY_LOG", "info")
        .env("AGENTRY_VALIDATION_INTERVAL_SECS", "0")
        .args(["serve", "--bind", "127.0.0.1:0"])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    command
}

async fn start(data_dir: &Path) -> (Child, String) {
    let mut child = command(data_dir).spawn().expect("spawn agentry");
    let addr = processes::listening_address(&mut child).await;
    (child, addr)
}

/// A task whose schema carries `pad` bytes, so that a few of them fill a small disk.
fn big_task(name: &str, pad: usize) -> Value {
    json!({"name": name, "response_schema": {"type": "object", "description": "x".repeat(pad)}})
}

async fn create_task(
    client: &reqwest::Client,
    addr: &str,
    body: &Value,
) -> (u16, Value, Option<String>) {
    let resp = client
        .post(format!("http://{addr}/api/tasks"))
        .json(body)
        .send()
        .await
        .unwrap();
    let status = resp.status().as_u16();
    let retry = resp
        .headers()
        .get("retry-after")
        .map(|v| v.to_str().unwrap().to_owned());
    (status, resp.json().await.unwrap_or(Value::Null), retry)
}

async fn integrity_ok(file: &Path) {
    let db = Database::connect(format!("sqlite://{}?mode=ro", file.display()))
        .await
        .unwrap();
    let row = db
        .query_one_raw(Statement::from_string(
            db.get_database_backend(),
            "PRAGMA integrity_check",
        ))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(row.try_get_by_index::<String>(0).unwrap(), "ok");
    db.close().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_read_only_data_directory_stops_start_up_with_a_clear_message() {
    let disk = Tmpfs::mount("1M", ",ro");
    let output = command(&disk.0)
        .stderr(Stdio::piped())
        .output()
        .await
        .unwrap();
    assert!(
        !output.status.success(),
        "started on a read-only data directory"
    );
    let log = String::from_utf8_lossy(&output.stderr);
    assert!(
        log.contains("error:") && log.to_lowercase().contains("read-only"),
        "the error does not say what is wrong:\n{log}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_disk_answers_503_stores_nothing_half_and_recovers() {
    let disk = Tmpfs::mount("6M", "");
    agentry::outbound::install_crypto_provider();
    let client = reqwest::Client::builder().no_proxy().build().unwrap();
    let (mut server, addr) = start(&disk.0).await;
    let (status, first, _) = create_task(&client, &addr, &big_task("before", 100)).await;
    assert_eq!(status, 201);

    // Fill the disk, then keep writing until the database cannot take more.
    let filler = disk.0.join("filler");
    {
        use std::io::Write;
        let mut file = std::fs::File::create(&filler).unwrap();
        let chunk = vec![0_u8; 64 * 1024];
        while file.write_all(&chunk).is_ok() {}
    }
    let mut refused = 0;
    let mut created = 0;
    for i in 0..200 {
        let (status, body, retry) =
            create_task(&client, &addr, &big_task(&format!("t{i}"), 60_000)).await;
        match status {
            201 => created += 1,
            503 => {
                assert_eq!(body["code"], "unavailable", "{body}");
                assert!(body["detail"].as_str().unwrap().contains("full"), "{body}");
                assert!(retry.is_some(), "503 without Retry-After");
                refused += 1;
                if refused == 3 {
                    break;
                }
            }
            other => panic!("a full disk answered {other}: {body}"),
        }
    }
    assert_eq!(refused, 3, "the disk never filled up");
    // An update cannot be stored either, and says so.
    let resp = client
        .put(format!(
            "http://{addr}/api/tasks/{}",
            first["id"].as_str().unwrap()
        ))
        .json(&big_task("before", 60_000))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 503, "an update on a full disk");
    // Reads still work.
    let list = client
        .get(format!("http://{addr}/api/tasks"))
        .send()
        .await
        .unwrap();
    assert_eq!(list.status().as_u16(), 200);

    // Room again: writes resume without a restart.
    std::fs::remove_file(&filler).unwrap();
    let (status, body, _) = create_task(&client, &addr, &big_task("after-full", 100)).await;
    assert_eq!(status, 201, "{body}");
    // Nothing refused was stored, and nothing answered 201 is missing.
    let names: Vec<String> = client
        .get(format!("http://{addr}/api/tasks?limit=200"))
        .send()
        .await
        .unwrap()
        .json::<Value>()
        .await
        .unwrap()["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["name"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(names.len(), created + 2, "{names:?}");

    server.start_kill().unwrap();
    server.wait().await.unwrap();
    integrity_ok(&disk.0.join("agentry.db")).await;
}
