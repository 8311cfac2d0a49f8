//! Provider errors: a class the validator and runs act on, and a short message that is safe
//! to store and show (no key, no header, bounded length).

use std::fmt;
use std::time::Duration;

/// Why a provider call failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorClass {
    /// No connection (refused, DNS failure, reset).
    Unreachable,
    /// No answer in time.
    Timeout,
    /// 401 or 403: the key is wrong, missing or lacks access.
    CredentialsRejected,
    /// 404 on a listing route: usually a wrong base path.
    NotFound,
    /// 429.
    RateLimited,
    /// 5xx.
    ServerError,
    /// An answer we cannot use (bad JSON, unexpected shape, other statuses).
    UnexpectedResponse,
    /// The URL is refused by the outbound policy.
    Blocked,
}

impl ErrorClass {
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorClass::Unreachable => "unreachable",
            ErrorClass::Timeout => "timeout",
            ErrorClass::CredentialsRejected => "credentials_rejected",
            ErrorClass::NotFound => "not_found",
            ErrorClass::RateLimited => "rate_limited",
            ErrorClass::ServerError => "server_error",
            ErrorClass::UnexpectedResponse => "unexpected_response",
            ErrorClass::Blocked => "blocked",
        }
    }

    /// Worth retrying the same request later.
    pub fn is_transient(self) -> bool {
        match self {
            ErrorClass::Unreachable
            | ErrorClass::Timeout
            | ErrorClass::RateLimited
            | ErrorClass::ServerError => true,
            ErrorClass::CredentialsRejected
            | ErrorClass::NotFound
            | ErrorClass::UnexpectedResponse
            | ErrorClass::Blocked => false,
        }
    }
}

/// Longest message kept (bytes).
pub const MAX_MESSAGE_BYTES: usize = 512;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProviderError {
    pub class: ErrorClass,
    /// Sanitised, at most `MAX_MESSAGE_BYTES`.
    pub message: String,
    /// The provider's HTTP status, when there was one.
    pub status: Option<u16>,
    /// From a `Retry-After` header.
    pub retry_after: Option<Duration>,
}

impl ProviderError {
    pub fn new(class: ErrorClass, message: impl Into<String>) -> ProviderError {
        ProviderError {
            class,
            message: truncate(&clean(&message.into()), MAX_MESSAGE_BYTES),
            status: None,
            retry_after: None,
        }
    }

    pub fn unexpected(message: impl Into<String>) -> ProviderError {
        ProviderError::new(ErrorClass::UnexpectedResponse, message)
    }

    /// Like `new`, first removing every occurrence of `secret` (the API key) from the
    /// message — before truncation, so no fragment of it survives a cut.
    pub fn redacted(class: ErrorClass, message: &str, secret: Option<&str>) -> ProviderError {
        match secret.filter(|s| s.len() >= 4) {
            Some(secret) => ProviderError::new(class, message.replace(secret, "[redacted]")),
            None => ProviderError::new(class, message),
        }
    }

    /// `class: message`, the form stored as a provider's `validation_error`.
    pub fn summary(&self) -> String {
        truncate(
            &format!("{}: {}", self.class.as_str(), self.message),
            MAX_MESSAGE_BYTES,
        )
    }
}

impl fmt::Display for ProviderError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.class.as_str(), self.message)
    }
}

impl std::error::Error for ProviderError {}

/// One line, printable characters only.
fn clean(message: &str) -> String {
    message
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect::<String>()
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
}

/// At most `max` bytes, cut on a character boundary, with an ellipsis when cut.
pub fn truncate(text: &str, max: usize) -> String {
    if text.len() <= max {
        return text.to_owned();
    }
    let mut end = max.saturating_sub('…'.len_utf8());
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}…", &text[..end])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_are_one_bounded_line_without_the_key() {
        let key = "sk-secret-key-123456";
        let long = format!("bad\nkey {key}\t{}", "x".repeat(2_000));
        let err = ProviderError::redacted(ErrorClass::CredentialsRejected, &long, Some(key));
        assert!(err.message.len() <= MAX_MESSAGE_BYTES);
        assert!(!err.message.contains(key));
        assert!(!err.message.contains('\n'));
        assert!(
            err.summary()
                .starts_with("credentials_rejected: bad key [redacted]")
        );
    }

    #[test]
    fn truncation_respects_char_boundaries() {
        let text = "é".repeat(600);
        let cut = truncate(&text, 101);
        assert!(cut.len() <= 101);
        assert!(cut.ends_with('…'));
    }
}
