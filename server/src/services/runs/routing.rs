//! Which workers may execute a run: the agent's routing rules — worker names (any of them)
//! and required tags (all of them) — and its provider's — the workers that alone may use its
//! key, and, when the key lives on workers, holding it — against what the server knows of
//! each worker (its name and the tags the API or its registration token gave it, and the
//! credentials it reports holding; a worker can claim a credential, but without the key its
//! runs would fail, so that claim widens nothing).
//!
//! A run carries its agent's rules as a `Route`, taken when the run is created; its key
//! (`Route::key`) is stored on the run, so the dispatcher claims only runs whose key the
//! worker's facts admit — in one statement, in queue order (`db::queue::claim`).

use std::collections::BTreeSet;

use contracts::worker::OutboundReach;
use serde::{Deserialize, Serialize};

use crate::outbound::OutboundPolicy;

/// A run's routing rules. Empty sets mean "any worker".
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct Route {
    /// The run may execute on any worker with one of these names (none: any name).
    #[serde(default, skip_serializing_if = "BTreeSet::is_empty")]
    pub workers: BTreeSet<String>,
    /// The worker must carry every one of these tags.
    #[serde(default, skip_serializing_if = "BTreeSet::is_empty")]
    pub tags: BTreeSet<String>,
    /// The provider's key may only go to (or be used on) workers with one of these names.
    #[serde(default, skip_serializing_if = "BTreeSet::is_empty")]
    pub key_workers: BTreeSet<String>,
    /// The provider whose key the worker must hold itself (its key lives on workers).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub credential: Option<String>,
    /// The provider's URL, when it is on a loopback or private network: the worker's own
    /// outbound policy must let it reach it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub endpoint: Option<String>,
    /// The provider's kind: the worker must serve it (a worker of an older build may not).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kind: Option<String>,
}

/// What the server knows of a worker, for routing.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Facts {
    pub name: String,
    pub tags: BTreeSet<String>,
    /// Providers whose keys it reports holding.
    pub credentials: BTreeSet<String>,
    /// Its outbound policy as it reported it (`None`: it did not say; not held against it).
    pub reach: Option<Reach>,
    /// The provider kinds it reported serving (`None`: it did not say; not held against it).
    pub kinds: Option<BTreeSet<String>>,
}

/// A worker's reported outbound policy, compiled once (dispatch asks it for every route of
/// every round).
#[derive(Debug, Clone)]
pub struct Reach {
    reported: OutboundReach,
    policy: OutboundPolicy,
}

impl Reach {
    pub fn new(reported: OutboundReach) -> Reach {
        let policy = OutboundPolicy::of_reach(&reported);
        Reach { reported, policy }
    }

    fn allows(&self, url: &url::Url) -> bool {
        self.policy.check_url(url).is_ok()
    }
}

/// Two reaches are the same when the workers reported the same policy.
impl PartialEq for Reach {
    fn eq(&self, other: &Reach) -> bool {
        self.reported == other.reported
    }
}

impl Eq for Reach {}

impl Route {
    pub fn new(workers: &[String], tags: &[String]) -> Route {
        Route {
            workers: workers.iter().cloned().collect(),
            tags: tags.iter().cloned().collect(),
            ..Route::default()
        }
    }

    /// The rules the provider adds: who may use its key (`key_workers`) and, when the key
    /// lives on workers, that the worker holds it under the provider's name.
    #[must_use]
    pub fn with_provider(mut self, key_workers: &[String], credential: Option<&str>) -> Route {
        self.key_workers = key_workers.iter().cloned().collect();
        self.credential = credential.map(str::to_owned);
        self
    }

    /// The provider's URL, to be reached under each worker's own policy (only for a URL on a
    /// loopback or private network: any worker reaches a public one).
    #[must_use]
    pub fn reaching(mut self, endpoint: Option<&str>) -> Route {
        self.endpoint = endpoint.map(str::to_owned);
        self
    }

    /// The provider's kind, which the worker must serve.
    #[must_use]
    pub fn serving(mut self, kind: &str) -> Route {
        self.kind = Some(kind.to_owned());
        self
    }

    /// Whether any worker may take the run (no rules).
    pub fn is_any(&self) -> bool {
        self.only_capabilities() && self.endpoint.is_none() && self.kind.is_none()
    }

    /// Whether the route's only rules, if any, are what every run of its provider needs of a
    /// worker: serving its kind, and reaching it when it is local.
    pub fn only_capabilities(&self) -> bool {
        self.workers.is_empty()
            && self.tags.is_empty()
            && self.key_workers.is_empty()
            && self.credential.is_none()
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
        self.named(worker)
            && self.tags.is_subset(&worker.tags)
            && self.holds_key(worker)
            && self.reachable(worker)
            && self.serves(worker)
    }

