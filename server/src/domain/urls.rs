//! Provider endpoint URLs: syntax rules, and the origin a stored API key is bound to.

use contracts::rules::MAX_URL_CHARS;
use url::Url;

/// Parses and checks a provider base URL. Returns the normalised URL (no trailing slash) or a
/// message for the user. Policy on which hosts may be reached lives with the outbound client.
pub fn parse_base_url(raw: &str) -> Result<String, String> {
    if raw.chars().count() > MAX_URL_CHARS {
        return Err(format!("must be at most {MAX_URL_CHARS} characters"));
    }
    let raw = raw.trim();
    if raw.is_empty() {
        return Err("must not be empty".to_owned());
    }
    // The URL parser would silently drop some (tabs, newlines): refuse them all instead.
    if raw.chars().any(char::is_control) {
        return Err("must not contain control characters".to_owned());
    }
    let url = Url::parse(raw).map_err(|e| format!("is not a valid URL: {e}"))?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err(format!("must use http or https, not `{}`", url.scheme()));
    }
    if url.host().is_none() {
        return Err("must name a host".to_owned());
    }
    // Credentials in a URL end up in logs and error messages; keys go in `api_key`.
    if !url.username().is_empty() || url.password().is_some() {
        return Err("must not contain a user name or password; use api_key".to_owned());
    }
    if url.query().is_some() || url.fragment().is_some() {
        return Err("must not contain a query string or fragment".to_owned());
    }
    let normalised = url.as_str().trim_end_matches('/').to_owned();
    Ok(normalised)
}

/// (scheme, host, port) of a URL: a stored key may only be sent to the origin it was given for.
pub fn origin(url: &str) -> Option<(String, String, u16)> {
    let url = Url::parse(url).ok()?;
    let host = url.host_str()?.to_ascii_lowercase();
    let port = url.port_or_known_default()?;
    Some((url.scheme().to_owned(), host, port))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_and_normalises_http_urls() {
        assert_eq!(
            parse_base_url(" http://127.0.0.1:11434/ "),
            Ok("http://127.0.0.1:11434".to_owned())
        );
        assert_eq!(
            parse_base_url("https://example.com/v1/"),
            Ok("https://example.com/v1".to_owned())
        );
    }

    #[test]
    fn rejects_bad_urls() {
        let table = [
            ("", "empty"),
            ("not a url", "no scheme"),
            ("ftp://example.com", "non-http scheme"),
            ("file:///etc/passwd", "file scheme"),
            ("http://user:pw@example.com", "userinfo"),
            ("http://example.com/?key=1", "query"),
            ("http://example.com/#x", "fragment"),
            ("javascript:alert(1)", "javascript scheme"),
            ("http://exa\tmple.com", "tab inside"),
            ("http://example.com/\u{0}", "NUL"),
        ];
        for (input, why) in table {
            assert!(
                parse_base_url(input).is_err(),
                "{why}: {input:?} was accepted"
            );
        }
    }

    #[test]
    fn origin_includes_default_port() {
        assert_eq!(
            origin("https://api.openai.com/v1"),
            Some(("https".into(), "api.openai.com".into(), 443))
        );
        assert_ne!(origin("http://a:80"), origin("http://a:81"));
        assert_ne!(origin("http://a"), origin("https://a"));
    }
}
