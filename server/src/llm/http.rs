//! The HTTP layer shared by every provider: URLs under the configured base, authentication
//! by kind, sending through the guarded client, status classification, bounded typed JSON
//! bodies.

use std::time::Duration;

use contracts::ProviderKind;
use reqwest::{Method, RequestBuilder, StatusCode};
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::Value;
use url::Url;

use super::error::{ErrorClass, ProviderError};
use crate::outbound::{GuardedClient, OutboundError, read_limited};

/// Largest provider response body read (a model list or a completion).
pub const MAX_BODY_BYTES: usize = 8 * 1024 * 1024;

/// The API version header Anthropic requires on every request.
const ANTHROPIC_VERSION: &str = "2023-06-01";

/// Where and how to reach one provider: base URL, credentials and how they are presented.
pub struct Endpoint {
    pub kind: ProviderKind,
    base: Url,
    api_key: Option<String>,
    client: GuardedClient,
}

impl Endpoint {
    pub fn new(
        kind: ProviderKind,
        base_url: Option<&str>,
        api_key: Option<String>,
        client: GuardedClient,
    ) -> Result<Endpoint, ProviderError> {
        let raw = base_url.or(kind.default_base_url()).ok_or_else(|| {
            ProviderError::unexpected(format!("kind `{}` needs a base_url", kind.as_str()))
        })?;
        let mut base = Url::parse(raw)
            .map_err(|e| ProviderError::unexpected(format!("invalid base_url: {e}")))?;
        // OpenAI-style servers live under /v1; a bare host (as people often give for
        // llama.cpp, vLLM or LM Studio) means the conventional root.
        if matches!(kind, ProviderKind::OpenaiCompatible) && base.path() == "/" {
            base.set_path("/v1");
        }
        Ok(Endpoint {
            kind,
            base,
            api_key,
            client,
        })
    }

    /// `path` under the base URL's path (`/v1` + `/models`).
    pub fn url(&self, path: &str) -> Url {
        let mut url = self.base.clone();
        let joined = format!(
            "{}/{}",
            url.path().trim_end_matches('/'),
            path.trim_start_matches('/')
        );
        url.set_path(&joined);
        url
    }

    /// An error whose message cannot contain this provider's key.
    pub fn error(&self, class: ErrorClass, message: &str) -> ProviderError {
        ProviderError::redacted(class, message, self.api_key.as_deref())
    }

    /// `GET url`, answered with a JSON `T`. `what` names the answer in errors ("the model
    /// list").
    pub async fn get_json<T: DeserializeOwned>(
        &self,
        url: Url,
        what: &str,
    ) -> Result<T, ProviderError> {
        self.send(self.request(Method::GET, url), what).await
    }

    /// `POST url` with a JSON `body`, answered with a JSON `T`.
    pub async fn post_json<T: DeserializeOwned>(
        &self,
        url: Url,
        body: &impl Serialize,
        what: &str,
    ) -> Result<T, ProviderError> {
        self.send(self.request(Method::POST, url).json(body), what)
            .await
    }

    /// A request carrying this provider's credentials the way its kind expects them.
    /// Keyless local servers (and Ollama, unless a proxy in front wants one) get no header
    /// rather than an empty one.
    fn request(&self, method: Method, url: Url) -> RequestBuilder {
        let request = self.client.request(method, url);
        let request = match self.kind {
            ProviderKind::Anthropic => request.header("anthropic-version", ANTHROPIC_VERSION),
            ProviderKind::Ollama
            | ProviderKind::Openai
            | ProviderKind::OpenaiCompatible
            | ProviderKind::Gemini => request,
        };
        let Some(key) = self.api_key.as_deref() else {
            return request;
        };
        match self.kind {
            ProviderKind::Ollama | ProviderKind::Openai | ProviderKind::OpenaiCompatible => {
                request.bearer_auth(key)
            }
            ProviderKind::Anthropic => request.header("x-api-key", key),
            // Gemini also accepts `?key=`, which would put the key in URLs and logs.
            ProviderKind::Gemini => request.header("x-goog-api-key", key),
        }
    }

    /// Sends, classifies the status, and parses a JSON body of bounded size into `T`.
    async fn send<T: DeserializeOwned>(
        &self,
        request: RequestBuilder,
        what: &str,
    ) -> Result<T, ProviderError> {
        let request = request.build().map_err(|e| {
            self.error(ErrorClass::UnexpectedResponse, &e.without_url().to_string())
        })?;
        let host = host_port(request.url());
        let response = self
            .client
            .execute(request)
            .await
            .map_err(|e| self.transport_error(e, &host))?;
        let status = response.status();
        let retry_after = retry_after(response.headers());
        let body = read_limited(response, MAX_BODY_BYTES)
            .await
            .map_err(|e| self.transport_error(e, &host))?;
        if !status.is_success() {
            let mut err = self.status_error(status, &body);
            err.status = Some(status.as_u16());
            err.retry_after = retry_after;
            return Err(err);
        }
        serde_json::from_slice(&body).map_err(|e| {
            let message = if e.is_data() {
                // Valid JSON of another shape: say what was expected.
                format!("{what} does not have the expected shape: {e}")
            } else {
                format!("HTTP {} with a body that is not JSON: {e}", status.as_u16())
            };
            self.error(ErrorClass::UnexpectedResponse, &message)
        })
    }

