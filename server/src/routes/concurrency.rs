//! Concurrency groups (`/api/concurrency-groups…`): caps on how many runs of a set of agents
//! run at once across every worker. Agents join one with `concurrency_group_id`.

use axum::Json;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::IntoResponse;
use contracts::{ConcurrencyGroup, CreateConcurrencyGroup, Problem, UpdateConcurrencyGroup};
use utoipa_axum::{router::OpenApiRouter, routes};
use uuid::Uuid;

use super::problems::{Auth, JsonBody};
use crate::error::ApiError;
use crate::extract::{ApiJson, ApiPath};
use crate::services::ConcurrencyGroups;

pub fn routes() -> OpenApiRouter<crate::state::AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_groups, create_group))
        .routes(routes!(get_group, update_group, delete_group))
}

/// Every concurrency group by name, with its live counts.
#[utoipa::path(get, path = "/api/concurrency-groups", tag = "workers",
    security((), ("bearer" = [])),
    responses((status = 200, description = "The groups", body = Vec<ConcurrencyGroup>), Auth))]
async fn list_groups(
    State(groups): State<ConcurrencyGroups>,
) -> Result<Json<Vec<ConcurrencyGroup>>, ApiError> {
    Ok(Json(groups.list().await?))
}

/// Creates a concurrency group; agents join it with `concurrency_group_id`.
#[utoipa::path(post, path = "/api/concurrency-groups", tag = "workers",
    request_body = CreateConcurrencyGroup,
    security((), ("bearer" = [])),
    responses(
        (status = 201, description = "Created", body = ConcurrencyGroup,
            headers(("Location" = String, description = "URL of the group"))),
        (status = 409, description = "A group has this name", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Invalid name, limit or note", body = Problem, content_type = "application/problem+json"),
        JsonBody,
    ))]
async fn create_group(
    State(groups): State<ConcurrencyGroups>,
    ApiJson(body): ApiJson<CreateConcurrencyGroup>,
) -> Result<impl IntoResponse, ApiError> {
    let group = groups.create(body).await?;
    let location = format!("/api/concurrency-groups/{}", group.id);
    Ok((
        StatusCode::CREATED,
        [(header::LOCATION, location)],
        Json(group),
    ))
}

/// One concurrency group with its live counts.
#[utoipa::path(get, path = "/api/concurrency-groups/{id}", tag = "workers",
    params(("id" = Uuid, Path, description = "Group id")),
    security((), ("bearer" = [])),
    responses(
        (status = 200, description = "The group", body = ConcurrencyGroup),
        (status = 404, description = "No group with this id", body = Problem, content_type = "application/problem+json"),
        Auth,
    ))]
async fn get_group(
    State(groups): State<ConcurrencyGroups>,
    ApiPath(id): ApiPath<Uuid>,
) -> Result<Json<ConcurrencyGroup>, ApiError> {
    Ok(Json(groups.get(id).await?))
}

/// Replaces a group's name, limit and note; a new limit holds from the next dispatch on
/// (runs already running above a lowered limit finish).
#[utoipa::path(put, path = "/api/concurrency-groups/{id}", tag = "workers",
    request_body = UpdateConcurrencyGroup,
    params(("id" = Uuid, Path, description = "Group id")),
    security((), ("bearer" = [])),
    responses(
        (status = 200, description = "The group as stored", body = ConcurrencyGroup),
        (status = 404, description = "No group with this id", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "Another group has this name", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Invalid name, limit or note", body = Problem, content_type = "application/problem+json"),
        JsonBody,
    ))]
async fn update_group(
    State(groups): State<ConcurrencyGroups>,
    ApiPath(id): ApiPath<Uuid>,
    ApiJson(body): ApiJson<UpdateConcurrencyGroup>,
) -> Result<Json<ConcurrencyGroup>, ApiError> {
    Ok(Json(groups.update(id, body).await?))
}

/// Deletes a group no agent is in (409 otherwise); runs still queued or running in it count
/// against no group from then on.
#[utoipa::path(delete, path = "/api/concurrency-groups/{id}", tag = "workers",
    params(("id" = Uuid, Path, description = "Group id")),
    security((), ("bearer" = [])),
    responses(
        (status = 204, description = "Deleted"),
        (status = 404, description = "No group with this id", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "Agents are in the group", body = Problem, content_type = "application/problem+json"),
        Auth,
    ))]
async fn delete_group(
    State(groups): State<ConcurrencyGroups>,
    ApiPath(id): ApiPath<Uuid>,
) -> Result<StatusCode, ApiError> {
    groups.delete(id).await?;
    Ok(StatusCode::NO_CONTENT)
}
