//! How much each scenario does: the full plan (what `docs/benchmarks.md` publishes) and the
//! quick plan (the smoke test: every scenario, briefly).

use std::time::Duration;

#[derive(Debug, Clone)]
pub struct Plan {
    pub quick: bool,
    /// Warm-up requests before each measured phase.
    pub warmup: u64,
    /// Requests at concurrency 1.
    pub sequential: u64,
    /// Open-loop rates (runs/s) of the overhead ladder; `required` are always run, the others
    /// only while the server keeps up.
    pub rates: Vec<u64>,
    pub required_rates: Vec<u64>,
    pub rate_duration: Duration,
    /// Cap on requests in flight in open loops (beyond it requests count as dropped).
    pub max_in_flight: u64,
    /// Agents in the database for the list benchmark.
    pub crud_agents: u64,
    pub crud_concurrency: u64,
    pub crud_duration: Duration,
    pub fanout_clients: Vec<usize>,
    pub fanout_updates: u64,
    pub idle_clients: Vec<usize>,
    pub leak_runs: u64,
    /// Async runs per queue burst.
    pub queue_runs: u64,
    /// Open-loop rate (async runs/s) at which enqueue → assign is measured with free slots.
    pub queue_rate: u64,
    pub leak_sample_every: u64,
    pub leak_concurrency: u64,
    pub cold_starts: u32,
}

impl Plan {
    pub fn full() -> Plan {
        Plan {
            quick: false,
            warmup: 500,
            sequential: 3000,
            rates: vec![100, 250, 500, 1000, 1500, 2000, 3000, 4000],
            required_rates: vec![100, 500, 1000, 2000],
            rate_duration: Duration::from_secs(10),
            max_in_flight: 2048,
            crud_agents: 1000,
            crud_concurrency: 32,
            crud_duration: Duration::from_secs(5),
            fanout_clients: vec![1, 100, 1000],
            fanout_updates: 50,
            idle_clients: vec![1000, 10_000],
            leak_runs: 100_000,
            queue_runs: 10_000,
            queue_rate: 250,
            leak_sample_every: 10_000,
            leak_concurrency: 16,
            cold_starts: 5,
        }
    }

    pub fn quick() -> Plan {
        Plan {
            quick: true,
            warmup: 5,
            sequential: 30,
            rates: vec![50, 100],
            required_rates: vec![50],
            rate_duration: Duration::from_millis(400),
            max_in_flight: 256,
            crud_agents: 60,
            crud_concurrency: 4,
            crud_duration: Duration::from_millis(300),
            fanout_clients: vec![1, 10],
            fanout_updates: 3,
            idle_clients: vec![10, 40],
            leak_runs: 200,
            queue_runs: 300,
            queue_rate: 100,
            leak_sample_every: 100,
            leak_concurrency: 4,
            cold_starts: 1,
        }
    }
}
