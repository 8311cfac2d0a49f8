//! RFC 9457 problem details: the body of every error response.

use serde::{Deserialize, Serialize};

use crate::wire::wire_enum;

/// An error response (`application/problem+json`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Problem {
    /// A URI naming the problem type (`about:blank` or `urn:agentry:problem:<code>`).
    #[serde(rename = "type")]
    pub problem_type: String,
    /// Short, human-readable summary of the problem type.
    pub title: String,
    /// The HTTP status code.
    pub status: u16,
    /// Human-readable explanation of this occurrence.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
    /// Stable, machine-readable code.
    pub code: ProblemCode,
    /// Field-level problems, each with a JSON pointer-like path.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub errors: Vec<FieldError>,
}

/// One problem with one field of the request.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct FieldError {
    /// Where the problem is: a JSON pointer into the request (e.g. `/response_schema/properties`).
    pub path: String,
    pub message: String,
}

wire_enum! {
    /// Stable error codes. Clients switch on these, never on `title` or `detail`.
    pub enum ProblemCode {
        /// The request body is not valid JSON.
        MalformedJson = "malformed_json",
        /// The request is not `application/json`.
        UnsupportedMediaType = "unsupported_media_type",
        /// The request body is larger than the server accepts.
        PayloadTooLarge = "payload_too_large",
        /// The request body did not arrive within the server's body timeout.
        RequestTimeout = "request_timeout",
        /// A query or path parameter is malformed.
        InvalidParameter = "invalid_parameter",
        /// The request is well-formed JSON but its content is invalid (see `errors`).
        ValidationFailed = "validation_failed",
        /// Missing or wrong API token.
        Unauthorized = "unauthorized",
        /// Too many failed API token attempts from this address; `Retry-After` says when to
        /// try again.
        TooManyAttempts = "too_many_attempts",
        /// Not allowed from here (e.g. a WebSocket from a foreign origin).
        Forbidden = "forbidden",
        /// No resource with this id.
        NotFound = "not_found",
        /// No such route.
        RouteNotFound = "route_not_found",
        /// The route exists but not with this method.
        MethodNotAllowed = "method_not_allowed",
        /// Another resource already has this name.
        DuplicateName = "duplicate_name",
        /// The task is already assigned to the agent.
        DuplicateAssignment = "duplicate_assignment",
        /// The task is assigned to agents and cannot be deleted.
        TaskAssigned = "task_assigned",
        /// A run was requested for a task the agent is not assigned.
        TaskNotAssigned = "task_not_assigned",
        /// The agent cannot run: its stored configuration cannot be used (see `detail`).
        AgentNotRunnable = "agent_not_runnable",
        /// The run has already finished and cannot be canceled.
        RunFinished = "run_finished",
        /// The request conflicts with the resource's state (a used token, the built-in
        /// worker); see `detail`.
        Conflict = "conflict",
        /// The server failed; details are in its log, never in the response.
        Internal = "internal",
        /// The server is not ready (e.g. database unreachable).
        Unavailable = "unavailable",
    }
}
