//! The soak: one server under steady mixed load for a long time (default 60 minutes) —
//! CRUD of tasks, agents and providers, sync and async runs, WebSocket clients joining and
//! leaving, provider checks — sampled every minute: resident memory, open file descriptors,
//! threads, tasks alive in the runtime, and the minute's latency percentiles. A leak or a
//! slow-down shows as a trend between the early and the late minutes.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use futures_util::StreamExt;
use hdrhistogram::Histogram;
use reqwest::{Client, Method, StatusCode};
use serde::Serialize;
use serde_json::{Value, json};
use tokio::task::JoinSet;
use tokio_tungstenite::tungstenite::Message;

use crate::fixtures::{self, Runnable};
use crate::load;
use crate::server::{Launch, Server};
use crate::stub::Stub;

mod report;
mod trend;

pub use report::markdown;
pub use trend::{Trend, trends};

/// Loops of mixed API traffic running at once.
const USERS: usize = 2;
/// Pause between a user's iterations: a steady load that leaves the machine headroom.
const PACE: Duration = Duration::from_millis(250);
/// WebSocket clients connected for the whole soak.
const STEADY_CLIENTS: usize = 50;
/// A client joins, reads for this long, and leaves; another joins as it leaves.
const CHURN_LIFETIME: Duration = Duration::from_secs(2);
const CHURN_CLIENTS: usize = 2;
/// Every n-th iteration of a user also changes the agent, checks the provider, and creates
/// and deletes a provider of its own (whose check runs in the background).
const SLOW_PATH_EVERY: u64 = 20;

/// One minute's sample (one sampling interval's: a minute unless a test shortens it).
#[derive(Debug, Clone, Serialize)]
pub struct Minute {
    pub minute: u64,
    pub rss_mib: f64,
    pub open_fds: u64,
    pub threads: u64,
    /// Tasks alive in the server's async runtime (from its `runtime stats` log line).
    pub alive_tasks: Option<u64>,
    /// Tasks the server's background tracker holds (runs, checks, WebSocket sessions).
    pub tracked_tasks: Option<u64>,
    pub requests: u64,
    pub errors: u64,
    pub runs: u64,
    pub ws_joins: u64,
    pub p50_ms: f64,
    pub p99_ms: f64,
    pub max_ms: f64,
}

#[derive(Debug, Clone, Serialize)]
pub struct Soak {
    pub database: String,
    pub minutes: Vec<Minute>,
    pub trends: Vec<Trend>,
    pub first_error: Option<String>,
}

/// Shared by the load loops and the sampler; swapped out every minute.
struct Window {
    histogram: Mutex<Histogram<u64>>,
    requests: AtomicU64,
    errors: AtomicU64,
    runs: AtomicU64,
    ws_joins: AtomicU64,
    first_error: Mutex<Option<String>>,
}

impl Window {
    fn new() -> anyhow::Result<Window> {
        Ok(Window {
            histogram: Mutex::new(load::histogram()?),
            requests: AtomicU64::new(0),
            errors: AtomicU64::new(0),
            runs: AtomicU64::new(0),
            ws_joins: AtomicU64::new(0),
            first_error: Mutex::new(None),
        })
    }

    fn record(&self, started: Instant, outcome: &Result<Value, String>) {
        self.requests.fetch_add(1, Ordering::Relaxed);
        match outcome {
            Ok(_) => {
                let micros = u64::try_from(started.elapsed().as_micros()).unwrap_or(u64::MAX);
                if let Ok(mut histogram) = self.histogram.lock() {
                    histogram.saturating_record(micros.max(1));
                }
            }
            Err(err) => {
                self.failed(err.clone());
            }
        }
    }

    /// Counts an error (a request that failed, or a run that did not succeed); returns it.
    fn failed(&self, err: String) -> String {
        self.errors.fetch_add(1, Ordering::Relaxed);
        if let Ok(mut first) = self.first_error.lock() {
            first.get_or_insert_with(|| err.clone());
        }
        err
    }

