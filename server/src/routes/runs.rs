//! Runs: start one (`POST /api/agents/{agent_id}/tasks/{task_id}/runs`), list, read, read its
//! events, cancel.

use axum::Json;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use contracts::{
    CreateRun, Page, Problem, Run, RunEvent, RunEventKind, RunMode, RunQuery, RunStatus,
};
use serde_json::json;
use utoipa_axum::{router::OpenApiRouter, routes};
use uuid::Uuid;

use super::page_params;
use crate::db::runs::{self, run};
use crate::db::{agents, assignments, providers, tasks};
use crate::domain::{new_id, now};
use crate::error::ApiError;
use crate::extract::{ApiJson, ApiPath, ApiQuery};
use crate::state::AppState;

pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(create_run))
        .routes(routes!(list_runs))
        .routes(routes!(get_run))
        .routes(routes!(run_events))
        .routes(routes!(cancel_run))
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
        (status = 400, description = "Malformed JSON", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "Missing or wrong API token", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such agent or task", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "The task is not assigned to the agent, or the agent cannot run", body = Problem, content_type = "application/problem+json"),
        (status = 413, description = "Body larger than 1 MiB", body = Problem, content_type = "application/problem+json"),
        (status = 415, description = "Body is not JSON", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "The input does not match the request schema or fill the prompt template", body = Problem, content_type = "application/problem+json"),
    ))]
async fn create_run(
    State(state): State<AppState>,
    ApiPath((agent_id, task_id)): ApiPath<(Uuid, Uuid)>,
    ApiJson(body): ApiJson<CreateRun>,
) -> Result<Response, ApiError> {
    // Independent reads, at once; the task only if it is assigned (one query on the hot path).
    let (agent, task) = tokio::try_join!(
        agents::find(&state.db, agent_id),
        assignments::assigned_task(&state.db, agent_id, task_id),
    )?;
    let agent = agent.ok_or_else(|| ApiError::not_found("agent", agent_id))?;
    let Some(task) = task else {
        return Err(match tasks::find(&state.db, task_id).await? {
            None => ApiError::not_found("task", task_id),
            Some(_) => ApiError::TaskNotAssigned,
        });
    };
    // The agent keeps its provider even when that was soft-deleted (until re-pointed).
    let provider = providers::find(&state.db, agent.provider_id)
        .await?
        .ok_or_else(|| ApiError::AgentNotRunnable("its provider no longer exists".to_owned()))?;
    let runnable = state
        .registry
        .get_or_create(&agent, &task, &provider)
        .await
        .map_err(|e| ApiError::AgentNotRunnable(e.to_string()))?;
    let problems = runnable.check_input(&body.input);
    if !problems.is_empty() {
        return Err(ApiError::Validation(problems));
    }
    let prompt = runnable.render(&body.input).map_err(|e| {
        ApiError::field(
            "/input",
            format!("does not fill the agent's user prompt template: {e}"),
        )
    })?;

    let id = new_id();
    let model = run::Model {
        id,
        agent_id,
        task_id,
        status: RunStatus::Queued.as_str().to_owned(),
        input: body.input,
        output: None,
        raw_output: None,
        error: None,
        attempts: 0,
        prompt_tokens: None,
        completion_tokens: None,
        latency_ms: None,
        snapshot: serde_json::to_value(&runnable.snapshot).map_err(ApiError::internal)?,
        created_at: now(),
        started_at: None,
        finished_at: None,
    };
    let queued = runs::insert(&state.db, model).await?;
    runs::append_event(
        &state.db,
        id,
        RunEventKind::Status,
        json!({"status": "queued"}),
        now(),
    )
    .await?;
    state.runs.publish(&queued);
    tracing::info!(run.id = %id, agent.id = %agent_id, task.id = %task_id, "run queued");

    let handle = state.runs.spawn(id, runnable, prompt);
    let location = [(header::LOCATION, format!("/api/runs/{id}"))];
    match body.mode {
        RunMode::Async => {
            Ok((StatusCode::ACCEPTED, location, Json(queued.to_contract()?)).into_response())
        }
        RunMode::Sync => {
            // The run continues if this request goes away; cancel is explicit.
            let finished = match handle.await {
                Ok(Some(finished)) => finished,
                // Canceled meanwhile (or the final write failed): read what is stored.
                _ => runs::find(&state.db, id)
                    .await?
                    .ok_or_else(|| ApiError::not_found("run", id))?,
            };
            Ok((StatusCode::CREATED, location, Json(finished.to_contract()?)).into_response())
        }
    }
}

