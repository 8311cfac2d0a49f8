//! The `agentry` binary as a user runs it: starts on port 0, answers, stops cleanly on
//! SIGTERM and SIGINT; refuses unsafe or broken settings with a clear message and exit code 1.
#![expect(clippy::expect_used, clippy::unwrap_used, reason = "tests")]

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

const DEADLINE: Duration = Duration::from_secs(60);

fn agentry(data_dir: &std::path::Path) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_agentry"));
    cmd.current_dir(data_dir)
        .env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .env("AGENTRY_DATA_DIR", data_dir)
        .env("AGENTRY_LOG", "info")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    cmd
}

/// A running server; killed (and reaped) if a test fails before stopping it.
struct Server(Child);

impl Drop for Server {
    fn drop(&mut self) {
        if self.0.try_wait().ok().flatten().is_none() {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }
}

/// Starts the server on port 0 and returns it with its address, read from its log, and a
/// channel carrying the rest of its log lines.
fn start(data_dir: &std::path::Path) -> (Server, String, mpsc::Receiver<String>) {
    let mut child = Server(
        agentry(data_dir)
            .args(["serve", "--bind", "127.0.0.1:0"])
            .spawn()
            .expect("spawn agentry"),
    );
    let stderr = child.0.stderr.take().unwrap();
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            let _ = tx.send(line);
        }
    });
    loop {
        let line = rx.recv_timeout(DEADLINE).expect("server logs its address");
        if let Some(at) = line.find("listening on http://") {
            let addr = line[at + "listening on http://".len()..]
                .split_whitespace()
                .next()
                .unwrap()
                .to_owned();
            return (child, addr, rx);
        }
    }
}

fn http_get(addr: &str, path: &str) -> String {
    let mut stream = TcpStream::connect(addr).expect("connect");
    stream.set_read_timeout(Some(DEADLINE)).unwrap();
    write!(
        stream,
        "GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).unwrap();
    response
}

fn signal(server: &Server, name: &str) {
    let status = Command::new("kill")
        .args([format!("-{name}"), server.0.id().to_string()])
        .status()
        .expect("run kill");
    assert!(status.success());
}

fn wait_with_deadline(server: &mut Server) -> std::process::ExitStatus {
    let start = std::time::Instant::now();
    loop {
        if let Some(status) = server.0.try_wait().unwrap() {
            return status;
        }
        assert!(start.elapsed() < DEADLINE, "agentry did not exit");
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn serves_and_stops_gracefully_on_sigterm_and_sigint() {
    let dir = tempfile::tempdir().unwrap();
    for sig in ["TERM", "INT"] {
        let (mut child, addr, logs) = start(dir.path());
        let ready = http_get(&addr, "/readyz");
        assert!(ready.starts_with("HTTP/1.1 200"), "{ready}");
        let page = http_get(&addr, "/");
        assert!(page.contains("Agentry"), "{page}");
        signal(&child, sig);
        let status = wait_with_deadline(&mut child);
        assert!(status.success(), "SIG{sig}: exit {status}");
        let rest: Vec<String> = logs.try_iter().collect();
        assert!(
            rest.iter().any(|l| l.contains("stopped")),
            "SIG{sig}: {rest:?}"
        );
    }
    // First start created the database and the key; the second reused them.
    assert!(dir.path().join("agentry.db").exists());
    assert!(dir.path().join("encryption.key").exists());
}

#[test]
fn refuses_bad_settings_with_a_clear_message() {
    type Env<'a> = &'a [(&'a str, &'a str)];
    let table: [(Env, &str, &str); 3] = [
        (
            &[("AGENTRY_BIND", "0.0.0.0:0")],
            "AGENTRY_API_TOKEN",
            "public bind without token",
        ),
        (
            &[("AGENTRY_ENCRYPTION_KEY", "bm90IDMyIGJ5dGVz")],
            "AGENTRY_ENCRYPTION_KEY",
            "short key",
        ),
        (
            &[("DATABASE_URL", "mysql://nowhere/db")],
            "database",
            "unsupported database",
        ),
    ];
    for (env, needle, why) in table {
        let dir = tempfile::tempdir().unwrap();
        let mut cmd = agentry(dir.path());
        for (key, value) in env {
            cmd.env(key, value);
        }
        let output = cmd.arg("serve").output().expect("run agentry");
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert_eq!(output.status.code(), Some(1), "{why}: {stderr}");
        assert!(stderr.contains(needle), "{why}: {stderr}");
    }
}

#[test]
fn keys_generate_and_openapi_print_to_stdout() {
    let dir = tempfile::tempdir().unwrap();
    let key = agentry(dir.path())
        .args(["keys", "generate"])
        .output()
        .unwrap();
    assert!(key.status.success());
    assert_eq!(
        String::from_utf8_lossy(&key.stdout).trim().len(),
        44,
        "base64 of 32 bytes"
    );
    let spec = agentry(dir.path()).arg("openapi").output().unwrap();
    assert!(spec.status.success());
    let committed = std::fs::read(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../contracts/openapi.json"),
    )
    .unwrap();
    assert_eq!(spec.stdout, committed);
}
