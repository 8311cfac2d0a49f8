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
    pub reach: Option<OutboundReach>,
    /// The provider kinds it reported serving (`None`: it did not say; not held against it).
    pub kinds: Option<BTreeSet<String>>,
}

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
        url::Url::parse(endpoint)
            .is_ok_and(|url| OutboundPolicy::of_reach(reach).check_url(&url).is_ok())
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
mod tests {
    use proptest::collection::{btree_set, vec};
    use proptest::prelude::*;

    use super::*;

    const NAMES: [&str; 5] = ["a", "b", "c", "d", "e"];
    const TAGS: [&str; 5] = ["gpu", "big", "eu", "us", "lan"];
    const PROVIDERS: [&str; 3] = ["openai", "local", "claude"];
    /// Local provider URLs a run may have to reach.
    const ENDPOINTS: [&str; 3] = [
        "http://10.1.2.3:11434",
        "http://192.168.1.5:8080/v1",
        "http://localhost:11434",
    ];

    fn facts(name: &str, tags: &[&str]) -> Facts {
        Facts {
            name: name.to_owned(),
            tags: tags.iter().map(|t| (*t).to_owned()).collect(),
            credentials: BTreeSet::new(),
            reach: None,
            kinds: None,
        }
    }

    /// The kinds a worker may report: none said, every one, Ollama only.
    fn kinds() -> impl Strategy<Value = Option<BTreeSet<String>>> {
        proptest::sample::select(&[0u8, 1, 2][..]).prop_map(|which| match which {
            0 => None,
            1 => Some(["ollama", "openai", "gemini"].map(str::to_owned).into()),
            _ => Some(BTreeSet::from(["ollama".to_owned()])),
        })
    }

    /// The outbound policies a worker may report: none said, local networks allowed, refused,
    /// refused except 10.0.0.0/8.
    fn reach() -> impl Strategy<Value = Option<OutboundReach>> {
        proptest::sample::select(&[0u8, 1, 2, 3][..]).prop_map(|which| match which {
            0 => None,
            1 => Some(OutboundReach::default()),
            2 => Some(OutboundReach {
                block_local: true,
                allowlist: Vec::new(),
            }),
            _ => Some(OutboundReach {
                block_local: true,
                allowlist: vec!["10.0.0.0/8".to_owned()],
            }),
        })
    }

    /// Whether a worker with `reach` may call `endpoint`, said independently of the policy
    /// code: only an allow-list of 10.0.0.0/8 lets a refusing worker reach 10.1.2.3.
    fn may_reach(reach: Option<&OutboundReach>, endpoint: Option<&str>) -> bool {
        match (reach, endpoint) {
            (None, _) | (_, None) => true,
            (Some(reach), Some(_)) if !reach.block_local => true,
            (Some(reach), Some(endpoint)) => {
                !reach.allowlist.is_empty() && endpoint == "http://10.1.2.3:11434"
            }
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

    fn credentials() -> impl Strategy<Value = BTreeSet<String>> {
        btree_set(
            proptest::sample::select(&PROVIDERS[..]).prop_map(str::to_owned),
            0..3,
        )
    }

    fn workers() -> impl Strategy<Value = Vec<Facts>> {
        vec(
            (
                proptest::sample::select(&NAMES[..]),
                tags(),
                credentials(),
                reach(),
                kinds(),
            )
                .prop_map(|(name, tags, credentials, reach, kinds)| Facts {
                    name: name.to_owned(),
                    tags,
                    credentials,
                    reach,
                    kinds,
                }),
            0..5,
        )
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(10_000))]

        /// A worker is admitted exactly when it has one of the agent's names (or none is
        /// asked for), one of the names the provider's key may go to (or none is set), every
        /// tag, the provider's key when that lives on workers, and an outbound policy that
        /// reaches the provider when that is local; a run is unroutable exactly when no
        /// worker is admitted; and the key gives the same rules back.
        #[test]
        fn routing_obeys_names_or_tags_and_key_custody_credentials_and_reach(
            workers_rule in names(),
            tags_rule in tags(),
            key_workers in names(),
            credential in proptest::option::of(proptest::sample::select(&PROVIDERS[..])),
            endpoint in proptest::option::of(proptest::sample::select(&ENDPOINTS[..])),
            kind in proptest::option::of(proptest::sample::select(&["ollama", "openai", "anthropic"][..])),
            fleet in workers(),
        ) {
            let route = Route {
                workers: workers_rule.clone(),
                tags: tags_rule.clone(),
                key_workers: key_workers.clone(),
                credential: credential.map(str::to_owned),
                endpoint: endpoint.map(str::to_owned),
                kind: kind.map(str::to_owned),
            };
            for worker in &fleet {
                let by_name = workers_rule.is_empty() || workers_rule.iter().any(|n| *n == worker.name);
                let by_key = key_workers.is_empty() || key_workers.iter().any(|n| *n == worker.name);
                let by_tags = tags_rule.iter().all(|t| worker.tags.contains(t));
                let holds = credential.is_none_or(|c| worker.credentials.iter().any(|h| h == c));
                let reaches = may_reach(worker.reach.as_ref(), endpoint);
                let serves = match (kind, &worker.kinds) {
                    (Some(kind), Some(kinds)) => kinds.iter().any(|k| k == kind),
                    _ => true,
                };
                prop_assert_eq!(
                    route.admits(worker),
                    by_name && by_key && by_tags && holds && reaches && serves,
                    "{:?} {:?}", route, worker
                );
            }
            let servable = fleet.iter().any(|w| route.admits(w));
            prop_assert_eq!(route.unroutable(&fleet).is_none(), servable);
            prop_assert_eq!(Route::of_key(&route.key()), Some(route.clone()));
            prop_assert_eq!(
                route.key().is_empty(),
                workers_rule.is_empty() && tags_rule.is_empty() && key_workers.is_empty()
                    && credential.is_none() && endpoint.is_none() && kind.is_none()
            );
        }
    }

