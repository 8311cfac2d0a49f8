//! Whether each figure of the soak stayed flat: early and late medians, and the slope.

use serde::Serialize;

use super::Minute;

/// Early against late minutes for one figure.
#[derive(Debug, Clone, Serialize)]
pub struct Trend {
    pub metric: String,
    /// Median over the early minutes (after the first, which warms up).
    pub early: f64,
    /// Median over the last third.
    pub late: f64,
    /// Least-squares slope per hour over every minute after the first.
    pub per_hour: f64,
    pub flat: bool,
    /// What "flat" allowed.
    pub rule: String,
}

fn median(values: &mut [f64]) -> f64 {
    if values.is_empty() {
        return 0.0;
    }
    values.sort_by(f64::total_cmp);
    let mid = values.len() / 2;
    if values.len().is_multiple_of(2) {
        (values[mid - 1] + values[mid]) / 2.0
    } else {
        values[mid]
    }
}

/// Minutes per hour times the least-squares slope of `values` over their index.
fn slope_per_hour(values: &[f64]) -> f64 {
    let n = values.len() as f64;
    if values.len() < 2 {
        return 0.0;
    }
    let mean_x = (n - 1.0) / 2.0;
    let mean_y = values.iter().sum::<f64>() / n;
    let (mut num, mut den) = (0.0, 0.0);
    for (i, y) in values.iter().enumerate() {
        let dx = i as f64 - mean_x;
        num += dx * (y - mean_y);
        den += dx * dx;
    }
    60.0 * num / den
}

/// Each figure's early and late medians (the first minute warms up and is left out) and
/// whether it stayed flat by its rule.
pub fn trends(samples: &[Minute]) -> Vec<Trend> {
    let steady = if samples.len() > 3 {
        &samples[1..]
    } else {
        samples
    };
    let third = (steady.len() / 3).max(1);
    let figure = |metric: &str,
                  rule: &str,
                  get: &dyn Fn(&Minute) -> Option<f64>,
                  flat: &dyn Fn(f64, f64) -> bool| {
        let all: Vec<f64> = steady.iter().filter_map(get).collect();
        let mut early: Vec<f64> = steady[..third].iter().filter_map(get).collect();
        let mut late: Vec<f64> = steady[steady.len() - third..]
            .iter()
            .filter_map(get)
            .collect();
        let (early, late) = (median(&mut early), median(&mut late));
        Trend {
            metric: metric.to_owned(),
            early,
            late,
            per_hour: slope_per_hour(&all),
            flat: !all.is_empty() && flat(early, late),
            rule: rule.to_owned(),
        }
    };
    vec![
        figure(
            "RSS (MiB)",
            "late ≤ early + max(10 %, 8 MiB)",
            &|m| Some(m.rss_mib),
            &|e, l| l <= e + f64::max(0.1 * e, 8.0),
        ),
        figure(
            "open file descriptors",
            "late ≤ early + 8",
            &|m| Some(m.open_fds as f64),
            &|e, l| l <= e + 8.0,
        ),
        figure(
            "threads",
            "late ≤ early + 2",
            &|m| Some(m.threads as f64),
            &|e, l| l <= e + 2.0,
        ),
        figure(
            "runtime tasks",
            "late ≤ early + 16",
            &|m| m.alive_tasks.map(|t| t as f64),
            &|e, l| l <= e + 16.0,
        ),
        figure(
            "p99 latency (ms)",
            "late ≤ 2 × early + 1 ms",
            &|m| Some(m.p99_ms),
            &|e, l| l <= 2.0 * e + 1.0,
        ),
        figure(
            "requests per minute",
            "late ≥ 0.8 × early",
            &|m| Some(m.requests as f64),
            &|e, l| l >= 0.8 * e,
        ),
    ]
}