    /// Takes this minute's figures and starts the next minute afresh.
    fn take(&self) -> (Histogram<u64>, [u64; 4], Option<String>) {
        let mut histogram = match self.histogram.lock() {
            Ok(histogram) => histogram,
            Err(poisoned) => poisoned.into_inner(),
        };
        let taken = histogram.clone();
        histogram.reset();
        drop(histogram);
        let histogram = taken;
        let counts = [
            self.requests.swap(0, Ordering::Relaxed),
            self.errors.swap(0, Ordering::Relaxed),
            self.runs.swap(0, Ordering::Relaxed),
            self.ws_joins.swap(0, Ordering::Relaxed),
        ];
        let error = self.first_error.lock().ok().and_then(|mut e| e.take());
        (histogram, counts, error)
    }
}

/// One load loop's view of the server: its client, where its figures go, the base URL.
struct Api<'a> {
    client: &'a Client,
    window: &'a Window,
    base: &'a str,
}

impl Api<'_> {
    /// Sends one request to `base` + `path` and checks its status; the JSON answer (or
    /// `null`) on success. Every request counts in the window.
    async fn call(
        &self,
        method: Method,
        path: &str,
        body: Option<&Value>,
        expect: StatusCode,
    ) -> Result<Value, String> {
        let url = format!("{}{path}", self.base);
        let started = Instant::now();
        let outcome = async {
            let mut request = self.client.request(method.clone(), &url);
            if let Some(body) = body {
                request = request.json(body);
            }
            let response = request
                .send()
                .await
                .map_err(|e| format!("{method} {url}: {e}"))?;
            let status = response.status();
            let text = response
                .text()
                .await
                .map_err(|e| format!("{method} {url}: {e}"))?;
            if status != expect {
                let text: String = text.chars().take(300).collect();
                return Err(format!(
                    "{method} {url}: {status} (expected {expect}): {text}"
                ));
            }
            Ok(serde_json::from_str(&text).unwrap_or(Value::Null))
        }
        .await;
        self.window.record(started, &outcome);
        outcome
    }
}

fn id(value: &Value) -> Result<String, String> {
    value["id"]
        .as_str()
        .map(str::to_owned)
        .ok_or_else(|| format!("no id in {value}"))
}

/// One user's iteration: a task created, read, changed, listed and deleted; an agent created
/// and deleted; a sync run and an async run followed to its end; now and then the slow path.
async fn iteration(api: &Api<'_>, fixture: &Runnable, label: &str) -> Result<(), String> {
    let task_body = fixtures::mid_size_task(label);
    let task = id(&api
        .call(
            Method::POST,
            "/api/tasks",
            Some(&task_body),
            StatusCode::CREATED,
        )
        .await?)?;
    let task_url = format!("/api/tasks/{task}");
    api.call(Method::GET, &task_url, None, StatusCode::OK)
        .await?;
    let mut changed = task_body.clone();
    changed["description"] = json!(format!("changed by {label}"));
    api.call(Method::PUT, &task_url, Some(&changed), StatusCode::OK)
        .await?;
    api.call(Method::GET, "/api/tasks?limit=20", None, StatusCode::OK)
        .await?;
    let agent = id(&api
        .call(
            Method::POST,
            "/api/agents",
            Some(&fixtures::agent_body(label, &fixture.provider_id)),
            StatusCode::CREATED,
        )
        .await?)?;
    api.call(Method::GET, "/api/agents", None, StatusCode::OK)
        .await?;
    api.call(
        Method::DELETE,
        &format!("/api/agents/{agent}"),
        None,
        StatusCode::NO_CONTENT,
    )
    .await?;
    api.call(Method::DELETE, &task_url, None, StatusCode::NO_CONTENT)
        .await?;

    let runs_url = fixture.runs_url("");
    let run = api
        .call(
            Method::POST,
            &runs_url,
            Some(&fixtures::run_input()),
            StatusCode::CREATED,
        )
        .await?;
    if run["status"] != "succeeded" {
        return Err(api
            .window
            .failed(format!("a sync run did not succeed: {run}")));
    }
    let mut input = fixtures::run_input();
    input["mode"] = json!("async");
    let queued = id(&api
        .call(Method::POST, &runs_url, Some(&input), StatusCode::ACCEPTED)
        .await?)?;
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let run = api
            .call(
                Method::GET,
                &format!("/api/runs/{queued}"),
                None,
                StatusCode::OK,
            )
            .await?;
        match run["status"].as_str() {
            Some("succeeded") => break,
            Some("queued" | "assigned" | "running") if Instant::now() < deadline => {
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            _ => {
                return Err(api
                    .window
                    .failed(format!("an async run did not succeed: {run}")));
            }
        }
    }
    api.call(
        Method::GET,
        &format!("/api/runs/{queued}/events"),
        None,
        StatusCode::OK,
    )
    .await?;
    api.window.runs.fetch_add(2, Ordering::Relaxed);
    Ok(())
}

