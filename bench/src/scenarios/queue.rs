//! The queue: async runs (`mode: "async"`, answered 202 at once) against the instant stub,
//! executed by the built-in worker — or, with it disabled, by one remote `agentry worker`
//! over loopback WebSocket — submitted two ways: a burst from 32 clients (throughput: how
//! fast it was submitted and executed, first submit → last finished) and an open loop at a
//! steady rate the queue sustains (dispatch latency with free slots, not queue wait).
//! Measured from the runs the server stored: per run enqueue → assign
//! (`assigned_at - queued_at`) and enqueue → result (`finished_at - created_at`).

use std::path::Path;
use std::process::Stdio;
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use reqwest::{Client, StatusCode};
use serde::Serialize;
use serde_json::{Value, json};

use crate::fixtures::{self, Runnable};
use crate::load::{self, Bound, Request, Summary};

#[derive(Debug, Clone, Serialize)]
pub struct Queue {
    /// "built-in" or "remote (WebSocket)".
    pub worker: String,
    pub database: String,
    /// How the runs were submitted, e.g. "burst, 32 clients" or "250/s".
    pub load: String,
    pub runs: u64,
    /// Submitting the runs (202 answers).
    pub submit: Summary,
    /// Runs finished per second, first submit → last finished.
    pub executed_per_sec: f64,
    pub enqueue_to_assign: Percentiles,
    pub enqueue_to_result: Percentiles,
    /// Runs that did not succeed.
    pub failed: u64,
}

#[derive(Debug, Clone, Default, Serialize)]
pub struct Percentiles {
    pub p50_ms: f64,
    pub p99_ms: f64,
    pub max_ms: f64,
}

impl Percentiles {
    fn of(mut samples: Vec<f64>) -> Percentiles {
        samples.sort_by(f64::total_cmp);
        let at = |q: f64| {
            let i = ((samples.len() as f64 - 1.0) * q).round() as usize;
            samples.get(i).copied().unwrap_or(0.0)
        };
        Percentiles {
            p50_ms: at(0.50),
            p99_ms: at(0.99),
            max_ms: samples.last().copied().unwrap_or(0.0),
        }
    }
}

/// How runs are submitted.
#[derive(Debug, Clone, Copy)]
pub enum Submit {
    /// `runs` runs from `concurrency` clients, back to back.
    Burst { runs: u64, concurrency: u64 },
    /// `rate` runs per second for `duration`, each at its time.
    Rate { rate: u64, duration: Duration },
}

impl Submit {
    fn label(self) -> String {
        match self {
            Submit::Burst { concurrency, .. } => format!("burst, {concurrency} clients"),
            Submit::Rate { rate, .. } => format!("{rate}/s"),
        }
    }
}

