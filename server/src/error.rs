//! The HTTP edge's error type: every failure becomes an RFC 9457 problem+json response, and
//! every service error maps to one here.

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use contracts::{FieldError, Problem, ProblemCode};
use sea_orm::DbErr;

use crate::domain::Invalid;
use crate::services::{
    agents, assignments, concurrency, providers, runs, schedules, tags, tasks, workers,
};

/// Media type of every error body.
pub const PROBLEM_JSON: &str = "application/problem+json";

/// Everything a handler can fail with. `status()` and `code()` are exhaustive so a new variant
/// cannot be added without deciding both.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error("{0}")]
    MalformedJson(String),
    #[error("expected a request body with Content-Type: application/json")]
    UnsupportedMediaType,
    #[error("the request body is larger than {0} bytes")]
    PayloadTooLarge(usize),
    #[error("the request body did not arrive in time")]
    RequestTimeout,
    #[error("{0}")]
    InvalidParameter(String),
    #[error("the request is invalid")]
    Validation(Vec<FieldError>),
    #[error("missing or invalid API token")]
    Unauthorized,
    /// A worker's registration token or key was refused.
    #[error("{0}")]
    BadCredential(&'static str),
    /// The request conflicts with the resource's state (see the detail).
    #[error("{0}")]
    Conflict(std::borrow::Cow<'static, str>),
    #[error("too many failed API token attempts from this address; try again in {0} s")]
    TooManyAttempts(u64),
    #[error("{0}")]
    Forbidden(String),
    #[error("no {resource} with id {id}")]
    NotFound { resource: &'static str, id: String },
    #[error("no route for {0}")]
    RouteNotFound(String),
    #[error("method not allowed")]
    MethodNotAllowed,
    #[error("a {0} with this name already exists")]
    DuplicateName(&'static str),
    #[error("the task is already assigned to this agent")]
    DuplicateAssignment,
    #[error("the task is assigned to {0} agent(s); unassign it first")]
    TaskAssigned(u64),
    #[error("the task is not assigned to this agent; assign it first")]
    TaskNotAssigned,
    #[error("the agent cannot run: {0}")]
    AgentNotRunnable(String),
    #[error("the run has already finished ({0})")]
    RunFinished(&'static str),
    #[error("{0}")]
    Unavailable(String),
    #[error("internal error")]
    Internal(#[source] Box<dyn std::error::Error + Send + Sync>),
}

impl ApiError {
    pub fn status(&self) -> StatusCode {
        match self {
            ApiError::MalformedJson(_) | ApiError::InvalidParameter(_) => StatusCode::BAD_REQUEST,
            ApiError::UnsupportedMediaType => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            ApiError::PayloadTooLarge(_) => StatusCode::PAYLOAD_TOO_LARGE,
            ApiError::RequestTimeout => StatusCode::REQUEST_TIMEOUT,
            ApiError::Validation(_) => StatusCode::UNPROCESSABLE_ENTITY,
            ApiError::Unauthorized | ApiError::BadCredential(_) => StatusCode::UNAUTHORIZED,
            ApiError::TooManyAttempts(_) => StatusCode::TOO_MANY_REQUESTS,
            ApiError::Forbidden(_) => StatusCode::FORBIDDEN,
            ApiError::NotFound { .. } | ApiError::RouteNotFound(_) => StatusCode::NOT_FOUND,
            ApiError::MethodNotAllowed => StatusCode::METHOD_NOT_ALLOWED,
            ApiError::DuplicateName(_)
            | ApiError::DuplicateAssignment
            | ApiError::TaskAssigned(_)
            | ApiError::TaskNotAssigned
            | ApiError::AgentNotRunnable(_)
            | ApiError::RunFinished(_)
            | ApiError::Conflict(_) => StatusCode::CONFLICT,
            ApiError::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
            ApiError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    pub fn code(&self) -> ProblemCode {
        match self {
            ApiError::MalformedJson(_) => ProblemCode::MalformedJson,
            ApiError::UnsupportedMediaType => ProblemCode::UnsupportedMediaType,
            ApiError::PayloadTooLarge(_) => ProblemCode::PayloadTooLarge,
            ApiError::RequestTimeout => ProblemCode::RequestTimeout,
            ApiError::InvalidParameter(_) => ProblemCode::InvalidParameter,
            ApiError::Validation(_) => ProblemCode::ValidationFailed,
            ApiError::Unauthorized | ApiError::BadCredential(_) => ProblemCode::Unauthorized,
            ApiError::Conflict(_) => ProblemCode::Conflict,
            ApiError::TooManyAttempts(_) => ProblemCode::TooManyAttempts,
            ApiError::Forbidden(_) => ProblemCode::Forbidden,
            ApiError::NotFound { .. } => ProblemCode::NotFound,
            ApiError::RouteNotFound(_) => ProblemCode::RouteNotFound,
            ApiError::MethodNotAllowed => ProblemCode::MethodNotAllowed,
            ApiError::DuplicateName(_) => ProblemCode::DuplicateName,
            ApiError::DuplicateAssignment => ProblemCode::DuplicateAssignment,
            ApiError::TaskAssigned(_) => ProblemCode::TaskAssigned,
            ApiError::TaskNotAssigned => ProblemCode::TaskNotAssigned,
            ApiError::AgentNotRunnable(_) => ProblemCode::AgentNotRunnable,
            ApiError::RunFinished(_) => ProblemCode::RunFinished,
            ApiError::Unavailable(_) => ProblemCode::Unavailable,
            ApiError::Internal(_) => ProblemCode::Internal,
        }
    }

    pub fn not_found(resource: &'static str, id: impl ToString) -> ApiError {
        ApiError::NotFound {
            resource,
            id: id.to_string(),
        }
    }

    /// One field problem as a 422.
    pub fn field(path: impl Into<String>, message: impl Into<String>) -> ApiError {
        ApiError::Validation(vec![FieldError {
            path: path.into(),
            message: message.into(),
        }])
    }

    pub fn internal(err: impl Into<Box<dyn std::error::Error + Send + Sync>>) -> ApiError {
        ApiError::Internal(err.into())
    }

    fn problem(&self) -> Problem {
        let status = self.status();
        let code = self.code();
        let detail = match self {
            // 5xx never leak internals: the cause is logged, the client gets a fixed text.
            ApiError::Internal(_) => {
                Some("The server failed to handle the request; see its log.".to_owned())
            }
            ApiError::Validation(errors) if errors.len() == 1 => errors
                .first()
                .map(|e| format!("{}: {}", display_path(&e.path), e.message)),
            other => Some(other.to_string()),
        };
        let errors = match self {
            ApiError::Validation(errors) => errors.clone(),
            _ => Vec::new(),
        };
        Problem {
            problem_type: format!("urn:agentry:problem:{}", code.as_str()),
            title: status.canonical_reason().unwrap_or("Error").to_owned(),
            status: status.as_u16(),
            detail,
            code,
            errors,
        }
    }
}

fn display_path(path: &str) -> &str {
    if path.is_empty() { "(body)" } else { path }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        match &self {
            ApiError::Internal(err) => {
                tracing::error!(error = %ErrorChain(err.as_ref()), "request failed");
            }
            other => tracing::debug!(code = ?other.code(), "request rejected: {other}"),
        }
        let status = self.status();
        let body = serde_json::to_vec(&self.problem()).unwrap_or_default();
        let mut response = (status, body).into_response();
        response
            .headers_mut()
            .insert(header::CONTENT_TYPE, HeaderValue::from_static(PROBLEM_JSON));
        if status == StatusCode::SERVICE_UNAVAILABLE {
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from_static("5"));
        }
        response
    }
}

/// The answer to a request whose handler panicked: a 500 problem like any other internal error,
/// and the panic message in the log (inside the request's span, so with its id). The fix for a
/// panic is to not panic; this only keeps the connection from being dropped without an answer.
pub fn panicked(payload: Box<dyn std::any::Any + Send + 'static>) -> Response {
    let message = payload
        .downcast_ref::<&str>()
        .map(|s| (*s).to_owned())
        .or_else(|| payload.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "a non-string panic payload".to_owned());
    tracing::error!(panic = %message, "request handler panicked");
    let body = serde_json::to_vec(&ApiError::internal(Panicked).problem()).unwrap_or_default();
    let mut response = (StatusCode::INTERNAL_SERVER_ERROR, body).into_response();
    response
        .headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static(PROBLEM_JSON));
    response
}

#[derive(Debug, thiserror::Error)]
#[error("the request handler panicked")]
struct Panicked;

/// Displays an error with its whole `source()` chain, for the one log line a 5xx gets.
pub struct ErrorChain<'a>(pub &'a (dyn std::error::Error + 'static));

impl std::fmt::Display for ErrorChain<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}", self.0)?;
        let mut source = self.0.source();
        while let Some(err) = source {
            write!(f, ": {err}")?;
            source = err.source();
        }
        Ok(())
    }
}

impl From<DbErr> for ApiError {
    fn from(err: DbErr) -> ApiError {
        match crate::db::unavailable(&err) {
            Some(why) => {
                // The environment's problem, not the request's: said once, at warn.
                tracing::warn!(error = %err, "database unavailable");
                ApiError::Unavailable(why.message().to_owned())
            }
            None => ApiError::internal(err),
        }
    }
}

// How each service's errors read over HTTP. Exhaustive, so a new failure cannot reach a
// client without a status and a code.

impl From<Invalid> for ApiError {
    fn from(invalid: Invalid) -> ApiError {
        ApiError::Validation(invalid.0)
    }
}

impl From<providers::Error> for ApiError {
    fn from(err: providers::Error) -> ApiError {
        match err {
            providers::Error::Invalid(invalid) => invalid.into(),
            providers::Error::NotFound(id) => ApiError::not_found("provider", id),
            providers::Error::DuplicateName => ApiError::DuplicateName("provider"),
            providers::Error::Db(err) => err.into(),
        }
    }
}

impl From<agents::Error> for ApiError {
    fn from(err: agents::Error) -> ApiError {
        match err {
            agents::Error::Invalid(invalid) => invalid.into(),
            agents::Error::NotFound { resource, id } => ApiError::not_found(resource, id),
            agents::Error::DuplicateName => ApiError::DuplicateName("agent"),
            agents::Error::Db(err) => err.into(),
        }
    }
}

impl From<tasks::Error> for ApiError {
    fn from(err: tasks::Error) -> ApiError {
        match err {
            tasks::Error::Invalid(invalid) => invalid.into(),
            tasks::Error::NotFound(id) => ApiError::not_found("task", id),
            tasks::Error::DuplicateName => ApiError::DuplicateName("task"),
            tasks::Error::Assigned(agents) => ApiError::TaskAssigned(agents),
            tasks::Error::Db(err) => err.into(),
        }
    }
}

impl From<assignments::Error> for ApiError {
    fn from(err: assignments::Error) -> ApiError {
        match err {
            assignments::Error::Invalid(invalid) => invalid.into(),
            assignments::Error::NotFound { resource, id } => ApiError::not_found(resource, id),
            assignments::Error::Duplicate => ApiError::DuplicateAssignment,
            assignments::Error::Db(err) => err.into(),
        }
    }
}

impl From<workers::Error> for ApiError {
    fn from(err: workers::Error) -> ApiError {
        match err {
            workers::Error::Invalid(invalid) => invalid.into(),
            workers::Error::NotFound(id) => ApiError::not_found("worker", id),
            workers::Error::TokenNotFound(id) => ApiError::not_found("registration token", id),
            workers::Error::TokenUsed => ApiError::Conflict(
                "the registration token was used; a used token cannot be revoked".into(),
            ),
            workers::Error::DuplicateName => ApiError::DuplicateName("worker"),
            workers::Error::Builtin => ApiError::Conflict(
                "the built-in worker cannot be deleted; disable it instead".into(),
            ),
            workers::Error::Unauthorized(why) => ApiError::BadCredential(why),
            workers::Error::Tags(err) => err.into(),
            workers::Error::Db(err) => err.into(),
        }
    }
}

impl From<tags::Error> for ApiError {
    fn from(err: tags::Error) -> ApiError {
        match err {
            tags::Error::Invalid(invalid) => invalid.into(),
            tags::Error::NotFound(id) => ApiError::not_found("tag", id),
            tags::Error::DuplicateName => ApiError::DuplicateName("tag"),
            err @ tags::Error::InUse(_) => ApiError::Conflict(err.to_string().into()),
            tags::Error::Db(err) => err.into(),
        }
    }
}

impl From<concurrency::Error> for ApiError {
    fn from(err: concurrency::Error) -> ApiError {
        match err {
            concurrency::Error::Invalid(invalid) => invalid.into(),
            concurrency::Error::NotFound(id) => ApiError::not_found("concurrency group", id),
            concurrency::Error::DuplicateName => ApiError::DuplicateName("concurrency group"),
            err @ concurrency::Error::InUse(_) => ApiError::Conflict(err.to_string().into()),
            concurrency::Error::Db(err) => err.into(),
        }
    }
}

impl From<schedules::Error> for ApiError {
    fn from(err: schedules::Error) -> ApiError {
        match err {
            schedules::Error::Invalid(invalid) => invalid.into(),
            schedules::Error::NotFound(id) => ApiError::not_found("schedule", id),
            schedules::Error::Busy(why) => ApiError::Conflict(why.into()),
            schedules::Error::Runs(err) => err.into(),
            schedules::Error::Db(err) => err.into(),
        }
    }
}

impl From<runs::Error> for ApiError {
    fn from(err: runs::Error) -> ApiError {
        match err {
            runs::Error::NotFound { resource, id } => ApiError::not_found(resource, id),
            runs::Error::TaskNotAssigned => ApiError::TaskNotAssigned,
            runs::Error::ProviderGone => {
                ApiError::AgentNotRunnable("its provider no longer exists".to_owned())
            }
            runs::Error::NotRunnable(err) => ApiError::AgentNotRunnable(err.to_string()),
            runs::Error::Invalid(invalid) => invalid.into(),
            runs::Error::Finished(status) => ApiError::RunFinished(status.as_str()),
            runs::Error::RendererUnavailable(why) => ApiError::Unavailable(why),
            runs::Error::Db(err) => err.into(),
        }
    }
}
