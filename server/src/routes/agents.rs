//! `/api/agents`: a provider, a model, prompts and parameters.

use axum::Json;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::IntoResponse;
use contracts::{Agent, CreateAgent, EventKind, ListQuery, Page, Problem, Topic, UpdateAgent};
use sea_orm::ConnectionTrait;
use utoipa_axum::{router::OpenApiRouter, routes};
use uuid::Uuid;

use super::{page_params, publish_task};
use crate::db::{agents, providers, views};
use crate::domain::agents::validate;
use crate::domain::{new_id, now};
use crate::error::{ApiError, ResultExt};
use crate::extract::{ApiJson, ApiPath, ApiQuery};
use crate::state::AppState;

pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_agents, create_agent))
        .routes(routes!(get_agent, update_agent, delete_agent))
}

/// Agents, oldest first, each with its provider and assigned tasks.
#[utoipa::path(get, path = "/api/agents", tag = "agents", params(ListQuery),
    security((), ("bearer" = [])),
    responses(
        (status = 200, description = "A page of agents", body = Page<Agent>),
        (status = 400, description = "Bad query parameter", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "Missing or wrong API token", body = Problem, content_type = "application/problem+json"),
    ))]
async fn list_agents(
    State(state): State<AppState>,
    ApiQuery(query): ApiQuery<ListQuery>,
) -> Result<Json<Page<Agent>>, ApiError> {
    let (limit, offset) = page_params(query)?;
    let (models, total) = agents::list(&state.db, limit, offset).await?;
    let items = views::agents(&state.db, models).await?;
    Ok(Json(Page {
        items,
        total,
        limit,
        offset,
    }))
}

/// Creates an agent on an active provider.
#[utoipa::path(post, path = "/api/agents", tag = "agents", request_body = CreateAgent,
    security((), ("bearer" = [])),
    responses(
        (status = 201, description = "Created", body = Agent,
            headers(("Location" = String, description = "URL of the new agent"))),
        (status = 400, description = "Malformed JSON", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "Missing or wrong API token", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "The provider does not exist", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "An agent has this name", body = Problem, content_type = "application/problem+json"),
        (status = 413, description = "Body larger than 1 MiB", body = Problem, content_type = "application/problem+json"),
        (status = 415, description = "Body is not JSON", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Invalid fields, or the provider was deleted", body = Problem, content_type = "application/problem+json"),
    ))]
async fn create_agent(
    State(state): State<AppState>,
    ApiJson(body): ApiJson<CreateAgent>,
) -> Result<impl IntoResponse, ApiError> {
    let valid = validate(body)?;
    check_provider(&state.db, valid.provider_id, None).await?;
    let id = new_id();
    let now = now();
    let model = to_model(id, valid, 1, now, now);
    agents::insert(&state.db, model)
        .await
        .on_constraint(ApiError::DuplicateName("agent"), provider_vanished())?;
    let agent = views::agent(&state.db, id)
        .await?
        .ok_or_else(|| ApiError::not_found("agent", id))?;
    tracing::info!(agent.id = %id, "agent created");
    state
        .events
        .publish(Topic::Agents, EventKind::Created, id, &agent);
    Ok((
        StatusCode::CREATED,
        [(header::LOCATION, format!("/api/agents/{id}"))],
        Json(agent),
    ))
}

/// One agent with its provider and assigned tasks.
#[utoipa::path(get, path = "/api/agents/{id}", tag = "agents",
    params(("id" = Uuid, Path, description = "Agent id")),
    security((), ("bearer" = [])),
    responses(
        (status = 200, description = "The agent", body = Agent),
        (status = 401, description = "Missing or wrong API token", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No agent with this id", body = Problem, content_type = "application/problem+json"),
    ))]
async fn get_agent(
    State(state): State<AppState>,
    ApiPath(id): ApiPath<Uuid>,
) -> Result<Json<Agent>, ApiError> {
    views::agent(&state.db, id)
        .await?
        .map(Json)
        .ok_or_else(|| ApiError::not_found("agent", id))
}

/// Replaces an agent's configuration and bumps its revision. Runs already in flight keep the
/// configuration they started with.
#[utoipa::path(put, path = "/api/agents/{id}", tag = "agents", request_body = UpdateAgent,
    params(("id" = Uuid, Path, description = "Agent id")),
    security((), ("bearer" = [])),
    responses(
        (status = 200, description = "Updated", body = Agent),
        (status = 400, description = "Malformed JSON", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "Missing or wrong API token", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No agent (or provider) with this id", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "Another agent has this name", body = Problem, content_type = "application/problem+json"),
        (status = 413, description = "Body larger than 1 MiB", body = Problem, content_type = "application/problem+json"),
        (status = 415, description = "Body is not JSON", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Invalid fields, or the new provider was deleted", body = Problem, content_type = "application/problem+json"),
    ))]
