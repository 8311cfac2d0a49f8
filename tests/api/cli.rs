//! The command line (`agentry keys …`, `agentry migrate …`) and start-up key handling, run
//! in-process through the same `cli::run` the binary uses.

use agentry::config::Cli;
use agentry::{Application, Config, cli};
use agentry_tests::{Backend, TEST_KEY, TestApp, db_tests};
use clap::Parser;
use serde_json::json;

/// Runs `agentry <args>` with the data dir and database of `config`.
async fn agentry(config: &Config, args: &[&str]) -> anyhow::Result<String> {
    let mut argv = vec![
        "agentry".to_owned(),
        "--data-dir".to_owned(),
        config.data_dir.display().to_string(),
        "--database-url".to_owned(),
        config.database_url(),
    ];
    if let Some(key) = &config.encryption_key {
        argv.push(format!("--encryption-key={key}"));
    }
    if !config.encryption_keys_old.is_empty() {
        argv.push(format!(
            "--encryption-keys-old={}",
            config.encryption_keys_old.join(",")
        ));
    }
    argv.extend(args.iter().map(|a| (*a).to_owned()));
    let cli = Cli::try_parse_from(argv)?;
    let mut out = Vec::new();
    cli::run(cli, &mut out).await?;
    Ok(String::from_utf8(out)?)
}

/// `config` with `key` as the only key, as a server still configured with it would run.
fn config_with_current_only(config: &Config, key: &str) -> Config {
    let mut config = config.clone();
    config.encryption_key = Some(key.to_owned());
    config.encryption_keys_old.clear();
    config
}

fn new_key() -> String {
    agentry::secrets::generate_key()
}

async fn keys_rotate_reencrypts_and_old_key_can_be_dropped(backend: Backend) {
    let old = new_key();
    let app = TestApp::spawn_with(backend, |c| c.encryption_key = Some(old.clone())).await;
    for i in 0..3 {
        let body = json!({"name": format!("p{i}"), "kind": "openai", "api_key": format!("sk-secret-number-{i}")});
        app.create_provider(&body).await.assert_status(201);
    }
    let (mut config, dir, pg) = app.stop().await;

    // Without the old key, the stored secrets are unreadable: rotate refuses and says why.
    let current = new_key();
    config.encryption_key = Some(current.clone());
    let err = agentry(&config, &["keys", "rotate"]).await.unwrap_err();
    assert!(
        format!("{err:#}").contains("AGENTRY_ENCRYPTION_KEYS_OLD"),
        "{err:#}"
    );

    // With it as an old key: everything is re-encrypted; a rerun finds nothing to do.
    config.encryption_keys_old = vec![old.clone()];
    let report = agentry(&config, &["keys", "rotate"]).await.unwrap();
    assert!(
        report.contains("re-encrypted 3, already current 0"),
        "{report}"
    );
    let rerun = agentry(&config, &["keys", "rotate"]).await.unwrap();
    assert!(
        rerun.contains("re-encrypted 0, already current 3"),
        "{rerun}"
    );

    // A half-done rotation (some secrets under the old key, some under the new, as after an
    // interrupted run or a write during it) is finished by running it again.
    let app = TestApp::start(config_with_current_only(&config, &old), dir, pg).await;
    app.create_provider(
        &json!({"name": "late", "kind": "gemini", "api_key": "gm-written-with-old-key"}),
    )
    .await
    .assert_status(201);
    let (_, dir, pg) = app.stop().await;
    let resumed = agentry(&config, &["keys", "rotate"]).await.unwrap();
    assert!(
        resumed.contains("re-encrypted 1, already current 3"),
        "{resumed}"
    );

    // Drop the old key: every secret still decrypts with the current one alone.
    config.encryption_keys_old.clear();
    let verify = agentry(&config, &["keys", "rotate"]).await.unwrap();
    assert!(
        verify.contains("already current 4, changed concurrently 0, unreadable 0"),
        "{verify}"
    );
    let app = TestApp::start(config, dir, pg).await;
    assert_eq!(app.get("/api/providers").await.json()["total"], 4);
}

async fn migrate_up_down_status(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let (config, _dir, _pg) = app.stop().await;
    let status = agentry(&config, &["migrate", "status"]).await.unwrap();
    assert!(
        status.contains("Applied\tm20261121_000001_create_config_tables"),
        "{status}"
    );
    let down = agentry(&config, &["migrate", "down"]).await.unwrap();
    assert!(
        down.contains("Applied\tm20261207_000005_worker_capabilities")
            && down.contains("Pending\tm20261208_000001_schedules"),
        "{down}"
    );
    let up = agentry(&config, &["migrate", "up"]).await.unwrap();
    assert!(up.contains("Applied"), "{up}");
    let fresh = agentry(&config, &["migrate", "fresh"]).await.unwrap();
    assert!(fresh.contains("Applied"), "{fresh}");
}

db_tests!(
    keys_rotate_reencrypts_and_old_key_can_be_dropped,
    migrate_up_down_status
);

#[tokio::test]
async fn keys_generate_prints_a_usable_key() {
    let dir = tempfile::tempdir().unwrap();
    let config = Config::with_data_dir(dir.path());
    let key = agentry(&config, &["keys", "generate"]).await.unwrap();
    let key = key.trim();
    assert!(agentry::secrets::parse_key(key).is_ok(), "{key}");
    assert_ne!(
        key,
        agentry(&config, &["keys", "generate"])
            .await
            .unwrap()
            .trim()
    );
}

#[tokio::test]
async fn invalid_encryption_key_stops_start_up() {
    let table = [
        ("not base64!!", "bad base64"),
        ("AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwd", "30 bytes"),
        ("", "empty"),
    ];
    for (key, why) in table {
        let dir = tempfile::tempdir().unwrap();
        let mut config = Config::with_data_dir(dir.path());
        config.encryption_key = Some(key.to_owned());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let err = Application::build_with_listener(config, listener)
            .await
            .err();
        let message = format!("{:#}", err.unwrap_or_else(|| panic!("{why}: started")));
        assert!(message.contains("key"), "{why}: {message}");
        assert!(
            !dir.path().join("encryption.key").exists(),
            "{why}: no fallback key generated"
        );
    }
}

#[tokio::test]
async fn generated_key_is_private_and_reused_across_restarts() {
    use std::os::unix::fs::PermissionsExt;
    let app = TestApp::spawn(Backend::Sqlite).await;
    let id = app
        .create_provider(
            &json!({"name": "o", "kind": "openai", "api_key": "sk-persisted-secret-1"}),
        )
        .await
        .id();
    let key_file = app.data_dir.path().join("encryption.key");
    let mode = std::fs::metadata(&key_file).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600);
    let first = std::fs::read_to_string(&key_file).unwrap();
    let (config, dir, pg) = app.stop().await;
    let app = TestApp::start(config.clone(), dir, pg).await;
    assert_eq!(
        std::fs::read_to_string(&key_file).unwrap(),
        first,
        "reused, not regenerated"
    );
    app.get(&format!("/api/providers/{id}"))
        .await
        .assert_status(200);
    // The secret written before the restart decrypts with the reused key.
    let verify = agentry(&config, &["keys", "rotate"]).await.unwrap();
    assert!(verify.contains("already current 1"), "{verify}");
    let _ = TEST_KEY;
}
