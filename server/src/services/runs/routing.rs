//! Which workers may execute a run: the agent's routing rules — worker names (any of them)
//! and required tags (all of them) — against what the server knows of each worker (its name
//! and the tags the API or its registration token gave it; never what the worker claims).
//!
//! A run carries its agent's rules as a `Route`, taken when the run is created; its key
//! (`Route::key`) is stored on the run, so the dispatcher claims only runs whose key the
//! worker's facts admit — in one statement, in queue order (`db::queue::claim`).

use std::collections::BTreeSet;

use serde::{Deserialize, Serialize};

/// A run's routing rules. Empty sets mean "any worker".
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct Route {
    /// The run may execute on any worker with one of these names (none: any name).
    #[serde(default, skip_serializing_if = "BTreeSet::is_empty")]
    pub workers: BTreeSet<String>,
    /// The worker must carry every one of these tags.
    #[serde(default, skip_serializing_if = "BTreeSet::is_empty")]
    pub tags: BTreeSet<String>,
}

/// What the server knows of a worker, for routing.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Facts {
    pub name: String,
    pub tags: BTreeSet<String>,
}

impl Route {
    pub fn new(workers: &[String], tags: &[String]) -> Route {
        Route {
            workers: workers.iter().cloned().collect(),
            tags: tags.iter().cloned().collect(),
        }
    }

    /// Whether any worker may take the run (no rules).
    pub fn is_any(&self) -> bool {
        self.workers.is_empty() && self.tags.is_empty()
    }

    /// The key stored on each run: empty for "any worker", otherwise the rules as canonical
    /// JSON (sorted sets), so equal rules have one key and the key gives the rules back.
    pub fn key(&self) -> String {
        if self.is_any() {
            return String::new();
        }
        serde_json::to_string(self).unwrap_or_default()
    }

    /// The rules of a stored key (`None`: a key this build cannot read; no worker takes it).
    pub fn of_key(key: &str) -> Option<Route> {
        if key.is_empty() {
            return Some(Route::default());
        }
        serde_json::from_str(key).ok()
    }

    /// Whether a worker with these facts may execute the run.
    pub fn admits(&self, worker: &Facts) -> bool {
        (self.workers.is_empty() || self.workers.contains(&worker.name))
            && self.tags.is_subset(&worker.tags)
    }

    /// Why no worker among `workers` (every enabled registered worker, connected or not)
    /// can ever execute the run, or `None` when one can (it may be busy or offline: the run
    /// then waits normally).
    pub fn unroutable<'a>(&self, workers: impl IntoIterator<Item = &'a Facts>) -> Option<String> {
        let workers: Vec<&Facts> = workers.into_iter().collect();
        if workers.iter().any(|w| self.admits(w)) {
            return None;
        }
        let named: Vec<&Facts> = workers
            .iter()
            .copied()
            .filter(|w| self.workers.is_empty() || self.workers.contains(&w.name))
            .collect();
        if named.is_empty() {
            return Some(if workers.is_empty() {
                "no enabled worker is registered".to_owned()
            } else {
                format!(
                    "no enabled worker is named {}",
                    either(self.workers.iter().map(String::as_str))
                )
            });
        }
        let among = if self.workers.is_empty() {
            "no worker".to_owned()
        } else {
            format!(
                "no worker named {}",
                either(self.workers.iter().map(String::as_str))
            )
        };
        // A tag none of them carries says the most; otherwise no one carries them all.
        let absent: Vec<&str> = self
            .tags
            .iter()
            .filter(|tag| !named.iter().any(|w| w.tags.contains(*tag)))
            .map(String::as_str)
            .collect();
        Some(match absent.as_slice() {
            [one] => format!("{among} has tag {one}"),
            [] => format!(
                "{among} has all of the tags {}",
                self.tags
                    .iter()
                    .map(String::as_str)
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
            many => format!("{among} has tag {}", either(many.iter().copied())),
        })
    }
}

