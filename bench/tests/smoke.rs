//! The harness's smoke test: every scenario of the quick plan against the debug server on
//! SQLite and PostgreSQL, then the report. It checks that the harness works and that every
//! measured request succeeded, never how fast anything was (that is what `just bench` is for).

use agentry_bench::plan::Plan;
use agentry_bench::{Db, Options, Scenario, report, server};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_scenario_runs_briefly_and_reports() {
    let options = Options {
        plan: Plan::quick(),
        scenarios: vec![
            Scenario::Overhead,
            Scenario::Crud,
            Scenario::Fanout,
            Scenario::Memory,
        ],
        databases: vec![Db::Sqlite, Db::Postgres],
        server_bin: server::find_binary(None).expect(
            "the debug agentry binary (cargo test at the workspace root builds it; \
             or run cargo build -p server first)",
        ),
        criterion_home: None,
        command: "smoke".to_owned(),
    };
    let results = agentry_bench::run(&options)
        .await
        .expect("the harness runs");

    assert_eq!(results.overhead.len(), 2, "one ladder per database");
    for ladder in &results.overhead {
        let plan = Plan::quick();
        for summary in [&ladder.sequential.direct, &ladder.sequential.through] {
            assert_eq!(
                summary.errors, 0,
                "{}: {:?}",
                ladder.target, summary.first_error
            );
            assert_eq!(summary.requests, plan.sequential);
        }
        // Rates beyond saturation are skipped unless required (a slow CI machine may saturate).
        for required in &plan.required_rates {
            assert!(
                ladder
                    .rates
                    .iter()
                    .any(|p| p.through.rate == Some(*required)),
                "{}: {required}/s missing",
                ladder.target
            );
        }
        for pair in &ladder.rates {
            assert_eq!(pair.through.errors, 0, "{:?}", pair.through.first_error);
            assert!(pair.through.requests > 0);
        }
        assert_eq!(
            ladder.saturation.errors, 0,
            "{:?}",
            ladder.saturation.first_error
        );
    }
    assert_eq!(results.crud.len(), 2);
    for crud in &results.crud {
        assert_eq!(crud.create_agents.requests, Plan::quick().crud_agents);
        assert_eq!(crud.operations.len(), 3);
        for op in &crud.operations {
            for summary in [&op.sequential, &op.concurrent] {
                assert_eq!(summary.errors, 0, "{}: {:?}", op.name, summary.first_error);
                assert!(summary.requests > 0, "{}", op.name);
            }
        }
    }
    let clients: usize = Plan::quick().fanout_clients.iter().sum();
    assert_eq!(
        results.fanout.len(),
        4,
        "two client counts on two databases"
    );
    for fanout in &results.fanout {
        // Every client got every update (the scenario fails otherwise).
        assert_eq!(
            fanout.after_response.requests,
            fanout.clients as u64 * fanout.updates
        );
    }
    assert_eq!(
        results.fanout.iter().map(|f| f.clients).sum::<usize>(),
        2 * clients
    );
    let memory = results.memory.as_ref().expect("memory scenario");
    assert!(memory.idle_rss_mib > 1.0);
    assert_eq!(memory.ws_rss_mib.len(), Plan::quick().idle_clients.len());
    assert_eq!(
        memory.runs_rss_mib.last().map(|(runs, _)| *runs),
        Some(Plan::quick().leak_runs)
    );
    assert_eq!(memory.cold_start_ms.len(), 1);

    // The report: the generated section replaces the old one and keeps the prose around it.
    let dir = tempfile::tempdir().unwrap();
    let doc = dir.path().join("benchmarks.md");
    std::fs::write(
        &doc,
        format!(
            "# Prose before\n{}\nold numbers\n{}\nProse after\n",
            report::BEGIN,
            report::END
        ),
    )
    .unwrap();
    report::write_markdown(&doc, &results).unwrap();
    let text = std::fs::read_to_string(&doc).unwrap();
    assert!(text.starts_with("# Prose before\n"));
    assert!(text.ends_with("Prose after\n"));
    assert!(!text.contains("old numbers"));
    for heading in [
        "### 1. Run overhead",
        "### 2. CRUD",
        "### 3. WebSocket fan-out",
        "### 4. Memory and start-up",
    ] {
        assert!(text.contains(heading), "{heading} missing:\n{text}");
    }
    let json = dir.path().join("results.json");
    report::write_json(&json, &results).unwrap();
    let parsed: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(json).unwrap()).unwrap();
    assert_eq!(parsed["overhead"][0]["target"], "agentry (sqlite)");
}

/// The soak's harness, briefly: four two-second samples against the debug server. Every
/// request must succeed and every sample carry the server's figures; whether they stay flat
/// over so short a time is not asserted.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_soak_samples_every_figure() {
    use std::time::Duration;

    use agentry_bench::scenarios::soak;
    use agentry_bench::server::Launch;
    use agentry_bench::{load, stub};

    let data = tempfile::tempdir().expect("a data directory");
    let launch = Launch {
        binary: server::find_binary(None).expect("the debug agentry binary"),
        data_dir: data.path().to_owned(),
        database_url: None,
        log: "info,agentry::runtime=debug".to_owned(),
    };
    let client = load::client().expect("a client");
    let stub = stub::Stub::start(0, Duration::ZERO).expect("the stub");
    let result = soak::run(&client, &launch, &stub, 4, Duration::from_secs(2), "sqlite")
        .await
        .expect("the soak runs");
    assert_eq!(result.minutes.len(), 4);
    assert_eq!(result.first_error, None);
    for sample in &result.minutes {
        assert_eq!(sample.errors, 0);
        assert!(sample.requests > 0 && sample.runs > 0, "{sample:?}");
        assert!(sample.rss_mib > 0.0 && sample.open_fds > 0 && sample.threads > 0);
    }
    // The server logs its runtime figures every 10 s: by the last sample it has.
    assert!(
        result.minutes.iter().any(|m| m.alive_tasks.is_some()),
        "no runtime stats line was read"
    );
    let report = soak::markdown(&result, "test machine", "smoke");
    assert!(report.contains("| minute |") && report.contains("RSS (MiB)"));
}
