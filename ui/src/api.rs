//! The REST client: the only place that does HTTP. Typed with `contracts`; every failure
//! becomes an [`ApiError`] parsed from the server's problem+json.

use std::fmt;

use contracts::{
    Agent, Assignment, ConcurrencyGroup, CreateAgent, CreateAssignment, CreateConcurrencyGroup,
    CreateProvider, CreateRun, CreateTag, CreateTask, CreateWorkerToken, CreatedWorkerToken,
    FieldError, Page, Pool, Problem, ProblemCode, Provider, Run, RunEvent, RunQuery, SetWorkerTags,
    Tag, Task, TaskSummary, UpdateAgent, UpdateProvider, UpdateTask, UpdateWorker, Worker,
    WorkerDetail,
};
use gloo_net::http::{Request, RequestBuilder, Response};
use leptos::prelude::*;
use serde::Serialize;
use serde::de::DeserializeOwned;
use uuid::Uuid;

/// `sessionStorage` key of the API token: kept for the browser session only.
const TOKEN_KEY: &str = "agentry.token";

/// The server's largest page; lists are fetched whole, page by page.
const LIST_LIMIT: u64 = 200;
/// Pages fetched at most for one list (10,000 items), so a misbehaving server cannot loop us.
const MAX_PAGES: u64 = 50;

/// A failed API call, as the server described it (or as the network failed).
#[derive(Clone, Debug, PartialEq)]
pub struct ApiError {
    /// HTTP status; 0 when no response arrived.
    pub status: u16,
    /// The server's stable code; `None` for network failures and non-problem answers.
    pub code: Option<ProblemCode>,
    pub detail: String,
    pub errors: Vec<FieldError>,
}

impl ApiError {
    fn network(detail: impl fmt::Display) -> Self {
        Self {
            status: 0,
            code: None,
            detail: format!("Could not reach the server: {detail}"),
            errors: Vec::new(),
        }
    }

    fn unreadable(status: u16, detail: impl fmt::Display) -> Self {
        Self {
            status,
            code: None,
            detail: format!("Unexpected answer from the server ({status}): {detail}"),
            errors: Vec::new(),
        }
    }
}

impl fmt::Display for ApiError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.detail)
    }
}

thread_local! {
    /// Raised when the API answers 401: the app shell then asks for a token. Reference
    /// counted rather than arena-allocated so it belongs to no component.
    static TOKEN_REQUIRED: ArcRwSignal<bool> = ArcRwSignal::new(false);
}

/// True while the server wants a token the browser does not have (or has wrong).
pub fn token_required() -> ArcRwSignal<bool> {
    TOKEN_REQUIRED.with(Clone::clone)
}

fn session_storage() -> Option<web_sys::Storage> {
    web_sys::window()?.session_storage().ok().flatten()
}

/// The API token stored for this browser session, if any.
pub fn token() -> Option<String> {
    session_storage()?
        .get_item(TOKEN_KEY)
        .ok()
        .flatten()
        .filter(|t| !t.is_empty())
}

/// Stores (or, when blank, forgets) the API token for this browser session.
pub fn set_token(token: &str) {
    if let Some(storage) = session_storage() {
        // Storage can refuse (private mode quota); the token then lasts until reload only,
        // which is no worse than asking again.
        let _ = if token.trim().is_empty() {
            storage.remove_item(TOKEN_KEY)
        } else {
            storage.set_item(TOKEN_KEY, token.trim())
        };
    }
    token_required().set(false);
}

fn authorized(builder: RequestBuilder) -> RequestBuilder {
    match token() {
        Some(token) => builder.header("Authorization", &format!("Bearer {token}")),
        None => builder,
    }
}

/// Sends a request and turns every non-2xx answer into an [`ApiError`].
async fn send(builder: RequestBuilder, body: Option<String>) -> Result<Response, ApiError> {
    let builder = authorized(builder).header("Accept", "application/json");
    let request = match body {
        Some(json) => builder
            .header("Content-Type", "application/json")
            .body(json),
        None => builder.build(),
    }
    .map_err(ApiError::network)?;
    let response = request.send().await.map_err(ApiError::network)?;
    if response.ok() {
        return Ok(response);
    }
    let status = response.status();
    if status == 401 {
        token_required().set(true);
    }
    let text = response.text().await.unwrap_or_default();
    Err(match serde_json::from_str::<Problem>(&text) {
        Ok(problem) => ApiError {
            status,
            code: Some(problem.code),
            detail: problem.detail.unwrap_or(problem.title),
            errors: problem.errors,
        },
        Err(_) => ApiError::unreadable(status, response.status_text()),
    })
}

