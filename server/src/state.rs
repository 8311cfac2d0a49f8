//! Shared application state handed to every handler.

use std::sync::Arc;

use sea_orm::DatabaseConnection;

use crate::config::Config;
use crate::secrets::Keyring;

/// Cheap to clone: every field is a handle.
#[derive(Clone)]
pub struct AppState {
    pub db: DatabaseConnection,
    pub keyring: Arc<Keyring>,
    pub config: Arc<Config>,
}
