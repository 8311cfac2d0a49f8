//! Logging setup: tracing to stderr, filtered by AGENTRY_LOG.

use std::io::IsTerminal;

use tracing_subscriber::EnvFilter;

/// Installs the global subscriber. Invalid filters fall back to `info` with a warning rather
/// than stopping start-up over a typo.
pub fn init(filter: &str) {
    let (env_filter, bad) = match EnvFilter::try_new(filter) {
        Ok(f) => (f, None),
        Err(err) => (EnvFilter::new("info"), Some(err)),
    };
    let _ = tracing_subscriber::fmt()
        .with_env_filter(env_filter)
        .with_writer(std::io::stderr)
        // Colour codes only for a person at a terminal, never in files or journald.
        .with_ansi(std::io::stderr().is_terminal())
        .try_init();
    if let Some(err) = bad {
        tracing::warn!("AGENTRY_LOG `{filter}` is not a valid filter ({err}); using `info`");
    }
}

/// How often the runtime's figures are logged.
const RUNTIME_STATS_EVERY: std::time::Duration = std::time::Duration::from_secs(10);

/// Logs the async runtime's figures every 10 s at debug level (target `agentry::runtime`):
/// tasks alive in the runtime and tasks the server itself tracks. A count that keeps
/// growing under steady load is a leak; the soak benchmark reads these lines.
pub fn log_runtime_stats(background: &crate::background::Background) {
    if !tracing::enabled!(target: "agentry::runtime", tracing::Level::DEBUG) {
        return;
    }
    let tracked = background.clone();
    background.spawn(async move {
        let mut stopping = std::pin::pin!(tracked.stopping());
        let mut tick = tokio::time::interval(RUNTIME_STATS_EVERY);
        loop {
            tokio::select! {
                _ = &mut stopping => return,
                _ = tick.tick() => {
                    let metrics = tokio::runtime::Handle::current().metrics();
                    tracing::debug!(
                        target: "agentry::runtime",
                        alive_tasks = metrics.num_alive_tasks(),
                        tracked_tasks = tracked.running(),
                        workers = metrics.num_workers(),
                        "runtime stats"
                    );
                }
            }
        }
    });
}
