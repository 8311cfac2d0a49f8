//! Shared application state handed to every handler: the services, and what the WebSocket
//! and health routes need besides them.

use std::sync::Arc;

use axum::extract::FromRef;
use sea_orm::DatabaseConnection;

use crate::auth::AuthGuard;
use crate::background::Background;
use crate::config::Config;
use crate::events::EventHub;
use crate::services::{
    Agents, Assignments, ConcurrencyGroups, Providers, Runs, Schedules, Tags, Tasks, Workers,
};

/// Cheap to clone: every field is a handle.
#[derive(Clone)]
pub struct AppState {
    pub config: Arc<Config>,
    /// For the readiness check only; everything else reaches the database through a service.
    pub db: DatabaseConnection,
    /// WebSocket sessions subscribe here; services publish.
    pub events: Arc<EventHub>,
    /// WebSocket sessions are tracked, so a stop waits for their goodbyes.
    pub background: Background,
    /// Failed-token rate limit per client address (`/api` and `/ws`).
    pub auth_guard: Arc<AuthGuard>,
    pub providers: Providers,
    pub agents: Agents,
    pub tasks: Tasks,
    pub assignments: Assignments,
    pub runs: Runs,
    pub workers: Workers,
    pub tags: Tags,
    pub concurrency: ConcurrencyGroups,
    pub schedules: Schedules,
}

macro_rules! service_from_state {
    ($($service:ident => $field:ident),* $(,)?) => {
        $(
            impl FromRef<AppState> for $service {
                fn from_ref(state: &AppState) -> $service {
                    state.$field.clone()
                }
            }
        )*
    };
}

service_from_state!(
    Providers => providers,
    Agents => agents,
    Tasks => tasks,
    Assignments => assignments,
    Runs => runs,
    Workers => workers,
    Tags => tags,
    ConcurrencyGroups => concurrency,
    Schedules => schedules,
);
