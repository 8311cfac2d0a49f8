//! The measured scenarios. Each takes a running server (or starts its own) and returns plain
//! data for the report.

pub mod crud;
pub mod fanout;
pub mod memory;
pub mod overhead;
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
}

impl Pair {
    pub fn new(direct: Summary, through: Summary) -> Pair {
        let added = Added::between(&direct, &through);
        Pair {
            direct,
            through,
            added,
        }
    }
}
