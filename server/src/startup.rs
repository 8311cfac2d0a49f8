//! Building and running the application: bind first, then serve, so tests can use port 0 and
//! know the address before the first request.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::http::{HeaderName, Request};
use axum::middleware;
use sea_orm::DatabaseConnection;
use tokio::net::TcpListener;
use tower_http::catch_panic::CatchPanicLayer;
use tower_http::request_id::{MakeRequestUuid, PropagateRequestIdLayer, SetRequestIdLayer};
use tower_http::timeout::RequestBodyTimeoutLayer;
use tower_http::trace::TraceLayer;

use crate::auth::AuthGuard;
use crate::background::Background;
use crate::config::Config;
use crate::db::connect::{connect_with, migrate};
use crate::events::EventHub;
use crate::extract::MAX_BODY_BYTES;
use crate::outbound::{GuardedClient, OutboundPolicy, Timeouts};
use crate::prompt::Renderer;
use crate::routes::SHUTDOWN_GRACE;
use crate::secrets::{KeySource, Keyring, load_keyring};
use crate::services::Workers;
use crate::services::providers::{Validator, ValidatorSettings};
use crate::services::runs::RunsConfig;
use crate::services::runs::runnable::Runnables;
use crate::services::{
    Agents, Assignments, ConcurrencyGroups, Providers, Runs, Schedules, Tags, Tasks,
};
use crate::state::AppState;
use crate::{auth, routes};

/// Connect and total timeouts of provider requests; runs bound theirs further per agent.
const PROBE_TIMEOUTS: Timeouts = Timeouts {
    connect: Duration::from_secs(5),
    total: Duration::from_secs(600),
};

pub struct Application {
    listener: TcpListener,
    router: Router,
    local_addr: SocketAddr,
    state: AppState,
}

impl Application {
    /// Binds `config.bind` and builds the application.
    pub async fn build(config: Config) -> anyhow::Result<Application> {
        config.check(config.bind)?;
        let listener = TcpListener::bind(config.bind)
            .await
            .with_context(|| format!("cannot listen on {}", config.bind))?;
        Application::build_with_listener(config, listener).await
    }

    /// Builds the application on an already bound listener (tests bind 127.0.0.1:0).
    pub async fn build_with_listener(
        config: Config,
        listener: TcpListener,
    ) -> anyhow::Result<Application> {
        let local_addr = listener.local_addr()?;
        config.check(local_addr)?;
        let keyring = Arc::new(open_keyring(&config)?);
        let db = open_database(&config).await?;
        let background = Background::new();
        crate::telemetry::log_runtime_stats(&background);
        crate::db::checkpoint::spawn(&db, &background);
        let policy = Arc::new(
            OutboundPolicy::new(config.block_local_providers, &config.provider_url_allowlist)
                .context("invalid AGENTRY_PROVIDER_URL_ALLOWLIST")?,
        );
        let outbound = GuardedClient::new(Arc::clone(&policy), PROBE_TIMEOUTS)
            .context("cannot build the outbound HTTP client")?;
        let events = Arc::new(EventHub::default());
        let validator = Validator::new(
            db.clone(),
            Arc::clone(&keyring),
            Arc::clone(&events),
            outbound.clone(),
            ValidatorSettings {
                interval: Duration::from_secs(config.validation_interval_secs),
                ..config.validator.clone()
            },
            background.clone(),
        );
        let runs = Runs::start(
            db.clone(),
            Arc::clone(&events),
            Runnables::new(Arc::clone(&keyring), outbound.clone()),
            renderer(&config)?,
            background.clone(),
            RunsConfig {
                queue: config.queue.clone(),
                builtin_worker: config.builtin_worker,
                builtin_slots: config.builtin_slots(),
                outbound,
                data_dir: config.data_dir.clone(),
                outbound_reach: contracts::worker::OutboundReach {
                    block_local: config.block_local_providers,
                    allowlist: config.provider_url_allowlist.clone(),
                },
            },
        )
        .await?;
        // Providers whose keys live on workers are checked on a worker holding the key, and
        // again whenever one connects holding it or gets it.
        validator.use_workers(runs.clone());
        runs.on_worker_credentials({
            let validator = Arc::clone(&validator);
            move |names| validator.recheck_named(names)
        });
        validator.start();
        let config_failures_per_minute = config.auth_failures_per_minute;
        let tags = Tags::new(db.clone(), Arc::clone(&events));
        let state = AppState {
            providers: Providers::new(db.clone(), keyring, policy, Arc::clone(&events), validator),
            agents: Agents::new(db.clone(), Arc::clone(&events)),
            tasks: Tasks::new(db.clone(), Arc::clone(&events)),
            assignments: Assignments::new(db.clone(), Arc::clone(&events)),
            workers: Workers::start(
                db.clone(),
                Arc::clone(&events),
                runs.clone(),
                tags.clone(),
                &background,
            ),
            tags,
            concurrency: ConcurrencyGroups::start(
                db.clone(),
                Arc::clone(&events),
                runs.clone(),
                &background,
            ),
            schedules: Schedules::start(db.clone(), runs.clone(), &background),
            runs,
            config: Arc::new(config),
            db,
            auth_guard: Arc::new(AuthGuard::new(config_failures_per_minute)),
            events,
            background,
        };
        let router = app(state.clone());
        Ok(Application {
            listener,
            router,
            local_addr,
            state,
        })
    }

    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    pub fn state(&self) -> &AppState {
        &self.state
    }

