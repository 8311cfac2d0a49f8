//! Real `agentry worker` processes against the in-process test server.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use serde_json::Value;
use uuid::Uuid;

use crate::{TestApp, binaries};

/// A running `agentry worker` (killed when dropped), logging to a file in its data dir.
pub struct WorkerProcess {
    pub child: tokio::process::Child,
    pub data_dir: PathBuf,
}

impl WorkerProcess {
    /// Starts `agentry worker --server <app>` with `args`, its data in `data_dir`.
    pub fn spawn(app: &TestApp, data_dir: &Path, args: &[&str]) -> WorkerProcess {
        std::fs::create_dir_all(data_dir).expect("worker data dir");
        let log = std::fs::File::create(data_dir.join("worker.log")).expect("worker log");
        let child = tokio::process::Command::new(binaries::agentry_cli())
            .arg("worker")
            .arg("--server")
            .arg(&app.base_url)
            .arg("--data-dir")
            .arg(data_dir)
            .args(args)
            .env_clear()
            .env("AGENTRY_LOG", "info,agentry=debug")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log)
            .kill_on_drop(true)
            .spawn()
            .expect("spawn agentry worker");
        WorkerProcess {
            child,
            data_dir: data_dir.to_path_buf(),
        }
    }

    /// What the worker logged so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.data_dir.join("worker.log")).unwrap_or_default()
    }

    /// Waits (up to 30 s) for the process to exit; its exit code.
    pub async fn exited(&mut self) -> Option<i32> {
        match tokio::time::timeout(Duration::from_secs(30), self.child.wait()).await {
            Ok(status) => status.ok().and_then(|s| s.code()),
            Err(_) => panic!("the worker did not exit; log:\n{}", self.log()),
        }
    }
}

/// The `hello` of a scripted worker with `slots` slots that holds nothing and says nothing
/// about itself beyond that.
pub fn hello(slots: u32) -> contracts::worker::Hello {
    contracts::worker::Hello {
        protocol: contracts::worker::PROTOCOL.to_owned(),
        version: contracts::worker::PROTOCOL_VERSION,
        build: "test".to_owned(),
        os: "linux".to_owned(),
        arch: "x86_64".to_owned(),
        slots,
        capabilities: Vec::new(),
        credentials: Vec::new(),
        outbound: None,
        leases: Vec::new(),
    }
}

/// `agentry --data-dir DIR worker credentials ARGS…` with `stdin` piped in: whether it
/// succeeded, and what it printed (stdout and stderr).
pub async fn credentials(dir: &Path, args: &[&str], stdin: &str) -> (bool, String) {
    use tokio::io::AsyncWriteExt as _;
    let mut child = tokio::process::Command::new(binaries::agentry_cli())
        .arg("--data-dir")
        .arg(dir)
        .args(["worker", "credentials"])
        .args(args)
        .env_clear()
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("spawn agentry worker credentials");
    let mut input = child.stdin.take().expect("stdin");
    input
        .write_all(stdin.as_bytes())
        .await
        .expect("write stdin");
    drop(input);
    let output = tokio::time::timeout(Duration::from_secs(30), child.wait_with_output())
        .await
        .expect("the command ended")
        .expect("output");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    (output.status.success(), text)
}

impl TestApp {
    /// Registers a worker named `name` in the database and opens an in-process session for
    /// it (nothing said yet): its id and its end of the link.
    pub async fn register_in_process(
        &self,
        name: &str,
    ) -> (Uuid, agentry::worker::transport::WorkerLink) {
        let db = agentry::db::connect::connect(&self.config.database_url())
            .await
            .expect("connect");
        let id = Uuid::now_v7();
        agentry::db::workers::insert_remote(&db, id, name, None, agentry::domain::now())
            .await
            .expect("register the worker");
        db.close().await.expect("close");
        (id, self.state.runs.attach(id))
    }

    /// `register_in_process`, then `hello` and the server's `welcome`.
    pub async fn attach_worker(
        &self,
        name: &str,
        hello: contracts::worker::Hello,
    ) -> (Uuid, agentry::worker::transport::WorkerLink) {
        use contracts::worker::{ServerMessage, WorkerMessage};
        let (id, mut link) = self.register_in_process(name).await;
        link.tx
            .send(WorkerMessage::Hello(hello))
            .await
            .expect("send hello");
        match tokio::time::timeout(Duration::from_secs(15), link.rx.recv()).await {
            Ok(Some(ServerMessage::Welcome { worker_id, .. })) => assert_eq!(worker_id, id),
            other => panic!("expected welcome, got {other:?}"),
        }
        (id, link)
    }

    /// Creates a registration token and returns it.
    pub async fn worker_token(&self) -> String {
        let created = self
            .post("/api/worker-tokens", &serde_json::json!({"note": "test"}))
            .await
            .assert_status(201)
            .json();
        created["token"].as_str().expect("token").to_owned()
    }

    /// Polls `GET /api/workers` until the worker named `name` is `status` (30 s); its view.
    pub async fn worker_status(&self, name: &str, status: &str) -> Value {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let workers = self.get("/api/workers").await.json();
            let found = workers
                .as_array()
                .and_then(|all| all.iter().find(|w| w["name"] == name).cloned());
            if let Some(worker) = &found
                && worker["status"] == status
            {
                return worker.clone();
            }
            assert!(
                Instant::now() < deadline,
                "worker {name} never became {status}: {found:?}"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// The built-in worker's id.
    pub async fn builtin_worker(&self) -> Uuid {
        let workers = self.get("/api/workers").await.json();
        workers
            .as_array()
            .and_then(|all| all.iter().find(|w| w["builtin"] == true))
            .and_then(|w| w["id"].as_str())
            .and_then(|id| id.parse().ok())
            .expect("a built-in worker")
    }
}
