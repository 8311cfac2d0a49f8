//! Scenario 5, the registry: read from criterion's estimates (`cargo bench -p agentry-bench
//! --bench registry`, which `just bench` runs first with `CRITERION_HOME` set).

use std::path::Path;

use serde::Serialize;

/// The benchmarks `benches/registry.rs` defines, in report order, with what they measure.
pub const BENCHES: [(&str, &str); 3] = [
    ("hit", "get_or_create, instance alive (hit path)"),
    (
        "hit_contended",
        "get_or_create hit, 8 tasks on one key at once (per call)",
    ),
    (
        "build",
        "get_or_create, new revision (build path: key, validators, template)",
    ),
];

#[derive(Debug, Clone, Serialize)]
pub struct Estimate {
    pub name: String,
    pub what: String,
    pub mean_ns: f64,
    pub median_ns: f64,
}

/// Estimates found under `criterion_home/registry/`; missing benchmarks are skipped.
pub fn read(criterion_home: &Path) -> Vec<Estimate> {
    BENCHES
        .iter()
        .filter_map(|(name, what)| {
            let path = criterion_home
                .join("registry")
                .join(name)
                .join("new/estimates.json");
            let text = std::fs::read_to_string(path).ok()?;
            let value: serde_json::Value = serde_json::from_str(&text).ok()?;
            Some(Estimate {
                name: (*name).to_owned(),
                what: (*what).to_owned(),
                mean_ns: value["mean"]["point_estimate"].as_f64()?,
                median_ns: value["median"]["point_estimate"].as_f64()?,
            })
        })
        .collect()
}