/// `a`, `a or b`, `a, b or c`.
fn either<'a>(items: impl Iterator<Item = &'a str>) -> String {
    let items: Vec<&str> = items.collect();
    match items.split_last() {
        None => String::new(),
        Some((last, [])) => (*last).to_owned(),
        Some((last, rest)) => format!("{} or {last}", rest.join(", ")),
    }
}

#[cfg(test)]
mod tests {
    use proptest::collection::{btree_set, vec};
    use proptest::prelude::*;

    use super::*;

    const NAMES: [&str; 5] = ["a", "b", "c", "d", "e"];
    const TAGS: [&str; 5] = ["gpu", "big", "eu", "us", "lan"];

    fn facts(name: &str, tags: &[&str]) -> Facts {
        Facts {
            name: name.to_owned(),
            tags: tags.iter().map(|t| (*t).to_owned()).collect(),
        }
    }

    fn route(workers: &[&str], tags: &[&str]) -> Route {
        let owned = |items: &[&str]| items.iter().map(|i| (*i).to_owned()).collect::<Vec<_>>();
        Route::new(&owned(workers), &owned(tags))
    }

    fn names() -> impl Strategy<Value = BTreeSet<String>> {
        btree_set(
            proptest::sample::select(&NAMES[..]).prop_map(str::to_owned),
            0..3,
        )
    }

    fn tags() -> impl Strategy<Value = BTreeSet<String>> {
        btree_set(
            proptest::sample::select(&TAGS[..]).prop_map(str::to_owned),
            0..4,
        )
    }

    fn workers() -> impl Strategy<Value = Vec<Facts>> {
        vec(
            (proptest::sample::select(&NAMES[..]), tags()).prop_map(|(name, tags)| Facts {
                name: name.to_owned(),
                tags,
            }),
            0..5,
        )
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(10_000))]

        /// A worker is admitted exactly when it has one of the names (or none is asked for)
        /// and every tag; a run is unroutable exactly when no worker is admitted; and the key
        /// gives the same rules back.
        #[test]
        fn routing_obeys_names_or_and_tags_and(
            workers_rule in names(),
            tags_rule in tags(),
            fleet in workers(),
        ) {
            let route = Route { workers: workers_rule.clone(), tags: tags_rule.clone() };
            for worker in &fleet {
                let by_name = workers_rule.is_empty() || workers_rule.iter().any(|n| *n == worker.name);
                let by_tags = tags_rule.iter().all(|t| worker.tags.contains(t));
                prop_assert_eq!(route.admits(worker), by_name && by_tags, "{:?} {:?}", route, worker);
            }
            let servable = fleet.iter().any(|w| route.admits(w));
            prop_assert_eq!(route.unroutable(&fleet).is_none(), servable);
            prop_assert_eq!(Route::of_key(&route.key()), Some(route.clone()));
            prop_assert_eq!(route.key().is_empty(), workers_rule.is_empty() && tags_rule.is_empty());
        }
    }

    #[test]
    fn reasons_say_what_no_worker_has() {
        let fleet = [facts("a", &["gpu"]), facts("b", &["big"])];
        for (route, reason) in [
            (route(&[], &["eu"]), Some("no worker has tag eu")),
            (
                route(&[], &["eu", "us"]),
                Some("no worker has tag eu or us"),
            ),
            (
                route(&[], &["gpu", "big"]),
                Some("no worker has all of the tags big, gpu"),
            ),
            (route(&["c"], &[]), Some("no enabled worker is named c")),
            (
                route(&["c", "d"], &[]),
                Some("no enabled worker is named c or d"),
            ),
            (
                route(&["b"], &["gpu"]),
                Some("no worker named b has tag gpu"),
            ),
            (route(&["a", "b"], &["gpu"]), None),
            (route(&[], &[]), None),
        ] {
            assert_eq!(route.unroutable(&fleet).as_deref(), reason, "{route:?}");
        }
        assert_eq!(
            route(&[], &[]).unroutable(&[]).as_deref(),
            Some("no enabled worker is registered")
        );
    }
}
