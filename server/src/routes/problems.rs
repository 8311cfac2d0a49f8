//! Problem responses many operations share, described once for the OpenAPI document.
//! Operation-specific ones (404, 409, 422 with what they mean there) stay on the operation.
#![expect(
    dead_code,
    reason = "never constructed: these types exist for their OpenAPI descriptions"
)]

use contracts::Problem;
use utoipa::IntoResponses;

/// Every `/api` operation: the bearer token.
#[derive(IntoResponses)]
pub enum Auth {
    #[response(
        status = 401,
        description = "Missing or wrong API token",
        content_type = "application/problem+json"
    )]
    Unauthorized(Problem),
    #[response(
        status = 429,
        description = "Too many failed token attempts from this address (see `Retry-After`)",
        content_type = "application/problem+json"
    )]
    TooManyAttempts(Problem),
    #[response(
        status = 503,
        description = "The database is unreachable, full or read-only (see `Retry-After`)",
        content_type = "application/problem+json"
    )]
    Unavailable(Problem),
}

/// Operations that read a JSON body.
#[derive(IntoResponses)]
pub enum JsonBody {
    #[response(
        status = 400,
        description = "Malformed JSON",
        content_type = "application/problem+json"
    )]
    Malformed(Problem),
    #[response(
        status = 401,
        description = "Missing or wrong API token",
        content_type = "application/problem+json"
    )]
    Unauthorized(Problem),
    #[response(
        status = 429,
        description = "Too many failed token attempts from this address (see `Retry-After`)",
        content_type = "application/problem+json"
    )]
    TooManyAttempts(Problem),
    #[response(
        status = 503,
        description = "The database is unreachable, full or read-only (see `Retry-After`)",
        content_type = "application/problem+json"
    )]
    Unavailable(Problem),
    #[response(
        status = 408,
        description = "Body not received within the body timeout",
        content_type = "application/problem+json"
    )]
    TooSlow(Problem),
    #[response(
        status = 413,
        description = "Body larger than 1 MiB",
        content_type = "application/problem+json"
    )]
    TooLarge(Problem),
    #[response(
        status = 415,
        description = "Body is not JSON",
        content_type = "application/problem+json"
    )]
    NotJson(Problem),
}

/// List operations: paging and filter parameters.
#[derive(IntoResponses)]
pub enum Listing {
    #[response(
        status = 400,
        description = "Bad query parameter",
        content_type = "application/problem+json"
    )]
    BadQuery(Problem),
    #[response(
        status = 401,
        description = "Missing or wrong API token",
        content_type = "application/problem+json"
    )]
    Unauthorized(Problem),
    #[response(
        status = 429,
        description = "Too many failed token attempts from this address (see `Retry-After`)",
        content_type = "application/problem+json"
    )]
    TooManyAttempts(Problem),
    #[response(
        status = 503,
        description = "The database is unreachable, full or read-only (see `Retry-After`)",
        content_type = "application/problem+json"
    )]
    Unavailable(Problem),
}