    /// Whether the worker serves the provider's kind.
    fn serves(&self, worker: &Facts) -> bool {
        match (&self.kind, &worker.kinds) {
            (Some(kind), Some(kinds)) => kinds.contains(kind),
            _ => true,
        }
    }

    /// Whether the worker's own policy lets it reach the provider, when that is local.
    fn reachable(&self, worker: &Facts) -> bool {
        let (Some(endpoint), Some(reach)) = (&self.endpoint, &worker.reach) else {
            return true;
        };
        url::Url::parse(endpoint).is_ok_and(|url| reach.allows(&url))
    }

    /// Whether the worker has one of the names the agent and the provider allow.
    fn named(&self, worker: &Facts) -> bool {
        (self.workers.is_empty() || self.workers.contains(&worker.name))
            && (self.key_workers.is_empty() || self.key_workers.contains(&worker.name))
    }

    /// Whether the worker holds the key, when it must.
    fn holds_key(&self, worker: &Facts) -> bool {
        self.credential
            .as_ref()
            .is_none_or(|provider| worker.credentials.contains(provider))
    }

    /// Why no worker among `workers` (every enabled registered worker, connected or not)
    /// can ever execute the run, or `None` when one can (it may be busy or offline: the run
    /// then waits normally).
    pub fn unroutable<'a>(&self, workers: impl IntoIterator<Item = &'a Facts>) -> Option<String> {
        let workers: Vec<&Facts> = workers.into_iter().collect();
        if workers.iter().any(|w| self.admits(w)) {
            return None;
        }
        let by_agent: Vec<&Facts> = workers
            .iter()
            .copied()
            .filter(|w| self.workers.is_empty() || self.workers.contains(&w.name))
            .collect();
        if by_agent.is_empty() {
            return Some(if workers.is_empty() {
                "no enabled worker is registered".to_owned()
            } else {
                format!(
                    "no enabled worker is named {}",
                    either(self.workers.iter().map(String::as_str))
                )
            });
        }
        let named: Vec<&Facts> = by_agent.iter().copied().filter(|w| self.named(w)).collect();
        if named.is_empty() {
            return Some(format!(
                "the provider's key may only be used by {}, and none of them may run the agent",
                either(self.key_workers.iter().map(String::as_str))
            ));
        }
        // The credential next: without it no tag helps.
        if let Some(provider) = &self.credential
            && !named.iter().any(|w| self.holds_key(w))
        {
            return Some(format!(
                "no worker{} holds the key of provider {provider}",
                if self.workers.is_empty() && self.key_workers.is_empty() {
                    String::new()
                } else {
                    " allowed to run it".to_owned()
                }
            ));
        }
        let named: Vec<&Facts> = named.into_iter().filter(|w| self.holds_key(w)).collect();
        // Then reaching a local provider under each worker's own policy.
        if let Some(endpoint) = &self.endpoint
            && !named.iter().any(|w| self.reachable(w))
        {
            return Some(format!(
                "no worker{} may reach {}: their outbound policy refuses local networks",
                if self.only_capabilities() {
                    ""
                } else {
                    " that may run it"
                },
                host(endpoint)
            ));
        }
        // A worker of a build without the provider's kind cannot run it at all.
        if let Some(kind) = &self.kind
            && !named.iter().any(|w| self.serves(w))
        {
            return Some(format!(
                "no worker{} serves provider kind {kind} (their build is older than the server's)",
                if self.only_capabilities() {
                    ""
                } else {
                    " that may run it"
                }
            ));
        }
        let named: Vec<&Facts> = named.into_iter().filter(|w| self.serves(w)).collect();
        let holders = named.len();
        let named: Vec<&Facts> = named.into_iter().filter(|w| self.reachable(w)).collect();
        // Reaching is worth saying only when it ruled a worker out.
        let reach_mattered = named.len() < holders;
        // The names both the agent and the provider allow, for the reason.
        let allowed: BTreeSet<&String> =
            match (self.workers.is_empty(), self.key_workers.is_empty()) {
                (true, true) => BTreeSet::new(),
                (false, true) => self.workers.iter().collect(),
                (true, false) => self.key_workers.iter().collect(),
                (false, false) => self.workers.intersection(&self.key_workers).collect(),
            };
        let among = match (allowed.is_empty(), &self.credential, &self.endpoint) {
            (true, Some(provider), _) => {
                format!("no worker holding the key of provider {provider}")
            }
            (true, None, Some(endpoint)) if reach_mattered => {
                format!("no worker that may reach {}", host(endpoint))
            }
            (true, None, _) => "no worker".to_owned(),
            (false, _, _) => format!(
                "no worker named {}",
                either(allowed.iter().map(|s| s.as_str()))
            ),
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

/// The host of a URL, for reasons.
fn host(endpoint: &str) -> String {
    url::Url::parse(endpoint)
        .ok()
        .and_then(|u| u.host_str().map(str::to_owned))
        .unwrap_or_else(|| endpoint.to_owned())
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
#[path = "routing_tests.rs"]
mod tests;
