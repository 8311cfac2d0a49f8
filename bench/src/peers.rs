//! Peers measured in the same run against the same stub: the LiteLLM proxy, driven by the same
//! load generator at the same rates as Agentry, and PydanticAI's agent loop with
//! `NativeOutput`, timed by its own script (`bench/peers/`). `bench/peers/setup` installs them
//! into a cache venv.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use reqwest::{Client, StatusCode};
use serde::Serialize;
use serde_json::Value;

use crate::fixtures;
use crate::load::{self, Request};
use crate::plan::Plan;
use crate::scenarios::overhead::{self, Ladder};
use crate::server::rss_mib;
use crate::stub::Stub;

const MASTER_KEY: &str = "sk-bench-master";
/// LiteLLM takes 10–50 s to start on this kind of machine.
const START_DEADLINE: Duration = Duration::from_secs(300);

#[derive(Debug, Clone, Serialize)]
pub struct Peers {
    pub litellm: Option<LiteLlm>,
    /// The script's own JSON (versions, baseline and agent latencies, overhead).
    pub pydantic_ai: Option<Value>,
    /// Why a peer was not measured.
    pub problems: Vec<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct LiteLlm {
    pub version: String,
    pub start_seconds: f64,
    pub idle_rss_mib: f64,
    pub ladder: Ladder,
}

/// `bench/peers/` in this checkout.
pub fn dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("peers")
}

/// Where the venvs live (as `bench/peers/setup` decides).
fn cache() -> PathBuf {
    std::env::var_os("AGENTRY_BENCH_CACHE")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            PathBuf::from(std::env::var_os("HOME").unwrap_or_default()).join(".cache/agentry-bench")
        })
}

/// Installs the peers (idempotent) and measures them.
pub async fn run(client: &Client, stub: &Stub, plan: &Plan, work: &Path) -> Peers {
    let mut peers = Peers {
        litellm: None,
        pydantic_ai: None,
        problems: Vec::new(),
    };
    let setup = Command::new(dir().join("setup")).status();
    if !matches!(setup, Ok(status) if status.success()) {
        peers
            .problems
            .push(format!("bench/peers/setup failed: {setup:?}"));
        return peers;
    }
    match litellm(client, stub, plan, work).await {
        Ok(result) => peers.litellm = Some(result),
        Err(err) => peers.problems.push(format!("LiteLLM: {err:#}")),
    }
    match pydantic_ai(stub, plan) {
        Ok(result) => peers.pydantic_ai = Some(result),
        Err(err) => peers.problems.push(format!("PydanticAI: {err:#}")),
    }
    peers
}

/// A peer process, stopped with SIGTERM (and killed if it lingers) when dropped.
struct Peer(Child);

impl Drop for Peer {
    fn drop(&mut self) {
        let _ = Command::new("kill")
            .args(["-TERM", &self.0.id().to_string()])
            .status();
        let stopping = Instant::now();
        while stopping.elapsed() < Duration::from_secs(20) {
            if self.0.try_wait().ok().flatten().is_some() {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

async fn litellm(
    client: &Client,
    stub: &Stub,
    plan: &Plan,
    work: &Path,
) -> anyhow::Result<LiteLlm> {
    let template = std::fs::read_to_string(dir().join("litellm.yaml.in"))?;
    let config = work.join("litellm.yaml");
    std::fs::write(&config, template.replace("{{STUB_BASE}}", &stub.base_url()))?;
    let port = free_port()?;
    let log = std::fs::File::create(work.join("litellm.log"))?;
    eprintln!("[peers] starting LiteLLM on 127.0.0.1:{port}");
    let started = Instant::now();
    let peer = Peer(
        Command::new(dir().join("start_litellm"))
            .arg(&config)
            .arg(port.to_string())
            .stdin(Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log)
            .spawn()
            .context("start LiteLLM")?,
    );
    let base = format!("http://127.0.0.1:{port}");
    loop {
        let health = client
            .get(format!("{base}/health/liveliness"))
            .timeout(Duration::from_secs(5))
            .send()
            .await;
        if matches!(&health, Ok(r) if r.status() == StatusCode::OK) {
            break;
        }
        if started.elapsed() > START_DEADLINE {
            bail!(
                "not healthy within {START_DEADLINE:?}; see {}",
                work.join("litellm.log").display()
            );
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let start_seconds = started.elapsed().as_secs_f64();
    let idle_rss_mib = rss_mib(peer.0.id())?;
    eprintln!("[peers] LiteLLM healthy after {start_seconds:.1} s, RSS {idle_rss_mib:.0} MiB");

    let body = fixtures::direct_chat_body();
    let direct = load::same(Request::post(
        format!("{}/chat/completions", stub.base_url()),
        &body,
        StatusCode::OK,
    ));
    let through = load::same(
        Request::post(format!("{base}/v1/chat/completions"), &body, StatusCode::OK)
            .bearer(MASTER_KEY),
    );
    // LiteLLM saturates at tens of requests per second: a smaller in-flight cap keeps the
    // drain after each overloaded rate short.
    let peer_plan = Plan {
        max_in_flight: plan.max_in_flight.min(256),
        ..plan.clone()
    };
    let ladder = overhead::ladder(
        "litellm",
        Some(peer.0.id()),
        client,
        &direct,
        &through,
        &peer_plan,
    )
    .await?;
    Ok(LiteLlm {
        version: pip_version("venv-litellm", "litellm"),
        start_seconds,
        idle_rss_mib,
        ladder,
    })
}

fn pydantic_ai(stub: &Stub, plan: &Plan) -> anyhow::Result<Value> {
    eprintln!("[peers] PydanticAI loop");
    let output = Command::new(cache().join("venv-pai/bin/python"))
        .arg(dir().join("pydantic_ai_loop.py"))
        .args(["--base-url", &stub.base_url()])
        .args(["--n", &plan.sequential.min(1000).to_string()])
        .args(["--warmup", &plan.warmup.min(100).to_string()])
        .stderr(Stdio::inherit())
        .output()?;
    if !output.status.success() {
        bail!("pydantic_ai_loop.py exited with {}", output.status);
    }
    Ok(serde_json::from_slice(&output.stdout)?)
}

fn pip_version(venv: &str, package: &str) -> String {
    Command::new(cache().join(venv).join("bin/python"))
        .args([
            "-c",
            &format!("import importlib.metadata as m; print(m.version('{package}'))"),
        ])
        .output()
        .ok()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned())
        .unwrap_or_else(|| "unknown".to_owned())
}

fn free_port() -> anyhow::Result<u16> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port())
}
