//! What a valid provider configuration is, and the rule that a stored key never follows a
//! changed endpoint.

use contracts::rules::{MAX_API_KEY_CHARS, MAX_NAME_CHARS};
use contracts::{CredentialLocation, ProviderKind};

use super::fields::{Invalid, Problems, check_name};
use super::urls::{origin, parse_base_url};

/// A provider configuration that passed every check.
#[derive(Debug)]
pub struct ValidProvider {
    pub name: String,
    pub kind: ProviderKind,
    pub base_url: Option<String>,
    /// A new key to store; `None` keeps the stored one on update (and is all a provider
    /// whose key lives on workers has).
    pub api_key: Option<String>,
    pub credential_location: CredentialLocation,
    /// Worker names that alone may run its calls, sorted (empty: any).
    pub credential_workers: Vec<String>,
}

/// Where a provider's key lives and who may use it, as a request gives them.
#[derive(Debug, Clone, Copy)]
pub struct Custody<'a> {
    pub location: CredentialLocation,
    pub workers: &'a [String],
}

/// What an update needs to know about the stored provider.
#[derive(Debug)]
pub struct StoredProvider<'a> {
    pub kind: ProviderKind,
    pub base_url: Option<&'a str>,
    pub has_api_key: bool,
}

/// Checks a create (`stored` is `None`) or update body.
pub fn validate(
    name: &str,
    kind: ProviderKind,
    base_url: Option<&str>,
    api_key: Option<&str>,
    custody: Custody<'_>,
    stored: Option<&StoredProvider<'_>>,
) -> Result<ValidProvider, Invalid> {
    let mut problems = Problems::new();
    let name = check_name(&mut problems, "/name", name, MAX_NAME_CHARS);
    let credential_workers =
        super::agents::worker_names(&mut problems, "/credential_workers", custody.workers);
    let on_workers = custody.location == CredentialLocation::Worker;

    let base_url = match base_url {
        Some(raw) => match parse_base_url(raw) {
            Ok(url) => Some(url),
            Err(message) => {
                problems.add("/base_url", message);
                None
            }
        },
        None => {
            if kind.requires_base_url() {
                problems.add(
                    "/base_url",
                    format!("is required for kind `{}`", kind.as_str()),
                );
            }
            None
        }
    };

    let api_key = match api_key {
        Some(_) if on_workers => {
            problems.add(
                "/api_key",
                "must be absent when credential_location is `worker`: the key lives only on \
                 the workers that hold it (`agentry worker credentials set <provider name>`)",
            );
            None
        }
        Some(raw) => check_api_key(&mut problems, raw),
        None => None,
    };
    // A key that moves to the workers is dropped from the server.
    let has_key_after = api_key.is_some() || stored.is_some_and(|s| s.has_api_key && !on_workers);
    if kind.requires_api_key() && !has_key_after && !on_workers {
        problems.add(
            "/api_key",
            format!("is required for kind `{}`", kind.as_str()),
        );
    }

    if let Some(stored) = stored
        && stored.has_api_key
        && api_key.is_none()
        && !on_workers
    {
        let before = effective_url(stored.kind, stored.base_url).and_then(origin);
        let after = effective_url(kind, base_url.as_deref()).and_then(origin);
        if before != after {
            problems.add(
                "/api_key",
                "must be sent again when the endpoint's scheme, host or port changes \
                 (a stored key is never sent to a new host)",
            );
        }
    }

    problems.finish(ValidProvider {
        name,
        kind,
        base_url,
        api_key,
        credential_location: custody.location,
        credential_workers,
    })
}

/// The URL requests actually go to: the configured one or the kind's public default.
pub fn effective_url(kind: ProviderKind, base_url: Option<&str>) -> Option<&str> {
    base_url.or(kind.default_base_url())
}

/// `contracts::rules::API_KEY_PATTERN`, at most `MAX_API_KEY_CHARS` as sent; returns it trimmed.
fn check_api_key(problems: &mut Problems, raw: &str) -> Option<String> {
    if raw.chars().count() > MAX_API_KEY_CHARS {
        problems.add(
            "/api_key",
            format!("must be at most {MAX_API_KEY_CHARS} characters"),
        );
        return None;
    }
    let key = raw.trim();
    if key.is_empty() {
        problems.add(
            "/api_key",
            "must not be empty (omit it to keep the stored key)",
        );
        return None;
    }
    // Keys travel in HTTP headers: whitespace or control characters would corrupt or split them.
    if key.chars().any(|c| c.is_whitespace() || c.is_control()) {
        problems.add(
            "/api_key",
            "must not contain whitespace or control characters",
        );
        return None;
    }
    Some(key.to_owned())
}

