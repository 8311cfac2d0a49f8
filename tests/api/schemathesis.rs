//! The whole API under schemathesis (installed by `scripts/schemathesis`): the real server on
//! each database, with the API token set, every phase (examples, coverage, fuzzing, stateful)
//! and every check. It must find nothing. The narrow, documented relaxations are in
//! `tests/schemathesis/schemathesis.toml`.
//!
//! A provider on the OpenAI fake, a task, an agent, their assignment and one run are created
//! first; the operations that need an assigned pair or a run get those ids (the config file
//! reads them from the environment), so runs are really started, listed and canceled rather
//! than answered 404.
//!
//! `AGENTRY_SCHEMATHESIS_EXAMPLES` (default 40 per operation) and `AGENTRY_SCHEMATHESIS_SEED`
//! (default 1, for a reproducible suite) tune a run.

use std::path::PathBuf;
use std::process::Stdio;
use std::time::Instant;

use agentry_tests::fakes::{self, Reply};
use agentry_tests::{Backend, TestApp, db_tests};
use serde_json::json;

const TOKEN: &str = "schemathesis-token-0123456789abcdef";

fn st() -> PathBuf {
    let home = match std::env::var_os("AGENTRY_SCHEMATHESIS_HOME") {
        Some(dir) => PathBuf::from(dir),
        None => PathBuf::from(std::env::var_os("HOME").expect("HOME is set"))
            .join(".cache/agentry-schemathesis"),
    };
    let st = home.join("venv/bin/st");
    assert!(
        st.exists(),
        "{} is missing: run scripts/schemathesis (set AGENTRY_SCHEMATHESIS_HOME if it lives \
         elsewhere)",
        st.display()
    );
    st
}

fn setting(name: &str, default: &str) -> String {
    std::env::var(name).unwrap_or_else(|_| default.to_owned())
}

async fn the_api_passes_schemathesis_with_every_check(backend: Backend) {
    let st = st();
    let openai = fakes::openai::start().await;
    openai.set_default_reply(Reply::Text(
        r#"{"sentiment":"positive","score":0.9}"#.to_owned(),
    ));
    let app = TestApp::spawn_with(backend, |c| {
        c.api_token = Some(TOKEN.to_owned());
        // One client sends thousands of requests without the token (the ignored_auth check);
        // the per-address limit on failed attempts is tested in auth.rs.
        c.auth_failures_per_minute = 0;
    })
    .await;
    let provider = json!({"name": "fixture", "kind": "openai", "base_url": openai.url("/v1"),
        "api_key": fakes::openai::KEY});
    let runs_url = app
        .runnable(
            &provider,
            "gpt-4o-mini",
            json!({"timeout_secs": 5, "max_retries": 0}),
        )
        .await;
    let ids: Vec<&str> = runs_url.split('/').collect();
    let (agent, task) = (ids[3].to_owned(), ids[5].to_owned());
    let run = app
        .post(&runs_url, &json!({"input": {"text": "fixture"}}))
        .await
        .assert_status(201)
        .id();

    let config = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("schemathesis/schemathesis.toml");
    // Kept after the test, for a look at the warnings and coverage of a passing run too.
    let report = std::env::temp_dir().join(format!("agentry-schemathesis-{backend:?}.txt"));
    // schemathesis keeps a cache of past failures (`.schemathesis/`) in its working
    // directory: each run gets its own, so runs never replay each other's cases.
    let workdir = tempfile::tempdir().expect("a working directory for schemathesis");
    let started = Instant::now();
    let output = tokio::process::Command::new(&st)
        .current_dir(workdir.path())
        .arg("--config-file")
        .arg(&config)
        .args(["run", &format!("{}/openapi.json", app.base_url)])
        .args(["--phases", "examples,coverage,fuzzing,stateful"])
        .args(["--header", &format!("Authorization: Bearer {TOKEN}")])
        .args([
            "--max-examples",
            &setting("AGENTRY_SCHEMATHESIS_EXAMPLES", "40"),
        ])
        .args(["--seed", &setting("AGENTRY_SCHEMATHESIS_SEED", "1")])
        .args(["--workers", "2", "--no-color", "--request-timeout", "30"])
        .env("AGENTRY_ST_AGENT", &agent)
        .env("AGENTRY_ST_TASK", &task)
        .env("AGENTRY_ST_RUN", run.to_string())
        .stdin(Stdio::null())
        .kill_on_drop(true)
        .output()
        .await
        .expect("run schemathesis");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    std::fs::write(&report, &text).expect("write the schemathesis report");
    let summary: Vec<&str> = text
        .lines()
        .filter(|l| l.contains(" generated, ") || l.contains("API Links:"))
        .map(str::trim)
        .collect();
    eprintln!(
        "schemathesis on {backend:?} in {:.0?}: {} (report: {})",
        started.elapsed(),
        summary.join("; "),
        report.display()
    );
    // The server's side of a failure (a 500 names no cause in its answer).
    let errors: Vec<String> = agentry_tests::logs::captured()
        .lines()
        .filter(|l| l.contains("ERROR"))
        .map(str::to_owned)
        .collect();
    assert!(
        output.status.success(),
        "schemathesis found problems on {backend:?} ({}):\n{text}\nserver errors:\n{}",
        output.status,
        errors.join("\n")
    );
}

db_tests!(the_api_passes_schemathesis_with_every_check);
