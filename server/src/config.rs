//! Every setting in one typed struct. The only place that reads environment variables: each
//! setting is an `AGENTRY_*` variable (also read from `.env`) and a matching flag.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, Parser, Subcommand};

/// Command line of the `agentry` binary.
#[derive(Debug, Parser)]
#[command(
    name = "agentry",
    version,
    about = "Self-hosted LLM agent management platform"
)]
pub struct Cli {
    #[command(flatten)]
    pub config: Config,
    #[command(subcommand)]
    pub command: Option<Command>,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Start the server (the default).
    Serve,
    /// Apply or inspect database migrations.
    Migrate {
        #[command(subcommand)]
        action: MigrateAction,
    },
    /// Manage the encryption keys that protect stored API keys.
    Keys {
        #[command(subcommand)]
        action: KeysAction,
    },
    /// Run a worker that executes runs for a server (see docs/workers.md).
    Worker(crate::worker::command::WorkerArgs),
    /// Print the OpenAPI document (or write it to a file).
    Openapi {
        /// Write to this file instead of standard output.
        #[arg(long)]
        output: Option<PathBuf>,
    },
}

#[derive(Debug, Clone, Copy, Subcommand)]
pub enum MigrateAction {
    /// Apply pending migrations (all, or the next N).
    Up {
        #[arg(short, long)]
        num: Option<u32>,
    },
    /// Roll back the last migration (or the last N).
    Down {
        #[arg(short, long, default_value_t = 1)]
        num: u32,
    },
    /// List migrations and whether each is applied.
    Status,
    /// Drop every table and apply all migrations again (destroys data).
    Fresh,
}

#[derive(Debug, Clone, Copy, Subcommand)]
pub enum KeysAction {
    /// Print a new random key (base64 of 32 bytes) for AGENTRY_ENCRYPTION_KEY.
    Generate,
    /// Re-encrypt every stored secret with the current key. Safe to interrupt and rerun.
    Rotate,
}

/// Settings. Flags are global, so they may come before or after the subcommand.
#[derive(Debug, Clone, Args)]
pub struct Config {
    /// Address to listen on. A non-loopback address requires AGENTRY_API_TOKEN.
    #[arg(
        long,
        env = "AGENTRY_BIND",
        default_value = "127.0.0.1:8080",
        global = true
    )]
    pub bind: SocketAddr,

    /// Directory for the SQLite database and the generated development key.
    #[arg(
        long,
        env = "AGENTRY_DATA_DIR",
        default_value = "./data",
        global = true
    )]
    pub data_dir: PathBuf,

    /// Database URL; defaults to SQLite in the data directory. `postgres://…` for PostgreSQL.
    #[arg(long, env = "DATABASE_URL", global = true, hide_env_values = true)]
    pub database_url: Option<String>,

    /// Connections in the database pool (default: 8 for SQLite, 16 for PostgreSQL).
    #[arg(long, env = "AGENTRY_DATABASE_MAX_CONNECTIONS", global = true,
        value_parser = clap::value_parser!(u32).range(1..=1024))]
    pub database_max_connections: Option<u32>,

    /// Base64 of 32 bytes. When unset, a key is generated into the data directory.
    #[arg(
        long,
        env = "AGENTRY_ENCRYPTION_KEY",
        global = true,
        hide_env_values = true
    )]
    pub encryption_key: Option<String>,

    /// Older keys, comma-separated: used only to decrypt, until `agentry keys rotate`.
    #[arg(
        long,
        env = "AGENTRY_ENCRYPTION_KEYS_OLD",
        value_delimiter = ',',
        global = true,
        hide_env_values = true
    )]
    pub encryption_keys_old: Vec<String>,

    /// When set, /api and /ws require `Authorization: Bearer <token>` (at least 16 characters).
    #[arg(long, env = "AGENTRY_API_TOKEN", global = true, hide_env_values = true)]
    pub api_token: Option<String>,

    /// Failed API token attempts allowed per client address and minute (then 429 until the
    /// quota refills); 0 disables the limit.
    #[arg(
        long,
        env = "AGENTRY_AUTH_FAILURES_PER_MINUTE",
        default_value_t = 10,
        global = true
    )]
    pub auth_failures_per_minute: u32,

    /// Seconds between background connectivity checks of each provider.
    #[arg(
        long,
        env = "AGENTRY_VALIDATION_INTERVAL_SECS",
        default_value_t = 300,
        global = true
    )]
    pub validation_interval_secs: u64,

    /// Refuse provider URLs on loopback and private networks (except the allow-list).
    #[arg(
        long,
        env = "AGENTRY_BLOCK_LOCAL_PROVIDERS",
        default_value_t = false,
        global = true
    )]
    pub block_local_providers: bool,

    /// host[:port] or CIDR entries allowed even when local providers are blocked.
    #[arg(
        long,
        env = "AGENTRY_PROVIDER_URL_ALLOWLIST",
        value_delimiter = ',',
        global = true
    )]
    pub provider_url_allowlist: Vec<String>,

    /// Extra origins (e.g. `https://agentry.example.com`) allowed to open `/ws`, comma-separated.
    /// The server's own origin is always allowed.
    #[arg(
        long,
        env = "AGENTRY_ALLOWED_ORIGINS",
        value_delimiter = ',',
        global = true
    )]
    pub allowed_origins: Vec<String>,

    /// Seconds a connection may take to send a request's headers; then it is closed (a client
    /// that sends half a request and goes quiet must not hold a connection).
    #[arg(
        long,
        env = "AGENTRY_REQUEST_HEADER_TIMEOUT_SECS",
        default_value_t = 10,
        global = true
    )]
    pub request_header_timeout_secs: u64,

    /// Seconds a request may take to send its body; then it is answered 408.
    #[arg(
        long,
        env = "AGENTRY_REQUEST_BODY_TIMEOUT_SECS",
        default_value_t = 30,
        global = true
    )]
    pub request_body_timeout_secs: u64,

    /// WebSocket timings; fixed in production, shortened by tests.
    #[arg(skip)]
    pub ws: WsSettings,

    /// Provider check concurrency and deadline; fixed in production, shortened by tests. The
    /// period comes from `validation_interval_secs`.
    #[arg(skip)]
    pub validator: crate::services::providers::ValidatorSettings,

    /// Whether the built-in worker executes runs (it can also be disabled in the app).
    #[arg(
        long,
        env = "AGENTRY_BUILTIN_WORKER",
        default_value_t = true,
        action = clap::ArgAction::Set,
        global = true
    )]
    pub builtin_worker: bool,

    /// Runs the built-in worker executes at once (default: 8 per CPU core, at least 8).
    #[arg(long, env = "AGENTRY_BUILTIN_WORKER_SLOTS", global = true)]
    pub builtin_worker_slots: Option<u32>,

    /// Queue and worker timings.
    #[command(flatten)]
    pub queue: QueueSettings,

    /// The executable started (with `--render-helper`) to render prompt templates; `None`
    /// is this executable. Set by embedders whose executable is not agentry (the tests).
    #[arg(skip)]
    pub render_helper: Option<PathBuf>,

    /// Log filter (tracing syntax, e.g. `info,agentry=debug`).
    #[arg(
        long = "log",
        env = "AGENTRY_LOG",
        default_value = "info",
        global = true
    )]
    pub log_filter: String,
}

