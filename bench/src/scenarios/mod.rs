//! The measured scenarios. Each takes a running server (or starts its own) and returns plain
//! data for the report.

pub mod crud;
pub mod fanout;
pub mod memory;
pub mod overhead;
pub mod queue;
pub mod soak;
pub mod ws;

use serde::Serialize;

use crate::load::Summary;

/// What the server adds to the direct call, percentile by percentile.
#[derive(Debug, Clone, Serialize)]
pub struct Added {
    pub p50_ms: f64,
    pub p90_ms: f64,
    pub p99_ms: f64,
    pub max_ms: f64,
    pub mean_ms: f64,
}

impl Added {
    pub fn between(direct: &Summary, through: &Summary) -> Added {
        Added {
            p50_ms: through.p50_ms - direct.p50_ms,
            p90_ms: through.p90_ms - direct.p90_ms,
            p99_ms: through.p99_ms - direct.p99_ms,
            max_ms: through.max_ms - direct.max_ms,
            mean_ms: through.mean_ms - direct.mean_ms,
        }
    }
}

/// The same load sent directly to the stub and through a proxy or platform.
#[derive(Debug, Clone, Serialize)]
pub struct Pair {
    pub direct: Summary,
    pub through: Summary,
    pub added: Added,
    /// CPU time the platform's process spent per answered request during the `through`
    /// phase (user + system), when its process is known.
    pub cpu_ms_per_request: Option<f64>,
}

impl Pair {
    pub fn new(direct: Summary, through: Summary) -> Pair {
        let added = Added::between(&direct, &through);
        Pair {
            direct,
            through,
            added,
            cpu_ms_per_request: None,
        }
    }

    pub fn with_cpu(mut self, cpu_seconds: Option<f64>) -> Pair {
        let answered = self.through.requests - self.through.errors;
        self.cpu_ms_per_request = cpu_seconds
            .filter(|_| answered > 0)
            .map(|s| s * 1000.0 / answered as f64);
        self
    }
}
