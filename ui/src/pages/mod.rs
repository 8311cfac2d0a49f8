//! One page per top-level section of the app.

mod agents;
mod providers;
mod tasks;

pub use agents::AgentsPage;
pub use providers::ProvidersPage;
pub use tasks::TasksPage;