pub const MIN_API_TOKEN_CHARS: usize = 16;

/// Timings of the run queue and of worker sessions (docs/workers.md).
#[derive(Debug, Clone, Args)]
pub struct QueueSettings {
    /// Seconds between the server's pings to each worker; two missed pongs mark it offline.
    #[arg(long = "worker-heartbeat-secs", env = "AGENTRY_WORKER_HEARTBEAT_SECS",
        default_value = "30", value_parser = seconds, global = true)]
    pub heartbeat: Duration,
    /// Seconds a lease lasts without renewal (workers renew every third of it).
    #[arg(long = "lease-secs", env = "AGENTRY_LEASE_SECS", default_value = "30",
        value_parser = seconds, global = true)]
    pub lease: Duration,
    /// Seconds a worker has to accept an assignment before it is requeued.
    #[arg(long = "ack-timeout-secs", env = "AGENTRY_ACK_TIMEOUT_SECS", default_value = "5",
        value_parser = seconds, global = true)]
    pub ack_timeout: Duration,
    /// Consecutive missed acceptances after which a worker is unhealthy.
    #[arg(skip = 3u32)]
    pub max_missed_acks: u32,
    /// Deliveries after which a run whose worker was lost fails with `worker lost`.
    #[arg(long, env = "AGENTRY_MAX_DELIVERIES", default_value_t = 3, global = true,
        value_parser = clap::value_parser!(u32).range(1..=100))]
    pub max_deliveries: u32,
    /// How often expired leases and queue deadlines are looked for.
    #[arg(skip = Duration::from_secs(1))]
    pub sweep_interval: Duration,
}

/// A whole number of seconds, 1 to 3,600.
fn seconds(text: &str) -> Result<Duration, String> {
    match text.trim().parse::<u64>() {
        Ok(secs @ 1..=3600) => Ok(Duration::from_secs(secs)),
        _ => Err(format!(
            "`{text}` is not a whole number of seconds from 1 to 3600"
        )),
    }
}

impl Default for QueueSettings {
    fn default() -> Self {
        QueueSettings {
            heartbeat: Duration::from_secs(30),
            lease: Duration::from_secs(30),
            ack_timeout: Duration::from_secs(5),
            max_missed_acks: 3,
            max_deliveries: 3,
            sweep_interval: Duration::from_secs(1),
        }
    }
}

/// WebSocket session timings.
#[derive(Debug, Clone)]
pub struct WsSettings {
    /// A send that takes longer means the client is not reading: the socket is dropped.
    pub send_timeout: Duration,
    /// Keepalive ping period; no pong for three periods closes the socket.
    pub ping_interval: Duration,
    /// Time to send the `auth` message when a token is required and no header was sent.
    pub auth_timeout: Duration,
    /// More than this many `resync`s within `lag_window` closes the socket.
    pub max_lags: usize,
    pub lag_window: Duration,
}