    #[test]
    fn reasons_say_which_kinds_the_workers_serve() {
        let mut old = facts("old", &["gpu"]);
        old.kinds = Some(BTreeSet::from(["ollama".to_owned()]));
        let mut new = facts("new", &[]);
        new.kinds = Some(["ollama", "openai"].map(str::to_owned).into());
        let openai = |workers: &[&str]| route(workers, &[]).serving("openai");
        assert_eq!(openai(&[]).unroutable([&old, &new]), None);
        assert_eq!(
            openai(&[]).unroutable([&old]).as_deref(),
            Some("no worker serves provider kind openai (their build is older than the server's)")
        );
        assert_eq!(
            openai(&["old"]).unroutable([&old, &new]).as_deref(),
            Some(
                "no worker that may run it serves provider kind openai (their build is older \
                 than the server's)"
            )
        );
        assert!(
            openai(&[]).admits(&facts("silent", &[])),
            "a worker that said nothing"
        );
    }

    #[test]
    fn reasons_say_who_may_reach_a_local_provider() {
        let mut strict = facts("strict", &["gpu"]);
        strict.reach = Some(OutboundReach {
            block_local: true,
            allowlist: Vec::new(),
        });
        let mut lan = facts("lan", &[]);
        lan.reach = Some(OutboundReach::default());
        let local = |workers: &[&str], tags: &[&str]| {
            route(workers, tags).reaching(Some("http://10.1.2.3:11434"))
        };
        assert_eq!(local(&[], &[]).unroutable([&strict, &lan]), None);
        assert_eq!(
            local(&[], &[]).unroutable([&strict]).as_deref(),
            Some("no worker may reach 10.1.2.3: their outbound policy refuses local networks")
        );
        assert_eq!(
            local(&["strict"], &[])
                .unroutable([&strict, &lan])
                .as_deref(),
            Some(
                "no worker that may run it may reach 10.1.2.3: their outbound policy refuses local networks"
            )
        );
        assert_eq!(
            local(&[], &["gpu"]).unroutable([&strict, &lan]).as_deref(),
            Some("no worker that may reach 10.1.2.3 has tag gpu")
        );
        assert!(
            local(&[], &[]).admits(&facts("silent", &[])),
            "a worker that said nothing"
        );
        assert!(crate::outbound::is_local_url(
            &url::Url::parse("http://localhost:1").unwrap()
        ));
        assert!(crate::outbound::is_local_url(
            &url::Url::parse("http://[fd00::1]:1").unwrap()
        ));
        assert!(!crate::outbound::is_local_url(
            &url::Url::parse("https://api.openai.com").unwrap()
        ));
        assert!(!crate::outbound::is_local_url(
            &url::Url::parse("http://169.254.169.254").unwrap()
        ));
    }

    #[test]
    fn reasons_say_who_may_use_the_key_and_who_holds_it() {
        let mut a = facts("a", &["gpu"]);
        a.credentials.insert("openai".into());
        let fleet = [a, facts("b", &["big"])];
        let held = |workers: &[&str], tags: &[&str], key: &[&str], credential: Option<&str>| {
            let owned = |items: &[&str]| items.iter().map(|i| (*i).to_owned()).collect::<Vec<_>>();
            route(workers, tags).with_provider(&owned(key), credential)
        };
        for (route, reason) in [
            (held(&[], &[], &[], Some("openai")), None),
            (
                held(&[], &[], &[], Some("claude")),
                Some("no worker holds the key of provider claude"),
            ),
            (
                held(&["b"], &[], &[], Some("openai")),
                Some("no worker allowed to run it holds the key of provider openai"),
            ),
            (
                held(&[], &["big"], &[], Some("openai")),
                Some("no worker holding the key of provider openai has tag big"),
            ),
            (held(&[], &[], &["a"], None), None),
            (
                held(&["b"], &[], &["a"], None),
                Some(
                    "the provider's key may only be used by a, and none of them may run the agent",
                ),
            ),
            (held(&[], &["big"], &["a", "b"], None), None),
            (
                held(&[], &["eu"], &["a", "b"], None),
                Some("no worker named a or b has tag eu"),
            ),
        ] {
            assert_eq!(route.unroutable(&fleet).as_deref(), reason, "{route:?}");
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
