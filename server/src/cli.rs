//! The command line: `serve` (default), `migrate`, `keys`, `worker`, `openapi`. In the library so tests
//! run the same code the binary does.

use std::io::Write;

use anyhow::{Context, bail};
use migration::{Migrator, sea_orm_migration::MigratorTrait};

use crate::config::{Cli, Command, KeysAction, MigrateAction};
use crate::db::connect::connect_with;
use crate::services::providers::rotate_keys;
use crate::startup::{open_database, open_keyring, redact_url};
use crate::worker::command::WorkerAction;
use crate::{Application, Config, routes, secrets};

/// Runs one command line. Output meant for the user goes to `out` (standard output in the
/// binary, a buffer in tests).
pub async fn run(cli: Cli, out: &mut (dyn Write + Send)) -> anyhow::Result<()> {
    let config = cli.config;
    match cli.command.unwrap_or(Command::Serve) {
        Command::Serve => serve(config).await,
        Command::Migrate { action } => migrate(&config, action, out).await,
        Command::Keys { action } => keys_command(&config, action, out).await,
        Command::Worker(args) => match args.action {
            Some(WorkerAction::Credentials { action }) => {
                crate::worker::command::credentials(&config, action, out)
            }
            None => {
                crate::outbound::install_crypto_provider();
                crate::worker::command::run(&config, args, shutdown_signal()).await
            }
        },
        Command::Openapi { output } => {
            let json = routes::openapi_json();
            match output {
                Some(path) => std::fs::write(&path, json)
                    .with_context(|| format!("cannot write {}", path.display())),
                None => Ok(out.write_all(json.as_bytes())?),
            }
        }
    }
}

async fn serve(config: Config) -> anyhow::Result<()> {
    let app = Application::build(config).await?;
    app.run_until_stopped(shutdown_signal()).await?;
    Ok(())
}

/// Completes on SIGINT (Ctrl-C) or SIGTERM.
async fn shutdown_signal() {
    let ctrl_c = async {
        if tokio::signal::ctrl_c().await.is_err() {
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {},
        () = terminate => {},
    }
    tracing::info!("shutdown requested; finishing in-flight requests");
}

async fn migrate(
    config: &Config,
    action: MigrateAction,
    out: &mut (dyn Write + Send),
) -> anyhow::Result<()> {
    std::fs::create_dir_all(&config.data_dir)?;
    let url = config.database_url();
    // One connection: `fresh` turns SQLite's foreign keys off for its drops with a PRAGMA,
    // which holds only on the connection it ran on (a second pooled connection fails the
    // drop of a table whose parent is already gone).
    let db = connect_with(&url, Some(1))
        .await
        .with_context(|| format!("cannot open the database ({})", redact_url(&url)))?;
    match action {
        MigrateAction::Up { num } => Migrator::up(&db, num).await?,
        MigrateAction::Down { num } => Migrator::down(&db, Some(num)).await?,
        MigrateAction::Fresh => Migrator::fresh(&db).await?,
        MigrateAction::Status => {}
    }
    for migration in Migrator::get_migration_with_status(&db).await? {
        writeln!(out, "{:?}\t{}", migration.status(), migration.name())?;
    }
    Ok(())
}

async fn keys_command(
    config: &Config,
    action: KeysAction,
    out: &mut (dyn Write + Send),
) -> anyhow::Result<()> {
    match action {
        KeysAction::Generate => {
            writeln!(out, "{}", secrets::generate_key())?;
            Ok(())
        }
        KeysAction::Rotate => {
            let keyring = open_keyring(config)?;
            let db = open_database(config).await?;
            let report = rotate_keys(&db, &keyring).await?;
            writeln!(
                out,
                "re-encrypted {}, already current {}, changed concurrently {}, unreadable {}",
                report.reencrypted,
                report.already_current,
                report.changed_concurrently,
                report.failed.len()
            )?;
            for (id, err) in &report.failed {
                writeln!(out, "unreadable: provider {id}: {err}")?;
            }
            if !report.failed.is_empty() {
                bail!(
                    "{} secret(s) could not be decrypted with the configured keys; add the key \
                     they were written with to AGENTRY_ENCRYPTION_KEYS_OLD and run again",
                    report.failed.len()
                );
            }
            Ok(())
        }
    }
}
