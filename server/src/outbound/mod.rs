//! The one guarded HTTP client for every request to a provider URL: http/https only, no
//! redirects, no proxy, connect and total timeouts, and the URL policy applied to the URL
//! (IP literals, `localhost`) and again to every address DNS returns, at each connection.
//!
//! Send through `GuardedClient::execute` (or `send`): reqwest connects to IP-literal hosts
//! without asking the resolver, so only those paths see every request.

mod policy;
mod resolver;

use std::error::Error as _;
use std::sync::Arc;
use std::time::Duration;

use url::Url;

pub use policy::{
    BlockReason, Blocked, OutboundPolicy, PolicyError, RESOLVE_TIMEOUT, is_local_url,
};

/// Sent on every outbound request.
pub const USER_AGENT: &str = concat!("agentry/", env!("CARGO_PKG_VERSION"));

/// Limits for one client. `total` covers connect, request and reading the whole body.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Timeouts {
    pub connect: Duration,
    pub total: Duration,
}

#[derive(Debug, thiserror::Error)]
pub enum OutboundError {
    /// The URL, or an address its host resolved to, is refused by the policy.
    #[error(transparent)]
    Blocked(#[from] Blocked),
    #[error("could not build the outbound HTTP client")]
    Build(#[source] reqwest::Error),
    /// Connect, TLS, timeout or protocol failure. The URL is stripped from the error: the
    /// caller knows it, and logs should not carry query strings.
    #[error("outbound request failed")]
    Http(#[source] reqwest::Error),
    #[error("response body is larger than {limit} bytes")]
    TooLarge { limit: usize },
}

/// Installs rustls' ring provider as the process default. reqwest is built without a provider
/// of its own (no aws-lc-rs C build), so one must be installed before the first client; `client`
/// calls this, and `main` and test harnesses may call it first thing too. Idempotent.
pub fn install_crypto_provider() {
    // Err only means a provider is already installed (by an earlier call or by the embedding
    // program), which is all reqwest needs.
    let _already_installed = rustls::crypto::ring::default_provider().install_default();
}

/// Builds the guarded reqwest client. Prefer `GuardedClient`, which also checks IP-literal URLs
/// before sending; a bare client checks only what the resolver sees (DNS names).
///
/// TLS roots come from the operating system (rustls-platform-verifier: the system store, or
/// `SSL_CERT_FILE`/`SSL_CERT_DIR`), so private CAs installed there work.
fn client(
    policy: Arc<OutboundPolicy>,
    timeouts: Timeouts,
) -> Result<reqwest::Client, OutboundError> {
    install_crypto_provider();
    match builder(&policy, timeouts).build() {
        Ok(client) => Ok(client),
        Err(error) if caused_by::<rustls::Error>(&error) => {
            // The platform verifier refuses to start when the system has no CA certificates (a
            // bare container without ca-certificates). Plain-http providers such as a local
            // Ollama must still work there, so trust no roots at all: https then fails per
            // request with a certificate error, and this says why.
            tracing::warn!(
                error = ?error,
                "no CA certificates could be loaded from the system; https provider URLs will \
                 fail certificate checks until the ca-certificates package is installed or \
                 SSL_CERT_FILE is set"
            );
            builder(&policy, timeouts)
                .tls_certs_only([])
                .build()
                .map_err(OutboundError::Build)
        }
        Err(error) => Err(OutboundError::Build(error)),
    }
}

fn builder(policy: &Arc<OutboundPolicy>, timeouts: Timeouts) -> reqwest::ClientBuilder {
    reqwest::Client::builder()
        .user_agent(USER_AGENT)
        // A redirect turns a checked URL into an unchecked one (and would carry the API key to
        // another origin); callers see the 3xx instead.
        .redirect(reqwest::redirect::Policy::none())
        .referer(false)
        // A proxy resolves the target itself, out of the resolver's sight; environment proxy
        // variables are ignored for the same reason.
        .no_proxy()
        .connect_timeout(timeouts.connect)
        .timeout(timeouts.total)
        .dns_resolver(resolver::GuardedResolver::new(Arc::clone(policy)))
}

/// Checks the request's URL, then sends it with `client` (which must come from `client()`, so
/// DNS names are checked again at connect time).
async fn send(
    client: &reqwest::Client,
    policy: &OutboundPolicy,
    request: reqwest::Request,
) -> Result<reqwest::Response, OutboundError> {
    policy.check_url(request.url())?;
    #[expect(
        clippy::disallowed_methods,
        reason = "the chokepoint: every request to a provider is sent here, after the URL check"
    )]
    client.execute(request).await.map_err(request_error)
}

/// The guarded client with its policy: the way the rest of the server sends to provider URLs.
/// Cheap to clone (both halves are reference-counted).
#[derive(Debug, Clone)]
pub struct GuardedClient {
    client: reqwest::Client,
    policy: Arc<OutboundPolicy>,
}

impl GuardedClient {
    pub fn new(policy: Arc<OutboundPolicy>, timeouts: Timeouts) -> Result<Self, OutboundError> {
        let client = client(Arc::clone(&policy), timeouts)?;
        Ok(GuardedClient { client, policy })
    }