async fn slow_path(
    api: &Api<'_>,
    fixture: &Runnable,
    stub_url: &str,
    label: &str,
) -> Result<(), String> {
    let mut agent = fixtures::agent_body(&fixture.name, &fixture.provider_id);
    agent["description"] = json!(format!("touched by {label}"));
    api.call(
        Method::PUT,
        &format!("/api/agents/{}", fixture.agent_id),
        Some(&agent),
        StatusCode::OK,
    )
    .await?;
    api.call(
        Method::POST,
        &format!("/api/providers/{}/validate", fixture.provider_id),
        None,
        StatusCode::ACCEPTED,
    )
    .await?;
    let provider = id(&api
        .call(
            Method::POST,
            "/api/providers",
            Some(
                &json!({"name": format!("p-{label}"), "kind": "openai_compatible",
            "base_url": stub_url}),
            ),
            StatusCode::CREATED,
        )
        .await?)?;
    api.call(Method::GET, "/api/providers", None, StatusCode::OK)
        .await?;
    api.call(
        Method::DELETE,
        &format!("/api/providers/{provider}"),
        None,
        StatusCode::NO_CONTENT,
    )
    .await?;
    api.call(Method::GET, "/api/runs?limit=50", None, StatusCode::OK)
        .await?;
    Ok(())
}

/// A WebSocket client that subscribes to every topic and reads until told to stop.
async fn ws_client(
    base: String,
    lifetime: Option<Duration>,
    stop: Arc<AtomicBool>,
) -> anyhow::Result<()> {
    let url = format!(
        "{}/ws?topics=providers,agents,tasks,runs",
        base.replacen("http://", "ws://", 1)
    );
    let (mut stream, _) = tokio::time::timeout(
        Duration::from_secs(30),
        tokio_tungstenite::connect_async(url.as_str()),
    )
    .await
    .context("connect timed out")??;
    match tokio::time::timeout(Duration::from_secs(30), stream.next()).await {
        Ok(Some(Ok(Message::Text(text)))) if text.contains("\"subscribed\"") => {}
        other => bail!("no subscription confirmation: {other:?}"),
    }
    let until = lifetime.map(|l| Instant::now() + l);
    while !stop.load(Ordering::Relaxed) && until.is_none_or(|u| Instant::now() < u) {
        match tokio::time::timeout(Duration::from_millis(500), stream.next()).await {
            Ok(Some(Ok(_))) | Err(_) => {}
            Ok(Some(Err(err))) => bail!("WebSocket error: {err}"),
            Ok(None) => bail!("the server closed a WebSocket"),
        }
    }
    let _ = stream.close(None).await;
    Ok(())
}