    /// Serves until `shutdown` completes, then stops in order: background loops and
    /// WebSockets are told to wind down (sockets close with 1001) while in-flight requests
    /// finish; then background tasks get `SHUTDOWN_GRACE` to end; runs still executing after
    /// that are interrupted and record it; then the database closes.
    pub async fn run_until_stopped(
        self,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> std::io::Result<()> {
        let Application {
            listener,
            router,
            local_addr,
            state,
        } = self;
        tracing::info!(addr = %local_addr, "listening on http://{local_addr}");
        let background = state.background.clone();
        let stop = background.clone();
        let signal = async move {
            shutdown.await;
            stop.stop();
        };
        let header_timeout = Duration::from_secs(state.config.request_header_timeout_secs.max(1));
        crate::serve::serve(listener, router, header_timeout, &background, signal).await;
        if !background.wait(SHUTDOWN_GRACE).await {
            tracing::warn!(
                tasks = background.running(),
                "background work still running after the grace period; interrupting runs"
            );
            state.runs.halt();
            if !background.wait(SHUTDOWN_GRACE).await {
                tracing::warn!(tasks = background.running(), "background work abandoned");
            }
        }
        state.db.close_by_ref().await.ok();
        tracing::info!("stopped");
        Ok(())
    }
}

/// The router with every middleware, over the given state.
pub fn app(state: AppState) -> Router {
    let request_id = HeaderName::from_static("x-request-id");
    routes::router()
        .layer(DefaultBodyLimit::max(MAX_BODY_BYTES))
        .layer(middleware::from_fn_with_state(
            state.clone(),
            auth::require_token,
        ))
        .layer(RequestBodyTimeoutLayer::new(Duration::from_secs(
            state.config.request_body_timeout_secs.max(1),
        )))
        .with_state(state)
        // Inside the trace span: a panic is logged with the request's id.
        .layer(CatchPanicLayer::custom(crate::error::panicked))
        .layer(middleware::from_fn(crate::security::headers))
        .layer(PropagateRequestIdLayer::new(request_id.clone()))
        .layer(
            TraceLayer::new_for_http().make_span_with(|request: &Request<_>| {
                let id = request
                    .headers()
                    .get("x-request-id")
                    .and_then(|v| v.to_str().ok())
                    .unwrap_or("");
                tracing::info_span!(
                    "http.request",
                    method = %request.method(),
                    path = %request.uri().path(),
                    request_id = %id,
                )
            }),
        )
        .layer(SetRequestIdLayer::new(request_id, MakeRequestUuid))
}

/// The template renderer: helpers run this executable (or `config.render_helper`), one per
/// core, and at least two so one slow template does not hold up every other run.
fn renderer(config: &Config) -> anyhow::Result<Renderer> {
    let program = match &config.render_helper {
        Some(program) => program.clone(),
        None => std::env::current_exe().context("cannot find this executable's path")?,
    };
    let cores = std::thread::available_parallelism().map_or(2, usize::from);
    Ok(Renderer::new(program, cores.max(2)))
}

/// Loads the encryption keys; a generated development key is announced loudly.
pub fn open_keyring(config: &Config) -> anyhow::Result<Keyring> {
    let (keyring, source) = load_keyring(
        config.encryption_key.as_deref(),
        &config.encryption_keys_old,
        &config.data_dir,
    )?;
    match source {
        KeySource::Generated(path) => tracing::warn!(
            path = %path.display(),
            "AGENTRY_ENCRYPTION_KEY is not set: generated a key into {}. Anyone who can read \
             that file can decrypt stored API keys; in production set AGENTRY_ENCRYPTION_KEY \
             (see `agentry keys generate`) and keep it out of the data directory.",
            path.display()
        ),
        KeySource::File(path) => tracing::info!(
            path = %path.display(),
            key_id = %keyring.current_key_id(),
            "using the encryption key from the data directory"
        ),
        KeySource::Env => tracing::info!(
            key_id = %keyring.current_key_id(),
            "using AGENTRY_ENCRYPTION_KEY"
        ),
    }
    Ok(keyring)
}

/// Connects and applies pending migrations. The SQLite default lives in the data directory,
/// which is created if missing.
pub async fn open_database(config: &Config) -> anyhow::Result<DatabaseConnection> {
    std::fs::create_dir_all(&config.data_dir).with_context(|| {
        format!(
            "cannot create the data directory {}",
            config.data_dir.display()
        )
    })?;
    // A read-only or full data directory is reported as what it is, not as the database's
    // "unable to open database file".
    let probe = config.data_dir.join(".agentry-write-check");
    std::fs::write(&probe, b"ok")
        .and_then(|()| std::fs::remove_file(&probe))
        .with_context(|| {
            format!(
                "the data directory {} is not writable",
                config.data_dir.display()
            )
        })?;
    let url = config.database_url();
    let opened = |connections| {
        let url = url.clone();
        async move {
            connect_with(&url, connections)
                .await
                .with_context(|| format!("cannot open the database ({})", redact_url(&url)))
        }
    };
    // Migrations run on a connection of their own, closed before the pool opens: an SQLite
    // connection that prepared a statement before a migration changed its table can decode
    // rows by the columns it saw then ("missing value for column …").
    let migrating = opened(Some(1)).await?;
    migrate(&migrating)
        .await
        .context("cannot apply database migrations")?;
    migrating.close().await.ok();
    opened(config.database_max_connections).await
}

/// A database URL without its password, for messages.
pub fn redact_url(url: &str) -> String {
    match url::Url::parse(url) {
        Ok(mut parsed) if parsed.password().is_some() => {
            let _ = parsed.set_password(Some("***"));
            parsed.to_string()
        }
        _ => url.to_owned(),
    }
}
