//! `/api/tasks`: JSON-Schema-typed tasks.

use axum::Json;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::IntoResponse;
use contracts::{CreateTask, EventKind, ListQuery, Page, Problem, Task, Topic, UpdateTask};
use utoipa_axum::{router::OpenApiRouter, routes};
use uuid::Uuid;

use super::{page_params, publish_agent};
use crate::db::{assignments, tasks, views};
use crate::domain::tasks::validate;
use crate::domain::{new_id, now};
use crate::error::{ApiError, ResultExt};
use crate::extract::{ApiJson, ApiPath, ApiQuery};
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
        (status = 400, description = "Bad query parameter", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "Missing or wrong API token", body = Problem, content_type = "application/problem+json"),
    ))]
async fn list_tasks(
    State(state): State<AppState>,
    ApiQuery(query): ApiQuery<ListQuery>,
) -> Result<Json<Page<Task>>, ApiError> {
    let (limit, offset) = page_params(query)?;
    let (models, total) = tasks::list(&state.db, limit, offset).await?;
    let items = views::tasks(&state.db, models).await?;
    Ok(Json(Page {
        items,
        total,
        limit,
        offset,
    }))
}

/// Creates a task. Both schemas are checked against their meta-schema and compiled.
#[utoipa::path(post, path = "/api/tasks", tag = "tasks", request_body = CreateTask,
    security((), ("bearer" = [])),
    responses(
        (status = 201, description = "Created", body = Task,
            headers(("Location" = String, description = "URL of the new task"))),
        (status = 400, description = "Malformed JSON", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "Missing or wrong API token", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "A task has this name", body = Problem, content_type = "application/problem+json"),
        (status = 413, description = "Body larger than 1 MiB", body = Problem, content_type = "application/problem+json"),
        (status = 415, description = "Body is not JSON", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Invalid fields or schemas, with JSON paths", body = Problem, content_type = "application/problem+json"),
    ))]
async fn create_task(
    State(state): State<AppState>,
    ApiJson(body): ApiJson<CreateTask>,
) -> Result<impl IntoResponse, ApiError> {
    let valid = validate(body)?;
    let id = new_id();
    let now = now();
    let model = to_model(id, valid, 1, now, now);
    tasks::insert(&state.db, model)
        .await
        .on_unique(ApiError::DuplicateName("task"))?;
    let task = views::task(&state.db, id)
        .await?
        .ok_or_else(|| ApiError::not_found("task", id))?;
    tracing::info!(task.id = %id, "task created");
    state
        .events
        .publish(Topic::Tasks, EventKind::Created, id, &task);
    Ok((
        StatusCode::CREATED,
        [(header::LOCATION, format!("/api/tasks/{id}"))],
        Json(task),
    ))
}

/// One task with the agents it is assigned to.
#[utoipa::path(get, path = "/api/tasks/{id}", tag = "tasks",
    params(("id" = Uuid, Path, description = "Task id")),
    security((), ("bearer" = [])),
    responses(
        (status = 200, description = "The task", body = Task),
        (status = 401, description = "Missing or wrong API token", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No task with this id", body = Problem, content_type = "application/problem+json"),
    ))]
async fn get_task(
    State(state): State<AppState>,
    ApiPath(id): ApiPath<Uuid>,
) -> Result<Json<Task>, ApiError> {
    views::task(&state.db, id)
        .await?
        .map(Json)
        .ok_or_else(|| ApiError::not_found("task", id))
}

/// Replaces a task's configuration (schemas re-validated) and bumps its revision.
#[utoipa::path(put, path = "/api/tasks/{id}", tag = "tasks", request_body = UpdateTask,
    params(("id" = Uuid, Path, description = "Task id")),
    security((), ("bearer" = [])),
    responses(
        (status = 200, description = "Updated", body = Task),
        (status = 400, description = "Malformed JSON", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "Missing or wrong API token", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No task with this id", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "Another task has this name", body = Problem, content_type = "application/problem+json"),
        (status = 413, description = "Body larger than 1 MiB", body = Problem, content_type = "application/problem+json"),
        (status = 415, description = "Body is not JSON", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Invalid fields or schemas, with JSON paths", body = Problem, content_type = "application/problem+json"),
    ))]
async fn update_task(
    State(state): State<AppState>,
    ApiPath(id): ApiPath<Uuid>,
    ApiJson(body): ApiJson<UpdateTask>,
) -> Result<Json<Task>, ApiError> {
    let existing = tasks::find(&state.db, id)
        .await?
        .ok_or_else(|| ApiError::not_found("task", id))?;
    let valid = validate(body)?;
    let model = to_model(id, valid, existing.revision, existing.created_at, now());
    tasks::update(&state.db, model)
        .await
        .on_unique(ApiError::DuplicateName("task"))?
        .ok_or_else(|| ApiError::not_found("task", id))?;
    let task = views::task(&state.db, id)
        .await?
        .ok_or_else(|| ApiError::not_found("task", id))?;
    tracing::info!(task.id = %id, task.revision = task.revision, "task updated");
    state
        .events
        .publish(Topic::Tasks, EventKind::Updated, id, &task);
    // Agents list their tasks (name, description): they changed too.
    for agent in &task.agents {
        publish_agent(&state, agent.id).await;
    }
    Ok(Json(task))
}

/// Deletes a task that no agent is assigned; 409 while any is.
#[utoipa::path(delete, path = "/api/tasks/{id}", tag = "tasks",
    params(("id" = Uuid, Path, description = "Task id")),
    security((), ("bearer" = [])),
    responses(
        (status = 204, description = "Deleted"),
        (status = 401, description = "Missing or wrong API token", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No task with this id", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "The task is still assigned to agents", body = Problem, content_type = "application/problem+json"),
    ))]
async fn delete_task(
    State(state): State<AppState>,
    ApiPath(id): ApiPath<Uuid>,
) -> Result<StatusCode, ApiError> {
    let assigned = assignments::count_for_task(&state.db, id).await?;
    if assigned > 0 {
        return Err(ApiError::TaskAssigned(assigned));
    }
    let last = views::task(&state.db, id).await?;
    // An assignment made between the count and the delete trips the foreign key instead.
    let deleted = tasks::delete(&state.db, id)
        .await
        .on_foreign_key(ApiError::TaskAssigned(1))?;
    if !deleted {
        return Err(ApiError::not_found("task", id));
    }
    tracing::info!(task.id = %id, "task deleted");
    state
        .events
        .publish(Topic::Tasks, EventKind::Deleted, id, &last);
    Ok(StatusCode::NO_CONTENT)
}

fn to_model(
    id: Uuid,
    input: CreateTask,
    revision: i64,
    created_at: chrono::DateTime<chrono::Utc>,
    updated_at: chrono::DateTime<chrono::Utc>,
) -> tasks::Model {
    tasks::Model {
        id,
        name: input.name,
        description: input.description,
        request_schema: input.request_schema,
        response_schema: input.response_schema,
        revision,
        created_at,
        updated_at,
    }
}
