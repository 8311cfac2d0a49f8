//! The Agentry server under test, as a separate process: the real binary on 127.0.0.1 port 0
//! with its own data directory and database, its address read from its log, ready when
//! `/readyz` answers 200; its resident memory read from /proc; stopped with SIGTERM.

use std::collections::VecDeque;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex, mpsc};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};

/// Longest the harness waits for the server to start or stop.
const DEADLINE: Duration = Duration::from_secs(120);
/// Log lines kept to explain a failure.
const LOG_TAIL: usize = 40;

/// How to start a server.
#[derive(Debug, Clone)]
pub struct Launch {
    pub binary: PathBuf,
    pub data_dir: PathBuf,
    /// `None`: the embedded SQLite database in the data directory.
    pub database_url: Option<String>,
    /// `AGENTRY_LOG` (the product's default is `info`).
    pub log: String,
}

/// A running server; killed if still running when dropped.
pub struct Server {
    child: Child,
    pub base_url: String,
    /// Spawn → first 200 from `/readyz`.
    pub ready_after: Duration,
    tail: Arc<Mutex<VecDeque<String>>>,
    /// The last `runtime stats` line the server logged (with `agentry::runtime=debug`).
    runtime_stats: Arc<Mutex<Option<String>>>,
}

impl Server {
    pub fn start(launch: &Launch) -> anyhow::Result<Server> {
        let spawned = Instant::now();
        let mut command = Command::new(&launch.binary);
        command
            .args(["serve", "--bind", "127.0.0.1:0"])
            .current_dir(&launch.data_dir)
            .env_clear()
            .env("PATH", std::env::var_os("PATH").unwrap_or_default())
            .env("AGENTRY_DATA_DIR", &launch.data_dir)
            .env("AGENTRY_LOG", &launch.log)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        // Settings the user benchmarks with (AGENTRY_DATABASE_MAX_CONNECTIONS, …) pass through.
        for (name, value) in std::env::vars_os() {
            let name_str = name.to_string_lossy();
            if name_str.starts_with("AGENTRY_")
                && !name_str.starts_with("AGENTRY_BENCH_")
                && !matches!(
                    &*name_str,
                    "AGENTRY_DATA_DIR" | "AGENTRY_LOG" | "AGENTRY_BIND"
                )
            {
                command.env(&name, value);
            }
        }
        if let Some(url) = &launch.database_url {
            command.env("DATABASE_URL", url);
        }
        let mut child = command
            .spawn()
            .with_context(|| format!("start {}", launch.binary.display()))?;
        let stderr = child.stderr.take().context("server stderr")?;
        let tail = Arc::new(Mutex::new(VecDeque::new()));
        let runtime_stats = Arc::new(Mutex::new(None));
        let (address_tx, address_rx) = mpsc::channel();
        {
            let tail = Arc::clone(&tail);
            let runtime_stats = Arc::clone(&runtime_stats);
            // Drains the log for the server's whole life (a full pipe would block it).
            std::thread::spawn(move || {
                for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                    if let Some(at) = line.find("listening on http://") {
                        let rest = &line[at + "listening on ".len()..];
                        let url = rest.split_whitespace().next().unwrap_or(rest);
                        let _ = address_tx.send(url.to_owned());
                    }
                    if line.contains("runtime stats")
                        && let Ok(mut last) = runtime_stats.lock()
                    {
                        *last = Some(line.clone());
                    }
                    if let Ok(mut tail) = tail.lock() {
                        if tail.len() == LOG_TAIL {
                            tail.pop_front();
                        }
                        tail.push_back(line);
                    }
                }
            });
        }
        let mut server = Server {
            child,
            base_url: String::new(),
            ready_after: Duration::ZERO,
            tail,
            runtime_stats,
        };
        server.base_url = match address_rx.recv_timeout(DEADLINE) {
            Ok(url) => url,
            Err(_) => bail!("the server did not log its address:\n{}", server.log_tail()),
        };
        server.wait_ready(spawned)?;
        server.ready_after = spawned.elapsed();
        Ok(server)
    }

    /// Polls `/readyz` (a plain blocking HTTP/1.1 GET, so no client start-up cost is counted)
    /// until it answers 200.
    fn wait_ready(&mut self, spawned: Instant) -> anyhow::Result<()> {
        let addr = self.base_url.trim_start_matches("http://").to_owned();
        loop {
            if readyz(&addr).unwrap_or(false) {
                return Ok(());
            }
            if let Some(status) = self.child.try_wait()? {
                bail!("the server exited with {status}:\n{}", self.log_tail());
            }
            if spawned.elapsed() > DEADLINE {
                bail!("the server was not ready in time:\n{}", self.log_tail());
            }
            std::thread::yield_now();
        }
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Resident set size in MiB.
    pub fn rss_mib(&self) -> anyhow::Result<f64> {
        rss_mib(self.pid())
    }

    /// The last lines the server logged.
    /// `name=value` from the last `runtime stats` line, e.g. `alive_tasks`.
    pub fn runtime_stat(&self, name: &str) -> Option<u64> {
        let line = self.runtime_stats.lock().ok()?.clone()?;
        let prefix = format!("{name}=");
        line.split_whitespace()
            .find_map(|field| field.strip_prefix(prefix.as_str()))
            .and_then(|value| value.trim_end_matches(',').parse().ok())
    }

    pub fn log_tail(&self) -> String {
        self.tail
            .lock()
            .map(|tail| tail.iter().cloned().collect::<Vec<_>>().join("\n"))
            .unwrap_or_default()
    }

    /// SIGTERM, then wait for a clean exit.
    pub fn stop(mut self) -> anyhow::Result<()> {
        let status = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status()?;
        if !status.success() {
            bail!("kill -TERM failed");
        }
        let stopping = Instant::now();
        loop {
            if let Some(status) = self.child.try_wait()? {
                if !status.success() {
                    bail!("the server exited with {status}:\n{}", self.log_tail());
                }
                return Ok(());
            }
            if stopping.elapsed() > DEADLINE {
                bail!("the server did not stop within {DEADLINE:?}");
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if self.child.try_wait().ok().flatten().is_none() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

fn readyz(addr: &str) -> std::io::Result<bool> {
    use std::io::{Read, Write};
    let mut stream = std::net::TcpStream::connect(addr)?;
    stream.set_read_timeout(Some(Duration::from_secs(5)))?;
    write!(
        stream,
        "GET /readyz HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n"
    )?;
    let mut head = [0u8; 12];
    stream.read_exact(&mut head)?;
    Ok(head.starts_with(b"HTTP/1.1 200"))
}

/// Resident set size of a process in MiB, from /proc.
pub fn rss_mib(pid: u32) -> anyhow::Result<f64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))?;
    let kib: f64 = status
        .lines()
        .find_map(|line| line.strip_prefix("VmRSS:"))
        .and_then(|rest| rest.split_whitespace().next())
        .context("VmRSS missing")?
        .parse()?;
    Ok(kib / 1024.0)
}

/// CPU time (user + system) a process has used so far, in seconds, from /proc.
pub fn cpu_seconds(pid: u32) -> anyhow::Result<f64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat"))?;
    // Fields after the command name (which may contain spaces) start at field 3.
    let after = stat.rsplit_once(')').context("malformed stat")?.1;
    let fields: Vec<&str> = after.split_whitespace().collect();
    let ticks = |i: usize| -> anyhow::Result<f64> {
        Ok(fields.get(i).context("short stat")?.parse::<f64>()?)
    };
    // utime and stime are fields 14 and 15.
    Ok((ticks(11)? + ticks(12)?) / clock_ticks())
}

fn clock_ticks() -> f64 {
    static TICKS: std::sync::OnceLock<f64> = std::sync::OnceLock::new();
    *TICKS.get_or_init(|| {
        Command::new("getconf")
            .arg("CLK_TCK")
            .output()
            .ok()
            .and_then(|o| String::from_utf8_lossy(&o.stdout).trim().parse().ok())
            .unwrap_or(100.0)
    })
}

/// The server binary: `--server-bin`, else `agentry` next to this executable (or one level up,
/// from a test's `deps/` directory).
pub fn find_binary(explicit: Option<&Path>) -> anyhow::Result<PathBuf> {
    if let Some(path) = explicit {
        return Ok(path.to_owned());
    }
    let me = std::env::current_exe()?;
    for dir in me.ancestors().skip(1).take(2) {
        let candidate = dir.join("agentry");
        if candidate.is_file() {
            return Ok(candidate);
        }
    }
    bail!(
        "no agentry binary next to {}; build it (cargo build --release -p server) or pass --server-bin",
        me.display()
    )
}
