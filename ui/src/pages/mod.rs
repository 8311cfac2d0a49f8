//! One page per section of the app.

mod agents;
mod playground;
mod providers;
mod runs;
mod tasks;

pub use agents::AgentsPage;
pub use playground::PlaygroundPage;
pub use providers::ProvidersPage;
pub use tasks::TasksPage;

use uuid::Uuid;

/// Which form a page shows above its list.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Editing {
    Closed,
    New,
    Edit(Uuid),
}

/// Brings the form (at the top of the page) into view.
fn scroll_to_top() {
    if let Some(window) = web_sys::window() {
        window.scroll_to_with_x_and_y(0.0, 0.0);
    }
}

/// Empty input means "not set".
fn optional(text: &str) -> Option<String> {
    let text = text.trim();
    (!text.is_empty()).then(|| text.to_owned())
}
