//! Concurrency groups end to end: the API (bad input refused, nothing lost), the limit held
//! exactly under 1,000 simultaneous submissions (checked at the provider fake, which records
//! when each call starts and ends, and on the stored runs), full groups holding back only
//! their own runs, queue order inside a group, limit changes at the next dispatch, and the
//! reason a run of a full group fails with after its queue timeout.

mod restarts;

use std::time::{Duration, Instant};

use agentry_tests::fakes::{self, Behavior, Reply};
use agentry_tests::{Backend, TestApp, agent_body, closed_schema, db_tests, task_body};
use futures_util::future::join_all;
use serde_json::{Value, json};
use uuid::Uuid;

const VALID: &str = r#"{"sentiment":"positive","score":0.9}"#;

db_tests!(
    groups_are_managed_and_bad_input_is_refused,
    a_group_never_runs_more_than_its_limit,
    a_full_group_holds_back_only_its_own_runs,
    limit_changes_take_effect_at_the_next_dispatch,
);

struct Fixture {
    task: Uuid,
}

impl Fixture {
    async fn new(app: &TestApp) -> Fixture {
        let mut task = task_body("sentiment");
        task["response_schema"] = closed_schema();
        let task = app.create_task(&task).await.assert_status(201).id();
        Fixture { task }
    }

    async fn provider(app: &TestApp, name: &str, fake: &fakes::Fake) -> Uuid {
        let body = json!({"name": name, "kind": "openai", "base_url": fake.url("/v1"),
            "api_key": fakes::openai::KEY});
        app.create_provider(&body).await.assert_status(201).id()
    }

    /// An agent on `provider` with these extra fields, assigned the task; (id, runs URL).
    async fn agent(
        &self,
        app: &TestApp,
        name: &str,
        provider: Uuid,
        extra: Value,
    ) -> (Uuid, String) {
        let mut body = agent_body(name, provider);
        body["model"] = json!("gpt-4o-mini");
        for (k, v) in extra.as_object().cloned().unwrap_or_default() {
            body[k] = v;
        }
        let agent = app.create_agent(&body).await.assert_status(201).id();
        app.assign(agent, self.task).await.assert_status(201);
        (
            agent,
            format!("/api/agents/{agent}/tasks/{}/runs", self.task),
        )
    }
}

async fn group(app: &TestApp, name: &str, limit: u32) -> Uuid {
    app.post(
        "/api/concurrency-groups",
        &json!({"name": name, "limit": limit}),
    )
    .await
    .assert_status(201)
    .id()
}

/// Queues a run whose prompt carries `marker`, so the fake's calls can be told apart.
async fn submit(app: &TestApp, url: &str, marker: &str) -> String {
    let body =
        json!({"input": {"text": format!("{marker} What a wonderful day!")}, "mode": "async"});
    app.post(url, &body).await.assert_status(202).json()["id"]
        .as_str()
        .unwrap()
        .to_owned()
}

async fn run(app: &TestApp, id: &str) -> Value {
    app.get(&format!("/api/runs/{id}"))
        .await
        .assert_status(200)
        .json()
}

async fn group_until(app: &TestApp, id: Uuid, check: impl Fn(&Value) -> bool) -> Value {
    app.get_until(&format!("/api/concurrency-groups/{id}"), check)
        .await
}