    /// A request builder for `url`. Finish it with `.build()` and pass the request to
    /// `execute`; never `.send()` it, which would skip the URL check for IP-literal hosts.
    pub fn request(&self, method: reqwest::Method, url: Url) -> reqwest::RequestBuilder {
        #[expect(
            clippy::disallowed_methods,
            reason = "the guarded client is the one place requests to providers are built"
        )]
        self.client.request(method, url)
    }

    /// Checks the URL and sends. The request comes from `request(..).build()` or
    /// `reqwest::Request::new`.
    pub async fn execute(
        &self,
        request: reqwest::Request,
    ) -> Result<reqwest::Response, OutboundError> {
        send(&self.client, &self.policy, request).await
    }
}

/// Reads a response body, refusing more than `limit` bytes: a provider (or something posing as
/// one) must not be able to make the server buffer an endless body. Read errors are
/// `OutboundError::Http`, like send errors.
pub async fn read_limited(
    mut response: reqwest::Response,
    limit: usize,
) -> Result<Vec<u8>, OutboundError> {
    if response
        .content_length()
        .is_some_and(|length| length > limit as u64)
    {
        return Err(OutboundError::TooLarge { limit });
    }
    let mut body = Vec::new();
    while let Some(chunk) = response.chunk().await.map_err(request_error)? {
        if body.len() + chunk.len() > limit {
            return Err(OutboundError::TooLarge { limit });
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body)
}

/// A refusal by the resolver arrives wrapped in reqwest's connect error; unwrap it so callers
/// see `Blocked` whichever check caught the address.
fn request_error(error: reqwest::Error) -> OutboundError {
    let mut source = error.source();
    while let Some(cause) = source {
        if let Some(blocked) = cause.downcast_ref::<Blocked>() {
            return OutboundError::Blocked(blocked.clone());
        }
        source = cause.source();
    }
    OutboundError::Http(error.without_url())
}

fn caused_by<E: std::error::Error + 'static>(error: &reqwest::Error) -> bool {
    let mut source = error.source();
    while let Some(cause) = source {
        if cause.is::<E>() {
            return true;
        }
        source = cause.source();
    }
    false
}

#[cfg(test)]
#[expect(
    clippy::disallowed_methods,
    reason = "tests run their own listeners and send with a bare client on purpose"
)]
mod tests {
    use std::net::SocketAddr;
    use std::sync::atomic::{AtomicUsize, Ordering};

    use reqwest::Method;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio::net::TcpListener;

    use super::*;

    const TIMEOUTS: Timeouts = Timeouts {
        connect: Duration::from_secs(2),
        total: Duration::from_secs(5),
    };

    /// A listener on 127.0.0.1 that counts connections and answers each with `response`.
    struct Canary {
        addr: SocketAddr,
        accepted: Arc<AtomicUsize>,
    }

