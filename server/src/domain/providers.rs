//! What a valid provider configuration is, and the rule that a stored key never follows a
//! changed endpoint.

use contracts::ProviderKind;
use contracts::rules::{MAX_API_KEY_CHARS, MAX_NAME_CHARS};

use super::fields::{Invalid, Problems, check_name};
use super::urls::{origin, parse_base_url};

/// A provider configuration that passed every check.
#[derive(Debug)]
pub struct ValidProvider {
    pub name: String,
    pub kind: ProviderKind,
    pub base_url: Option<String>,
    /// A new key to store; `None` keeps the stored one on update.
    pub api_key: Option<String>,
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
    stored: Option<&StoredProvider<'_>>,
) -> Result<ValidProvider, Invalid> {
    let mut problems = Problems::new();
    let name = check_name(&mut problems, "/name", name, MAX_NAME_CHARS);

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
        Some(raw) => check_api_key(&mut problems, raw),
        None => None,
    };
    let has_key_after = api_key.is_some() || stored.is_some_and(|s| s.has_api_key);
    if kind.requires_api_key() && !has_key_after {
        problems.add(
            "/api_key",
            format!("is required for kind `{}`", kind.as_str()),
        );
    }

    if let Some(stored) = stored
        && stored.has_api_key
        && api_key.is_none()
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
                Some(&before),
            );
            assert!(result.is_err(), "changing the {why} kept the key");
        }
        let same_origin = validate(
            "p",
            ProviderKind::OpenaiCompatible,
            Some("http://a.example:8000/v2"),
            None,
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
        assert!(validate("p", ProviderKind::Openai, None, None, Some(&before)).is_err());
        let with_key = validate(
            "p",
            ProviderKind::Openai,
            None,
            Some("sk-new"),
            Some(&before),
        );
        assert!(with_key.is_ok());
    }
}
