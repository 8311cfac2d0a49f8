//! The load generator: closed loop (a fixed number of workers, each sending its next request
//! when the last one answers) and open loop (requests started on a fixed schedule whatever the
//! answers do, so a slow server cannot slow the offered load down). Latencies go into an HDR
//! histogram in microseconds.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use hdrhistogram::Histogram;
use reqwest::{Client, Method, StatusCode};
use serde::Serialize;

/// One request to send. `body` is JSON.
#[derive(Debug, Clone)]
pub struct Request {
    pub method: Method,
    pub url: String,
    pub body: Option<Vec<u8>>,
    pub bearer: Option<String>,
    /// The answer must have this status to count as a success.
    pub expect: StatusCode,
}

impl Request {
    pub fn get(url: impl Into<String>) -> Request {
        Request {
            method: Method::GET,
            url: url.into(),
            body: None,
            bearer: None,
            expect: StatusCode::OK,
        }
    }

    pub fn post(url: impl Into<String>, body: &serde_json::Value, expect: StatusCode) -> Request {
        Request {
            method: Method::POST,
            url: url.into(),
            body: Some(body.to_string().into_bytes()),
            bearer: None,
            expect,
        }
    }

    pub fn bearer(mut self, token: &str) -> Request {
        self.bearer = Some(token.to_owned());
        self
    }
}

/// Makes request number `i` (most scenarios send the same one every time).
pub type MakeRequest = Arc<dyn Fn(u64) -> Request + Send + Sync>;

pub fn same(request: Request) -> MakeRequest {
    Arc::new(move |_| request.clone())
}

/// An HTTP client for load: keep-alive, no proxy, generous pool.
pub fn client() -> anyhow::Result<Client> {
    // Already installed is fine.
    let _ = rustls::crypto::ring::default_provider().install_default();
    Ok(Client::builder()
        .no_proxy()
        .tcp_nodelay(true)
        .pool_max_idle_per_host(4096)
        .timeout(Duration::from_secs(30))
        .build()?)
}

/// What a load phase measured.
#[derive(Debug, Clone, Serialize)]
pub struct Summary {
    /// Offered rate (open loop) in requests/s; absent for closed loops.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rate: Option<u64>,
    /// Workers (closed loop) or the cap on requests in flight (open loop).
    pub concurrency: u64,
    pub requests: u64,
    pub errors: u64,
    /// Open loop: scheduled requests not sent because the in-flight cap was reached.
    pub dropped: u64,
    pub seconds: f64,
    /// Successful answers per second.
    pub throughput: f64,
    pub p50_ms: f64,
    pub p90_ms: f64,
    pub p99_ms: f64,
    pub max_ms: f64,
    pub mean_ms: f64,
    /// First error seen, to tell what went wrong.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub first_error: Option<String>,
}

impl Summary {
    /// One line for the progress log.
    pub fn line(&self) -> String {
        format!(
            "{} ok, {} errors, {} dropped, {:.0}/s, p50 {:.3} p90 {:.3} p99 {:.3} max {:.3} ms",
            self.requests - self.errors,
            self.errors,
            self.dropped,
            self.throughput,
            self.p50_ms,
            self.p90_ms,
            self.p99_ms,
            self.max_ms
        )
    }

    /// Whether the server kept up with an open-loop rate: no errors, nothing dropped, and at
    /// least 95 % of the offered rate answered.
    pub fn kept_up(&self) -> bool {
        let Some(rate) = self.rate else {
            return self.errors == 0;
        };
        self.errors == 0 && self.dropped == 0 && self.throughput >= 0.95 * rate as f64
    }
}

/// Latency recorder shared by the workers of one phase.
struct Recorder {
    histogram: std::sync::Mutex<Histogram<u64>>,
    errors: AtomicU64,
    dropped: AtomicU64,
    first_error: std::sync::Mutex<Option<String>>,
}

impl Recorder {
    fn new() -> anyhow::Result<Arc<Recorder>> {
        Ok(Arc::new(Recorder {
            histogram: std::sync::Mutex::new(histogram()?),
            errors: AtomicU64::new(0),
            dropped: AtomicU64::new(0),
            first_error: std::sync::Mutex::new(None),
        }))
    }

    async fn send(&self, client: &Client, request: Request) {
        let started = Instant::now();
        match send(client, request).await {
            Ok(()) => {
                let micros = u64::try_from(started.elapsed().as_micros()).unwrap_or(u64::MAX);
                if let Ok(mut histogram) = self.histogram.lock() {
                    histogram.saturating_record(micros.max(1));
                }
            }
            Err(err) => {
                self.errors.fetch_add(1, Ordering::Relaxed);
                if let Ok(mut first) = self.first_error.lock() {
                    first.get_or_insert(err);
                }
            }
        }
    }

    fn summary(&self, rate: Option<u64>, concurrency: u64, elapsed: Duration) -> Summary {
        let histogram = match self.histogram.lock() {
            Ok(histogram) => histogram.clone(),
            Err(poisoned) => poisoned.into_inner().clone(),
        };
        let mut summary = summarize(&histogram, elapsed);
        summary.rate = rate;
        summary.concurrency = concurrency;
        summary.errors = self.errors.load(Ordering::Relaxed);
        summary.requests += summary.errors;
        summary.dropped = self.dropped.load(Ordering::Relaxed);
        summary.first_error = self.first_error.lock().ok().and_then(|e| e.clone());
        summary
    }
}

