//! What a worker says about itself, checked before it is stored: the providers it holds
//! keys for (plausible names, not too many) and its health (figures out of range dropped; a
//! full disk takes it out of dispatch).

/// A disk with less free space than this is full: a worker that reports it gets no work.
pub const MIN_FREE_DISK_BYTES: u64 = 100 * 1024 * 1024;

/// Whether a report says the disk is full.
pub(super) fn disk_full(health: &contracts::WorkerHealth) -> bool {
    health
        .disk_free_bytes
        .is_some_and(|free| free < MIN_FREE_DISK_BYTES)
}

/// A report with values out of range (or not numbers) dropped.
pub(super) fn plausible(mut health: contracts::WorkerHealth) -> contracts::WorkerHealth {
    let percent = |v: Option<f32>| v.filter(|v| v.is_finite() && (0.0..=100.0).contains(v));
    health.cpu_percent = percent(health.cpu_percent);
    health.memory_percent = percent(health.memory_percent);
    health.load_1m = health.load_1m.filter(|v| v.is_finite() && *v >= 0.0);
    if let (Some(free), Some(total)) = (health.disk_free_bytes, health.disk_total_bytes)
        && free > total
    {
        health.disk_free_bytes = None;
        health.disk_total_bytes = None;
    }
    health
}

/// Most providers a worker may report holding keys for; names are provider names.
const MAX_CREDENTIALS: usize = 256;
const MAX_CREDENTIAL_NAME: usize = contracts::rules::MAX_NAME_CHARS;

/// The providers a worker says it holds keys for, if they are plausible names.
pub(super) fn reported_credentials(names: &[String]) -> Result<(), String> {
    if names.len() > MAX_CREDENTIALS {
        return Err(format!(
            "at most {MAX_CREDENTIALS} provider credentials may be reported"
        ));
    }
    match names
        .iter()
        .find(|n| n.is_empty() || n.chars().count() > MAX_CREDENTIAL_NAME)
    {
        Some(bad) => Err(format!(
            "a reported credential is not a provider name: {:?}",
            bad.chars().take(MAX_CREDENTIAL_NAME).collect::<String>()
        )),
        None => Ok(()),
    }
}
