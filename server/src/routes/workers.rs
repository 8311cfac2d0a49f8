//! Workers (`/api/workers…`) and their registration tokens (`/api/worker-tokens…`).
//! `POST /api/workers/register` is authenticated by the registration token in its body, not
//! by the API token: the machine running the worker never needs the API token.

use std::net::SocketAddr;

use axum::extract::{ConnectInfo, State};
use axum::http::{StatusCode, header};
use axum::response::IntoResponse;
use axum::{Extension, Json};
use contracts::{
    CreateWorkerToken, CreatedWorkerToken, Pool, Problem, RegisterWorker, RegisteredWorker,
    SetWorkerTags, UpdateWorker, Worker, WorkerDetail, WorkerToken,
};
use utoipa_axum::{router::OpenApiRouter, routes};
use uuid::Uuid;

use super::problems::{Auth, JsonBody};
use crate::auth::too_many_attempts;
use crate::error::ApiError;
use crate::extract::{ApiJson, ApiPath};
use crate::services::Workers;
use crate::services::workers::Error;
use crate::state::AppState;

pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_workers))
        .routes(routes!(pool))
        .routes(routes!(get_worker, update_worker, delete_worker))
        .routes(routes!(set_worker_tags))
        .routes(routes!(register_worker))
        .routes(routes!(list_tokens, create_token))
        .routes(routes!(revoke_token))
}

/// Every worker (the built-in one first), with its live status and current runs.
#[utoipa::path(get, path = "/api/workers", tag = "workers",
    security((), ("bearer" = [])),
    responses((status = 200, description = "The workers", body = Vec<Worker>), Auth))]
async fn list_workers(State(workers): State<Workers>) -> Result<Json<Vec<Worker>>, ApiError> {
    Ok(Json(workers.list().await?))
}

/// How many workers are online, idle, busy, unhealthy, offline and disabled, and how many runs
/// are running and queued.
#[utoipa::path(get, path = "/api/workers/pool", tag = "workers",
    security((), ("bearer" = [])),
    responses((status = 200, description = "The pool's counts", body = Pool), Auth))]
async fn pool(State(workers): State<Workers>) -> Result<Json<Pool>, ApiError> {
    Ok(Json(workers.pool().await?))
}

/// One worker with its most recent runs.
#[utoipa::path(get, path = "/api/workers/{id}", tag = "workers",
    params(("id" = Uuid, Path, description = "Worker id")),
    security((), ("bearer" = [])),
    responses(
        (status = 200, description = "The worker", body = WorkerDetail),
        (status = 404, description = "No worker with this id", body = Problem, content_type = "application/problem+json"),
        Auth,
    ))]
async fn get_worker(
    State(workers): State<Workers>,
    ApiPath(id): ApiPath<Uuid>,
) -> Result<Json<WorkerDetail>, ApiError> {
    Ok(Json(workers.get(id).await?))
}

/// Renames, enables or disables a worker. Disabling disconnects it and puts its runs back in
/// the queue; the built-in worker is stopped, and started again when enabled.
#[utoipa::path(patch, path = "/api/workers/{id}", tag = "workers", request_body = UpdateWorker,
    params(("id" = Uuid, Path, description = "Worker id")),
    security((), ("bearer" = [])),
    responses(
        (status = 200, description = "Updated", body = Worker),
        (status = 404, description = "No worker with this id", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "Another worker has this name", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Invalid name", body = Problem, content_type = "application/problem+json"),
        JsonBody,
    ))]
async fn update_worker(
    State(workers): State<Workers>,
    ApiPath(id): ApiPath<Uuid>,
    ApiJson(body): ApiJson<UpdateWorker>,
) -> Result<Json<Worker>, ApiError> {
    Ok(Json(workers.update(id, body).await?))
}

/// Replaces a worker's tags (existing tags, see `/api/tags`). The worker itself cannot
/// change them.
#[utoipa::path(put, path = "/api/workers/{id}/tags", tag = "workers", request_body = SetWorkerTags,
    params(("id" = Uuid, Path, description = "Worker id")),
    security((), ("bearer" = [])),
    responses(
        (status = 200, description = "The worker with its new tags", body = Worker),
        (status = 404, description = "No worker with this id", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "A tag that does not exist, or too many", body = Problem, content_type = "application/problem+json"),
        JsonBody,
    ))]
