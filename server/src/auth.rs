//! Bearer-token check for /api and /ws when AGENTRY_API_TOKEN is set.

use axum::extract::{Request, State};
use axum::http::{HeaderMap, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use subtle::ConstantTimeEq;

use crate::error::ApiError;
use crate::state::AppState;

/// Paths that need the token. Health checks, the OpenAPI document and the UI's static files
/// stay open: they reveal nothing configured. `/ws` checks the token itself, because browsers
/// cannot send headers there and authenticate with their first message instead.
fn is_protected(path: &str) -> bool {
    path == "/api" || path.starts_with("/api/")
}

pub async fn require_token(
    State(state): State<AppState>,
    request: Request,
    next: Next,
) -> Response {
    let Some(expected) = state.config.api_token() else {
        return next.run(request).await;
    };
    if !is_protected(request.uri().path()) {
        return next.run(request).await;
    }
    match bearer(request.headers()) {
        Some(token) if token_matches(token, expected) => next.run(request).await,
        _ => {
            let mut response = ApiError::Unauthorized.into_response();
            response.headers_mut().insert(
                header::WWW_AUTHENTICATE,
                axum::http::HeaderValue::from_static("Bearer realm=\"agentry\""),
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
