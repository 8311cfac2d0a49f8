//! Scenario 3, WebSocket fan-out: N clients subscribed to `agents`; the agent is updated over
//! the REST API, one update at a time; each client's receipt of the event is timed from the
//! moment the update's HTTP response arrived (and, for context, from when it was sent).

use std::time::{Duration, Instant};

use anyhow::bail;
use reqwest::{Client, StatusCode};
use serde::Serialize;
use uuid::Uuid;

use super::ws;
use crate::fixtures::{self, Runnable};
use crate::load::{self, Summary};
use crate::plan::Plan;

const DEADLINE: Duration = Duration::from_secs(30);

#[derive(Debug, Clone, Serialize)]
pub struct Fanout {
    pub database: String,
    pub clients: usize,
    pub updates: u64,
    /// HTTP response of the update → event received, over every client and update.
    pub after_response: Summary,
    /// Update request sent → event received.
    pub after_request: Summary,
    /// Events that arrived before the update's response did (counted as 0 ms above).
    pub before_response: u64,
}

pub async fn run(
    database: &str,
    client: &Client,
    base: &str,
    fixture: &Runnable,
    plan: &Plan,
) -> anyhow::Result<Vec<Fanout>> {
    let mut results = Vec::new();
    for &clients in &plan.fanout_clients {
        eprintln!("[fanout] {database}: {clients} clients");
        results.push(
            one(
                database,
                client,
                base,
                fixture,
                clients,
                plan.fanout_updates,
            )
            .await?,
        );
    }
    Ok(results)
}

async fn one(
    database: &str,
    client: &Client,
    base: &str,
    fixture: &Runnable,
    count: usize,
    updates: u64,
) -> anyhow::Result<Fanout> {
    let marker = format!("fanout-{}-", Uuid::new_v4().simple());
    let (tx, mut rx) = ws::receipts::<(u64, Instant)>();
    let clients = {
        let marker = marker.clone();
        ws::connect(base, "agents", count, move |text, at| {
            // A substring search, not a JSON parse: the client's own cost stays out of the
            // measurement as far as possible.
            if let Some(start) = text.find(&marker) {
                let digits: String = text[start + marker.len()..]
                    .chars()
                    .take_while(char::is_ascii_digit)
                    .collect();
                if let Ok(k) = digits.parse() {
                    let _ = tx.send((k, at));
                }
            }
        })
        .await?
    };
    let url = format!("{base}/api/agents/{}", fixture.agent_id);
    let (mut after_response, mut after_request) = (load::histogram()?, load::histogram()?);
    let mut before_response = 0;
    let started = Instant::now();
    for k in 0..updates {
        let mut body = fixtures::agent_body(&fixture.name, &fixture.provider_id);
        body["description"] = format!("{marker}{k}").into();
        let sent = Instant::now();
        let response = client.put(&url).json(&body).send().await?;
        let status = response.status();
        response.bytes().await?;
        let answered = Instant::now();
        if status != StatusCode::OK {
            bail!("update answered {status}");
        }
        let mut received = 0;
        while received < count {
            let Ok(Some((seen, at))) = tokio::time::timeout(DEADLINE, rx.recv()).await else {
                bail!("only {received} of {count} clients got update {k}");
            };
            if seen != k {
                continue;
            }
            received += 1;
            if at < answered {
                before_response += 1;
            }
            let micros = |d: Duration| u64::try_from(d.as_micros()).unwrap_or(u64::MAX).max(1);
            after_response.saturating_record(micros(at.saturating_duration_since(answered)));
            after_request.saturating_record(micros(at.saturating_duration_since(sent)));
        }
    }
    let elapsed = started.elapsed();
    clients.close().await;
    eprintln!(
        "  after response p50 {:.3} p99 {:.3} max {:.3} ms",
        after_response.value_at_quantile(0.5) as f64 / 1000.0,
        after_response.value_at_quantile(0.99) as f64 / 1000.0,
        after_response.max() as f64 / 1000.0
    );
    let mut after_response = load::summarize(&after_response, elapsed);
    let mut after_request = load::summarize(&after_request, elapsed);
    after_response.concurrency = count as u64;
    after_request.concurrency = count as u64;
    Ok(Fanout {
        database: database.to_owned(),
        clients: count,
        updates,
        after_response,
        after_request,
        before_response,
    })
}
