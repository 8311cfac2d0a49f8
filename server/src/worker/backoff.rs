//! How long a worker waits before it connects again after losing the server.

use std::time::Duration;

/// Reconnect backoff: full jitter over an exponential window (1 s doubling, 60 s cap).
const BACKOFF_BASE: Duration = Duration::from_secs(1);
const BACKOFF_CAP: Duration = Duration::from_secs(60);

/// Full jitter: a random delay up to `min(cap, base · 2^failures)`, so many workers that lost
/// the server at once come back spread out.
pub fn backoff(failures: u32) -> Duration {
    let window = BACKOFF_BASE
        .saturating_mul(1 << failures.min(6))
        .min(BACKOFF_CAP);
    let random = u64::try_from(uuid::Uuid::new_v4().as_u128() & 0xffff_ffff).unwrap_or(0);
    window.mul_f64(f64::from(u32::try_from(random).unwrap_or(0)) / f64::from(u32::MAX))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reconnect_backoff_is_capped_and_spreads_workers_out() {
        for failures in 0..20 {
            let window = BACKOFF_BASE
                .saturating_mul(1 << failures.min(6))
                .min(BACKOFF_CAP);
            assert!(backoff(failures) <= window, "failures {failures}");
        }
        assert!(backoff(30) <= BACKOFF_CAP);
        // 50 workers that lost the server at once, each after its fourth failure: full
        // jitter spreads them over the 16 s window instead of one burst.
        let delays: Vec<Duration> = (0..50).map(|_| backoff(4)).collect();
        let (min, max) = (
            delays.iter().min().copied().unwrap_or_default(),
            delays.iter().max().copied().unwrap_or_default(),
        );
        assert!(max - min > Duration::from_secs(8), "{min:?}..{max:?}");
        let mut seconds: Vec<u64> = delays.iter().map(Duration::as_secs).collect();
        seconds.sort_unstable();
        seconds.dedup();
        assert!(seconds.len() >= 8, "spread over many seconds: {seconds:?}");
    }
}
