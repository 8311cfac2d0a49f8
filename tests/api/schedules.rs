//! Scheduled runs: the API with its bad inputs, fires on an interval, at most one unfinished
//! run per schedule, "run now", schedules leaving with their agent, and restarts: missed
//! fires caught up or skipped, and one run per fire when a fire is handled again.

use std::time::{Duration, Instant};

use agentry::db::schedules::schedule;
use agentry_tests::fakes::{self, Reply};
use agentry_tests::{Backend, TestApp, db_tests};
use chrono::{DateTime, SubsecRound, Utc};
use sea_orm::{ColumnTrait, EntityTrait, QueryFilter, sea_query::Expr};
use serde_json::{Value, json};
use uuid::Uuid;

const INPUT: &str = r#"{"text": "What a wonderful day!"}"#;

/// An agent on an OpenAI fake with the sentiment task assigned: `(fake, agent, task)`.
async fn assignment(app: &TestApp) -> (fakes::Fake, Uuid, Uuid) {
    let openai = fakes::openai::start().await;
    openai.set_default_reply(Reply::Text(
        r#"{"sentiment":"positive","score":0.9}"#.to_owned(),
    ));
    let provider = json!({"name": "o", "kind": "openai", "base_url": openai.url("/v1"),
        "api_key": fakes::openai::KEY});
    let url = app.runnable(&provider, "gpt-4o-mini", json!({})).await;
    let parts: Vec<&str> = url.split('/').collect();
    (openai, parts[3].parse().unwrap(), parts[5].parse().unwrap())
}

fn body(agent: Uuid, task: Uuid, timing: Value) -> Value {
    let mut body = json!({"agent_id": agent, "task_id": task,
        "input": serde_json::from_str::<Value>(INPUT).unwrap()});
    for (k, v) in timing.as_object().unwrap() {
        body[k] = v.clone();
    }
    body
}

/// Creates a schedule of the assignment; its id.
async fn create(app: &TestApp, agent: Uuid, task: Uuid, timing: Value) -> Uuid {
    app.post("/api/schedules", &body(agent, task, timing))
        .await
        .assert_status(201)
        .id()
}

async fn gone(app: &TestApp, id: Uuid) {
    app.get(&format!("/api/schedules/{id}"))
        .await
        .assert_problem(404, "not_found");
}

fn time(value: &Value) -> DateTime<Utc> {
    value.as_str().unwrap().parse().unwrap()
}

/// The runs a schedule started, oldest first.
async fn runs_of(app: &TestApp, agent: Uuid, schedule: Uuid) -> Vec<Value> {
    let page = app
        .get(&format!("/api/runs?agent_id={agent}&limit=200"))
        .await
        .json();
    let mut runs: Vec<Value> = page["items"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| r["schedule_id"] == json!(schedule))
        .cloned()
        .collect();
    runs.reverse();
    runs
}

