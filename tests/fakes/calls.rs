//! The calls a fake answered, with when each started and ended, for tests that check how
//! many a limit let overlap.

/// When the fake took a request and when it answered it, for tests that check how many
/// calls a limit let overlap.
#[derive(Debug, Clone)]
pub struct Call {
    pub started: std::time::Instant,
    pub finished: std::time::Instant,
    /// Every string in the request body, joined (`all_text`), to tell calls apart.
    pub text: String,
}

/// The most calls whose text contains `marker` that were in flight at one instant.
pub fn most_at_once(calls: &[Call], marker: &str) -> usize {
    let mut edges: Vec<(std::time::Instant, i32)> = calls
        .iter()
        .filter(|c| c.text.contains(marker))
        .flat_map(|c| [(c.started, 1), (c.finished, -1)])
        .collect();
    // At one instant a finish counts before a start: touching calls do not overlap.
    edges.sort();
    let (mut now, mut most) = (0i32, 0i32);
    for (_, step) in edges {
        now += step;
        most = most.max(now);
    }
    usize::try_from(most).unwrap_or(0)
}