async fn update_agent(
    State(state): State<AppState>,
    ApiPath(id): ApiPath<Uuid>,
    ApiJson(body): ApiJson<UpdateAgent>,
) -> Result<Json<Agent>, ApiError> {
    let existing = agents::find(&state.db, id)
        .await?
        .ok_or_else(|| ApiError::not_found("agent", id))?;
    let valid = validate(body)?;
    check_provider(&state.db, valid.provider_id, Some(existing.provider_id)).await?;
    let model = to_model(id, valid, existing.revision, existing.created_at, now());
    agents::update(&state.db, model)
        .await
        .on_constraint(ApiError::DuplicateName("agent"), provider_vanished())?
        .ok_or_else(|| ApiError::not_found("agent", id))?;
    let agent = views::agent(&state.db, id)
        .await?
        .ok_or_else(|| ApiError::not_found("agent", id))?;
    tracing::info!(agent.id = %id, agent.revision = agent.revision, "agent updated");
    state
        .events
        .publish(Topic::Agents, EventKind::Updated, id, &agent);
    // Tasks list their agents (name, model): those views changed too.
    for task in &agent.tasks {
        publish_task(&state, task.id).await;
    }
    Ok(Json(agent))
}

/// Deletes an agent and its assignments. Past runs keep their configuration snapshot.
#[utoipa::path(delete, path = "/api/agents/{id}", tag = "agents",
    params(("id" = Uuid, Path, description = "Agent id")),
    security((), ("bearer" = [])),
    responses(
        (status = 204, description = "Deleted"),
        (status = 401, description = "Missing or wrong API token", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No agent with this id", body = Problem, content_type = "application/problem+json"),
    ))]
async fn delete_agent(
    State(state): State<AppState>,
    ApiPath(id): ApiPath<Uuid>,
) -> Result<StatusCode, ApiError> {
    let last = views::agent(&state.db, id).await?;
    if !agents::delete(&state.db, id).await? {
        return Err(ApiError::not_found("agent", id));
    }
    tracing::info!(agent.id = %id, "agent deleted");
    state
        .events
        .publish(Topic::Agents, EventKind::Deleted, id, &last);
    // Tasks list their agents: each task this agent had changed too.
    if let Some(agent) = &last {
        for task in &agent.tasks {
            publish_task(&state, task.id).await;
        }
    }
    Ok(StatusCode::NO_CONTENT)
}

/// The provider must exist (404) and be active (422) — unless the agent already uses it: an
/// agent on a soft-deleted provider can still be edited without being re-pointed.
async fn check_provider(
    db: &impl ConnectionTrait,
    provider_id: Uuid,
    current: Option<Uuid>,
) -> Result<(), ApiError> {
    let provider = providers::find(db, provider_id)
        .await?
        .ok_or_else(|| ApiError::not_found("provider", provider_id))?;
    if !provider.is_active && current != Some(provider_id) {
        return Err(ApiError::field(
            "/provider_id",
            "refers to a deleted provider; choose an active one",
        ));
    }
    Ok(())
}

/// A provider deleted between the check and the write surfaces as a foreign-key violation.
fn provider_vanished() -> ApiError {
    ApiError::field("/provider_id", "refers to a provider that no longer exists")
}

fn to_model(
    id: Uuid,
    input: CreateAgent,
    revision: i64,
    created_at: chrono::DateTime<chrono::Utc>,
    updated_at: chrono::DateTime<chrono::Utc>,
) -> agents::Model {
    agents::Model {
        id,
        name: input.name,
        description: input.description,
        provider_id: input.provider_id,
        model: input.model,
        system_prompt: input.system_prompt,
        user_prompt: input.user_prompt,
        temperature: input.temperature,
        max_tokens: input
            .max_tokens
            .map(|v| i32::try_from(v).unwrap_or(i32::MAX)),
        max_retries: i32::try_from(input.max_retries).unwrap_or(i32::MAX),
        timeout_secs: i32::try_from(input.timeout_secs).unwrap_or(i32::MAX),
        revision,
        created_at,
        updated_at,
    }
}