/// Polls until `check` holds for the schedule's runs (deadline: 30 s).
async fn runs_until(
    app: &TestApp,
    agent: Uuid,
    schedule: Uuid,
    check: impl Fn(&[Value]) -> bool,
) -> Vec<Value> {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let runs = runs_of(app, agent, schedule).await;
        if check(&runs) {
            return runs;
        }
        assert!(Instant::now() < deadline, "runs never matched: {runs:?}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

async fn bad_schedules_are_refused_with_their_reason_and_nothing_is_stored(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let (_openai, agent, task) = assignment(&app).await;
    let other_task = app.simple_task("unassigned").await;
    let cases: Vec<(Value, u16, &str)> = vec![
        (body(agent, task, json!({})), 422, "/cron"),
        (
            body(agent, task, json!({"cron": "* * * * *", "every_secs": 5})),
            422,
            "/every_secs",
        ),
        (
            body(agent, task, json!({"every_secs": 0})),
            422,
            "/every_secs",
        ),
        (
            body(agent, task, json!({"every_secs": 31_536_001})),
            422,
            "/every_secs",
        ),
        (
            body(agent, task, json!({"every_secs": 1.5})),
            422,
            "/every_secs",
        ),
        (
            body(agent, task, json!({"cron": "61 * * * *"})),
            422,
            "/cron",
        ),
        (
            body(agent, task, json!({"cron": "every day"})),
            422,
            "/cron",
        ),
        (
            body(
                agent,
                task,
                json!({"cron": "0 9 * * *", "timezone": "Mars/Olympus"}),
            ),
            422,
            "/timezone",
        ),
        (
            body(agent, task, json!({"every_secs": 60, "catch_up": "all"})),
            422,
            "/catch_up",
        ),
        (
            body(agent, task, json!({"every_secs": 60, "input": {"text": 5}})),
            422,
            "/input",
        ),
        (body(agent, other_task, json!({"every_secs": 60})), 409, ""),
        (
            body(Uuid::new_v4(), task, json!({"every_secs": 60})),
            404,
            "",
        ),
    ];
    for (request, status, path) in cases {
        let response = app.post("/api/schedules", &request).await;
        assert_eq!(
            response.status.as_u16(),
            status,
            "{request}: {}",
            response.json()
        );
        if !path.is_empty() {
            let problem = response.json();
            let paths: Vec<&str> = problem["errors"]
                .as_array()
                .map(|errors| errors.iter().filter_map(|e| e["path"].as_str()).collect())
                .unwrap_or_default();
            assert!(
                paths.iter().any(|p| p.starts_with(path))
                    || problem["detail"]
                        .as_str()
                        .unwrap_or("")
                        .contains(path.trim_start_matches('/')),
                "{request}: expected a problem at {path}: {problem}"
            );
        }
    }
    assert_eq!(app.get("/api/schedules").await.json(), json!([]));
}

async fn a_schedule_fires_on_its_interval_and_lists_its_next_fire_times(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let (_openai, agent, task) = assignment(&app).await;
    let created = app
        .post(
            "/api/schedules",
            &body(agent, task, json!({"every_secs": 1})),
        )
        .await
        .assert_status(201)
        .json();
    let id: Uuid = created["id"].as_str().unwrap().parse().unwrap();
    assert_eq!(created["timezone"], "UTC");
    assert_eq!(created["catch_up"], "skip");
    let upcoming: Vec<DateTime<Utc>> = created["upcoming"]
        .as_array()
        .unwrap()
        .iter()
        .map(time)
        .collect();
    assert_eq!(upcoming.len(), 5, "{created}");
    assert_eq!(upcoming[0], time(&created["next_fire_at"]));
    for pair in upcoming.windows(2) {
        assert_eq!(pair[1] - pair[0], chrono::Duration::seconds(1));
    }
    let runs = runs_until(&app, agent, id, |runs| {
        runs.len() >= 2 && runs.iter().all(|r| r["status"] == "succeeded")
    })
    .await;
    for run in &runs {
        assert_eq!(run["schedule_id"], json!(id));
        assert_eq!(run["input"], serde_json::from_str::<Value>(INPUT).unwrap());
    }
    let stored = app.get(&format!("/api/schedules/{id}")).await.json();
    assert!(
        time(&stored["next_fire_at"]) > time(&created["next_fire_at"]),
        "{stored}"
    );
    assert!(stored["last_run_id"].is_string(), "{stored}");
    // Disabled: it has no next fire time and fires no more.
    let mut update = body(agent, task, json!({"every_secs": 1}));
    update["enabled"] = json!(false);
    let disabled = app
        .put(&format!("/api/schedules/{id}"), &update)
        .await
        .assert_status(200)
        .json();
    assert!(disabled["next_fire_at"].is_null() && disabled["upcoming"] == json!([]));
    let listed = app
        .get(&format!("/api/schedules?agent_id={agent}"))
        .await
        .json();
    assert_eq!(listed.as_array().unwrap().len(), 1, "{listed}");
    app.delete(&format!("/api/schedules/{id}"))
        .await
        .assert_status(204);
    gone(&app, id).await;
}

async fn a_schedule_never_has_two_unfinished_runs_and_run_now_waits_for_it(backend: Backend) {
    // No worker: the first run stays queued, so every later fire finds it unfinished.
    let app = TestApp::spawn_with(backend, |c| c.builtin_worker = false).await;
    let (_openai, agent, task) = assignment(&app).await;
    let id = create(&app, agent, task, json!({"every_secs": 1})).await;
    runs_until(&app, agent, id, |runs| runs.len() == 1).await;
    // Two more fire times pass, each skipped.
    let first = app.get(&format!("/api/schedules/{id}")).await.json();
    let skipped = app
        .get_until(&format!("/api/schedules/{id}"), |s| {
            s["last_error"]
                .as_str()
                .is_some_and(|e| e.contains("previous run"))
                && time(&s["next_fire_at"]) > time(&first["next_fire_at"])
        })
        .await;
    assert!(
        skipped["last_run_id"].is_string(),
        "the last run is kept: {skipped}"
    );
    assert_eq!(runs_of(&app, agent, id).await.len(), 1);
    app.post(&format!("/api/schedules/{id}/run"), &json!({}))
        .await
        .assert_problem(409, "conflict");
}

async fn run_now_starts_a_run_and_counts_the_next_fire_from_now(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let (_openai, agent, task) = assignment(&app).await;
    let created = app
        .post(
            "/api/schedules",
            &body(
                agent,
                task,
                json!({"cron": "0 0 1 1 *", "timezone": "Europe/Paris"}),
            ),
        )
        .await
        .assert_status(201)
        .json();
    let id: Uuid = created["id"].as_str().unwrap().parse().unwrap();
    // 1 January 00:00 in Paris is 23:00 UTC the day before (winter time).
    let next = time(&created["next_fire_at"]);
    assert_eq!(
        next.format("%m-%d %H:%M").to_string(),
        "12-31 23:00",
        "{created}"
    );
    let ran = app
        .post(&format!("/api/schedules/{id}/run"), &json!({}))
        .await;
    ran.assert_status(202);
    let run = ran.json();
    assert_eq!(run["schedule_id"], json!(id));
    let finished = app.run_finished(run["id"].as_str().unwrap()).await;
    assert_eq!(finished["status"], "succeeded", "{finished}");
    let stored = app.get(&format!("/api/schedules/{id}")).await.json();
    assert_eq!(stored["last_run_id"], run["id"]);
    assert_eq!(
        time(&stored["next_fire_at"]),
        next,
        "a cron keeps its own times"
    );
    app.post(
        &format!("/api/schedules/{}/run", Uuid::new_v4()),
        &json!({}),
    )
    .await
    .assert_problem(404, "not_found");
}

async fn deleting_the_agent_or_unassigning_the_task_removes_its_schedules(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let (_openai, agent, task) = assignment(&app).await;
    let id = create(&app, agent, task, json!({"every_secs": 3600})).await;
    app.delete(&format!("/api/agents/{agent}/tasks/{task}"))
        .await
        .assert_status(204);
    gone(&app, id).await;
    app.assign(agent, task).await.assert_status(201);
    let id = create(&app, agent, task, json!({"every_secs": 3600})).await;
    app.delete(&format!("/api/agents/{agent}"))
        .await
        .assert_status(204);
    gone(&app, id).await;
}

/// Sets a stopped server's schedule to fire at `at`.
async fn set_next_fire(config: &agentry::config::Config, id: Uuid, at: DateTime<Utc>) {
    let db = agentry::db::connect::connect(&config.database_url())
        .await
        .unwrap();
    schedule::Entity::update_many()
        .col_expr(schedule::Column::NextFireAt, Expr::value(Some(at)))
        .filter(schedule::Column::Id.eq(id))
        .exec(&db)
        .await
        .unwrap();
    db.close().await.unwrap();
}

async fn missed_fires_are_caught_up_once_or_skipped_and_a_fire_runs_once_across_restarts(
    backend: Backend,
) {
    let app = TestApp::spawn(backend).await;
    let (openai, agent, task) = assignment(&app).await;
    let one = json!({"every_secs": 3600, "catch_up": "one"});
    let one = create(&app, agent, task, one).await;
    let skip = create(&app, agent, task, json!({"every_secs": 3600})).await;
    let (config, dir, pg) = app.stop().await;
    // Down for three hours: both missed three fire times.
    let missed = (Utc::now() - chrono::Duration::hours(3)).trunc_subsecs(3);
    set_next_fire(&config, one, missed).await;
    set_next_fire(&config, skip, missed).await;
    let app = TestApp::start(config, dir, pg).await;
    let runs = runs_until(&app, agent, one, |runs| {
        runs.len() == 1 && runs[0]["status"] == "succeeded"
    })
    .await;
    let caught_up = app.get(&format!("/api/schedules/{one}")).await.json();
    assert_eq!(caught_up["last_run_id"], runs[0]["id"]);
    assert!(time(&caught_up["next_fire_at"]) > Utc::now(), "{caught_up}");
    let skipped = app
        .get_until(&format!("/api/schedules/{skip}"), |s| {
            time(&s["next_fire_at"]) > Utc::now()
        })
        .await;
    assert!(
        skipped["last_error"].as_str().unwrap().contains("skipped"),
        "{skipped}"
    );
    assert!(runs_of(&app, agent, skip).await.is_empty());
    // The server crashed after starting the run of a fire and before moving the schedule
    // on: it handles the same fire again after the restart, and no second run starts.
    let (config, dir, pg) = app.stop().await;
    let run_id: Uuid = runs[0]["id"].as_str().unwrap().parse().unwrap();
    let db = agentry::db::connect::connect(&config.database_url())
        .await
        .unwrap();
    let stored = agentry::db::runs::run::Entity::find_by_id(run_id)
        .one(&db)
        .await
        .unwrap()
        .unwrap();
    db.close().await.unwrap();
    let scheduled_for = stored.scheduled_for.unwrap();
    assert_eq!(scheduled_for, missed, "the run is of the missed fire time");
    set_next_fire(&config, one, scheduled_for).await;
    let app = TestApp::start(config, dir, pg).await;
    let again = app
        .get_until(&format!("/api/schedules/{one}"), |s| {
            time(&s["next_fire_at"]) > Utc::now()
        })
        .await;
    assert_eq!(again["last_run_id"], runs[0]["id"], "{again}");
    assert_eq!(runs_of(&app, agent, one).await.len(), 1);
    assert_eq!(
        openai.requests_to("/v1/chat/completions").len(),
        1,
        "the provider was called once"
    );
}

db_tests!(
    bad_schedules_are_refused_with_their_reason_and_nothing_is_stored,
    a_schedule_fires_on_its_interval_and_lists_its_next_fire_times,
    a_schedule_never_has_two_unfinished_runs_and_run_now_waits_for_it,
    run_now_starts_a_run_and_counts_the_next_fire_from_now,
    deleting_the_agent_or_unassigning_the_task_removes_its_schedules,
    missed_fires_are_caught_up_once_or_skipped_and_a_fire_runs_once_across_restarts,
);
