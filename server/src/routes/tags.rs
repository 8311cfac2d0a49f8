//! Tags (`/api/tags…`): labels workers carry. A worker's tags are set with
//! `PUT /api/workers/{id}/tags` (routes/workers.rs) or by its registration token.

use axum::Json;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::IntoResponse;
use contracts::{CreateTag, Problem, Tag};
use utoipa_axum::{router::OpenApiRouter, routes};
use uuid::Uuid;

use super::problems::{Auth, JsonBody};
use crate::error::ApiError;
use crate::extract::{ApiJson, ApiPath};
use crate::services::{Tags, Workers};

pub fn routes() -> OpenApiRouter<crate::state::AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_tags, create_tag))
        .routes(routes!(delete_tag))
}

/// Every tag by name, with how many workers carry it.
#[utoipa::path(get, path = "/api/tags", tag = "workers",
    security((), ("bearer" = [])),
    responses((status = 200, description = "The tags", body = Vec<Tag>), Auth))]
async fn list_tags(State(tags): State<Tags>) -> Result<Json<Vec<Tag>>, ApiError> {
    Ok(Json(tags.list().await?))
}

/// Creates a tag; workers get it with `PUT /api/workers/{id}/tags` or from their
/// registration token.
#[utoipa::path(post, path = "/api/tags", tag = "workers", request_body = CreateTag,
    security((), ("bearer" = [])),
    responses(
        (status = 201, description = "Created", body = Tag,
            headers(("Location" = String, description = "URL of the tag"))),
        (status = 409, description = "A tag has this name", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Invalid name or note", body = Problem, content_type = "application/problem+json"),
        JsonBody,
    ))]
async fn create_tag(
    State(tags): State<Tags>,
    ApiJson(body): ApiJson<CreateTag>,
) -> Result<impl IntoResponse, ApiError> {
    let tag = tags.create(body).await?;
    let location = format!("/api/tags/{}", tag.id);
    Ok((
        StatusCode::CREATED,
        [(header::LOCATION, location)],
        Json(tag),
    ))
}

/// Deletes a tag: every worker and registration token that had it loses it. A tag that
/// agents require cannot be deleted (409): that would widen where their runs execute.
#[utoipa::path(delete, path = "/api/tags/{id}", tag = "workers",
    params(("id" = Uuid, Path, description = "Tag id")),
    security((), ("bearer" = [])),
    responses(
        (status = 204, description = "Deleted"),
        (status = 404, description = "No tag with this id", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "Agents require the tag", body = Problem, content_type = "application/problem+json"),
        Auth,
    ))]
async fn delete_tag(
    State(workers): State<Workers>,
    ApiPath(id): ApiPath<Uuid>,
) -> Result<StatusCode, ApiError> {
    workers.delete_tag(id).await?;
    Ok(StatusCode::NO_CONTENT)
}
