//! Bearer-token check for /api and /ws when AGENTRY_API_TOKEN is set, with failed attempts
//! rate-limited per client address.

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::num::NonZeroU32;
use std::time::{Duration, Instant};

use axum::extract::{ConnectInfo, Request, State};
use axum::http::{HeaderMap, HeaderValue, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use governor::clock::{Clock, DefaultClock};
use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};
use parking_lot::Mutex;
use subtle::ConstantTimeEq;

use crate::error::ApiError;
use crate::state::AppState;

/// Failed token attempts allowed per client address: `per_minute` a minute, in bursts of as
/// many. Past that, the address is refused (429 with `Retry-After`) before its token is even
/// compared, until the quota refills: guessing the token is bounded to that rate.
pub struct AuthGuard {
    failures: Option<DefaultKeyedRateLimiter<IpAddr>>,
    /// Addresses refused until the given instant.
    blocked: Mutex<HashMap<IpAddr, Instant>>,
}

/// Entries kept before expired ones are swept.
const SWEEP_AT: usize = 1_024;

impl AuthGuard {
    /// `per_minute == 0` disables the limit.
    pub fn new(per_minute: u32) -> AuthGuard {
        AuthGuard {
            failures: NonZeroU32::new(per_minute)
                .map(|n| RateLimiter::keyed(Quota::per_minute(n).allow_burst(n))),
            blocked: Mutex::new(HashMap::new()),
        }
    }

    /// `Some(wait)` while `ip` is refused.
    pub fn refused(&self, ip: IpAddr) -> Option<Duration> {
        let blocked = self.blocked.lock();
        let until = blocked.get(&ip)?;
        until.checked_duration_since(Instant::now())
    }

    /// Records a failed attempt; `Some(wait)` when it used up the address's quota.
    pub fn failed(&self, ip: IpAddr) -> Option<Duration> {
        let limiter = self.failures.as_ref()?;
        let not_until = limiter.check_key(&ip).err()?;
        let wait = not_until.wait_time_from(DefaultClock::default().now());
        let mut blocked = self.blocked.lock();
        if blocked.len() >= SWEEP_AT {
            let now = Instant::now();
            blocked.retain(|_, until| *until > now);
            limiter.retain_recent();
        }
        blocked.insert(ip, Instant::now() + wait);
        tracing::warn!(client = %ip, retry_after_secs = wait.as_secs(), "too many failed API token attempts; refusing the address for now");
        Some(wait)
    }
}

/// 429 with `Retry-After` (whole seconds, at least 1).
pub fn too_many_attempts(wait: Duration) -> Response {
    let secs = wait.as_secs() + u64::from(wait.subsec_nanos() > 0);
    let mut response = ApiError::TooManyAttempts(secs.max(1)).into_response();
    if let Ok(value) = HeaderValue::from_str(&secs.max(1).to_string()) {
        response.headers_mut().insert(header::RETRY_AFTER, value);
    }
    response
}

/// The client's address (set by `serve`; absent only for requests built without a socket).
pub fn client_ip(request: &Request) -> Option<IpAddr> {
    request
        .extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map(|ConnectInfo(addr)| addr.ip())
}

/// Paths that need the token. Health checks, the OpenAPI document and the UI's static files
/// stay open: they reveal nothing configured. `/ws` checks the token itself, because browsers
/// cannot send headers there and authenticate with their first message instead.
fn is_protected(path: &str) -> bool {
    (path == "/api" || path.starts_with("/api/")) && !is_worker_credential_path(path)
}

/// Worker registration and connections authenticate with the worker's own credentials (a
/// registration token, a worker key) and check them themselves.
fn is_worker_credential_path(path: &str) -> bool {
    path == "/api/workers/register" || path == "/api/workers/connect"
}

pub async fn require_token(
    State(state): State<AppState>,
    request: Request,
    next: Next,
) -> Response {
    let Some(expected) = state.config.api_token() else {
        return next.run(request).await;
    };
    let ip = client_ip(&request);
    if !is_protected(request.uri().path()) {
        // An address that used up its failed attempts is refused on the worker paths too.
        if is_worker_credential_path(request.uri().path())
            && let Some(wait) = ip.and_then(|ip| state.auth_guard.refused(ip))
        {
            return too_many_attempts(wait);
        }
        return next.run(request).await;
    }
    if let Some(wait) = ip.and_then(|ip| state.auth_guard.refused(ip)) {
        return too_many_attempts(wait);
    }
    match bearer(request.headers()) {
        Some(token) if token_matches(token, expected) => next.run(request).await,
        _ => {
            if let Some(wait) = ip.and_then(|ip| state.auth_guard.failed(ip)) {
                return too_many_attempts(wait);
            }
            let mut response = ApiError::Unauthorized.into_response();
            response.headers_mut().insert(
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static("Bearer realm=\"agentry\""),
            );
            response
        }
    }
}

/// The token of an `Authorization: Bearer <token>` header, if there is one.
pub fn bearer(headers: &HeaderMap) -> Option<&str> {
    headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(str::trim)
}

/// Compares in constant time: response timing must not reveal how much of a guess matched.
pub fn token_matches(presented: &str, expected: &str) -> bool {
    bool::from(presented.trim().as_bytes().ct_eq(expected.as_bytes()))
}