pub async fn run(
    client: &Client,
    launch: &Launch,
    stub: &Stub,
    minutes: u64,
    sample_every: Duration,
    database: &str,
) -> anyhow::Result<Soak> {
    let server = Server::start(launch)?;
    let base = server.base_url.clone();
    let stub_url = stub.base_url();
    let fixture = Arc::new(fixtures::runnable(client, &base, &stub_url, "soak").await?);
    let window = Arc::new(Window::new()?);
    let stop = Arc::new(AtomicBool::new(false));
    let mut load = JoinSet::new();

    for user in 0..USERS {
        let (client, window, base, fixture, stub_url, stop) = (
            client.clone(),
            Arc::clone(&window),
            base.clone(),
            Arc::clone(&fixture),
            stub_url.clone(),
            Arc::clone(&stop),
        );
        load.spawn(async move {
            let mut i = 0_u64;
            while !stop.load(Ordering::Relaxed) {
                let label = format!("soak-u{user}-{i}");
                // Errors are counted in the window; the loop goes on.
                let api = Api {
                    client: &client,
                    window: &window,
                    base: &base,
                };
                let _ = iteration(&api, &fixture, &label).await;
                if i.is_multiple_of(SLOW_PATH_EVERY) {
                    let _ = slow_path(&api, &fixture, &stub_url, &label).await;
                }
                i += 1;
                tokio::time::sleep(PACE).await;
            }
            Ok(())
        });
    }
    for _ in 0..STEADY_CLIENTS {
        load.spawn(ws_client(base.clone(), None, Arc::clone(&stop)));
    }
    for _ in 0..CHURN_CLIENTS {
        let (base, window, stop) = (base.clone(), Arc::clone(&window), Arc::clone(&stop));
        load.spawn(async move {
            while !stop.load(Ordering::Relaxed) {
                ws_client(base.clone(), Some(CHURN_LIFETIME), Arc::clone(&stop)).await?;
                window.ws_joins.fetch_add(1, Ordering::Relaxed);
            }
            Ok(())
        });
    }

    let mut samples = Vec::new();
    let mut first_error = None;
    let started = Instant::now();
    for minute in 1..=minutes {
        let at = started + sample_every * u32::try_from(minute)?;
        tokio::time::sleep_until(at.into()).await;
        if let Some(done) = load.try_join_next() {
            let outcome = done.map_err(anyhow::Error::from).and_then(|r| r);
            bail!("a load loop stopped early: {outcome:?}");
        }
        let (histogram, [requests, errors, runs, ws_joins], error) = window.take();
        if first_error.is_none() {
            first_error = error;
        }
        let ms = |micros: u64| micros as f64 / 1000.0;
        let sample = Minute {
            minute,
            rss_mib: server.rss_mib()?,
            open_fds: count_entries(&format!("/proc/{}/fd", server.pid())),
            threads: count_entries(&format!("/proc/{}/task", server.pid())),
            alive_tasks: server.runtime_stat("alive_tasks"),
            tracked_tasks: server.runtime_stat("tracked_tasks"),
            requests,
            errors,
            runs,
            ws_joins,
            p50_ms: ms(histogram.value_at_quantile(0.50)),
            p99_ms: ms(histogram.value_at_quantile(0.99)),
            max_ms: ms(histogram.max()),
        };
        eprintln!(
            "[soak] minute {minute}: RSS {:.1} MiB, {} fds, {} threads, tasks {:?}/{:?}, \
             {} requests ({} errors), {} runs, p50 {:.2} p99 {:.2} ms",
            sample.rss_mib,
            sample.open_fds,
            sample.threads,
            sample.alive_tasks,
            sample.tracked_tasks,
            requests,
            errors,
            runs,
            sample.p50_ms,
            sample.p99_ms
        );
        samples.push(sample);
    }
    stop.store(true, Ordering::Relaxed);
    while let Some(done) = load.join_next().await {
        done??;
    }
    server.stop()?;
    let trends = trends(&samples);
    Ok(Soak {
        database: database.to_owned(),
        minutes: samples,
        trends,
        first_error,
    })
}

fn count_entries(dir: &str) -> u64 {
    std::fs::read_dir(dir)
        .map(|d| d.count() as u64)
        .unwrap_or(0)
}
