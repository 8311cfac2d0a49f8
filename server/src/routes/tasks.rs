//! `/api/tasks`: JSON-Schema-typed tasks.

use axum::Json;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::IntoResponse;
use contracts::{CreateTask, ListQuery, Page, Problem, Task, UpdateTask};
use utoipa_axum::{router::OpenApiRouter, routes};
use uuid::Uuid;

use super::page_params;
use super::problems::{Auth, JsonBody, Listing};
use crate::error::ApiError;
use crate::extract::{ApiJson, ApiPath, ApiQuery};
use crate::services::Tasks;
use crate::state::AppState;

pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_tasks, create_task))
        .routes(routes!(get_task, update_task, delete_task))
}

/// Tasks, oldest first, each with the agents it is assigned to.
#[utoipa::path(get, path = "/api/tasks", tag = "tasks", params(ListQuery),
    security((), ("bearer" = [])),
    responses(
        (status = 200, description = "A page of tasks", body = Page<Task>),
        Listing,
    ))]
async fn list_tasks(
    State(tasks): State<Tasks>,
    ApiQuery(query): ApiQuery<ListQuery>,
) -> Result<Json<Page<Task>>, ApiError> {
    let (limit, offset) = page_params(query)?;
    Ok(Json(tasks.list(limit, offset).await?))
}

/// Creates a task. Both schemas are checked against their meta-schema and compiled.
#[utoipa::path(post, path = "/api/tasks", tag = "tasks", request_body = CreateTask,
    security((), ("bearer" = [])),
    responses(
        (status = 201, description = "Created", body = Task,
            headers(("Location" = String, description = "URL of the new task"))),
        (status = 409, description = "A task has this name", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Invalid fields or schemas, with JSON paths", body = Problem, content_type = "application/problem+json"),
        JsonBody,
    ))]
async fn create_task(
    State(tasks): State<Tasks>,
    ApiJson(body): ApiJson<CreateTask>,
) -> Result<impl IntoResponse, ApiError> {
    let task = tasks.create(body).await?;
    Ok((
        StatusCode::CREATED,
        [(header::LOCATION, format!("/api/tasks/{}", task.id))],
        Json(task),
    ))
}

/// One task with the agents it is assigned to.
#[utoipa::path(get, path = "/api/tasks/{id}", tag = "tasks",
    params(("id" = Uuid, Path, description = "Task id")),
    security((), ("bearer" = [])),
    responses(
        (status = 200, description = "The task", body = Task),
        (status = 404, description = "No task with this id", body = Problem, content_type = "application/problem+json"),
        Auth,
    ))]
async fn get_task(
    State(tasks): State<Tasks>,
    ApiPath(id): ApiPath<Uuid>,
) -> Result<Json<Task>, ApiError> {
    Ok(Json(tasks.get(id).await?))
}

/// Replaces a task's configuration (schemas re-validated) and bumps its revision.
#[utoipa::path(put, path = "/api/tasks/{id}", tag = "tasks", request_body = UpdateTask,
    params(("id" = Uuid, Path, description = "Task id")),
    security((), ("bearer" = [])),
    responses(
        (status = 200, description = "Updated", body = Task),
        (status = 404, description = "No task with this id", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "Another task has this name", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Invalid fields or schemas, with JSON paths", body = Problem, content_type = "application/problem+json"),
        JsonBody,
    ))]
async fn update_task(
    State(tasks): State<Tasks>,
    ApiPath(id): ApiPath<Uuid>,
    ApiJson(body): ApiJson<UpdateTask>,
) -> Result<Json<Task>, ApiError> {
    Ok(Json(tasks.update(id, body).await?))
}

/// Deletes a task that no agent is assigned; 409 while any is.
#[utoipa::path(delete, path = "/api/tasks/{id}", tag = "tasks",
    params(("id" = Uuid, Path, description = "Task id")),
    security((), ("bearer" = [])),
    responses(
        (status = 204, description = "Deleted"),
        (status = 404, description = "No task with this id", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "The task is still assigned to agents", body = Problem, content_type = "application/problem+json"),
        Auth,
    ))]
async fn delete_task(
    State(tasks): State<Tasks>,
    ApiPath(id): ApiPath<Uuid>,
) -> Result<StatusCode, ApiError> {
    tasks.delete(id).await?;
    Ok(StatusCode::NO_CONTENT)
}