async fn set_worker_tags(
    State(workers): State<Workers>,
    ApiPath(id): ApiPath<Uuid>,
    ApiJson(body): ApiJson<SetWorkerTags>,
) -> Result<Json<Worker>, ApiError> {
    Ok(Json(workers.set_tags(id, body).await?))
}

/// Revokes a remote worker: its key stops working, its connection is closed and its runs go
/// back to the queue. The built-in worker cannot be deleted (409); disable it instead.
#[utoipa::path(delete, path = "/api/workers/{id}", tag = "workers",
    params(("id" = Uuid, Path, description = "Worker id")),
    security((), ("bearer" = [])),
    responses(
        (status = 204, description = "Revoked"),
        (status = 404, description = "No worker with this id", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "The built-in worker", body = Problem, content_type = "application/problem+json"),
        Auth,
    ))]
async fn delete_worker(
    State(workers): State<Workers>,
    ApiPath(id): ApiPath<Uuid>,
) -> Result<StatusCode, ApiError> {
    workers.delete(id).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Registers a worker with a registration token (which it uses up) and returns the worker's
/// key, once. Authenticated by the token, not by the API token; failed attempts count
/// against the address like wrong API tokens do.
#[utoipa::path(post, path = "/api/workers/register", tag = "workers", request_body = RegisterWorker,
    security(()),
    responses(
        (status = 201, description = "Registered; the key is shown only here", body = RegisteredWorker),
        (status = 401, description = "The token is unknown, used, expired or revoked", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "A worker has this name", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Invalid name", body = Problem, content_type = "application/problem+json"),
        JsonBody,
    ))]
async fn register_worker(
    State(state): State<AppState>,
    peer: Option<Extension<ConnectInfo<SocketAddr>>>,
    ApiJson(body): ApiJson<RegisterWorker>,
) -> Result<axum::response::Response, ApiError> {
    match state.workers.register(body).await {
        Ok(registered) => Ok((StatusCode::CREATED, Json(registered)).into_response()),
        Err(Error::Unauthorized(why)) => {
            let ip = peer.map(|Extension(ConnectInfo(addr))| addr.ip());
            if let Some(wait) = ip.and_then(|ip| state.auth_guard.failed(ip)) {
                return Ok(too_many_attempts(wait));
            }
            Err(ApiError::BadCredential(why))
        }
        Err(err) => Err(err.into()),
    }
}

/// Registration tokens, newest first; never the tokens themselves.
#[utoipa::path(get, path = "/api/worker-tokens", tag = "workers",
    security((), ("bearer" = [])),
    responses((status = 200, description = "The tokens", body = Vec<WorkerToken>), Auth))]
async fn list_tokens(State(workers): State<Workers>) -> Result<Json<Vec<WorkerToken>>, ApiError> {
    Ok(Json(workers.list_tokens().await?))
}

/// Creates a single-use registration token (default lifetime one hour); the token is in
/// this answer only.
#[utoipa::path(post, path = "/api/worker-tokens", tag = "workers", request_body = CreateWorkerToken,
    security((), ("bearer" = [])),
    responses(
        (status = 201, description = "Created; the token is shown only here", body = CreatedWorkerToken,
            headers(("Location" = String, description = "URL of the token"))),
        (status = 422, description = "Invalid lifetime or note", body = Problem, content_type = "application/problem+json"),
        JsonBody,
    ))]
async fn create_token(
    State(workers): State<Workers>,
    ApiJson(body): ApiJson<CreateWorkerToken>,
) -> Result<impl IntoResponse, ApiError> {
    let created = workers.create_token(body).await?;
    let location = format!("/api/worker-tokens/{}", created.details.id);
    Ok((
        StatusCode::CREATED,
        [(header::LOCATION, location)],
        Json(created),
    ))
}

/// Revokes an unused registration token; a used one cannot be revoked (409) — revoke the
/// worker instead.
#[utoipa::path(delete, path = "/api/worker-tokens/{id}", tag = "workers",
    params(("id" = Uuid, Path, description = "Token id")),
    security((), ("bearer" = [])),
    responses(
        (status = 204, description = "Revoked"),
        (status = 404, description = "No token with this id", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "The token was used", body = Problem, content_type = "application/problem+json"),
        Auth,
    ))]
async fn revoke_token(
    State(workers): State<Workers>,
    ApiPath(id): ApiPath<Uuid>,
) -> Result<StatusCode, ApiError> {
    workers.revoke_token(id).await?;
    Ok(StatusCode::NO_CONTENT)
}
