//! `agentry worker`: registers once with a registration token (the key it receives is kept
//! in `<data-dir>/worker.json`, mode 0600), then connects with that key and executes runs
//! until stopped (SIGINT/SIGTERM: it finishes its runs first). Provider calls go through the
//! same guarded client and policy as the server's, set by this process's own flags.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, bail};
use clap::{Args, Subcommand};
use contracts::{RegisterWorker, RegisteredWorker};
use serde::{Deserialize, Serialize};
use tokio_util::sync::CancellationToken;
use url::Url;

use super::credentials::{CredentialStore, read_key};
use super::runnable::Runnables;
use super::websocket::{WebSocket, endpoint};
use super::{Worker, WorkerSettings};
use crate::background::Background;
use crate::config::Config;
use crate::outbound::{GuardedClient, OutboundPolicy, Timeouts};

/// Where a worker keeps its identity, inside the data directory.
const IDENTITY_FILE: &str = "worker.json";
/// Provider calls: the same bounds the server uses for runs.
const PROVIDER_TIMEOUTS: Timeouts = Timeouts {
    connect: Duration::from_secs(10),
    total: Duration::from_secs(600),
};
/// How long a stop waits for runs in flight before aborting them.
const STOP_GRACE: Duration = Duration::from_secs(30);

#[derive(Debug, Clone, Args)]
#[command(args_conflicts_with_subcommands = true)]
pub struct WorkerArgs {
    #[command(subcommand)]
    pub action: Option<WorkerAction>,
    /// The server's URL, e.g. https://agentry.example.com (http:// only to a loopback address,
    /// or with --insecure). Required to run the worker.
    #[arg(long, env = "AGENTRY_SERVER")]
    pub server: Option<String>,
    /// A registration token from the server's Workers page (needed on the first start only).
    #[arg(long, env = "AGENTRY_WORKER_TOKEN", hide_env_values = true)]
    pub token: Option<String>,
    /// The worker's name on the server (first start only; default: `worker-` and a short id).
    #[arg(long)]
    pub name: Option<String>,
    /// Runs executed at once (default: 8 per CPU core).
    #[arg(long)]
    pub slots: Option<u32>,
    /// Allow http:// to a non-loopback server. Provider keys travel in assignments: only on a
    /// network you trust.
    #[arg(long)]
    pub insecure: bool,
}

#[derive(Debug, Clone, Subcommand)]
pub enum WorkerAction {
    /// Provider keys this worker holds itself (for providers whose key lives on workers).
    Credentials {
        #[command(subcommand)]
        action: CredentialsAction,
    },
}

#[derive(Debug, Clone, Subcommand)]
pub enum CredentialsAction {
    /// Stores the key for a provider (its name as the server shows it): typed without echo,
    /// or read from standard input. Replaces a key already held.
    Set { provider: String },
    /// Lists the providers this worker holds keys for (never the keys).
    List,
    /// Forgets the key for a provider.
    Remove { provider: String },
}

/// `agentry worker credentials …`: edits the store in the data directory (a running worker
/// notices within a second and tells the server).
pub fn credentials(
    config: &Config,
    action: CredentialsAction,
    out: &mut (dyn std::io::Write + Send),
) -> anyhow::Result<()> {
    let store = CredentialStore::open(&config.data_dir)?;
    match action {
        CredentialsAction::Set { provider } => {
            let key = read_key(&provider)?;
            store.set(&provider, &key)?;
            writeln!(out, "stored the key for provider {provider}")?;
        }
        CredentialsAction::List => {
            for name in store.names() {
                writeln!(out, "{name}")?;
            }
        }
        CredentialsAction::Remove { provider } => {
            if !store.remove(&provider)? {
                bail!("this worker holds no key for provider {provider}");
            }
            writeln!(out, "removed the key for provider {provider}")?;
        }
    }
    Ok(())
}

/// What a registered worker keeps: which server it belongs to and its key.
#[derive(Serialize, Deserialize)]
struct Identity {
    server: String,
    worker_id: uuid::Uuid,
    name: String,
    key: String,
}

