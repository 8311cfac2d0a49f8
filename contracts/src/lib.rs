//! Wire types shared by the server, the web UI and the black-box tests.
//!
//! Plain serde types only: this crate compiles for the host and for wasm32, and never depends
//! on axum, sea-orm or tokio. OpenAPI derives are behind the `openapi` feature.

mod agents;
mod assignments;
mod common;
mod concurrency;
mod problem;
mod providers;
pub mod rules;
mod runs;
mod schedules;
mod tasks;
mod wire;
pub mod worker;
mod workers;
mod ws;

pub use agents::{Agent, AgentSummary, CreateAgent, UpdateAgent};
pub use assignments::{Assignment, CreateAssignment};
pub use common::{ListQuery, Page};
pub use concurrency::{
    ConcurrencyGroup, CreateConcurrencyGroup, MAX_GROUP_LIMIT, UpdateConcurrencyGroup,
};
pub use problem::{FieldError, Problem, ProblemCode};
pub use providers::{
    CreateProvider, CredentialLocation, Provider, ProviderKind, ProviderSummary, UpdateProvider,
    ValidationStatus,
};
pub use runs::{CreateRun, Run, RunEvent, RunEventKind, RunMode, RunQuery, RunSnapshot, RunStatus};
pub use schedules::{
    CatchUp, CreateSchedule, MAX_EVERY_SECS, Schedule, ScheduleQuery, UpdateSchedule,
};
pub use tasks::{CreateTask, Task, TaskSummary, UpdateTask};
pub use wire::WireEnum;
pub use workers::{
    CreateTag, CreateWorkerToken, CreatedWorkerToken, Pool, RegisterWorker, RegisteredWorker,
    SetWorkerTags, Tag, UpdateWorker, Worker, WorkerDetail, WorkerHealth, WorkerHealthSample,
    WorkerStatus, WorkerToken, WorkerTokenStatus,
};
pub use ws::{Event, EventKind, Topic, WsClientMessage, WsServerMessage};
