//! One page per section of the app.

mod agents;
mod concurrency;
mod playground;
mod providers;
mod runs;
mod tags;
mod tasks;
mod worker;
mod workers;

pub use agents::AgentsPage;
pub use concurrency::ConcurrencyPage;
pub use playground::PlaygroundPage;
pub use providers::ProvidersPage;
pub use runs::AllRunsPage;
pub use tasks::TasksPage;
pub use worker::WorkerPage;
pub use workers::WorkersPage;

use contracts::FieldError;
use leptos::prelude::*;
use uuid::Uuid;

use crate::api::ApiError;
use crate::store::{Item, Live};

/// Which form a page shows above its list.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Editing {
    Closed,
    New,
    Edit(Uuid),
}

/// A list page's heading with its "new" button, which opens the form above the list.
fn page_head(
    title: &'static str,
    new_id: &'static str,
    new_label: &'static str,
    editing: RwSignal<Editing>,
) -> impl IntoView {
    view! {
        <div class="page-head">
            <h2>{title}</h2>
            <button
                type="button"
                id=new_id
                class="btn btn-primary"
                on:click=move |_| editing.set(Editing::New)
            >
                {new_label}
            </button>
        </div>
    }
}

/// What a card's "Edit" does: open the form for it and bring the form into view.
fn edit_in_form(editing: RwSignal<Editing>) -> impl Fn(Uuid) + Copy + 'static {
    move |id| {
        editing.set(Editing::Edit(id));
        scroll_to_top();
    }
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

/// A comma-separated list of names (workers, tags), each trimmed, empty ones dropped.
fn comma_list(text: &str) -> Vec<String> {
    text.split(',')
        .map(str::trim)
        .filter(|name| !name.is_empty())
        .map(str::to_owned)
        .collect()
}

/// The state every create/edit form keeps about its save: in flight, the failure and the
/// field errors the server sent.
#[derive(Clone, Copy)]
struct SaveState {
    saving: RwSignal<bool>,
    failure: RwSignal<Option<ApiError>>,
    errors: RwSignal<Vec<FieldError>>,
}

impl SaveState {
    fn new() -> SaveState {
        SaveState {
            saving: RwSignal::new(false),
            failure: RwSignal::new(None),
            errors: RwSignal::new(Vec::new()),
        }
    }

    /// Applies the server's answer to a save: the saved item goes into the live list at once
    /// and the form closes, or the form shows the field errors and the failure.
    fn finish<T: Item>(self, result: Result<T, ApiError>, live: Live<T>, on_done: impl Fn()) {
        self.saving.set(false);
        match result {
            Ok(item) => {
                live.merge(item);
                on_done();
            }
            Err(e) => {
                self.errors.set(e.errors.clone());
                self.failure.set(Some(e));
            }
        }
    }
}
