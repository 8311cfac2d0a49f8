//! The routing rules' property test and the reasons they give.
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
                reach: reach.map(Reach::new),
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
            let reaches = may_reach(worker.reach.as_ref().map(|r| &r.reported), endpoint);
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
    strict.reach = Some(Reach::new(OutboundReach {
        block_local: true,
        allowlist: Vec::new(),
    }));
    let mut lan = facts("lan", &[]);
    lan.reach = Some(Reach::new(OutboundReach::default()));
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
            Some("the provider's key may only be used by a, and none of them may run the agent"),
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
