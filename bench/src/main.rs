//! `agentry-bench run` measures Agentry (and its peers) and writes `docs/benchmarks.md`;
//! `agentry-bench stub` runs the instant LLM stub on its own. `just bench` is the usual way in.

use std::path::PathBuf;
use std::time::Duration;

use agentry_bench::machine::Machine;
use agentry_bench::plan::Plan;
use agentry_bench::scenarios::soak;
use agentry_bench::server::Launch;
use agentry_bench::{Db, Options, Scenario, load, pg, report, server, stub};
use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(about = "Agentry benchmarks: run overhead, CRUD, WebSocket fan-out, memory, peers")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the scenarios and write the report.
    Run {
        /// Every scenario, briefly (the smoke plan): checks the harness, numbers meaningless.
        #[arg(long)]
        quick: bool,
        /// Only these scenarios (default: all).
        #[arg(long, value_enum, value_delimiter = ',')]
        only: Vec<Scenario>,
        /// Skip these scenarios.
        #[arg(long, value_enum, value_delimiter = ',')]
        skip: Vec<Scenario>,
        /// Databases for the overhead, CRUD and fan-out scenarios.
        #[arg(
            long,
            value_enum,
            value_delimiter = ',',
            default_value = "sqlite,postgres"
        )]
        db: Vec<Db>,
        /// The agentry binary (default: next to this one; build it in release for real numbers).
        #[arg(long)]
        server_bin: Option<PathBuf>,
        /// Where `cargo bench --bench registry` wrote its results (CRITERION_HOME).
        #[arg(long, env = "CRITERION_HOME")]
        criterion_home: Option<PathBuf>,
        /// Seconds per open-loop rate and per CRUD concurrency phase (default: the plan's).
        #[arg(long)]
        seconds: Option<f64>,
        /// Open-loop rates of the overhead ladder, runs/s (default: the plan's).
        #[arg(long, value_delimiter = ',')]
        rates: Vec<u64>,
        /// Markdown file whose generated section is replaced.
        #[arg(long)]
        markdown: Option<PathBuf>,
        /// Where the JSON results go.
        #[arg(long)]
        json: Option<PathBuf>,
    },
    /// Soak: one server under steady mixed load for a long time, sampled every minute
    /// (memory, file descriptors, threads, runtime tasks, latency); writes docs/soak.md.
    Soak {
        #[arg(long, default_value_t = 60)]
        minutes: u64,
        #[arg(long, value_enum, default_value = "sqlite")]
        db: Db,
        /// The agentry binary (default: next to this one; build it in release).
        #[arg(long)]
        server_bin: Option<PathBuf>,
        /// Where the report goes (replaced whole).
        #[arg(long)]
        markdown: Option<PathBuf>,
        /// Where the JSON results go.
        #[arg(long)]
        json: Option<PathBuf>,
    },
    /// Run the instant OpenAI-style stub until stopped.
    Stub {
        #[arg(long, default_value_t = 18000)]
        port: u16,
        /// Fixed delay before each completion answer.
        #[arg(long, default_value_t = 0)]
        delay_ms: u64,
    },
}

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    match cli.command {
        Command::Stub { port, delay_ms } => {
            stub::Stub::serve_forever(port, Duration::from_millis(delay_ms))
        }
        Command::Soak {
            minutes,
            db,
            server_bin,
            markdown,
            json,
        } => {
            anyhow::ensure!(minutes >= 1, "--minutes must be at least 1");
            let binary = server::find_binary(server_bin.as_deref())?;
            let command = std::env::var("AGENTRY_BENCH_COMMAND")
                .unwrap_or_else(|_| std::env::args().collect::<Vec<_>>().join(" "));
            let runtime = tokio::runtime::Builder::new_multi_thread()
                .enable_all()
                .build()?;
            let soak = runtime.block_on(soak(binary, db, minutes))?;
            if let Some(path) = &json {
                std::fs::write(path, serde_json::to_string_pretty(&soak)? + "\n")?;
            }
            let machine = Machine::probe();
            let machine = format!(
                "{} × {}, {} GiB, commit {}",
                machine.cores, machine.cpu, machine.memory_gib, machine.agentry_commit
            );
            let report = soak::markdown(&soak, &machine, &command);
            match &markdown {
                Some(path) => std::fs::write(path, report)?,
                None => eprintln!("{report}"),
            }
            anyhow::ensure!(
                soak.trends.iter().all(|t| t.flat),
                "not every figure stayed flat (see the report)"
            );
            Ok(())
        }
        Command::Run {
            quick,
            only,
            skip,
            db,
            server_bin,
            criterion_home,
            markdown,
            json,
            seconds,
            rates,
        } => {
            let mut plan = if quick { Plan::quick() } else { Plan::full() };
            if let Some(seconds) = seconds {
                plan.rate_duration = Duration::from_secs_f64(seconds);
                plan.crud_duration = Duration::from_secs_f64(seconds);
            }
            if !rates.is_empty() {
                plan.required_rates.retain(|r| rates.contains(r));
                plan.rates = rates;
            }
            let all = [
                Scenario::Overhead,
                Scenario::Queue,
                Scenario::Crud,
                Scenario::Fanout,
                Scenario::Memory,
                Scenario::Registry,
                Scenario::Peers,
            ];
            let scenarios = all
                .into_iter()
                .filter(|s| only.is_empty() || only.contains(s))
                .filter(|s| !skip.contains(s))
                .collect();
            let options = Options {
                plan,
                scenarios,
                databases: db,
                server_bin: server::find_binary(server_bin.as_deref())?,
                criterion_home,
                command: std::env::var("AGENTRY_BENCH_COMMAND")
                    .unwrap_or_else(|_| std::env::args().collect::<Vec<_>>().join(" ")),
            };
            let runtime = tokio::runtime::Builder::new_multi_thread()
                .enable_all()
                .build()?;
            let results = runtime.block_on(agentry_bench::run(&options))?;
            if let Some(path) = &json {
                report::write_json(path, &results)?;
            }
            match &markdown {
                Some(path) => report::write_markdown(path, &results)?,
                None => eprintln!("{}", report::markdown(&results)),
            }
            Ok(())
        }
    }
}

/// The soak on a fresh data directory (and database), with the runtime's figures logged.
async fn soak(binary: PathBuf, db: Db, minutes: u64) -> anyhow::Result<soak::Soak> {
    let data = tempfile::tempdir()?;
    let pg = match db {
        Db::Postgres => Some(pg::PgDatabase::create().await?),
        Db::Sqlite => None,
    };
    let launch = Launch {
        binary,
        data_dir: data.path().to_owned(),
        database_url: pg.as_ref().map(|pg| pg.url.clone()),
        log: "info,agentry::runtime=debug".to_owned(),
    };
    let client = load::client()?;
    let stub = stub::Stub::start(0, Duration::ZERO)?;
    let outcome = soak::run(
        &client,
        &launch,
        &stub,
        minutes,
        Duration::from_secs(60),
        db.name(),
    )
    .await;
    if let Some(pg) = pg {
        pg.drop_database().await?;
    }
    outcome
}
