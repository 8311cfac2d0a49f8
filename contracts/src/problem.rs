//! RFC 9457 problem details: the body of every error response.

use serde::{Deserialize, Serialize};

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

/// Stable error codes. Clients switch on these, never on `title` or `detail`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum ProblemCode {
    /// The request body is not valid JSON.
    MalformedJson,
    /// The request is not `application/json`.
    UnsupportedMediaType,
    /// The request body is larger than the server accepts.
    PayloadTooLarge,
    /// A query or path parameter is malformed.
    InvalidParameter,
    /// The request is well-formed JSON but its content is invalid (see `errors`).
    ValidationFailed,
    /// Missing or wrong API token.
    Unauthorized,
    /// Not allowed from here (e.g. a WebSocket from a foreign origin).
    Forbidden,
    /// No resource with this id.
    NotFound,
    /// No such route.
    RouteNotFound,
    /// The route exists but not with this method.
    MethodNotAllowed,
    /// Another resource already has this name.
    DuplicateName,
    /// The task is already assigned to the agent.
    DuplicateAssignment,
    /// The task is assigned to agents and cannot be deleted.
    TaskAssigned,
    /// A run was requested for a task the agent is not assigned.
    TaskNotAssigned,
    /// The agent cannot run: its stored configuration cannot be used (see `detail`).
    AgentNotRunnable,
    /// The run has already finished and cannot be canceled.
    RunFinished,
    /// The server failed; details are in its log, never in the response.
    Internal,
    /// The server is not ready (e.g. database unreachable).
    Unavailable,
}
