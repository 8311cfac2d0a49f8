//! Runs: start one (`POST /api/agents/{agent_id}/tasks/{task_id}/runs`), list, read, read its
//! events, cancel, retry.

use axum::Json;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use contracts::{CreateRun, Page, Problem, Run, RunEvent, RunQuery};
use utoipa_axum::{router::OpenApiRouter, routes};
use uuid::Uuid;

use super::page_params;
use super::problems::{Auth, JsonBody, Listing};
use crate::error::ApiError;
use crate::extract::{ApiJson, ApiPath, ApiQuery};
use crate::services::Runs;
use crate::state::AppState;

pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(create_run))
        .routes(routes!(list_runs))
        .routes(routes!(get_run))
        .routes(routes!(run_events))
        .routes(routes!(cancel_run))
        .routes(routes!(retry_run))
}

/// Runs a task with an agent. The input is checked against the task's request schema first
/// (422, and no run is stored). `sync` (default) answers 201 with the finished run; `async`
/// answers 202 with the queued run at once. A run that fails still answers 201: its `status`
/// and `error` say why.
#[utoipa::path(post, path = "/api/agents/{agent_id}/tasks/{task_id}/runs", tag = "runs",
    request_body = CreateRun,
    params(("agent_id" = Uuid, Path, description = "Agent id"), ("task_id" = Uuid, Path, description = "Task id")),
    security((), ("bearer" = [])),
    responses(
        (status = 201, description = "Finished (sync)", body = Run,
            headers(("Location" = String, description = "URL of the run"))),
        (status = 202, description = "Queued (async)", body = Run,
            headers(("Location" = String, description = "URL of the run"))),
        (status = 404, description = "No such agent or task", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "The task is not assigned to the agent, or the agent cannot run", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "The input does not match the request schema or fill the prompt template", body = Problem, content_type = "application/problem+json"),
        JsonBody,
    ))]
async fn create_run(
    State(runs): State<Runs>,
    ApiPath((agent_id, task_id)): ApiPath<(Uuid, Uuid)>,
    ApiJson(body): ApiJson<CreateRun>,
) -> Result<Response, ApiError> {
    let created = runs.create(agent_id, task_id, body).await?;
    let status = if created.finished {
        StatusCode::CREATED
    } else {
        StatusCode::ACCEPTED
    };
    let location = [(header::LOCATION, format!("/api/runs/{}", created.run.id))];
    Ok((status, location, Json(created.run)).into_response())
}

/// Runs, newest first, filtered by agent, task and status.
#[utoipa::path(get, path = "/api/runs", tag = "runs", params(RunQuery),
    security((), ("bearer" = [])),
    responses(
        (status = 200, description = "A page of runs", body = Page<Run>),
        Listing,
    ))]
async fn list_runs(
    State(runs): State<Runs>,
    ApiQuery(query): ApiQuery<RunQuery>,
) -> Result<Json<Page<Run>>, ApiError> {
    let (limit, offset) = page_params(contracts::ListQuery {
        limit: query.limit,
        offset: query.offset,
    })?;
    Ok(Json(runs.list(&query, limit, offset).await?))
}

/// One run.
#[utoipa::path(get, path = "/api/runs/{id}", tag = "runs",
    params(("id" = Uuid, Path, description = "Run id")),
    security((), ("bearer" = [])),
    responses(
        (status = 200, description = "The run", body = Run),
        (status = 404, description = "No run with this id", body = Problem, content_type = "application/problem+json"),
        Auth,
    ))]
async fn get_run(
    State(runs): State<Runs>,
    ApiPath(id): ApiPath<Uuid>,
) -> Result<Json<Run>, ApiError> {
    Ok(Json(runs.get(id).await?))
}

/// A run's history: status changes, attempts, validation and provider errors, in order.
#[utoipa::path(get, path = "/api/runs/{id}/events", tag = "runs",
    params(("id" = Uuid, Path, description = "Run id")),
    security((), ("bearer" = [])),
    responses(
        (status = 200, description = "The run's events, oldest first", body = Vec<RunEvent>),
        (status = 404, description = "No run with this id", body = Problem, content_type = "application/problem+json"),
        Auth,
    ))]
async fn run_events(
    State(runs): State<Runs>,
    ApiPath(id): ApiPath<Uuid>,
) -> Result<Json<Vec<RunEvent>>, ApiError> {
    Ok(Json(runs.events(id).await?))
}

/// Cancels a queued or running run, aborting its in-flight provider call.
#[utoipa::path(post, path = "/api/runs/{id}/cancel", tag = "runs",
    params(("id" = Uuid, Path, description = "Run id")),
    security((), ("bearer" = [])),
    responses(
        (status = 202, description = "Canceled", body = Run),
        (status = 404, description = "No run with this id", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "The run has already finished", body = Problem, content_type = "application/problem+json"),
        Auth,
    ))]
async fn cancel_run(
    State(runs): State<Runs>,
    ApiPath(id): ApiPath<Uuid>,
) -> Result<(StatusCode, Json<Run>), ApiError> {
    Ok((StatusCode::ACCEPTED, Json(runs.cancel(id).await?)))
}

/// Starts a new run with the same input, agent and task as run `id`, linked to it
/// (`retry_of`), and answers at once with the queued run.
#[utoipa::path(post, path = "/api/runs/{id}/retry", tag = "runs",
    params(("id" = Uuid, Path, description = "Run id")),
    security((), ("bearer" = [])),
    responses(
        (status = 202, description = "Queued", body = Run,
            headers(("Location" = String, description = "URL of the new run"))),
        (status = 404, description = "No run with this id, or its agent or task is gone", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "The task is no longer assigned to the agent, or the agent cannot run", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "The input no longer matches the task's request schema", body = Problem, content_type = "application/problem+json"),
        Auth,
    ))]
async fn retry_run(
    State(runs): State<Runs>,
    ApiPath(id): ApiPath<Uuid>,
) -> Result<Response, ApiError> {
    let run = runs.retry(id).await?;
    let location = [(header::LOCATION, format!("/api/runs/{}", run.id))];
    Ok((StatusCode::ACCEPTED, location, Json(run)).into_response())
}