/// Submits async runs as `how` says and waits for all of them.
pub async fn measure(
    worker: &str,
    database: &str,
    client: &Client,
    base: &str,
    fixture: &Runnable,
    how: Submit,
) -> anyhow::Result<Queue> {
    let mut body = fixtures::run_input();
    body["mode"] = json!("async");
    let make = load::same(Request::post(
        fixture.runs_url(base),
        &body,
        StatusCode::ACCEPTED,
    ));
    let began = Instant::now();
    let submit = match how {
        Submit::Burst { runs, concurrency } => {
            load::closed_loop(client, &make, concurrency, Bound::Requests(runs)).await?
        }
        Submit::Rate { rate, duration } => {
            load::open_loop(client, &make, rate, duration, 10_000).await?
        }
    };
    let label = how.label();
    eprintln!(
        "[queue] {worker} ({database}, {label}): submitted {}",
        submit.line()
    );
    let deadline = Instant::now() + Duration::from_secs(300);
    loop {
        // The pool's counts (one grouped count), not `GET /api/runs?status=` per status: a
        // poll that reads thousands of rows 50 times a second would be measured instead.
        let pool: Value = client
            .get(format!("{base}/api/workers/pool"))
            .send()
            .await?
            .json()
            .await?;
        let unfinished =
            pool["runs_running"].as_u64().unwrap_or(0) + pool["runs_queued"].as_u64().unwrap_or(0);
        if unfinished == 0 {
            break;
        }
        anyhow::ensure!(
            Instant::now() < deadline,
            "{unfinished} runs still unfinished after 5 minutes"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let rows = all_runs(client, base, &fixture.agent_id).await?;
    let time = |run: &Value, field: &str| {
        run[field]
            .as_str()
            .and_then(|t| t.parse::<DateTime<Utc>>().ok())
    };
    let ms = |from: Option<DateTime<Utc>>, to: Option<DateTime<Utc>>| {
        Some((to? - from?).num_microseconds()? as f64 / 1000.0)
    };
    let first = rows.iter().filter_map(|r| time(r, "created_at")).min();
    let last = rows.iter().filter_map(|r| time(r, "finished_at")).max();
    let span = ms(first, last).unwrap_or_else(|| began.elapsed().as_secs_f64() * 1000.0);
    let assign: Vec<f64> = rows
        .iter()
        .filter_map(|r| ms(time(r, "queued_at"), time(r, "assigned_at")))
        .collect();
    let result: Vec<f64> = rows
        .iter()
        .filter_map(|r| ms(time(r, "created_at"), time(r, "finished_at")))
        .collect();
    let ended = |r: &&Value| {
        ["succeeded", "failed", "canceled"].contains(&r["status"].as_str().unwrap_or(""))
    };
    let unended = rows.iter().filter(|r| !ended(r)).count();
    anyhow::ensure!(
        unended == 0,
        "{unended} runs had not ended when the pool showed none unfinished"
    );
    let failed = rows.iter().filter(|r| r["status"] != "succeeded").count() as u64;
    // Why runs failed, so a failure in a benchmark can be followed up (a few at most).
    for row in rows.iter().filter(|r| r["status"] != "succeeded").take(5) {
        eprintln!(
            "[queue] run {} ended {}: {}",
            row["id"], row["status"], row["error"]
        );
    }
    let queue = Queue {
        worker: worker.to_owned(),
        database: database.to_owned(),
        load: label.clone(),
        runs: rows.len() as u64,
        submit,
        executed_per_sec: if span > 0.0 {
            rows.len() as f64 / (span / 1000.0)
        } else {
            0.0
        },
        enqueue_to_assign: Percentiles::of(assign),
        enqueue_to_result: Percentiles::of(result),
        failed,
    };
    eprintln!(
        "[queue] {worker} ({database}, {label}): {:.0} runs/s executed, assign p50 {:.2} p99 {:.2} ms, result p99 {:.2} ms, {} failed",
        queue.executed_per_sec,
        queue.enqueue_to_assign.p50_ms,
        queue.enqueue_to_assign.p99_ms,
        queue.enqueue_to_result.p99_ms,
        queue.failed
    );
    Ok(queue)
}

async fn all_runs(client: &Client, base: &str, agent: &str) -> anyhow::Result<Vec<Value>> {
    let mut all = Vec::new();
    loop {
        let page: Value = client
            .get(format!(
                "{base}/api/runs?agent_id={agent}&limit=200&offset={}",
                all.len()
            ))
            .send()
            .await?
            .json()
            .await?;
        let items = page["items"].as_array().cloned().unwrap_or_default();
        let total = page["total"].as_u64().unwrap_or(0) as usize;
        if items.is_empty() {
            break;
        }
        all.extend(items);
        if all.len() >= total {
            break;
        }
    }
    Ok(all)
}

/// The built-in worker's id.
pub async fn builtin_id(client: &Client, base: &str) -> anyhow::Result<String> {
    let workers: Value = client
        .get(format!("{base}/api/workers"))
        .send()
        .await?
        .json()
        .await?;
    workers
        .as_array()
        .and_then(|all| all.iter().find(|w| w["builtin"] == true))
        .and_then(|w| w["id"].as_str())
        .map(str::to_owned)
        .ok_or_else(|| anyhow::anyhow!("no built-in worker"))
}

/// Disables the built-in worker and starts one remote worker (the same binary) against the
/// server; returns it once it is online.
pub async fn remote_worker(
    client: &Client,
    base: &str,
    binary: &Path,
    dir: &Path,
    slots: u32,
) -> anyhow::Result<tokio::process::Child> {
    let builtin = builtin_id(client, base).await?;
    client
        .patch(format!("{base}/api/workers/{builtin}"))
        .json(&json!({"enabled": false}))
        .send()
        .await?
        .error_for_status()?;
    let token: Value = client
        .post(format!("{base}/api/worker-tokens"))
        .json(&json!({}))
        .send()
        .await?
        .json()
        .await?;
    let token = token["token"].as_str().unwrap_or_default().to_owned();
    let child = tokio::process::Command::new(binary)
        .args([
            "worker", "--server", base, "--token", &token, "--name", "bench",
        ])
        .arg("--slots")
        .arg(slots.to_string())
        .arg("--data-dir")
        .arg(dir)
        .env_clear()
        .env("AGENTRY_LOG", "warn")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .kill_on_drop(true)
        .spawn()?;
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let workers: Value = client
            .get(format!("{base}/api/workers"))
            .send()
            .await?
            .json()
            .await?;
        let online = workers.as_array().is_some_and(|all| {
            all.iter()
                .any(|w| w["name"] == "bench" && w["status"] == "online")
        });
        if online {
            return Ok(child);
        }
        anyhow::ensure!(
            Instant::now() < deadline,
            "the remote worker never came online"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}
