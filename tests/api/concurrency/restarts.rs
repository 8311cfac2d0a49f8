//! Concurrency groups across a restart and across servers: the counts are read from the
//! database, so a restart loses nothing, and servers sharing PostgreSQL stay within a limit.

use super::*;

db_tests!(counts_come_from_the_database_across_a_restart);

/// A restart loses nothing of a group's state: the counts are read from the runs, so the run
/// the stopped server was executing holds the slot again once requeued, and the other still
/// waits; never two at once.
async fn counts_come_from_the_database_across_a_restart(backend: Backend) {
    let stuck = fakes::openai::start().await;
    stuck.set_behavior(Behavior::Hang);
    let app = TestApp::spawn(backend).await;
    let fixture = Fixture::new(&app).await;
    let provider = Fixture::provider(&app, "stuck", &stuck).await;
    let id = group(&app, "one", 1).await;
    let (_, url) = fixture
        .agent(&app, "held", provider, json!({"concurrency_group_id": id}))
        .await;
    let runs = [
        submit(&app, &url, "held").await,
        submit(&app, &url, "held").await,
    ];
    group_until(&app, id, |g| counts(g) == (1, 1)).await;
    stuck.wait_for_requests(1, Duration::from_secs(10)).await;
    let (config, dir, pg) = app.stop().await;
    let app = TestApp::start(config, dir, pg).await;
    // The built-in worker comes back without its run: it is requeued, and one of the two
    // starts again (a second call at the provider); the other waits.
    stuck.wait_for_requests(2, Duration::from_secs(15)).await;
    let after = group_until(&app, id, |g| counts(g) == (1, 1)).await;
    assert_eq!(after["limit"], 1);
    let statuses: Vec<String> = {
        let mut all = Vec::new();
        for run_id in &runs {
            all.push(
                run(&app, run_id).await["status"]
                    .as_str()
                    .unwrap()
                    .to_owned(),
            );
        }
        all.sort();
        all
    };
    assert_eq!(statuses, ["queued", "running"]);
    for run_id in &runs {
        app.post(&format!("/api/runs/{run_id}/cancel"), &json!({}))
            .await
            .assert_status(202);
    }
}

/// Servers sharing a PostgreSQL database claim within a group's limit together: two
/// dispatchers claiming at once from 30 queued runs of a group of limit 3 get 3 in all.
/// (SQLite serves one server per database, whose single dispatcher claims in turn.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn servers_sharing_postgres_keep_a_group_within_its_limit() {
    use agentry::db::queue;
    let openai = fakes::openai::start().await;
    let app = TestApp::spawn_with(Backend::Postgres, |c| c.builtin_worker = false).await;
    let fixture = Fixture::new(&app).await;
    let provider = Fixture::provider(&app, "o", &openai).await;
    let id = group(&app, "shared", 3).await;
    let (_, url) = fixture
        .agent(
            &app,
            "limited",
            provider,
            json!({"concurrency_group_id": id}),
        )
        .await;
    for _ in 0..30 {
        submit(&app, &url, "queued").await;
    }
    let claimer = || {
        let url = app.config.database_url();
        tokio::spawn(async move {
            let db = agentry::db::connect::connect(&url).await.unwrap();
            let keys: Vec<String> = queue::unfinished_route_keys(&db)
                .await
                .unwrap()
                .into_iter()
                .collect();
            let mut got = 0;
            for _ in 0..20 {
                let now = agentry::domain::now();
                let deadline = queue::after(now, Duration::from_secs(60));
                let worker = Uuid::now_v7();
                got += queue::claim_within_limits(&db, worker, 2, &keys, now, deadline)
                    .await
                    .unwrap()
                    .len();
            }
            db.close().await.unwrap();
            got
        })
    };
    let (a, b) = tokio::join!(claimer(), claimer());
    assert_eq!(a.unwrap() + b.unwrap(), 3, "claimed in all");
    let group = app
        .get(&format!("/api/concurrency-groups/{id}"))
        .await
        .json();
    assert_eq!(counts(&group), (3, 27), "{group}");
}