/// Runs, newest first, filtered by agent, task and status.
#[utoipa::path(get, path = "/api/runs", tag = "runs", params(RunQuery),
    security((), ("bearer" = [])),
    responses(
        (status = 200, description = "A page of runs", body = Page<Run>),
        (status = 400, description = "Bad query parameter", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "Missing or wrong API token", body = Problem, content_type = "application/problem+json"),
    ))]
async fn list_runs(
    State(state): State<AppState>,
    ApiQuery(query): ApiQuery<RunQuery>,
) -> Result<Json<Page<Run>>, ApiError> {
    let (limit, offset) = page_params(contracts::ListQuery {
        limit: query.limit,
        offset: query.offset,
    })?;
    let (models, total) = runs::list(&state.db, &query, limit, offset).await?;
    let items = models
        .iter()
        .map(run::Model::to_contract)
        .collect::<Result<_, _>>()?;
    Ok(Json(Page {
        items,
        total,
        limit,
        offset,
    }))
}

/// One run.
#[utoipa::path(get, path = "/api/runs/{id}", tag = "runs",
    params(("id" = Uuid, Path, description = "Run id")),
    security((), ("bearer" = [])),
    responses(
        (status = 200, description = "The run", body = Run),
        (status = 401, description = "Missing or wrong API token", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No run with this id", body = Problem, content_type = "application/problem+json"),
    ))]
async fn get_run(
    State(state): State<AppState>,
    ApiPath(id): ApiPath<Uuid>,
) -> Result<Json<Run>, ApiError> {
    let run = runs::find(&state.db, id)
        .await?
        .ok_or_else(|| ApiError::not_found("run", id))?;
    Ok(Json(run.to_contract()?))
}

/// A run's history: status changes, attempts, validation and provider errors, in order.
#[utoipa::path(get, path = "/api/runs/{id}/events", tag = "runs",
    params(("id" = Uuid, Path, description = "Run id")),
    security((), ("bearer" = [])),
    responses(
        (status = 200, description = "The run's events, oldest first", body = Vec<RunEvent>),
        (status = 401, description = "Missing or wrong API token", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No run with this id", body = Problem, content_type = "application/problem+json"),
    ))]
async fn run_events(
    State(state): State<AppState>,
    ApiPath(id): ApiPath<Uuid>,
) -> Result<Json<Vec<RunEvent>>, ApiError> {
    runs::find(&state.db, id)
        .await?
        .ok_or_else(|| ApiError::not_found("run", id))?;
    Ok(Json(runs::events(&state.db, id).await?))
}

/// Cancels a queued or running run, aborting its in-flight provider call.
#[utoipa::path(post, path = "/api/runs/{id}/cancel", tag = "runs",
    params(("id" = Uuid, Path, description = "Run id")),
    security((), ("bearer" = [])),
    responses(
        (status = 202, description = "Canceled", body = Run),
        (status = 401, description = "Missing or wrong API token", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No run with this id", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "The run has already finished", body = Problem, content_type = "application/problem+json"),
    ))]
async fn cancel_run(
    State(state): State<AppState>,
    ApiPath(id): ApiPath<Uuid>,
) -> Result<(StatusCode, Json<Run>), ApiError> {
    let before = runs::find(&state.db, id)
        .await?
        .ok_or_else(|| ApiError::not_found("run", id))?;
    if !state.runs.cancel(id).await? {
        let status = runs::find(&state.db, id)
            .await?
            .map(|r| r.status())
            .transpose()?
            .unwrap_or(before.status()?);
        return Err(ApiError::RunFinished(status.as_str()));
    }
    tracing::info!(run.id = %id, "run canceled");
    let run = runs::find(&state.db, id)
        .await?
        .ok_or_else(|| ApiError::not_found("run", id))?;
    Ok((StatusCode::ACCEPTED, Json(run.to_contract()?)))
}
