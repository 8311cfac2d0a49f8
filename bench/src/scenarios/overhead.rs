//! Scenario 1, run overhead: the same request sent directly to the stub and through a platform
//! (`POST …/runs`, sync and persisted, for Agentry; the chat route for LiteLLM), at
//! concurrency 1 and at fixed open-loop rates. The added latency is the difference,
//! percentile by percentile; the frontier is the highest rate whose added p99 stays under a
//! bound while the platform keeps up.

use reqwest::Client;
use serde::Serialize;

use super::Pair;
use crate::load::{self, Bound, MakeRequest, Summary};
use crate::plan::Plan;
use crate::server;

#[derive(Debug, Clone, Serialize)]
pub struct Ladder {
    /// What was measured: "agentry (sqlite)", "litellm", …
    pub target: String,
    pub sequential: Pair,
    pub rates: Vec<Pair>,
    /// Closed loop at concurrency 32 through the platform: its sustained throughput.
    pub saturation: Summary,
    /// Highest rate (runs/s) whose added p99 < 1 ms (and every lower rate's too).
    pub frontier_1ms: Option<u64>,
    pub frontier_5ms: Option<u64>,
}

/// Measures `through` against `direct` at concurrency 1 and along the plan's rate ladder.
/// `pid` is the platform's process, for its CPU time per request.
pub async fn ladder(
    target: &str,
    pid: Option<u32>,
    client: &Client,
    direct: &MakeRequest,
    through: &MakeRequest,
    plan: &Plan,
) -> anyhow::Result<Ladder> {
    let cpu = || pid.and_then(|pid| server::cpu_seconds(pid).ok());
    let spent = |before: Option<f64>| Some(cpu()? - before?);
    eprintln!("[overhead] {target}: warm-up and concurrency 1");
    load::closed_loop(client, direct, 1, Bound::Requests(plan.warmup)).await?;
    load::closed_loop(client, through, 1, Bound::Requests(plan.warmup)).await?;
    let direct_sequential =
        load::closed_loop(client, direct, 1, Bound::Requests(plan.sequential)).await?;
    let before = cpu();
    let through_sequential =
        load::closed_loop(client, through, 1, Bound::Requests(plan.sequential)).await?;
    let sequential = Pair::new(direct_sequential, through_sequential).with_cpu(spent(before));
    eprintln!("  direct  {}", sequential.direct.line());
    eprintln!("  through {}", sequential.through.line());
    eprintln!("[overhead] {target}: concurrency 32");
    let saturation =
        load::closed_loop(client, through, 32, Bound::Duration(plan.rate_duration)).await?;
    eprintln!("  through {}", saturation.line());
    let mut rates = Vec::new();
    let mut saturated = false;
    for &rate in &plan.rates {
        if saturated && !plan.required_rates.contains(&rate) {
            continue;
        }
        eprintln!("[overhead] {target}: {rate}/s");
        let direct =
            load::open_loop(client, direct, rate, plan.rate_duration, plan.max_in_flight).await?;
        let before = cpu();
        let through = load::open_loop(
            client,
            through,
            rate,
            plan.rate_duration,
            plan.max_in_flight,
        )
        .await?;
        eprintln!("  direct  {}", direct.line());
        eprintln!("  through {}", through.line());
        saturated |= !through.kept_up();
        rates.push(Pair::new(direct, through).with_cpu(spent(before)));
    }
    Ok(Ladder {
        target: target.to_owned(),
        frontier_1ms: frontier(&rates, 1.0),
        frontier_5ms: frontier(&rates, 5.0),
        sequential,
        rates,
        saturation,
    })
}

/// The highest rate such that it and every lower measured rate kept up with added p99 under
/// `bound_ms`.
pub fn frontier(rates: &[Pair], bound_ms: f64) -> Option<u64> {
    let mut best = None;
    for pair in rates {
        if pair.through.kept_up() && pair.added.p99_ms < bound_ms {
            best = pair.through.rate;
        } else {
            break;
        }
    }
    best
}
