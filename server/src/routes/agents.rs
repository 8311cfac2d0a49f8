//! `/api/agents`: a provider, a model, prompts and parameters.

use axum::Json;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::IntoResponse;
use contracts::{Agent, CreateAgent, ListQuery, Page, Problem, UpdateAgent};
use utoipa_axum::{router::OpenApiRouter, routes};
use uuid::Uuid;

use super::page_params;
use super::problems::{Auth, JsonBody, Listing};
use crate::error::ApiError;
use crate::extract::{ApiJson, ApiPath, ApiQuery};
use crate::services::Agents;
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
        Listing,
    ))]
async fn list_agents(
    State(agents): State<Agents>,
    ApiQuery(query): ApiQuery<ListQuery>,
) -> Result<Json<Page<Agent>>, ApiError> {
    let (limit, offset) = page_params(query)?;
    Ok(Json(agents.list(limit, offset).await?))
}

/// Creates an agent on an active provider.
#[utoipa::path(post, path = "/api/agents", tag = "agents", request_body = CreateAgent,
    security((), ("bearer" = [])),
    responses(
        (status = 201, description = "Created", body = Agent,
            headers(("Location" = String, description = "URL of the new agent"))),
        (status = 409, description = "An agent has this name", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Invalid fields (see `errors`), or `provider_id` names no provider or a deleted one", body = Problem, content_type = "application/problem+json"),
        JsonBody,
    ))]
async fn create_agent(
    State(agents): State<Agents>,
    ApiJson(body): ApiJson<CreateAgent>,
) -> Result<impl IntoResponse, ApiError> {
    let agent = agents.create(body).await?;
    Ok((
        StatusCode::CREATED,
        [(header::LOCATION, format!("/api/agents/{}", agent.id))],
        Json(agent),
    ))
}

/// One agent with its provider and assigned tasks.
#[utoipa::path(get, path = "/api/agents/{id}", tag = "agents",
    params(("id" = Uuid, Path, description = "Agent id")),
    security((), ("bearer" = [])),
    responses(
        (status = 200, description = "The agent", body = Agent),
        (status = 404, description = "No agent with this id", body = Problem, content_type = "application/problem+json"),
        Auth,
    ))]
async fn get_agent(
    State(agents): State<Agents>,
    ApiPath(id): ApiPath<Uuid>,
) -> Result<Json<Agent>, ApiError> {
    Ok(Json(agents.get(id).await?))
}

/// Replaces an agent's configuration and bumps its revision. Runs already in flight keep the
/// configuration they started with.
#[utoipa::path(put, path = "/api/agents/{id}", tag = "agents", request_body = UpdateAgent,
    params(("id" = Uuid, Path, description = "Agent id")),
    security((), ("bearer" = [])),
    responses(
        (status = 200, description = "Updated", body = Agent),
        (status = 404, description = "No agent with this id", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "Another agent has this name", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Invalid fields (see `errors`), or `provider_id` names no provider or another deleted one", body = Problem, content_type = "application/problem+json"),
        JsonBody,
    ))]
async fn update_agent(
    State(agents): State<Agents>,
    ApiPath(id): ApiPath<Uuid>,
    ApiJson(body): ApiJson<UpdateAgent>,
) -> Result<Json<Agent>, ApiError> {
    Ok(Json(agents.update(id, body).await?))
}

/// Deletes an agent and its assignments. Past runs keep their configuration snapshot.
#[utoipa::path(delete, path = "/api/agents/{id}", tag = "agents",
    params(("id" = Uuid, Path, description = "Agent id")),
    security((), ("bearer" = [])),
    responses(
        (status = 204, description = "Deleted"),
        (status = 404, description = "No agent with this id", body = Problem, content_type = "application/problem+json"),
        Auth,
    ))]
async fn delete_agent(
    State(agents): State<Agents>,
    ApiPath(id): ApiPath<Uuid>,
) -> Result<StatusCode, ApiError> {
    agents.delete(id).await?;
    Ok(StatusCode::NO_CONTENT)
}