/// An empty histogram in microseconds (1 µs .. 10 min, 3 significant figures).
pub fn histogram() -> anyhow::Result<Histogram<u64>> {
    Ok(Histogram::new_with_bounds(1, 600_000_000, 3)?)
}

/// Percentiles of successful samples recorded in microseconds; `elapsed` gives throughput.
pub fn summarize(histogram: &Histogram<u64>, elapsed: Duration) -> Summary {
    let ms = |micros: u64| micros as f64 / 1000.0;
    let ok = histogram.len();
    let seconds = elapsed.as_secs_f64();
    Summary {
        rate: None,
        concurrency: 1,
        requests: ok,
        errors: 0,
        dropped: 0,
        seconds,
        throughput: if seconds > 0.0 {
            ok as f64 / seconds
        } else {
            0.0
        },
        p50_ms: ms(histogram.value_at_quantile(0.50)),
        p90_ms: ms(histogram.value_at_quantile(0.90)),
        p99_ms: ms(histogram.value_at_quantile(0.99)),
        max_ms: ms(histogram.max()),
        mean_ms: histogram.mean() / 1000.0,
        first_error: None,
    }
}

async fn send(client: &Client, request: Request) -> Result<(), String> {
    let mut builder = client.request(request.method, &request.url);
    if let Some(body) = request.body {
        builder = builder
            .header(reqwest::header::CONTENT_TYPE, "application/json")
            .body(body);
    }
    if let Some(token) = request.bearer {
        builder = builder.bearer_auth(token);
    }
    let response = builder.send().await.map_err(|e| e.to_string())?;
    let status = response.status();
    // Read the whole answer: it is part of the latency.
    let body = response.bytes().await.map_err(|e| e.to_string())?;
    if status != request.expect {
        let text = String::from_utf8_lossy(&body);
        return Err(format!(
            "{status}: {}",
            text.chars().take(300).collect::<String>()
        ));
    }
    Ok(())
}

/// How long or how many.
#[derive(Debug, Clone, Copy)]
pub enum Bound {
    Requests(u64),
    Duration(Duration),
}

/// `concurrency` workers send requests back to back until the bound is reached.
pub async fn closed_loop(
    client: &Client,
    make: &MakeRequest,
    concurrency: u64,
    bound: Bound,
) -> anyhow::Result<Summary> {
    let recorder = Recorder::new()?;
    let next = Arc::new(AtomicU64::new(0));
    let started = Instant::now();
    let mut workers = Vec::new();
    for _ in 0..concurrency.max(1) {
        let (client, make, recorder, next) = (
            client.clone(),
            Arc::clone(make),
            Arc::clone(&recorder),
            Arc::clone(&next),
        );
        workers.push(tokio::spawn(async move {
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                let more = match bound {
                    Bound::Requests(n) => i < n,
                    Bound::Duration(d) => started.elapsed() < d,
                };
                if !more {
                    break;
                }
                recorder.send(&client, make(i)).await;
            }
        }));
    }
    for worker in workers {
        worker.await?;
    }
    Ok(recorder.summary(None, concurrency, started.elapsed()))
}

/// Starts `rate` requests per second for `duration`, each at its scheduled time whatever the
/// earlier ones are doing; at most `max_in_flight` at once (beyond that a request is counted
/// as dropped, so an overloaded server shows up instead of the harness running out of
/// memory). Latency is measured from each request's start.
pub async fn open_loop(
    client: &Client,
    make: &MakeRequest,
    rate: u64,
    duration: Duration,
    max_in_flight: u64,
) -> anyhow::Result<Summary> {
    let recorder = Recorder::new()?;
    let in_flight = Arc::new(AtomicU64::new(0));
    let total = (rate as f64 * duration.as_secs_f64()).round() as u64;
    let interval = Duration::from_secs_f64(1.0 / rate.max(1) as f64);
    let started = Instant::now();
    let mut tasks = tokio::task::JoinSet::new();
    for i in 0..total {
        let due = started + interval.mul_f64(i as f64);
        tokio::time::sleep_until(due.into()).await;
        if in_flight.load(Ordering::Relaxed) >= max_in_flight {
            recorder.dropped.fetch_add(1, Ordering::Relaxed);
            continue;
        }
        in_flight.fetch_add(1, Ordering::Relaxed);
        let (client, recorder, in_flight) = (
            client.clone(),
            Arc::clone(&recorder),
            Arc::clone(&in_flight),
        );
        let request = make(i);
        tasks.spawn(async move {
            recorder.send(&client, request).await;
            in_flight.fetch_sub(1, Ordering::Relaxed);
        });
        // Reap finished tasks as we go so the set stays small.
        while tasks.try_join_next().is_some() {}
    }
    while tasks.join_next().await.is_some() {}
    // Throughput over the offered window plus the drain of the last answers.
    Ok(recorder.summary(Some(rate), max_in_flight, started.elapsed()))
}
