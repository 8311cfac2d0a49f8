//! The outbound URL policy at the API: refused base URLs are a 422 on create and update, and
//! not one connection reaches a canary listener behind them.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use agentry_tests::{Backend, TestApp, db_tests};
use serde_json::json;

/// A listener on 127.0.0.1 that counts every connection made to it.
async fn canary() -> (u16, Arc<AtomicUsize>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let hits = Arc::new(AtomicUsize::new(0));
    let counter = Arc::clone(&hits);
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            counter.fetch_add(1, Ordering::SeqCst);
            drop(stream);
        }
    });
    (port, hits)
}

fn bad_urls(port: u16) -> Vec<String> {
    let local = [
        "127.0.0.1",
        "127.1",
        "127.0.1",
        "2130706433",
        "0x7f000001",
        "0x7f.0.0.1",
        "0177.0.0.1",
        "017700000001",
        "0x7f.1",
        "127.255.255.254",
        "[::1]",
        "[0:0:0:0:0:0:0:1]",
        "[::ffff:127.0.0.1]",
        "[::ffff:7f00:1]",
        "localhost",
        "LOCALHOST",
        "localhost.",
        "foo.localhost",
        "a.b.localhost",
        "10.0.0.1",
        "10.255.255.255",
        "172.16.0.1",
        "172.31.255.255",
        "192.168.1.1",
        "100.64.0.1",
        "[fc00::1]",
        "[fd12:3456::1]",
        "user@127.0.0.1",
        "example.com@127.0.0.1",
    ];
    let never = [
        "169.254.169.254",
        "169.254.0.1",
        "0xa9fea9fe",
        "2852039166",
        "[fe80::1]",
        "[::ffff:169.254.169.254]",
        "[fd00:ec2::254]",
        "100.100.100.200",
        "0.0.0.0",
        "0",
        "[::]",
        "224.0.0.1",
        "239.255.255.250",
        "255.255.255.255",
        "[ff02::1]",
        "metadata.google.internal",
    ];
    let mut urls: Vec<String> = local
        .iter()
        .chain(never.iter())
        .map(|host| format!("http://{host}:{port}"))
        .collect();
    urls.extend(
        [
            "file:///etc/passwd",
            "ftp://127.0.0.1/",
            "gopher://127.0.0.1:70/",
            "javascript:alert(1)",
            "data:text/plain,hi",
            "ws://127.0.0.1/",
        ]
        .map(str::to_owned),
    );
    urls
}

async fn refused_urls_are_422_and_reach_nothing(backend: Backend) {
    let (port, hits) = canary().await;
    // The stored provider below is on an allow-listed loopback address: nothing in this test
    // may point at a real network.
    let app = TestApp::spawn_with(backend, |c| {
        c.block_local_providers = true;
        c.provider_url_allowlist = vec!["127.0.0.8".to_owned()];
    })
    .await;
    let urls = bad_urls(port);
    assert!(urls.len() >= 40, "{} URLs", urls.len());
    for url in &urls {
        let resp = app
            .create_provider(&json!({"name": "p", "kind": "ollama", "base_url": url}))
            .await;
        let paths = resp.assert_problem(422, "validation_failed");
        assert_eq!(paths, ["/base_url"], "{url}: {}", resp.text);
    }
    // Updates are checked the same way.
    let id = app
        .create_provider(&json!({"name": "public", "kind": "openai_compatible", "base_url": "http://127.0.0.8:9/v1"}))
        .await
        .id();
    for url in urls.iter().take(10) {
        let resp = app
            .put(
                &format!("/api/providers/{id}"),
                &json!({"name": "public", "kind": "openai_compatible", "base_url": url}),
            )
            .await;
        resp.assert_problem(422, "validation_failed");
    }
    assert_eq!(
        app.get("/api/providers").await.json()["total"],
        1,
        "nothing refused was stored"
    );
    assert_eq!(
        hits.load(Ordering::SeqCst),
        0,
        "a refused URL was connected to"
    );
}

async fn local_providers_are_allowed_by_default_and_by_allow_list(backend: Backend) {
    let (port, hits) = canary().await;
    let app = TestApp::spawn_with(backend, |c| c.validator.enabled = true).await;
    let id = app
        .create_provider(
            &json!({"name": "p", "kind": "ollama", "base_url": format!("http://127.0.0.1:{port}")}),
        )
        .await
        .id();
    app.provider_settled(id).await;
    assert!(
        hits.load(Ordering::SeqCst) > 0,
        "the default policy reaches loopback"
    );
    // Metadata stays refused even by default.
    app.create_provider(
        &json!({"name": "m", "kind": "ollama", "base_url": "http://169.254.169.254"}),
    )
    .await
    .assert_problem(422, "validation_failed");

    let (port, hits) = canary().await;
    let allowed = format!("127.0.0.1:{port}");
    let app = TestApp::spawn_with(backend, |c| {
        c.validator.enabled = true;
        c.block_local_providers = true;
        c.provider_url_allowlist = vec![allowed.clone()];
    })
    .await;
    let id = app
        .create_provider(
            &json!({"name": "p", "kind": "ollama", "base_url": format!("http://{allowed}")}),
        )
        .await
        .id();
    app.provider_settled(id).await;
    assert!(
        hits.load(Ordering::SeqCst) > 0,
        "an allow-listed address is reached"
    );
    app.create_provider(&json!({"name": "q", "kind": "ollama", "base_url": "http://127.0.0.1:1"}))
        .await
        .assert_problem(422, "validation_failed");
}

db_tests!(
    refused_urls_are_422_and_reach_nothing,
    local_providers_are_allowed_by_default_and_by_allow_list,
);