impl Default for WsSettings {
    fn default() -> Self {
        WsSettings {
            send_timeout: Duration::from_secs(10),
            ping_interval: Duration::from_secs(25),
            auth_timeout: Duration::from_secs(10),
            max_lags: 3,
            lag_window: Duration::from_secs(60),
        }
    }
}

impl Config {
    /// Defaults for everything, with the given data directory (tests and embedding).
    pub fn with_data_dir(data_dir: impl Into<PathBuf>) -> Config {
        Config {
            bind: SocketAddr::from(([127, 0, 0, 1], 8080)),
            data_dir: data_dir.into(),
            database_url: None,
            database_max_connections: None,
            encryption_key: None,
            encryption_keys_old: Vec::new(),
            api_token: None,
            auth_failures_per_minute: 10,
            validation_interval_secs: 300,
            block_local_providers: false,
            provider_url_allowlist: Vec::new(),
            allowed_origins: Vec::new(),
            request_header_timeout_secs: 10,
            request_body_timeout_secs: 30,
            ws: WsSettings::default(),
            validator: crate::services::providers::ValidatorSettings::default(),
            builtin_worker: true,
            builtin_worker_slots: None,
            queue: QueueSettings::default(),
            render_helper: None,
            log_filter: "info".to_owned(),
        }
    }

    /// Slots of the built-in worker: the setting, or 8 per core (provider calls mostly wait).
    pub fn builtin_slots(&self) -> u32 {
        self.builtin_worker_slots
            .unwrap_or_else(crate::worker::default_slots)
    }

    /// The database URL in use: DATABASE_URL, or SQLite in the data directory.
    pub fn database_url(&self) -> String {
        match &self.database_url {
            Some(url) if !url.trim().is_empty() => url.trim().to_owned(),
            _ => format!(
                "sqlite://{}?mode=rwc",
                self.data_dir.join("agentry.db").display()
            ),
        }
    }

    /// The API token, if one is configured (blank counts as unset).
    pub fn api_token(&self) -> Option<&str> {
        self.api_token
            .as_deref()
            .map(str::trim)
            .filter(|t| !t.is_empty())
    }

    /// Checks the settings that must be right before anything starts.
    pub fn check(&self, bind: SocketAddr) -> Result<(), ConfigError> {
        if let Some(token) = self.api_token()
            && token.chars().count() < MIN_API_TOKEN_CHARS
        {
            return Err(ConfigError::TokenTooShort);
        }
        if !bind.ip().is_loopback() && self.api_token().is_none() {
            return Err(ConfigError::PublicBindWithoutToken(bind));
        }
        Ok(())
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error(
        "refusing to listen on {0} without an API token: anyone who can reach it could read \
         and change every configuration. Set AGENTRY_API_TOKEN (e.g. `export \
         AGENTRY_API_TOKEN=$(openssl rand -hex 32)`) or bind to 127.0.0.1"
    )]
    PublicBindWithoutToken(SocketAddr),
    #[error("AGENTRY_API_TOKEN must be at least {MIN_API_TOKEN_CHARS} characters")]
    TokenTooShort,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn public_bind_needs_token() {
        let mut config = Config::with_data_dir("d");
        let public = SocketAddr::from(([0, 0, 0, 0], 8080));
        assert!(config.check(public).is_err());
        assert!(config.check(SocketAddr::from(([127, 0, 0, 1], 0))).is_ok());
        config.api_token = Some("0123456789abcdef0123".to_owned());
        assert!(config.check(public).is_ok());
        config.api_token = Some("short".to_owned());
        assert!(config.check(public).is_err());
    }

    #[test]
    fn queue_timings_are_read_and_bad_ones_refused() {
        let parse = |args: &[&str]| Cli::try_parse_from([&["agentry"], args].concat());
        let cli = parse(&["--lease-secs", "2", "--ack-timeout-secs", "1"]).unwrap();
        assert_eq!(cli.config.queue.lease, Duration::from_secs(2));
        assert_eq!(cli.config.queue.ack_timeout, Duration::from_secs(1));
        assert_eq!(cli.config.queue.heartbeat, Duration::from_secs(30));
        assert_eq!(cli.config.queue.max_deliveries, 3);
        assert_eq!(cli.config.queue.sweep_interval, Duration::from_secs(1));
        for bad in [
            &["--lease-secs", "0"][..],
            &["--lease-secs", "1.5"],
            &["--worker-heartbeat-secs", "3601"],
            &["--ack-timeout-secs=-1"],
            &["--max-deliveries", "0"],
        ] {
            let err = parse(bad).unwrap_err().to_string();
            let flag = bad[0].split('=').next().unwrap();
            assert!(err.contains(flag), "{bad:?}: {err}");
        }
    }

    #[test]
    fn default_database_is_sqlite_in_data_dir() {
        let config = Config::with_data_dir("/var/lib/agentry");
        assert_eq!(
            config.database_url(),
            "sqlite:///var/lib/agentry/agentry.db?mode=rwc"
        );
    }
}
