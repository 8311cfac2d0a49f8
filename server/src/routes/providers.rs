//! `/api/providers`: LLM endpoints with write-only, encrypted API keys.

use axum::Json;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::IntoResponse;
use contracts::{
    CreateProvider, EventKind, ListQuery, Page, Problem, Provider, Topic, UpdateProvider,
    ValidationStatus,
};
use serde_json::json;
use utoipa_axum::{router::OpenApiRouter, routes};
use uuid::Uuid;

use super::page_params;
use crate::db::providers::{self, api_key_context};
use crate::domain::providers::{StoredProvider, ValidProvider, key_hint, validate};
use crate::domain::{new_id, now};
use crate::error::{ApiError, ResultExt};
use crate::extract::{ApiJson, ApiPath, ApiQuery};
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
        (status = 400, description = "Bad query parameter", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "Missing or wrong API token", body = Problem, content_type = "application/problem+json"),
    ))]
async fn list_providers(
    State(state): State<AppState>,
    ApiQuery(query): ApiQuery<ListQuery>,
) -> Result<Json<Page<Provider>>, ApiError> {
    let (limit, offset) = page_params(query)?;
    let (models, total) = providers::list_active(&state.db, limit, offset).await?;
    let items = models
        .iter()
        .map(providers::Model::to_contract)
        .collect::<Result<_, _>>()?;
    Ok(Json(Page {
        items,
        total,
        limit,
        offset,
    }))
}

/// Registers a provider. Its connectivity status starts as `pending`.
#[utoipa::path(post, path = "/api/providers", tag = "providers", request_body = CreateProvider,
    security((), ("bearer" = [])),
    responses(
        (status = 201, description = "Created", body = Provider,
            headers(("Location" = String, description = "URL of the new provider"))),
        (status = 400, description = "Malformed JSON", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "Missing or wrong API token", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "An active provider has this name", body = Problem, content_type = "application/problem+json"),
        (status = 413, description = "Body larger than 1 MiB", body = Problem, content_type = "application/problem+json"),
        (status = 415, description = "Body is not JSON", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Invalid fields (see `errors`)", body = Problem, content_type = "application/problem+json"),
    ))]
async fn create_provider(
    State(state): State<AppState>,
    ApiJson(body): ApiJson<CreateProvider>,
) -> Result<impl IntoResponse, ApiError> {
    let valid = validate(
        &body.name,
        body.kind,
        body.base_url.as_deref(),
        body.api_key.as_deref(),
        None,
    )?;
    check_reachable(&state, valid.base_url.as_deref()).await?;
    let id = new_id();
    let now = now();
    let (api_key_ciphertext, api_key_hint) = seal_key(&state, id, &valid);
    let model = providers::Model {
        id,
        name: valid.name,
        kind: valid.kind.as_str().to_owned(),
        base_url: valid.base_url,
        api_key_ciphertext,
        api_key_hint,
        validation_status: ValidationStatus::Pending.as_str().to_owned(),
        validation_error: None,
        validated_at: None,
        latency_ms: None,
        models: json!([]),
        is_active: true,
        revision: 1,
        created_at: now,
        updated_at: now,
    };
    let saved = providers::insert(&state.db, model)
        .await
        .on_unique(ApiError::DuplicateName("provider"))?;
    tracing::info!(provider.id = %id, provider.kind = %saved.kind, "provider created");
    let provider = saved.to_contract()?;
    state
        .events
        .publish(Topic::Providers, EventKind::Created, id, &provider);
    state.validator.trigger(id);
    Ok((
        StatusCode::CREATED,
        [(header::LOCATION, format!("/api/providers/{id}"))],
        Json(provider),
    ))
}

/// Encrypts a newly supplied key, bound to this provider's row.
fn seal_key(
    state: &AppState,
    id: Uuid,
    valid: &ValidProvider,
) -> (Option<Vec<u8>>, Option<String>) {
    match valid.api_key.as_deref() {
        Some(key) => (
            Some(state.keyring.encrypt(key, &api_key_context(id))),
            key_hint(key),
        ),
        None => (None, None),
    }
}

/// One provider, including a soft-deleted one (`is_active: false`).
#[utoipa::path(get, path = "/api/providers/{id}", tag = "providers",
    params(("id" = Uuid, Path, description = "Provider id")),
    security((), ("bearer" = [])),
    responses(
        (status = 200, description = "The provider", body = Provider),
        (status = 401, description = "Missing or wrong API token", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No provider with this id", body = Problem, content_type = "application/problem+json"),
    ))]
async fn get_provider(
    State(state): State<AppState>,
    ApiPath(id): ApiPath<Uuid>,
) -> Result<Json<Provider>, ApiError> {
    let model = providers::find(&state.db, id)
        .await?
        .ok_or_else(|| ApiError::not_found("provider", id))?;
    Ok(Json(model.to_contract()?))
}