async fn json<T: DeserializeOwned>(
    builder: RequestBuilder,
    body: Option<String>,
) -> Result<T, ApiError> {
    let response = send(builder, body).await?;
    let status = response.status();
    response
        .json::<T>()
        .await
        .map_err(|e| ApiError::unreadable(status, e))
}

async fn empty(builder: RequestBuilder) -> Result<(), ApiError> {
    send(builder, None).await.map(drop)
}

fn body(value: &impl Serialize) -> Result<Option<String>, ApiError> {
    serde_json::to_string(value)
        .map(Some)
        .map_err(|e| ApiError::unreadable(0, e))
}

fn get(path: &str) -> RequestBuilder {
    Request::get(path)
}

/// Every item of a list resource: the UI shows whole lists and patches them live, so it
/// follows the pages until `total` is reached.
async fn list<T: DeserializeOwned>(path: &str) -> Result<Page<T>, ApiError> {
    let mut all: Vec<T> = Vec::new();
    let mut total = 0;
    for page in 0..MAX_PAGES {
        let offset = (page * LIST_LIMIT).to_string();
        let limit = LIST_LIMIT.to_string();
        let builder =
            Request::get(path).query([("limit", limit.as_str()), ("offset", offset.as_str())]);
        let next: Page<T> = json(builder, None).await?;
        total = next.total;
        let fetched = next.items.len();
        all.extend(next.items);
        if fetched == 0 || all.len() as u64 >= total {
            break;
        }
    }
    Ok(Page {
        items: all,
        total,
        limit: LIST_LIMIT,
        offset: 0,
    })
}

// Providers

pub async fn list_providers() -> Result<Page<Provider>, ApiError> {
    list("/api/providers").await
}

#[expect(
    dead_code,
    reason = "part of the typed API surface; no page needs it yet"
)]
pub async fn get_provider(id: Uuid) -> Result<Provider, ApiError> {
    json(get(&format!("/api/providers/{id}")), None).await
}

pub async fn create_provider(input: &CreateProvider) -> Result<Provider, ApiError> {
    json(Request::post("/api/providers"), body(input)?).await
}

pub async fn update_provider(id: Uuid, input: &UpdateProvider) -> Result<Provider, ApiError> {
    json(Request::put(&format!("/api/providers/{id}")), body(input)?).await
}

pub async fn delete_provider(id: Uuid) -> Result<(), ApiError> {
    empty(Request::delete(&format!("/api/providers/{id}"))).await
}

/// Queues a connectivity check; the outcome arrives as `validation_update` events.
pub async fn validate_provider(id: Uuid) -> Result<Provider, ApiError> {
    let path = format!("/api/providers/{id}/validate");
    json(Request::post(&path), None).await
}

// Agents

pub async fn list_agents() -> Result<Page<Agent>, ApiError> {
    list("/api/agents").await
}

pub async fn get_agent(id: Uuid) -> Result<Agent, ApiError> {
    json(get(&format!("/api/agents/{id}")), None).await
}

pub async fn create_agent(input: &CreateAgent) -> Result<Agent, ApiError> {
    json(Request::post("/api/agents"), body(input)?).await
}

pub async fn update_agent(id: Uuid, input: &UpdateAgent) -> Result<Agent, ApiError> {
    json(Request::put(&format!("/api/agents/{id}")), body(input)?).await
}

pub async fn delete_agent(id: Uuid) -> Result<(), ApiError> {
    empty(Request::delete(&format!("/api/agents/{id}"))).await
}

// Assignments

#[expect(
    dead_code,
    reason = "part of the typed API surface; no page needs it yet"
)]
pub async fn list_agent_tasks(agent_id: Uuid) -> Result<Page<TaskSummary>, ApiError> {
    list(&format!("/api/agents/{agent_id}/tasks")).await
}

pub async fn assign_task(agent_id: Uuid, task_id: Uuid) -> Result<Assignment, ApiError> {
    let path = format!("/api/agents/{agent_id}/tasks");
    json(Request::post(&path), body(&CreateAssignment { task_id })?).await
}

pub async fn unassign_task(agent_id: Uuid, task_id: Uuid) -> Result<(), ApiError> {
    empty(Request::delete(&format!(
        "/api/agents/{agent_id}/tasks/{task_id}"
    )))
    .await
}

// Tasks

pub async fn list_tasks() -> Result<Page<Task>, ApiError> {
    list("/api/tasks").await
}

#[expect(
    dead_code,
    reason = "part of the typed API surface; no page needs it yet"
)]
pub async fn get_task(id: Uuid) -> Result<Task, ApiError> {
    json(get(&format!("/api/tasks/{id}")), None).await
}

pub async fn create_task(input: &CreateTask) -> Result<Task, ApiError> {
    json(Request::post("/api/tasks"), body(input)?).await
}

