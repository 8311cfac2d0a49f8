//! Shared application state handed to every handler.

use std::sync::Arc;

use sea_orm::DatabaseConnection;
use tokio::sync::{mpsc, watch};

use crate::config::Config;
use crate::events::EventHub;
use crate::outbound::{GuardedClient, OutboundPolicy};
use crate::registry::Registry;
use crate::runs::Runs;
use crate::secrets::Keyring;
use crate::validator::Validator;

/// Cheap to clone: every field is a handle.
#[derive(Clone)]
pub struct AppState {
    pub db: DatabaseConnection,
    pub keyring: Arc<Keyring>,
    pub config: Arc<Config>,
    pub events: Arc<EventHub>,
    /// Decides which provider URLs may be reached (checked at create/update too).
    pub policy: Arc<OutboundPolicy>,
    /// The only HTTP client that talks to providers.
    pub outbound: GuardedClient,
    pub validator: Arc<Validator>,
    pub registry: Arc<Registry>,
    pub runs: Arc<Runs>,
    /// Becomes `true` when the server is stopping; long-lived tasks (sockets) watch it.
    pub shutdown: watch::Receiver<bool>,
    /// Each WebSocket session holds a clone; shutdown waits until all are dropped.
    pub sockets: mpsc::Sender<()>,
}