/// Replaces a provider's configuration. Omit `api_key` to keep the stored key, except when the
/// endpoint's scheme, host or port changes. Bumps `revision` and resets the status to `pending`.
#[utoipa::path(put, path = "/api/providers/{id}", tag = "providers", request_body = UpdateProvider,
    params(("id" = Uuid, Path, description = "Provider id")),
    security((), ("bearer" = [])),
    responses(
        (status = 200, description = "Updated", body = Provider),
        (status = 400, description = "Malformed JSON", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "Missing or wrong API token", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No active provider with this id", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "An active provider has this name", body = Problem, content_type = "application/problem+json"),
        (status = 413, description = "Body larger than 1 MiB", body = Problem, content_type = "application/problem+json"),
        (status = 415, description = "Body is not JSON", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Invalid fields (see `errors`)", body = Problem, content_type = "application/problem+json"),
    ))]
async fn update_provider(
    State(state): State<AppState>,
    ApiPath(id): ApiPath<Uuid>,
    ApiJson(body): ApiJson<UpdateProvider>,
) -> Result<Json<Provider>, ApiError> {
    let existing = providers::find(&state.db, id)
        .await?
        .filter(|p| p.is_active)
        .ok_or_else(|| ApiError::not_found("provider", id))?;
    let stored = StoredProvider {
        kind: existing.kind()?,
        base_url: existing.base_url.as_deref(),
        has_api_key: existing.api_key_ciphertext.is_some(),
    };
    let valid = validate(
        &body.name,
        body.kind,
        body.base_url.as_deref(),
        body.api_key.as_deref(),
        Some(&stored),
    )?;
    check_reachable(&state, valid.base_url.as_deref()).await?;
    let (api_key_ciphertext, api_key_hint) = match seal_key(&state, id, &valid) {
        (Some(ciphertext), hint) => (Some(ciphertext), hint),
        (None, _) => (
            existing.api_key_ciphertext.clone(),
            existing.api_key_hint.clone(),
        ),
    };
    let model = providers::Model {
        name: valid.name,
        kind: valid.kind.as_str().to_owned(),
        base_url: valid.base_url,
        api_key_ciphertext,
        api_key_hint,
        updated_at: now(),
        ..existing
    };
    let saved = providers::update(&state.db, model)
        .await
        .on_unique(ApiError::DuplicateName("provider"))?
        .ok_or_else(|| ApiError::not_found("provider", id))?;
    tracing::info!(provider.id = %id, provider.revision = saved.revision, "provider updated");
    let provider = saved.to_contract()?;
    state
        .events
        .publish(Topic::Providers, EventKind::Updated, id, &provider);
    state.validator.trigger(id);
    Ok(Json(provider))
}

/// Deletes a provider. While agents reference it, it is soft-deleted instead: hidden from
/// lists, still readable by id, and the agents keep working until re-pointed.
#[utoipa::path(delete, path = "/api/providers/{id}", tag = "providers",
    params(("id" = Uuid, Path, description = "Provider id")),
    security((), ("bearer" = [])),
    responses(
        (status = 204, description = "Deleted (or soft-deleted while referenced)"),
        (status = 401, description = "Missing or wrong API token", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No active provider with this id", body = Problem, content_type = "application/problem+json"),
    ))]
async fn delete_provider(
    State(state): State<AppState>,
    ApiPath(id): ApiPath<Uuid>,
) -> Result<StatusCode, ApiError> {
    let existing = providers::find(&state.db, id)
        .await?
        .filter(|p| p.is_active)
        .ok_or_else(|| ApiError::not_found("provider", id))?;
    let last = if providers::delete(&state.db, id).await? {
        tracing::info!(provider.id = %id, "provider deleted");
        providers::Model {
            is_active: false,
            ..existing
        }
    } else {
        providers::soft_delete(&state.db, id, now()).await?;
        tracing::info!(provider.id = %id, "provider soft-deleted: agents still reference it");
        providers::find(&state.db, id).await?.unwrap_or(existing)
    };
    state.events.publish(
        Topic::Providers,
        EventKind::Deleted,
        id,
        &last.to_contract()?,
    );
    Ok(StatusCode::NO_CONTENT)
}

/// Re-checks a provider's connectivity now. Answers at once with the provider as it is; the
/// outcome arrives as `validation_update` events on topic `providers`.
#[utoipa::path(post, path = "/api/providers/{id}/validate", tag = "providers",
    params(("id" = Uuid, Path, description = "Provider id")),
    security((), ("bearer" = [])),
    responses(
        (status = 202, description = "Check queued", body = Provider),
        (status = 401, description = "Missing or wrong API token", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No active provider with this id", body = Problem, content_type = "application/problem+json"),
    ))]
async fn validate_provider(
    State(state): State<AppState>,
    ApiPath(id): ApiPath<Uuid>,
) -> Result<(StatusCode, Json<Provider>), ApiError> {
    let model = providers::find(&state.db, id)
        .await?
        .filter(|p| p.is_active)
        .ok_or_else(|| ApiError::not_found("provider", id))?;
    state.validator.trigger(id);
    Ok((StatusCode::ACCEPTED, Json(model.to_contract()?)))
}

/// The outbound policy's verdict on a base URL, as a 422 on `/base_url` when refused.
async fn check_reachable(state: &AppState, base_url: Option<&str>) -> Result<(), ApiError> {
    let Some(raw) = base_url else {
        return Ok(());
    };
    let url = url::Url::parse(raw).map_err(|e| ApiError::field("/base_url", e.to_string()))?;
    state
        .policy
        .check_url_resolving(&url)
        .await
        .map_err(|blocked| ApiError::field("/base_url", blocked.to_string()))
}