pub async fn update_task(id: Uuid, input: &UpdateTask) -> Result<Task, ApiError> {
    json(Request::put(&format!("/api/tasks/{id}")), body(input)?).await
}

pub async fn delete_task(id: Uuid) -> Result<(), ApiError> {
    empty(Request::delete(&format!("/api/tasks/{id}"))).await
}

// Runs

/// Starts a run. `sync` answers with the finished run (also when it failed), `async` with
/// the queued one.
pub async fn create_run(agent_id: Uuid, task_id: Uuid, input: &CreateRun) -> Result<Run, ApiError> {
    let path = format!("/api/agents/{agent_id}/tasks/{task_id}/runs");
    json(Request::post(&path), body(input)?).await
}

/// Runs, newest first, filtered by agent, task and status.
pub async fn list_runs(query: &RunQuery) -> Result<Page<Run>, ApiError> {
    let mut params: Vec<(&str, String)> = Vec::new();
    if let Some(id) = query.agent_id {
        params.push(("agent_id", id.to_string()));
    }
    if let Some(id) = query.task_id {
        params.push(("task_id", id.to_string()));
    }
    if let Some(id) = query.worker_id {
        params.push(("worker_id", id.to_string()));
    }
    if let Some(status) = query.status {
        params.push(("status", status.as_str().to_owned()));
    }
    if let Some(limit) = query.limit {
        params.push(("limit", limit.to_string()));
    }
    if let Some(offset) = query.offset {
        params.push(("offset", offset.to_string()));
    }
    json(Request::get("/api/runs").query(params), None).await
}

pub async fn get_run(id: Uuid) -> Result<Run, ApiError> {
    json(get(&format!("/api/runs/{id}")), None).await
}

/// A run's append-only history, oldest first.
pub async fn run_events(id: Uuid) -> Result<Vec<RunEvent>, ApiError> {
    json(get(&format!("/api/runs/{id}/events")), None).await
}

pub async fn cancel_run(id: Uuid) -> Result<Run, ApiError> {
    json(Request::post(&format!("/api/runs/{id}/cancel")), None).await
}

/// A new run with the same input, linked to `id`.
pub async fn retry_run(id: Uuid) -> Result<Run, ApiError> {
    json(Request::post(&format!("/api/runs/{id}/retry")), None).await
}

// Workers

pub async fn list_workers() -> Result<Vec<Worker>, ApiError> {
    json(get("/api/workers"), None).await
}

pub async fn get_worker(id: Uuid) -> Result<WorkerDetail, ApiError> {
    json(get(&format!("/api/workers/{id}")), None).await
}

pub async fn update_worker(id: Uuid, input: &UpdateWorker) -> Result<Worker, ApiError> {
    json(Request::patch(&format!("/api/workers/{id}")), body(input)?).await
}

/// Revokes a remote worker.
pub async fn delete_worker(id: Uuid) -> Result<(), ApiError> {
    empty(Request::delete(&format!("/api/workers/{id}"))).await
}

/// Replaces a worker's tags.
pub async fn set_worker_tags(id: Uuid, input: &SetWorkerTags) -> Result<Worker, ApiError> {
    json(
        Request::put(&format!("/api/workers/{id}/tags")),
        body(input)?,
    )
    .await
}

// Tags

pub async fn list_tags() -> Result<Vec<Tag>, ApiError> {
    json(get("/api/tags"), None).await
}

pub async fn create_tag(input: &CreateTag) -> Result<Tag, ApiError> {
    json(Request::post("/api/tags"), body(input)?).await
}

pub async fn delete_tag(id: Uuid) -> Result<(), ApiError> {
    empty(Request::delete(&format!("/api/tags/{id}"))).await
}

pub async fn list_concurrency_groups() -> Result<Vec<ConcurrencyGroup>, ApiError> {
    json(get("/api/concurrency-groups"), None).await
}

pub async fn create_concurrency_group(
    input: &CreateConcurrencyGroup,
) -> Result<ConcurrencyGroup, ApiError> {
    json(Request::post("/api/concurrency-groups"), body(input)?).await
}

pub async fn update_concurrency_group(
    id: Uuid,
    input: &CreateConcurrencyGroup,
) -> Result<ConcurrencyGroup, ApiError> {
    json(
        Request::put(&format!("/api/concurrency-groups/{id}")),
        body(input)?,
    )
    .await
}

pub async fn delete_concurrency_group(id: Uuid) -> Result<(), ApiError> {
    empty(Request::delete(&format!("/api/concurrency-groups/{id}"))).await
}

pub async fn pool() -> Result<Pool, ApiError> {
    json(get("/api/workers/pool"), None).await
}

pub async fn create_worker_token(
    input: &CreateWorkerToken,
) -> Result<CreatedWorkerToken, ApiError> {
    json(Request::post("/api/worker-tokens"), body(input)?).await
}