/// Polls until every run is in one of `statuses` (`secs`); returns them.
async fn all_until(app: &TestApp, ids: &[String], statuses: &[&str], secs: u64) -> Vec<Value> {
    let deadline = Instant::now() + Duration::from_secs(secs);
    loop {
        let mut runs = Vec::new();
        for id in ids {
            runs.push(run(app, id).await);
        }
        if runs
            .iter()
            .all(|r| statuses.contains(&r["status"].as_str().unwrap_or("")))
        {
            return runs;
        }
        assert!(Instant::now() < deadline, "runs never got to {statuses:?}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

fn counts(group: &Value) -> (u64, u64) {
    (
        group["active"].as_u64().unwrap(),
        group["queued"].as_u64().unwrap(),
    )
}

/// The most stored runs whose [started_at, finished_at] overlap at one instant.
fn most_stored_at_once(runs: &[Value]) -> usize {
    let time = |v: &Value| {
        chrono::DateTime::parse_from_rfc3339(v.as_str().expect("timestamp")).expect("rfc3339")
    };
    let mut edges: Vec<_> = runs
        .iter()
        .flat_map(|r| {
            [
                (time(&r["started_at"]), 1i32),
                (time(&r["finished_at"]), -1),
            ]
        })
        .collect();
    edges.sort();
    let (mut now, mut most) = (0, 0);
    for (_, step) in edges {
        now += step;
        most = most.max(now);
    }
    usize::try_from(most).unwrap()
}

async fn groups_are_managed_and_bad_input_is_refused(backend: Backend) {
    let openai = fakes::openai::start().await;
    let app = TestApp::spawn(backend).await;
    let fixture = Fixture::new(&app).await;
    let provider = Fixture::provider(&app, "o", &openai).await;

    let created = app
        .post(
            "/api/concurrency-groups",
            &json!({"name": "openai-key", "limit": 3, "note": " the shared key "}),
        )
        .await;
    created.assert_status(201);
    let id = created.id();
    assert_eq!(
        created.header("location"),
        Some(format!("/api/concurrency-groups/{id}").as_str())
    );
    let body = created.json();
    assert_eq!(body["limit"], 3);
    assert_eq!(body["note"], "the shared key");
    assert_eq!(
        (body["active"].as_u64(), body["queued"].as_u64()),
        (Some(0), Some(0))
    );

    // Bad input: a clear 422 at the field (or 400 for a body that is not one), nothing
    // stored.
    for (body, status, path) in [
        (json!({"name": "", "limit": 1}), 422, "/name"),
        (json!({"name": "Big Key", "limit": 1}), 422, "/name"),
        (json!({"name": "x".repeat(65), "limit": 1}), 422, "/name"),
        (json!({"name": "a", "limit": 0}), 422, "/limit"),
        (json!({"name": "a", "limit": 10001}), 422, "/limit"),
        (
            json!({"name": "a", "limit": 1, "note": "n".repeat(201)}),
            422,
            "/note",
        ),
        (
            json!({"name": "a", "limit": 1, "note": "nul\u{0}"}),
            422,
            "/note",
        ),
        (json!({"name": "a", "limit": -1}), 422, "/limit"),
        (json!({"name": "a", "limit": 1.5}), 422, "/limit"),
        (json!({"name": "a"}), 422, ""),
        (
            json!({"name": "a", "limit": 1, "color": "red"}),
            422,
            "/color",
        ),
    ] {
        let response = app.post("/api/concurrency-groups", &body).await;
        assert_eq!(
            response.status.as_u16(),
            status,
            "{body}: {}",
            response.json()
        );
        if !path.is_empty() {
            let errors = response.assert_problem(status, "validation_failed");
            assert!(errors.iter().any(|e| e == path), "{body}: {errors:?}");
        }
    }
    app.post(
        "/api/concurrency-groups",
        &json!({"name": "openai-key", "limit": 9}),
    )
    .await
    .assert_problem(409, "duplicate_name");
    let list = app
        .get("/api/concurrency-groups")
        .await
        .assert_status(200)
        .json();
    assert_eq!(list.as_array().unwrap().len(), 1, "{list}");
    assert_eq!(list[0]["limit"], 3, "the refused duplicate changed nothing");

    // Replace: new name and limit; another group's name is refused.
    let other = group(&app, "gpu-box", 1).await;
    let updated = app
        .put(
            &format!("/api/concurrency-groups/{id}"),
            &json!({"name": "openai", "limit": 5}),
        )
        .await
        .assert_status(200)
        .json();
    assert_eq!(
        (updated["name"].as_str(), updated["limit"].as_u64()),
        (Some("openai"), Some(5))
    );
    app.put(
        &format!("/api/concurrency-groups/{other}"),
        &json!({"name": "openai", "limit": 1}),
    )
    .await
    .assert_problem(409, "duplicate_name");
    app.put(
        &format!("/api/concurrency-groups/{other}"),
        &json!({"name": "gpu-box", "limit": 0}),
    )
    .await
    .assert_problem(422, "validation_failed");
    let missing = Uuid::now_v7();
    app.put(
        &format!("/api/concurrency-groups/{missing}"),
        &json!({"name": "x", "limit": 1}),
    )
    .await
    .assert_problem(404, "not_found");
    app.get(&format!("/api/concurrency-groups/{missing}"))
        .await
        .assert_problem(404, "not_found");

    // Agents: an unknown group is refused; one in a group keeps it from being deleted.
    let mut body = agent_body("bad", provider);
    body["concurrency_group_id"] = json!(missing);
    let errors = app
        .create_agent(&body)
        .await
        .assert_problem(422, "validation_failed");
    assert_eq!(errors, ["/concurrency_group_id"]);
    let (agent, _) = fixture
        .agent(
            &app,
            "limited",
            provider,
            json!({"concurrency_group_id": id}),
        )
        .await;
    let shown = app.get(&format!("/api/agents/{agent}")).await.json();
    assert_eq!(shown["concurrency_group_id"], json!(id));
    let group_now = app
        .get(&format!("/api/concurrency-groups/{id}"))
        .await
        .json();
    assert_eq!(group_now["agents"], 1);
    let refused = app.delete(&format!("/api/concurrency-groups/{id}")).await;
    refused.assert_problem(409, "conflict");
    assert!(
        refused.json()["detail"]
            .as_str()
            .unwrap()
            .contains("limited"),
        "{}",
        refused.json()
    );
    let mut moved = agent_body("limited", provider);
    moved["model"] = json!("gpt-4o-mini");
    app.put(&format!("/api/agents/{agent}"), &moved)
        .await
        .assert_status(200);
    app.delete(&format!("/api/concurrency-groups/{id}"))
        .await
        .assert_status(204);
    app.delete(&format!("/api/concurrency-groups/{id}"))
        .await
        .assert_problem(404, "not_found");
    let list = app.get("/api/concurrency-groups").await.json();
    assert_eq!(list.as_array().unwrap().len(), 1, "{list}");
}

async fn a_group_never_runs_more_than_its_limit(backend: Backend) {
    const RUNS: usize = 1000;
    const LIMIT: usize = 3;
    let openai = fakes::openai::start().await;
    openai.set_default_reply(Reply::Text(VALID.to_owned()));
    openai.set_behavior(Behavior::Delay(Duration::from_millis(5)));
    let app = TestApp::spawn_with(backend, |c| c.builtin_worker_slots = Some(16)).await;
    let fixture = Fixture::new(&app).await;
    let provider = Fixture::provider(&app, "o", &openai).await;
    let id = group(&app, "shared-key", u32::try_from(LIMIT).unwrap()).await;
    let in_group = json!({"concurrency_group_id": id});
    let (_, first) = fixture
        .agent(&app, "first", provider, in_group.clone())
        .await;
    let (_, second) = fixture.agent(&app, "second", provider, in_group).await;

    // Every submission at once, across the group's two agents.
    let submissions = (0..RUNS).map(|i| {
        let url = if i % 2 == 0 { &first } else { &second };
        submit(&app, url, "limited-run")
    });
    let ids = join_all(submissions).await;

    // While they run, the group never shows more than its limit.
    let deadline = Instant::now() + Duration::from_secs(180);
    let mut most_active = 0;
    loop {
        let group = app
            .get(&format!("/api/concurrency-groups/{id}"))
            .await
            .json();
        let (active, queued) = counts(&group);
        assert!(active <= LIMIT as u64, "{group}");
        most_active = most_active.max(active);
        if active == 0 && queued == 0 {
            break;
        }
        assert!(Instant::now() < deadline, "runs never finished: {group}");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let runs = all_until(&app, &ids, &["succeeded"], 30).await;
    assert_eq!(runs.len(), RUNS);
    // At the provider: never more than the limit in flight, and the limit was used.
    let at_once = fakes::most_at_once(&openai.calls(), "limited-run");
    assert_eq!(at_once, LIMIT, "calls in flight at once");
    assert!(most_active >= 1);
    // In the stored runs: the same.
    assert!(most_stored_at_once(&runs) <= LIMIT);
}

async fn a_full_group_holds_back_only_its_own_runs(backend: Backend) {
    let stuck = fakes::openai::start().await;
    stuck.set_behavior(Behavior::Hang);
    let fast = fakes::openai::start().await;
    fast.set_default_reply(Reply::Text(VALID.to_owned()));
    fast.set_behavior(Behavior::Delay(Duration::from_millis(20)));
    let app = TestApp::spawn_with(backend, |c| c.builtin_worker_slots = Some(16)).await;
    let fixture = Fixture::new(&app).await;
    let stuck_provider = Fixture::provider(&app, "stuck", &stuck).await;
    let fast_provider = Fixture::provider(&app, "fast", &fast).await;
    let slow = group(&app, "slow", 1).await;
    let serial = group(&app, "serial", 1).await;
    let (_, hanging) = fixture
        .agent(
            &app,
            "hanging",
            stuck_provider,
            json!({"concurrency_group_id": slow}),
        )
        .await;
    let (_, impatient) = fixture
        .agent(
            &app,
            "impatient",
            stuck_provider,
            json!({"concurrency_group_id": slow, "queue_timeout_secs": 1}),
        )
        .await;
    let (_, one_by_one) = fixture
        .agent(
            &app,
            "one-by-one",
            fast_provider,
            json!({"concurrency_group_id": serial}),
        )
        .await;
    let (_, free) = fixture.agent(&app, "free", fast_provider, json!({})).await;

    // The slow group fills: one run hangs at the provider, two wait.
    let mut held = Vec::new();
    for _ in 0..3 {
        held.push(submit(&app, &hanging, "held").await);
    }
    let full = group_until(&app, slow, |g| counts(g) == (1, 2)).await;
    assert_eq!(full["limit"], 1);
    // A run of the full group fails after its queue timeout, saying why.
    let waited = submit(&app, &impatient, "impatient").await;
    let failed = all_until(&app, &[waited], &["failed"], 15).await.remove(0);
    let error = failed["error"].as_str().unwrap();
    assert!(
        error.starts_with("no worker available: concurrency group slow had no free slot"),
        "{error}"
    );

    // Other groups and runs of no group go on: the serial group's runs one at a time, in the
    // order they were queued.
    let mut serial_runs = Vec::new();
    for i in 0..5 {
        serial_runs.push(submit(&app, &one_by_one, &format!("serial-{i}")).await);
    }
    let mut free_runs = Vec::new();
    for _ in 0..5 {
        free_runs.push(submit(&app, &free, "free").await);
    }
    all_until(&app, &free_runs, &["succeeded"], 30).await;
    let serial_done = all_until(&app, &serial_runs, &["succeeded"], 30).await;
    assert_eq!(most_stored_at_once(&serial_done), 1);
    let started: Vec<&str> = serial_done
        .iter()
        .map(|r| r["started_at"].as_str().unwrap())
        .collect();
    let mut sorted = started.clone();
    sorted.sort_unstable();
    assert_eq!(
        started, sorted,
        "the serial group's runs started in queue order"
    );
    assert_eq!(fakes::most_at_once(&fast.calls(), "serial-"), 1);
    let still = app
        .get(&format!("/api/concurrency-groups/{slow}"))
        .await
        .json();
    assert_eq!(
        counts(&still),
        (1, 2),
        "the slow group was held the whole time"
    );

    // Deleting the group (once no agent is in it) lets its queued runs go.
    for (name, url) in [("hanging", &hanging), ("impatient", &impatient)] {
        let agent: Uuid = url.split('/').nth(3).unwrap().parse().unwrap();
        let mut body = agent_body(name, stuck_provider);
        body["model"] = json!("gpt-4o-mini");
        app.put(&format!("/api/agents/{agent}"), &body)
            .await
            .assert_status(200);
    }
    app.delete(&format!("/api/concurrency-groups/{slow}"))
        .await
        .assert_status(204);
    let running = all_until(&app, &held, &["running"], 15).await;
    assert!(running.iter().all(|r| r["concurrency_group_id"].is_null()));
    for id in &held {
        app.post(&format!("/api/runs/{id}/cancel"), &json!({}))
            .await
            .assert_status(202);
    }
}

async fn limit_changes_take_effect_at_the_next_dispatch(backend: Backend) {
    let stuck = fakes::openai::start().await;
    stuck.set_behavior(Behavior::Hang);
    let app = TestApp::spawn_with(backend, |c| c.builtin_worker_slots = Some(8)).await;
    let fixture = Fixture::new(&app).await;
    let provider = Fixture::provider(&app, "stuck", &stuck).await;
    let id = group(&app, "gpu", 1).await;
    let (_, url) = fixture
        .agent(&app, "held", provider, json!({"concurrency_group_id": id}))
        .await;
    let mut ids = Vec::new();
    for _ in 0..3 {
        ids.push(submit(&app, &url, "held").await);
    }
    group_until(&app, id, |g| counts(g) == (1, 2)).await;
    let put = |limit: u32| {
        let app = &app;
        async move {
            app.put(
                &format!("/api/concurrency-groups/{id}"),
                &json!({"name": "gpu", "limit": limit}),
            )
            .await
            .assert_status(200);
        }
    };
    // Raised: the queued runs start at once.
    put(3).await;
    group_until(&app, id, |g| counts(g) == (3, 0)).await;
    stuck.wait_for_requests(3, Duration::from_secs(10)).await;
    // Lowered: nothing running is stopped, and nothing new starts until the group is under
    // the new limit.
    put(1).await;
    let fourth = submit(&app, &url, "held").await;
    for id in &ids[..2] {
        app.post(&format!("/api/runs/{id}/cancel"), &json!({}))
            .await
            .assert_status(202);
    }
    let only = group_until(&app, id, |g| counts(g) == (1, 1)).await;
    assert_eq!(only["limit"], 1);
    assert_eq!(run(&app, &fourth).await["status"], "queued");
    app.post(&format!("/api/runs/{}/cancel", ids[2]), &json!({}))
        .await
        .assert_status(202);
    all_until(&app, std::slice::from_ref(&fourth), &["running"], 15).await;
    app.post(&format!("/api/runs/{fourth}/cancel"), &json!({}))
        .await
        .assert_status(202);
}
