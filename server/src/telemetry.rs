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