/// `…abcd`: enough to tell keys apart, never enough to matter. Short keys get no hint at all,
/// because four characters of an eight-character key is half the key.
pub fn key_hint(key: &str) -> Option<String> {
    let chars: Vec<char> = key.chars().collect();
    if chars.len() < 12 {
        return None;
    }
    let tail: String = chars[chars.len() - 4..].iter().collect();
    Some(format!("…{tail}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    const ON_SERVER: Custody<'static> = Custody {
        location: CredentialLocation::Server,
        workers: &[],
    };
    const ON_WORKERS: Custody<'static> = Custody {
        location: CredentialLocation::Worker,
        workers: &[],
    };

    fn stored(kind: ProviderKind, base_url: Option<&str>) -> StoredProvider<'_> {
        StoredProvider {
            kind,
            base_url,
            has_api_key: true,
        }
    }

    #[test]
    fn hint_shows_last_four_of_long_keys_only() {
        assert_eq!(key_hint("sk-0123456789abcd"), Some("…abcd".to_owned()));
        assert_eq!(key_hint("short-key"), None);
    }

    #[test]
    fn changing_host_without_key_is_refused() {
        let before = stored(
            ProviderKind::OpenaiCompatible,
            Some("http://a.example:8000"),
        );
        let table = [
            ("http://b.example:8000", "host"),
            ("https://a.example:8000", "scheme"),
            ("http://a.example:8001", "port"),
        ];
        for (url, why) in table {
            let result = validate(
                "p",
                ProviderKind::OpenaiCompatible,
                Some(url),
                None,
                ON_SERVER,
                Some(&before),
            );
            assert!(result.is_err(), "changing the {why} kept the key");
        }
        let same_origin = validate(
            "p",
            ProviderKind::OpenaiCompatible,
            Some("http://a.example:8000/v2"),
            None,
            ON_SERVER,
            Some(&before),
        );
        assert!(
            same_origin.is_ok(),
            "a new path on the same origin needs no key"
        );
    }

    #[test]
    fn dropping_base_url_override_moves_the_key() {
        let before = stored(ProviderKind::Openai, Some("http://proxy.internal"));
        assert!(
            validate(
                "p",
                ProviderKind::Openai,
                None,
                None,
                ON_SERVER,
                Some(&before)
            )
            .is_err()
        );
        let with_key = validate(
            "p",
            ProviderKind::Openai,
            None,
            Some("sk-new"),
            ON_SERVER,
            Some(&before),
        );
        assert!(with_key.is_ok());
    }

    #[test]
    fn a_key_that_lives_on_workers_never_reaches_the_server() {
        // Needs no key, even for a kind that does; refuses one.
        let valid = validate("p", ProviderKind::Openai, None, None, ON_WORKERS, None).unwrap();
        assert_eq!(valid.credential_location, CredentialLocation::Worker);
        let refused = validate(
            "p",
            ProviderKind::Openai,
            None,
            Some("sk-x"),
            ON_WORKERS,
            None,
        );
        assert!(refused.is_err());
        // Moving a stored key to the workers drops it; moving back needs one again.
        let before = stored(ProviderKind::Openai, None);
        assert!(
            validate(
                "p",
                ProviderKind::Openai,
                None,
                None,
                ON_WORKERS,
                Some(&before)
            )
            .is_ok()
        );
        let back = StoredProvider {
            has_api_key: false,
            ..stored(ProviderKind::Openai, None)
        };
        assert!(
            validate(
                "p",
                ProviderKind::Openai,
                None,
                None,
                ON_SERVER,
                Some(&back)
            )
            .is_err()
        );
        // Only worker names may be listed.
        let names = [
            "gpu-1".to_owned(),
            "bad name".to_owned(),
            "gpu-1".to_owned(),
        ];
        let custody = Custody {
            location: CredentialLocation::Server,
            workers: &names,
        };
        assert!(
            validate(
                "p",
                ProviderKind::Ollama,
                Some("http://127.0.0.1:1"),
                None,
                custody,
                None
            )
            .is_err()
        );
        let custody = Custody {
            location: CredentialLocation::Server,
            workers: &names[..1],
        };
        let valid = validate(
            "p",
            ProviderKind::Ollama,
            Some("http://127.0.0.1:1"),
            None,
            custody,
            None,
        )
        .unwrap();
        assert_eq!(valid.credential_workers, ["gpu-1"]);
    }
}
