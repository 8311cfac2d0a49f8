//! `/api/providers`: LLM endpoints with write-only, encrypted API keys.

use axum::Json;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::IntoResponse;
use contracts::{CreateProvider, ListQuery, Page, Problem, Provider, UpdateProvider};
use utoipa_axum::{router::OpenApiRouter, routes};
use uuid::Uuid;

use super::page_params;
use super::problems::{Auth, JsonBody, Listing};
use crate::error::ApiError;
use crate::extract::{ApiJson, ApiPath, ApiQuery};
use crate::services::Providers;
use crate::state::AppState;

pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_providers, create_provider))
        .routes(routes!(get_provider, update_provider, delete_provider))
        .routes(routes!(validate_provider))
}

/// Active providers, oldest first.
#[utoipa::path(get, path = "/api/providers", tag = "providers", params(ListQuery),
    security((), ("bearer" = [])),
    responses(
        (status = 200, description = "A page of providers", body = Page<Provider>),
        Listing,
    ))]
async fn list_providers(
    State(providers): State<Providers>,
    ApiQuery(query): ApiQuery<ListQuery>,
) -> Result<Json<Page<Provider>>, ApiError> {
    let (limit, offset) = page_params(query)?;
    Ok(Json(providers.list(limit, offset).await?))
}

/// Registers a provider. Its connectivity status starts as `pending`.
#[utoipa::path(post, path = "/api/providers", tag = "providers", request_body = CreateProvider,
    security((), ("bearer" = [])),
    responses(
        (status = 201, description = "Created", body = Provider,
            headers(("Location" = String, description = "URL of the new provider"))),
        (status = 409, description = "An active provider has this name", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Invalid fields (see `errors`)", body = Problem, content_type = "application/problem+json"),
        JsonBody,
    ))]
async fn create_provider(
    State(providers): State<Providers>,
    ApiJson(body): ApiJson<CreateProvider>,
) -> Result<impl IntoResponse, ApiError> {
    let provider = providers.create(body).await?;
    Ok((
        StatusCode::CREATED,
        [(header::LOCATION, format!("/api/providers/{}", provider.id))],
        Json(provider),
    ))
}

/// One provider, including a soft-deleted one (`is_active: false`).
#[utoipa::path(get, path = "/api/providers/{id}", tag = "providers",
    params(("id" = Uuid, Path, description = "Provider id")),
    security((), ("bearer" = [])),
    responses(
        (status = 200, description = "The provider", body = Provider),
        (status = 404, description = "No provider with this id", body = Problem, content_type = "application/problem+json"),
        Auth,
    ))]
async fn get_provider(
    State(providers): State<Providers>,
    ApiPath(id): ApiPath<Uuid>,
) -> Result<Json<Provider>, ApiError> {
    Ok(Json(providers.get(id).await?))
}

/// Replaces a provider's configuration. Omit `api_key` to keep the stored key, except when the
/// endpoint's scheme, host or port changes. Bumps `revision` and resets the status to `pending`.
#[utoipa::path(put, path = "/api/providers/{id}", tag = "providers", request_body = UpdateProvider,
    params(("id" = Uuid, Path, description = "Provider id")),
    security((), ("bearer" = [])),
    responses(
        (status = 200, description = "Updated", body = Provider),
        (status = 404, description = "No active provider with this id", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "An active provider has this name", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Invalid fields (see `errors`)", body = Problem, content_type = "application/problem+json"),
        JsonBody,
    ))]
async fn update_provider(
    State(providers): State<Providers>,
    ApiPath(id): ApiPath<Uuid>,
    ApiJson(body): ApiJson<UpdateProvider>,
) -> Result<Json<Provider>, ApiError> {
    Ok(Json(providers.update(id, body).await?))
}

/// Deletes a provider. While agents reference it, it is soft-deleted instead: hidden from
/// lists, still readable by id, and the agents keep working until re-pointed.
#[utoipa::path(delete, path = "/api/providers/{id}", tag = "providers",
    params(("id" = Uuid, Path, description = "Provider id")),
    security((), ("bearer" = [])),
    responses(
        (status = 204, description = "Deleted (or soft-deleted while referenced)"),
        (status = 404, description = "No active provider with this id", body = Problem, content_type = "application/problem+json"),
        Auth,
    ))]
async fn delete_provider(
    State(providers): State<Providers>,
    ApiPath(id): ApiPath<Uuid>,
) -> Result<StatusCode, ApiError> {
    providers.delete(id).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Re-checks a provider's connectivity now. Answers at once with the provider as it is; the
/// outcome arrives as `validation_update` events on topic `providers`.
#[utoipa::path(post, path = "/api/providers/{id}/validate", tag = "providers",
    params(("id" = Uuid, Path, description = "Provider id")),
    security((), ("bearer" = [])),
    responses(
        (status = 202, description = "Check queued", body = Provider),
        (status = 404, description = "No active provider with this id", body = Problem, content_type = "application/problem+json"),
        Auth,
    ))]
async fn validate_provider(
    State(providers): State<Providers>,
    ApiPath(id): ApiPath<Uuid>,
) -> Result<(StatusCode, Json<Provider>), ApiError> {
    Ok((StatusCode::ACCEPTED, Json(providers.validate(id).await?)))
}
