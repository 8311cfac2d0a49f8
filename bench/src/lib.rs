//! Agentry's benchmark harness: an instant LLM stub, a load generator, the real server as a
//! separate process on SQLite and PostgreSQL, the scenarios of `docs/benchmarks.md`, and the
//! peers measured next to it. Everything binds 127.0.0.1 and is bounded in count and time.
#![expect(
    clippy::disallowed_methods,
    reason = "the harness drives the server from outside: its own HTTP client and tasks"
)]

pub mod fixtures;
pub mod load;
pub mod machine;
pub mod peers;
pub mod pg;
pub mod plan;
pub mod registry;
pub mod report;
pub mod scenarios;
pub mod server;
pub mod stub;

use std::path::PathBuf;
use std::time::Duration;

use serde::Serialize;

use crate::fixtures::Runnable;
use crate::load::Request;
use crate::machine::Machine;
use crate::plan::Plan;
use crate::scenarios::{crud, fanout, memory, overhead, queue};
use crate::server::{Launch, Server};
use crate::stub::Stub;

/// The scenarios, selectable with `--only`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Scenario {
    Overhead,
    /// Async runs through the queue: built-in worker, then one remote worker.
    Queue,
    Crud,
    Fanout,
    Memory,
    Registry,
    Peers,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Db {
    Sqlite,
    Postgres,
}

impl Db {
    pub fn name(self) -> &'static str {
        match self {
            Db::Sqlite => "sqlite",
            Db::Postgres => "postgres",
        }
    }
}

/// What to run.
#[derive(Debug, Clone)]
pub struct Options {
    pub plan: Plan,
    pub scenarios: Vec<Scenario>,
    pub databases: Vec<Db>,
    pub server_bin: PathBuf,
    pub criterion_home: Option<PathBuf>,
    /// The command line, for the report.
    pub command: String,
}

/// Everything a run measured.
#[derive(Debug, Clone, Serialize)]
pub struct Results {
    pub started_at: String,
    pub command: String,
    pub quick: bool,
    pub machine: Machine,
    pub overhead: Vec<overhead::Ladder>,
    pub queue: Vec<queue::Queue>,
    pub crud: Vec<crud::Crud>,
    pub fanout: Vec<fanout::Fanout>,
    pub memory: Option<memory::Memory>,
    pub registry: Vec<registry::Estimate>,
    pub peers: Option<peers::Peers>,
    pub seconds: f64,
}

/// Runs the selected scenarios and returns their results.
pub async fn run(options: &Options) -> anyhow::Result<Results> {
    let began = std::time::Instant::now();
    let wants = |s: Scenario| options.scenarios.contains(&s);
    let mut machine = Machine::probe();
    if options.databases.contains(&Db::Postgres) {
        machine.postgres = pg::PgDatabase::version().await.ok();
    }
    let mut results = Results {
        started_at: chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
        command: options.command.clone(),
        quick: options.plan.quick,
        machine,
        overhead: Vec::new(),
        queue: Vec::new(),
        crud: Vec::new(),
        fanout: Vec::new(),
        memory: None,
        registry: Vec::new(),
        peers: None,
        seconds: 0.0,
    };
    let client = load::client()?;
    let stub = Stub::start(0, Duration::ZERO)?;
    let plan = &options.plan;

    if wants(Scenario::Overhead)
        || wants(Scenario::Queue)
        || wants(Scenario::Crud)
        || wants(Scenario::Fanout)
    {
        for &db in &options.databases {
            let data = tempfile::tempdir()?;
            let pg = match db {
                Db::Postgres => Some(pg::PgDatabase::create().await?),
                Db::Sqlite => None,
            };
            let launch = Launch {
                binary: options.server_bin.clone(),
                data_dir: data.path().to_owned(),
                database_url: pg.as_ref().map(|pg| pg.url.clone()),
                log: "info".to_owned(),
            };
            let outcome = on_one_database(db, &launch, &client, &stub, options, &mut results).await;
            if let Some(pg) = pg {
                pg.drop_database().await?;
            }
            outcome?;
        }
    }
    if wants(Scenario::Memory) {
        let data = tempfile::tempdir()?;
        let launch = Launch {
            binary: options.server_bin.clone(),
            data_dir: data.path().to_owned(),
            database_url: None,
            log: "info".to_owned(),
        };
        results.memory = Some(memory::run(&client, &launch, &stub, plan).await?);
    }
    if wants(Scenario::Registry)
        && let Some(home) = &options.criterion_home
    {
        results.registry = registry::read(home);
    }
    if wants(Scenario::Peers) {
        let work = tempfile::tempdir()?;
        results.peers = Some(peers::run(&client, &stub, plan, work.path()).await);
    }
    results.machine.load_end = machine::load_average();
    results.seconds = began.elapsed().as_secs_f64();
    Ok(results)
}