    fn status_error(&self, status: StatusCode, body: &[u8]) -> ProviderError {
        let detail = error_detail(body);
        let code = status.as_u16();
        let (class, what) = match code {
            401 | 403 => (ErrorClass::CredentialsRejected, "credentials rejected"),
            404 => (ErrorClass::NotFound, "not found (check the base URL)"),
            429 => (ErrorClass::RateLimited, "rate limited"),
            500..=599 => (ErrorClass::ServerError, "server error"),
            _ => (ErrorClass::UnexpectedResponse, "unexpected status"),
        };
        let message = match detail {
            Some(detail) => format!("HTTP {code} {what}: {detail}"),
            None => format!("HTTP {code} {what}"),
        };
        self.error(class, &message)
    }

    fn transport_error(&self, err: OutboundError, host: &str) -> ProviderError {
        match err {
            OutboundError::Blocked(blocked) => {
                self.error(ErrorClass::Blocked, &format!("{host} {blocked}"))
            }
            OutboundError::Http(err) => self.reqwest_error(&err, host),
            OutboundError::TooLarge { limit } => self.error(
                ErrorClass::UnexpectedResponse,
                &format!("response larger than {limit} bytes"),
            ),
            err @ OutboundError::Build(_) => self.error(ErrorClass::Unreachable, &err.to_string()),
        }
    }

    fn reqwest_error(&self, err: &reqwest::Error, host: &str) -> ProviderError {
        if err.is_timeout() {
            return self.error(
                ErrorClass::Timeout,
                &format!("no answer from {host} in time"),
            );
        }
        // The innermost cause says what happened ("Connection refused", "dns error: …");
        // URLs are left out on purpose: some providers take keys in query strings.
        let mut cause = String::new();
        let mut source: Option<&(dyn std::error::Error + 'static)> = Some(err);
        while let Some(err) = source {
            cause = err.to_string();
            source = err.source();
        }
        if err.is_connect() || err.is_request() {
            return self.error(
                ErrorClass::Unreachable,
                &format!("cannot connect to {host}: {cause}"),
            );
        }
        self.error(ErrorClass::UnexpectedResponse, &format!("{host}: {cause}"))
    }
}

/// `host:port` of a URL, for messages.
fn host_port(url: &Url) -> String {
    match (url.host_str(), url.port_or_known_default()) {
        (Some(host), Some(port)) => format!("{host}:{port}"),
        (Some(host), None) => host.to_owned(),
        _ => "the provider".to_owned(),
    }
}

/// The provider's own error text, from the common shapes (`{"error":{"message"}}`,
/// `{"error":"…"}`, `{"message"}`), or a short plain-text body.
fn error_detail(body: &[u8]) -> Option<String> {
    if let Ok(value) = serde_json::from_slice::<Value>(body) {
        let candidates = [
            value.pointer("/error/message"),
            value.pointer("/error"),
            value.pointer("/message"),
            value.pointer("/detail"),
        ];
        return candidates
            .into_iter()
            .flatten()
            .find_map(|v| v.as_str().map(str::to_owned));
    }
    let text = String::from_utf8_lossy(body);
    let text = text.trim();
    (!text.is_empty() && !text.starts_with('<')).then(|| text.chars().take(200).collect())
}

/// `Retry-After` in seconds (the HTTP-date form is rare from APIs and treated as absent).
fn retry_after(headers: &reqwest::header::HeaderMap) -> Option<Duration> {
    headers
        .get(reqwest::header::RETRY_AFTER)?
        .to_str()
        .ok()?
        .trim()
        .parse::<f64>()
        .ok()
        .filter(|s| s.is_finite() && *s >= 0.0)
        .map(|s| Duration::from_secs_f64(s.min(3_600.0)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn error_detail_reads_common_shapes() {
        let table: [(&[u8], Option<&str>); 5] = [
            (
                br#"{"error":{"message":"bad key","type":"auth"}}"#,
                Some("bad key"),
            ),
            (
                br#"{"error":"model 'x' not found"}"#,
                Some("model 'x' not found"),
            ),
            (br#"{"message":"nope"}"#, Some("nope")),
            (b"plain failure", Some("plain failure")),
            (b"<html>502</html>", None),
        ];
        for (body, expected) in table {
            assert_eq!(error_detail(body).as_deref(), expected);
        }
    }

    #[test]
    fn retry_after_parses_seconds() {
        let mut headers = reqwest::header::HeaderMap::new();
        headers.insert(
            reqwest::header::RETRY_AFTER,
            "2".parse().unwrap_or_else(|_| unreachable!()),
        );
        assert_eq!(retry_after(&headers), Some(Duration::from_secs(2)));
        headers.insert(
            reqwest::header::RETRY_AFTER,
            "Wed, 21 Oct 2015 07:28:00 GMT"
                .parse()
                .unwrap_or_else(|_| unreachable!()),
        );
        assert_eq!(retry_after(&headers), None);
    }
}