    impl Canary {
        async fn start(response: String) -> Canary {
            let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
            let addr = listener.local_addr().unwrap();
            let accepted = Arc::new(AtomicUsize::new(0));
            let counter = Arc::clone(&accepted);
            tokio::spawn(async move {
                while let Ok((mut stream, _)) = listener.accept().await {
                    counter.fetch_add(1, Ordering::SeqCst);
                    let response = response.clone();
                    tokio::spawn(async move {
                        let mut buffer = [0_u8; 4096];
                        let _read = stream.read(&mut buffer).await;
                        let _written = stream.write_all(response.as_bytes()).await;
                        let _closed = stream.shutdown().await;
                    });
                }
            });
            Canary { addr, accepted }
        }

        async fn ok() -> Canary {
            Canary::start(
                "HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok".to_owned(),
            )
            .await
        }

        fn port(&self) -> u16 {
            self.addr.port()
        }

        fn accepted(&self) -> usize {
            self.accepted.load(Ordering::SeqCst)
        }
    }

    fn guarded(block_local: bool, timeouts: Timeouts) -> GuardedClient {
        let policy = OutboundPolicy::new(block_local, &[]).unwrap();
        GuardedClient::new(Arc::new(policy), timeouts).unwrap()
    }

    fn get(url: &str) -> reqwest::Request {
        reqwest::Request::new(Method::GET, Url::parse(url).unwrap())
    }

    #[tokio::test]
    async fn no_local_form_of_the_canary_address_gets_a_connection_when_local_is_blocked() {
        let canary = Canary::ok().await;
        let port = canary.port();
        let client = guarded(true, TIMEOUTS);
        let urls = [
            format!("http://127.0.0.1:{port}/"),
            format!("http://127.1:{port}/"),
            format!("http://2130706433:{port}/"),
            format!("http://0x7f000001:{port}/"),
            format!("http://0177.0.0.1:{port}/"),
            format!("http://[::ffff:127.0.0.1]:{port}/"),
            format!("http://localhost:{port}/"),
            format!("http://localhost.:{port}/"),
            format!("http://api.localhost:{port}/"),
        ];
        for url in &urls {
            match client.execute(get(url)).await {
                Err(OutboundError::Blocked(blocked)) => {
                    assert_eq!(blocked.reason(), BlockReason::LocalNetwork, "{url}");
                }
                other => panic!("{url}: expected a policy refusal, got {other:?}"),
            }
        }

        // The resolver on its own (no check_url in front): a bare client asked for a name that
        // resolves to the canary is refused at connect time, and the refusal is recognisable.
        let policy = Arc::new(OutboundPolicy::new(true, &[]).unwrap());
        let bare = client_with(&policy);
        let url = format!("http://localhost:{port}/");
        let error = bare.execute(get(&url)).await.unwrap_err();
        match request_error(error) {
            OutboundError::Blocked(blocked) => {
                assert_eq!(blocked.reason(), BlockReason::LocalNetwork);
            }
            other => panic!("expected the resolver's refusal, got {other:?}"),
        }
        assert_eq!(canary.accepted(), 0, "the canary was reached");

        // The canary itself works: with local providers allowed, one request reaches it.
        let open = guarded(false, TIMEOUTS);
        let response = open
            .execute(get(&format!("http://127.0.0.1:{port}/")))
            .await
            .unwrap();
        assert_eq!(response.status(), 200);
        assert_eq!(read_limited(response, 1024).await.unwrap(), b"ok");
        assert_eq!(canary.accepted(), 1);
    }

    fn client_with(policy: &Arc<OutboundPolicy>) -> reqwest::Client {
        client(Arc::clone(policy), TIMEOUTS).unwrap()
    }

    #[tokio::test]
    async fn bare_client_connects_to_ip_literals_without_asking_the_resolver() {
        // Why `send`/`GuardedClient` exist: reqwest does not resolve IP literals, so the
        // resolver's check never runs for them. If this ever fails, reqwest changed that.
        let canary = Canary::ok().await;
        let policy = Arc::new(OutboundPolicy::new(true, &[]).unwrap());
        let bare = client_with(&policy);
        let url = format!("http://127.0.0.1:{}/", canary.port());
        let response = bare.execute(get(&url)).await.unwrap();
        assert_eq!(response.status(), 200);
        assert_eq!(canary.accepted(), 1);
    }

