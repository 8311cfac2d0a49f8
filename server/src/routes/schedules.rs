//! Scheduled runs (`/api/schedules…`): an assignment's input run on a cron expression or
//! every N seconds, with "run now".

use axum::Json;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::IntoResponse;
use contracts::{CreateSchedule, Problem, Run, Schedule, ScheduleQuery, UpdateSchedule};
use utoipa_axum::{router::OpenApiRouter, routes};
use uuid::Uuid;

use super::problems::{Auth, JsonBody, Listing};
use crate::error::ApiError;
use crate::extract::{ApiJson, ApiPath, ApiQuery};
use crate::services::Schedules;

pub fn routes() -> OpenApiRouter<crate::state::AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_schedules, create_schedule))
        .routes(routes!(get_schedule, update_schedule, delete_schedule))
        .routes(routes!(run_schedule_now))
}

/// Schedules, oldest first, optionally of one agent and/or task, each with its next fire
/// times.
#[utoipa::path(get, path = "/api/schedules", tag = "schedules", params(ScheduleQuery),
    security((), ("bearer" = [])),
    responses((status = 200, description = "The schedules", body = Vec<Schedule>), Listing))]
async fn list_schedules(
    State(schedules): State<Schedules>,
    ApiQuery(query): ApiQuery<ScheduleQuery>,
) -> Result<Json<Vec<Schedule>>, ApiError> {
    Ok(Json(schedules.list(query.agent_id, query.task_id).await?))
}

/// Creates a schedule of a task assigned to an agent. Rules beyond the schema: exactly one
/// of `cron` and `every_secs`; the cron expression must parse and fire again; `timezone`
/// must be an IANA name; `input` must match the task's request schema.
#[utoipa::path(post, path = "/api/schedules", tag = "schedules",
    request_body = CreateSchedule,
    security((), ("bearer" = [])),
    responses(
        (status = 201, description = "Created", body = Schedule,
            headers(("Location" = String, description = "URL of the schedule"))),
        (status = 404, description = "No such agent or task", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "The task is not assigned to the agent, or the agent cannot run", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Invalid timing, time zone or input", body = Problem, content_type = "application/problem+json"),
        JsonBody,
    ))]
async fn create_schedule(
    State(schedules): State<Schedules>,
    ApiJson(body): ApiJson<CreateSchedule>,
) -> Result<impl IntoResponse, ApiError> {
    let schedule = schedules.create(body).await?;
    let location = format!("/api/schedules/{}", schedule.id);
    Ok((
        StatusCode::CREATED,
        [(header::LOCATION, location)],
        Json(schedule),
    ))
}

/// One schedule with its next fire times.
#[utoipa::path(get, path = "/api/schedules/{id}", tag = "schedules",
    params(("id" = Uuid, Path, description = "Schedule id")),
    security((), ("bearer" = [])),
    responses(
        (status = 200, description = "The schedule", body = Schedule),
        (status = 404, description = "No schedule with this id", body = Problem, content_type = "application/problem+json"),
        Auth,
    ))]
async fn get_schedule(
    State(schedules): State<Schedules>,
    ApiPath(id): ApiPath<Uuid>,
) -> Result<Json<Schedule>, ApiError> {
    Ok(Json(schedules.get(id).await?))
}

/// Replaces a schedule; its next fire time is counted again from now. The rules of create
/// apply.
#[utoipa::path(put, path = "/api/schedules/{id}", tag = "schedules",
    request_body = UpdateSchedule,
    params(("id" = Uuid, Path, description = "Schedule id")),
    security((), ("bearer" = [])),
    responses(
        (status = 200, description = "The schedule as stored", body = Schedule),
        (status = 404, description = "No such schedule, agent or task", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "The task is not assigned to the agent, or the agent cannot run", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Invalid timing, time zone or input", body = Problem, content_type = "application/problem+json"),
        JsonBody,
    ))]
async fn update_schedule(
    State(schedules): State<Schedules>,
    ApiPath(id): ApiPath<Uuid>,
    ApiJson(body): ApiJson<UpdateSchedule>,
) -> Result<Json<Schedule>, ApiError> {
    Ok(Json(schedules.update(id, body).await?))
}

/// Deletes a schedule (its runs stay).
#[utoipa::path(delete, path = "/api/schedules/{id}", tag = "schedules",
    params(("id" = Uuid, Path, description = "Schedule id")),
    security((), ("bearer" = [])),
    responses(
        (status = 204, description = "Deleted"),
        (status = 404, description = "No schedule with this id", body = Problem, content_type = "application/problem+json"),
        Auth,
    ))]
async fn delete_schedule(
    State(schedules): State<Schedules>,
    ApiPath(id): ApiPath<Uuid>,
) -> Result<StatusCode, ApiError> {
    schedules.delete(id).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Starts the schedule's run now (enabled or not); its next fire time is counted again from
/// now.
#[utoipa::path(post, path = "/api/schedules/{id}/run", tag = "schedules",
    params(("id" = Uuid, Path, description = "Schedule id")),
    security((), ("bearer" = [])),
    responses(
        (status = 202, description = "Queued", body = Run,
            headers(("Location" = String, description = "URL of the run"))),
        (status = 404, description = "No schedule with this id, or its agent or task is gone", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "The schedule's previous run is unfinished, or the agent cannot run", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "The input no longer matches the task's request schema", body = Problem, content_type = "application/problem+json"),
        Auth,
    ))]
async fn run_schedule_now(
    State(schedules): State<Schedules>,
    ApiPath(id): ApiPath<Uuid>,
) -> Result<impl IntoResponse, ApiError> {
    let run = schedules.run_now(id).await?;
    let location = format!("/api/runs/{}", run.id);
    Ok((
        StatusCode::ACCEPTED,
        [(header::LOCATION, location)],
        Json(run),
    ))
}
