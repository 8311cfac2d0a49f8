//! Tasks section: work submitted to agents and its results.

use leptos::prelude::*;

use crate::components::EmptyState;

#[component]
pub fn TasksPage() -> impl IntoView {
    view! { <EmptyState title="No tasks yet" hint="Tasks run by your agents will be listed here." /> }
}
