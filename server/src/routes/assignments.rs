//! `/api/agents/{id}/tasks`: assigning tasks to agents.

use axum::Json;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::IntoResponse;
use contracts::{Assignment, CreateAssignment, ListQuery, Page, Problem, TaskSummary};
use utoipa_axum::{router::OpenApiRouter, routes};
use uuid::Uuid;

use super::{page_params, publish_agent, publish_task};
use crate::db::{agents, assignments, tasks};
use crate::domain::now;
use crate::error::{ApiError, ResultExt};
use crate::extract::{ApiJson, ApiPath, ApiQuery};
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
        (status = 400, description = "Bad query parameter", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "Missing or wrong API token", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No agent with this id", body = Problem, content_type = "application/problem+json"),
    ))]
async fn list_agent_tasks(
    State(state): State<AppState>,
    ApiPath(id): ApiPath<Uuid>,
    ApiQuery(query): ApiQuery<ListQuery>,
) -> Result<Json<Page<TaskSummary>>, ApiError> {
    let (limit, offset) = page_params(query)?;
    agents::find(&state.db, id)
        .await?
        .ok_or_else(|| ApiError::not_found("agent", id))?;
    let links = assignments::for_agents(&state.db, &[id]).await?;
    let total = links.len() as u64;
    let ids: Vec<Uuid> = links
        .iter()
        .skip(usize::try_from(offset).unwrap_or(usize::MAX))
        .take(usize::try_from(limit).unwrap_or(usize::MAX))
        .map(|l| l.task_id)
        .collect();
    let found = tasks::find_many(&state.db, &ids).await?;
    let items = ids
        .iter()
        .filter_map(|id| found.iter().find(|t| t.id == *id))
        .map(tasks::Model::to_summary)
        .collect();
    Ok(Json(Page {
        items,
        total,
        limit,
        offset,
    }))
}

/// Assigns a task to an agent.
#[utoipa::path(post, path = "/api/agents/{id}/tasks", tag = "assignments",
    request_body = CreateAssignment,
    params(("id" = Uuid, Path, description = "Agent id")),
    security((), ("bearer" = [])),
    responses(
        (status = 201, description = "Assigned", body = Assignment,
            headers(("Location" = String, description = "URL of the assignment"))),
        (status = 400, description = "Malformed JSON", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "Missing or wrong API token", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such agent or task", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "Already assigned", body = Problem, content_type = "application/problem+json"),
        (status = 413, description = "Body larger than 1 MiB", body = Problem, content_type = "application/problem+json"),
        (status = 415, description = "Body is not JSON", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Invalid fields", body = Problem, content_type = "application/problem+json"),
    ))]
async fn assign_task(
    State(state): State<AppState>,
    ApiPath(agent_id): ApiPath<Uuid>,
    ApiJson(body): ApiJson<CreateAssignment>,
) -> Result<impl IntoResponse, ApiError> {
    agents::find(&state.db, agent_id)
        .await?
        .ok_or_else(|| ApiError::not_found("agent", agent_id))?;
    let task = tasks::find(&state.db, body.task_id)
        .await?
        .ok_or_else(|| ApiError::not_found("task", body.task_id))?;
    let link = assignments::Model {
        agent_id,
        task_id: task.id,
        created_at: now(),
    };
    let saved = assignments::insert(&state.db, link).await.on_constraint(
        ApiError::DuplicateAssignment,
        // The agent or task was deleted between the checks and the insert.
        ApiError::not_found("agent or task", format!("{agent_id}/{}", task.id)),
    )?;
    tracing::info!(agent.id = %agent_id, task.id = %task.id, "task assigned");
    publish_agent(&state, agent_id).await;
    publish_task(&state, task.id).await;
    Ok((
        StatusCode::CREATED,
        [(
            header::LOCATION,
            format!("/api/agents/{agent_id}/tasks/{}", task.id),
        )],
        Json(Assignment {
            agent_id,
            task_id: task.id,
            task: task.to_summary(),
            created_at: saved.created_at,
        }),
    ))
}

/// Removes a task from an agent.
#[utoipa::path(delete, path = "/api/agents/{id}/tasks/{task_id}", tag = "assignments",
    params(("id" = Uuid, Path, description = "Agent id"), ("task_id" = Uuid, Path, description = "Task id")),
    security((), ("bearer" = [])),
    responses(
        (status = 204, description = "Unassigned"),
        (status = 401, description = "Missing or wrong API token", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "The task is not assigned to this agent", body = Problem, content_type = "application/problem+json"),
    ))]
async fn unassign_task(
    State(state): State<AppState>,
    ApiPath((agent_id, task_id)): ApiPath<(Uuid, Uuid)>,
) -> Result<StatusCode, ApiError> {
    if !assignments::delete(&state.db, agent_id, task_id).await? {
        return Err(ApiError::not_found(
            "assignment",
            format!("{agent_id}/{task_id}"),
        ));
    }
    tracing::info!(agent.id = %agent_id, task.id = %task_id, "task unassigned");
    publish_agent(&state, agent_id).await;
    publish_task(&state, task_id).await;
    Ok(StatusCode::NO_CONTENT)
}
