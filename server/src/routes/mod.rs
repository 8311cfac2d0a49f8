//! HTTP routes: thin handlers (parse → one service call → contracts), one file per resource,
//! assembled into one router whose OpenAPI document is generated from the same code.

mod agents;
mod assignments;
mod concurrency;
mod health;
mod links;
mod problems;
mod providers;
mod runs;
mod schedules;
mod tags;
mod tasks;
pub mod worker_socket;
mod workers;
mod ws;

pub use ws::SHUTDOWN_GRACE;

use axum::http::{HeaderMap, Method, Uri, header};
use axum::response::{IntoResponse, Response};
use axum::{Router, routing::get};
use contracts::ListQuery;
use contracts::rules::MAX_OFFSET;
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{Modify, OpenApi};
use utoipa_axum::router::OpenApiRouter;

use crate::error::ApiError;
use crate::state::AppState;

#[derive(OpenApi)]
#[openapi(
    info(
        title = "Agentry API",
        description = "Manage LLM providers, agents and JSON-Schema-typed tasks. Errors are \
                       RFC 9457 problem+json with a stable `code`. When the server runs with \
                       AGENTRY_API_TOKEN, every /api operation needs `Authorization: Bearer <token>`.",
        license(name = "Apache-2.0")
    ),
    modifiers(&BearerAuth),
    tags(
        (name = "providers", description = "LLM endpoints and their encrypted credentials"),
        (name = "agents", description = "Provider + model + prompts + parameters"),
        (name = "tasks", description = "Request and response JSON Schemas"),
        (name = "assignments", description = "Which tasks an agent may run"),
        (name = "runs", description = "Executions of tasks by agents, with schema-checked output"),
        (name = "schedules", description = "Runs started on a cron expression or every N seconds"),
        (name = "health", description = "Liveness and readiness"),
    )
)]
struct ApiDoc;

struct BearerAuth;

impl Modify for BearerAuth {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(HttpBuilder::new().scheme(HttpAuthScheme::Bearer).build()),
        );
    }
}

/// Every documented route, with its OpenAPI description.
fn documented() -> OpenApiRouter<AppState> {
    OpenApiRouter::with_openapi(ApiDoc::openapi())
        .merge(providers::routes())
        .merge(agents::routes())
        .merge(assignments::routes())
        .merge(tasks::routes())
        .merge(runs::routes())
        .merge(workers::routes())
        .merge(tags::routes())
        .merge(concurrency::routes())
        .merge(schedules::routes())
        .merge(health::routes())
}

/// The OpenAPI document, generated from the routes (no database needed).
pub fn openapi() -> utoipa::openapi::OpenApi {
    let mut openapi = documented().into_openapi();
    links::add(&mut openapi);
    openapi
}

/// The OpenAPI document as pretty JSON with a trailing newline: the committed
/// `contracts/openapi.json` must equal this byte for byte.
pub fn openapi_json() -> String {
    let mut json = openapi().to_pretty_json().unwrap_or_default();
    json.push('\n');
    json
}

/// The whole HTTP surface except middleware.
pub fn router() -> Router<AppState> {
    let (router, mut spec) = documented().split_for_parts();
    links::add(&mut spec);
    let mut spec_json = spec.to_pretty_json().unwrap_or_default();
    spec_json.push('\n');
    router
        .merge(ws::routes())
        .merge(worker_socket::routes())
        .route(
            "/openapi.json",
            get(move || async move { ([(header::CONTENT_TYPE, "application/json")], spec_json) }),
        )
        .method_not_allowed_fallback(|| async { ApiError::MethodNotAllowed })
        .fallback(fallback)
}

/// Unknown /api paths get a problem; everything else belongs to the web app.
async fn fallback(method: Method, uri: Uri, headers: HeaderMap) -> Response {
    let path = uri.path();
    let is_api = path == "/api" || path.starts_with("/api/") || path == "/ws";
    if is_api || !(method == Method::GET || method == Method::HEAD) {
        return ApiError::RouteNotFound(format!("{method} {path}")).into_response();
    }
    crate::assets::serve(method, uri, headers).await
}

/// Resolves `?limit&offset` to concrete values, rejecting out-of-range ones.
fn page_params(query: ListQuery) -> Result<(u64, u64), ApiError> {
    let limit = query.limit.unwrap_or(ListQuery::DEFAULT_LIMIT);
    if limit == 0 || limit > ListQuery::MAX_LIMIT {
        return Err(ApiError::InvalidParameter(format!(
            "limit must be between 1 and {}",
            ListQuery::MAX_LIMIT
        )));
    }
    let offset = query.offset.unwrap_or(0);
    if offset > MAX_OFFSET {
        return Err(ApiError::InvalidParameter(format!(
            "offset must be between 0 and {MAX_OFFSET}"
        )));
    }
    Ok((limit, offset))
}
