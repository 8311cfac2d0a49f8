//! `/api/agents/{id}/tasks`: assigning tasks to agents.

use axum::Json;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::IntoResponse;
use contracts::{Assignment, CreateAssignment, ListQuery, Page, Problem, TaskSummary};
use utoipa_axum::{router::OpenApiRouter, routes};
use uuid::Uuid;

use super::page_params;
use super::problems::{Auth, JsonBody, Listing};
use crate::error::ApiError;
use crate::extract::{ApiJson, ApiPath, ApiQuery};
use crate::services::Assignments;
use crate::state::AppState;

pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_agent_tasks, assign_task))
        .routes(routes!(unassign_task))
}

/// The tasks assigned to an agent, in assignment order.
#[utoipa::path(get, path = "/api/agents/{id}/tasks", tag = "assignments",
    params(("id" = Uuid, Path, description = "Agent id"), ListQuery),
    security((), ("bearer" = [])),
    responses(
        (status = 200, description = "A page of the agent's tasks", body = Page<TaskSummary>),
        (status = 404, description = "No agent with this id", body = Problem, content_type = "application/problem+json"),
        Listing,
    ))]
async fn list_agent_tasks(
    State(assignments): State<Assignments>,
    ApiPath(id): ApiPath<Uuid>,
    ApiQuery(query): ApiQuery<ListQuery>,
) -> Result<Json<Page<TaskSummary>>, ApiError> {
    let (limit, offset) = page_params(query)?;
    Ok(Json(assignments.list(id, limit, offset).await?))
}

/// Assigns a task to an agent.
#[utoipa::path(post, path = "/api/agents/{id}/tasks", tag = "assignments",
    request_body = CreateAssignment,
    params(("id" = Uuid, Path, description = "Agent id")),
    security((), ("bearer" = [])),
    responses(
        (status = 201, description = "Assigned", body = Assignment,
            headers(("Location" = String, description = "URL of the assignment"))),
        (status = 404, description = "No agent with this id", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "Already assigned", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Invalid fields, or `task_id` names no task", body = Problem, content_type = "application/problem+json"),
        JsonBody,
    ))]
async fn assign_task(
    State(assignments): State<Assignments>,
    ApiPath(agent_id): ApiPath<Uuid>,
    ApiJson(body): ApiJson<CreateAssignment>,
) -> Result<impl IntoResponse, ApiError> {
    let assignment = assignments.assign(agent_id, body.task_id).await?;
    let location = format!("/api/agents/{agent_id}/tasks/{}", assignment.task_id);
    Ok((
        StatusCode::CREATED,
        [(header::LOCATION, location)],
        Json(assignment),
    ))
}

/// Removes a task from an agent.
#[utoipa::path(delete, path = "/api/agents/{id}/tasks/{task_id}", tag = "assignments",
    params(("id" = Uuid, Path, description = "Agent id"), ("task_id" = Uuid, Path, description = "Task id")),
    security((), ("bearer" = [])),
    responses(
        (status = 204, description = "Unassigned"),
        (status = 404, description = "The task is not assigned to this agent", body = Problem, content_type = "application/problem+json"),
        Auth,
    ))]
async fn unassign_task(
    State(assignments): State<Assignments>,
    ApiPath((agent_id, task_id)): ApiPath<(Uuid, Uuid)>,
) -> Result<StatusCode, ApiError> {
    assignments.unassign(agent_id, task_id).await?;
    Ok(StatusCode::NO_CONTENT)
}