/// Runs the worker until SIGINT/SIGTERM (or until the server refuses it for good).
pub async fn run(
    config: &Config,
    args: WorkerArgs,
    shutdown: impl std::future::Future<Output = ()>,
) -> anyhow::Result<()> {
    let Some(server) = args.server.clone() else {
        bail!("--server (or AGENTRY_SERVER) is required to run a worker");
    };
    let url = endpoint(&server, args.insecure)?;
    let policy = Arc::new(
        OutboundPolicy::new(config.block_local_providers, &config.provider_url_allowlist)
            .context("invalid AGENTRY_PROVIDER_URL_ALLOWLIST")?,
    );
    let client = GuardedClient::new(policy, PROVIDER_TIMEOUTS)
        .context("cannot build the outbound HTTP client")?;
    // The server is reached whatever the provider policy says: a worker that refuses local
    // providers still registers with a server on its own network (metadata and link-local
    // addresses stay refused).
    let to_server = GuardedClient::new(
        Arc::new(OutboundPolicy::new(false, &[]).context("outbound policy")?),
        PROVIDER_TIMEOUTS,
    )
    .context("cannot build the outbound HTTP client")?;
    let identity = identity(config, &args, &server, &to_server).await?;
    let store = Arc::new(CredentialStore::open(&config.data_dir)?);
    tracing::info!(worker.id = %identity.worker_id, worker.name = %identity.name,
        server = %server, credentials = store.names().len(), "worker starting");
    let background = Background::new();
    let slots = args.slots.unwrap_or_else(super::default_slots).max(1);
    let worker = Arc::new(Worker::new(
        WorkerSettings {
            slots,
            build: env!("CARGO_PKG_VERSION").to_owned(),
            data_dir: config.data_dir.clone(),
            outbound: contracts::worker::OutboundReach {
                block_local: config.block_local_providers,
                allowlist: config.provider_url_allowlist.clone(),
            },
        },
        Runnables::new(client).with_credentials(store),
        background.clone(),
    ));
    let connector = WebSocket::new(url, identity.key.clone(), background.clone())
        .context("cannot set up TLS")?;
    let stop = CancellationToken::new();
    let running = {
        let (worker, stop) = (Arc::clone(&worker), stop.clone());
        background.spawn(async move { worker.run(connector, stop).await })
    };
    tokio::pin!(running);
    tokio::select! {
        _ = &mut running => bail!("the server refused this worker; see the log above"),
        () = shutdown => {
            tracing::info!("stopping: finishing the runs in flight");
            stop.cancel();
        }
    }
    if tokio::time::timeout(STOP_GRACE, &mut running)
        .await
        .is_err()
    {
        tracing::warn!(
            "runs still in flight after the grace period: aborted (the server requeues them)"
        );
        worker.halt();
        running.await.ok();
    }
    background.stop();
    background.wait(Duration::from_secs(5)).await;
    Ok(())
}

/// The stored identity, or a new one from registering with the token.
async fn identity(
    config: &Config,
    args: &WorkerArgs,
    server: &str,
    client: &GuardedClient,
) -> anyhow::Result<Identity> {
    let path = config.data_dir.join(IDENTITY_FILE);
    if path.exists() {
        let text = std::fs::read_to_string(&path)
            .with_context(|| format!("cannot read {}", path.display()))?;
        let identity: Identity = serde_json::from_str(&text)
            .with_context(|| format!("{} is not a worker identity", path.display()))?;
        if args.token.is_some() {
            tracing::info!(file = %path.display(), "already registered; the token is not used");
        }
        return Ok(identity);
    }
    let Some(token) = &args.token else {
        bail!(
            "this worker is not registered yet: start it once with --token (create one on the \
             server's Workers page or with POST /api/worker-tokens)"
        );
    };
    let registered = register(server, token, args.name.clone(), client).await?;
    let identity = Identity {
        server: server.to_owned(),
        worker_id: registered.worker_id,
        name: registered.name,
        key: registered.key,
    };
    write_private(&path, &serde_json::to_vec_pretty(&identity)?)?;
    tracing::info!(file = %path.display(), "registered; the worker key is stored");
    Ok(identity)
}

async fn register(
    server: &str,
    token: &str,
    name: Option<String>,
    client: &GuardedClient,
) -> anyhow::Result<RegisteredWorker> {
    let base = Url::parse(server).context("invalid server URL")?;
    let url = base
        .join("api/workers/register")
        .context("invalid server URL")?;
    let body = RegisterWorker {
        token: token.trim().to_owned(),
        name,
    };
    let request = client
        .request(reqwest::Method::POST, url)
        .json(&body)
        .build()
        .context("cannot build the registration request")?;
    let response = client
        .execute(request)
        .await
        .context("cannot reach the server to register")?;
    let status = response.status();
    let bytes = crate::outbound::read_limited(response, 64 * 1024)
        .await
        .context("cannot read the server's answer")?;
    if !status.is_success() {
        let detail = serde_json::from_slice::<contracts::Problem>(&bytes)
            .ok()
            .and_then(|p| p.detail)
            .unwrap_or_else(|| String::from_utf8_lossy(&bytes).into_owned());
        bail!("registration refused ({status}): {detail}");
    }
    serde_json::from_slice(&bytes).context("unexpected registration answer")
}

/// Writes `bytes` to `path`, readable by this user only, creating its directory.
fn write_private(path: &Path, bytes: &[u8]) -> anyhow::Result<()> {
    use std::io::Write as _;
    let dir: PathBuf = path.parent().map(Path::to_path_buf).unwrap_or_default();
    std::fs::create_dir_all(&dir).with_context(|| format!("cannot create {}", dir.display()))?;
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt as _;
        options.mode(0o600);
    }
    let mut file = options
        .open(path)
        .with_context(|| format!("cannot create {}", path.display()))?;
    file.write_all(bytes)?;
    file.sync_all()?;
    Ok(())
}