async fn on_one_database(
    db: Db,
    launch: &Launch,
    client: &reqwest::Client,
    stub: &Stub,
    options: &Options,
    results: &mut Results,
) -> anyhow::Result<()> {
    let wants = |s: Scenario| options.scenarios.contains(&s);
    let server = Server::start(launch)?;
    let base = server.base_url.clone();
    let fixture = fixtures::runnable(client, &base, &stub.base_url(), db.name()).await?;
    let work = async {
        if wants(Scenario::Overhead) {
            results.overhead.push(
                run_overhead(
                    db,
                    server.pid(),
                    client,
                    &base,
                    stub,
                    &fixture,
                    &options.plan,
                )
                .await?,
            );
        }
        if wants(Scenario::Queue) {
            let plan = &options.plan;
            let loads = [
                queue::Submit::Burst {
                    runs: plan.queue_runs,
                    concurrency: 32,
                },
                queue::Submit::Rate {
                    rate: plan.queue_rate,
                    duration: plan.rate_duration,
                },
            ];
            // Each measurement has its own agent: its runs are read back to compute latencies.
            let fixture = |label: String| {
                let (base, stub) = (base.as_str(), stub.base_url());
                async move { fixtures::runnable(client, base, &stub, &label).await }
            };
            for (i, how) in loads.into_iter().enumerate() {
                let runnable = fixture(format!("{}-queue-{i}", db.name())).await?;
                results.queue.push(
                    queue::measure("built-in", db.name(), client, &base, &runnable, how).await?,
                );
            }
            let dir = tempfile::tempdir()?;
            let mut worker =
                queue::remote_worker(client, &base, &launch.binary, dir.path(), 64).await?;
            let mut measured = Ok(());
            for (i, how) in loads.into_iter().enumerate() {
                let runnable = fixture(format!("{}-remote-{i}", db.name())).await?;
                match queue::measure(
                    "remote (WebSocket)",
                    db.name(),
                    client,
                    &base,
                    &runnable,
                    how,
                )
                .await
                {
                    Ok(queue) => results.queue.push(queue),
                    Err(err) => {
                        measured = Err(err);
                        break;
                    }
                }
            }
            worker.kill().await.ok();
            measured?;
            // The scenarios after this one expect the built-in worker.
            client
                .patch(format!(
                    "{base}/api/workers/{}",
                    queue::builtin_id(client, &base).await?
                ))
                .json(&serde_json::json!({"enabled": true}))
                .send()
                .await?
                .error_for_status()?;
        }
        if wants(Scenario::Crud) {
            results
                .crud
                .push(crud::run(db.name(), client, &base, &fixture, &options.plan).await?);
        }
        if wants(Scenario::Fanout) {
            results
                .fanout
                .extend(fanout::run(db.name(), client, &base, &fixture, &options.plan).await?);
        }
        anyhow::Ok(())
    };
    match work.await {
        Ok(()) => server.stop(),
        Err(err) => Err(err.context(format!("server log:\n{}", server.log_tail()))),
    }
}

async fn run_overhead(
    db: Db,
    pid: u32,
    client: &reqwest::Client,
    base: &str,
    stub: &Stub,
    fixture: &Runnable,
    plan: &Plan,
) -> anyhow::Result<overhead::Ladder> {
    let direct = load::same(Request::post(
        format!("{}/chat/completions", stub.base_url()),
        &fixtures::direct_chat_body(),
        reqwest::StatusCode::OK,
    ));
    let through = load::same(Request::post(
        fixture.runs_url(base),
        &fixtures::run_input(),
        reqwest::StatusCode::CREATED,
    ));
    // A run that does not succeed would make the numbers meaningless.
    let probe = client
        .post(fixture.runs_url(base))
        .json(&fixtures::run_input())
        .send()
        .await?
        .json::<serde_json::Value>()
        .await?;
    if probe["status"] != "succeeded" {
        anyhow::bail!("a run through the stub did not succeed: {probe}");
    }
    overhead::ladder(
        &format!("agentry ({})", db.name()),
        Some(pid),
        client,
        &direct,
        &through,
        plan,
    )
    .await
}