    #[tokio::test]
    async fn redirects_are_returned_not_followed() {
        let target = Canary::ok().await;
        let redirector = Canary::start(format!(
            "HTTP/1.1 302 Found\r\nLocation: http://127.0.0.1:{}/\r\nContent-Length: 0\r\n\
             Connection: close\r\n\r\n",
            target.port()
        ))
        .await;
        let client = guarded(false, TIMEOUTS);
        let url = format!("http://127.0.0.1:{}/v1/models", redirector.port());
        let response = client.execute(get(&url)).await.unwrap();
        assert_eq!(response.status(), 302);
        assert_eq!(redirector.accepted(), 1);
        assert_eq!(target.accepted(), 0, "the redirect was followed");
    }

    #[tokio::test]
    async fn a_silent_server_times_out_within_the_total_timeout() {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        // Accept and hold connections open without ever answering.
        let holder = tokio::spawn(async move {
            let mut held = Vec::new();
            while let Ok((stream, _)) = listener.accept().await {
                held.push(stream);
            }
        });
        let timeouts = Timeouts {
            connect: Duration::from_secs(1),
            total: Duration::from_millis(300),
        };
        let client = guarded(false, timeouts);
        let started = std::time::Instant::now();
        let error = client
            .execute(get(&format!("http://127.0.0.1:{port}/")))
            .await
            .unwrap_err();
        assert!(started.elapsed() < Duration::from_secs(2));
        match error {
            OutboundError::Http(error) => assert!(error.is_timeout(), "{error:?}"),
            other => panic!("expected a timeout, got {other:?}"),
        }
        holder.abort();
    }

    #[tokio::test]
    async fn bodies_over_the_limit_are_refused() {
        let body = "x".repeat(10_000);
        let chunked = Canary::start(format!(
            "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n\
             {:x}\r\n{body}\r\n0\r\n\r\n",
            body.len()
        ))
        .await;
        let declared = Canary::start(format!(
            "HTTP/1.1 200 OK\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
            body.len()
        ))
        .await;
        let client = guarded(false, TIMEOUTS);
        for canary in [&chunked, &declared] {
            let url = format!("http://127.0.0.1:{}/", canary.port());
            let response = client.execute(get(&url)).await.unwrap();
            let result = read_limited(response, 1_000).await;
            assert!(
                matches!(result, Err(OutboundError::TooLarge { limit: 1_000 })),
                "{result:?}"
            );
        }
    }

    #[tokio::test]
    async fn requests_carry_the_agentry_user_agent_and_json_body() {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let server = tokio::spawn(async move {
            let (mut stream, _) = listener.accept().await.unwrap();
            let mut request = Vec::new();
            let mut buffer = [0_u8; 4096];
            // Read until the JSON body's closing brace has arrived.
            while !request.ends_with(b"}") {
                let read = stream.read(&mut buffer).await.unwrap();
                if read == 0 {
                    break;
                }
                request.extend_from_slice(&buffer[..read]);
            }
            let response = "HTTP/1.1 204 No Content\r\nConnection: close\r\n\r\n";
            stream.write_all(response.as_bytes()).await.unwrap();
            String::from_utf8(request).unwrap()
        });
        let client = guarded(false, TIMEOUTS);
        let url = Url::parse(&format!("http://127.0.0.1:{port}/v1/chat")).unwrap();
        let request = client
            .request(Method::POST, url)
            .json(&serde_json::json!({"a": 1}))
            .build()
            .unwrap();
        let response = client.execute(request).await.unwrap();
        assert_eq!(response.status(), 204);
        let seen = server.await.unwrap().to_ascii_lowercase();
        assert!(
            seen.contains(&format!("user-agent: {USER_AGENT}")),
            "{seen}"
        );
        assert!(seen.contains("content-type: application/json"), "{seen}");
        assert!(seen.ends_with("{\"a\":1}"), "{seen}");
    }
}
