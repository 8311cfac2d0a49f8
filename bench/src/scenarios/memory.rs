//! Scenario 4, memory and start-up, on a fresh server with the embedded SQLite database:
//! resident memory idle, with many idle WebSocket clients, and along a long series of runs
//! (a leak shows as growth after warm-up); then cold starts to `/readyz` on the database
//! those runs filled.

use std::path::Path;

use reqwest::Client;
use serde::Serialize;

use super::ws;
use crate::fixtures;
use crate::load::{self, Bound, Request, Summary};
use crate::plan::Plan;
use crate::server::{Launch, Server};
use crate::stub::Stub;

#[derive(Debug, Clone, Serialize)]
pub struct Memory {
    pub idle_rss_mib: f64,
    /// (idle clients connected, RSS MiB).
    pub ws_rss_mib: Vec<(usize, f64)>,
    /// (runs finished, RSS MiB), sampled along the series.
    pub runs_rss_mib: Vec<(u64, f64)>,
    /// The last sample's runs (sync, closed loop), after warm-up.
    pub runs_last_sample: Option<Summary>,
    /// Runs per second over the whole series.
    pub runs_per_s: f64,
    /// Spawn → `/readyz` 200 on the existing database, in ms, one per start.
    pub cold_start_ms: Vec<f64>,
    pub database_mib: f64,
}

pub async fn run(
    client: &Client,
    launch: &Launch,
    stub: &Stub,
    plan: &Plan,
) -> anyhow::Result<Memory> {
    check_open_files(plan)?;
    let server = Server::start(launch)?;
    let base = server.base_url.clone();
    let idle_rss_mib = server.rss_mib()?;
    eprintln!("[memory] idle RSS {idle_rss_mib:.1} MiB");

    let mut ws_rss_mib = Vec::new();
    let mut connected = Vec::new();
    let mut total = 0;
    for &target in &plan.idle_clients {
        let clients = ws::connect(
            &base,
            "providers,agents,tasks,runs",
            target - total,
            |_, _| {},
        )
        .await?;
        total += clients.len();
        connected.push(clients);
        let rss = server.rss_mib()?;
        eprintln!("[memory] {total} idle WebSocket clients: RSS {rss:.1} MiB");
        ws_rss_mib.push((total, rss));
    }
    for clients in connected {
        clients.close().await;
    }

    let fixture = fixtures::runnable(client, &base, &stub.base_url(), "memory").await?;
    let runs_url = fixture.runs_url(&base);
    let make = load::same(Request::post(
        runs_url,
        &fixtures::run_input(),
        reqwest::StatusCode::CREATED,
    ));
    let mut runs_rss_mib = Vec::new();
    let mut last_sample = None;
    let mut seconds = 0.0;
    let mut done = 0;
    while done < plan.leak_runs {
        let chunk = plan.leak_sample_every.min(plan.leak_runs - done);
        let summary =
            load::closed_loop(client, &make, plan.leak_concurrency, Bound::Requests(chunk)).await?;
        if summary.errors > 0 {
            anyhow::bail!("runs failed: {:?}", summary.first_error);
        }
        done += chunk;
        let rss = server.rss_mib()?;
        eprintln!("[memory] {done} runs: RSS {rss:.1} MiB");
        runs_rss_mib.push((done, rss));
        seconds += summary.seconds;
        last_sample = Some(summary);
    }
    server.stop()?;

    let mut cold_start_ms = Vec::new();
    for _ in 0..plan.cold_starts {
        let server = Server::start(launch)?;
        cold_start_ms.push(server.ready_after.as_secs_f64() * 1000.0);
        server.stop()?;
    }
    eprintln!("[memory] cold starts (ms): {cold_start_ms:?}");
    Ok(Memory {
        idle_rss_mib,
        ws_rss_mib,
        runs_rss_mib,
        runs_last_sample: last_sample,
        runs_per_s: done as f64 / f64::max(seconds, f64::EPSILON),
        cold_start_ms,
        database_mib: dir_size(&launch.data_dir) as f64 / 1024.0 / 1024.0,
    })
}

/// Each idle client is a socket in this process and one in the server (which inherits this
/// process's limits): say so up front instead of failing with EMFILE halfway.
fn check_open_files(plan: &Plan) -> anyhow::Result<()> {
    let needed = plan.idle_clients.iter().copied().max().unwrap_or(0) + 512;
    let limits = std::fs::read_to_string("/proc/self/limits").unwrap_or_default();
    let soft = limits
        .lines()
        .find(|line| line.starts_with("Max open files"))
        .and_then(|line| line.split_whitespace().nth(3))
        .and_then(|v| v.parse::<usize>().ok());
    match soft {
        Some(soft) if soft < needed => anyhow::bail!(
            "the memory scenario opens {needed} sockets but the open-file limit is {soft}: \
             raise it (ulimit -n {needed}) or skip the scenario (--skip memory)"
        ),
        _ => Ok(()),
    }
}

fn dir_size(path: &Path) -> u64 {
    std::fs::read_dir(path)
        .map(|entries| {
            entries
                .filter_map(Result::ok)
                .map(|e| match e.metadata() {
                    Ok(m) if m.is_dir() => dir_size(&e.path()),
                    Ok(m) => m.len(),
                    Err(_) => 0,
                })
                .sum()
        })
        .unwrap_or(0)
}
