//! Agents section: the agents configured on this server.

use leptos::prelude::*;

use crate::components::EmptyState;

#[component]
pub fn AgentsPage() -> impl IntoView {
    view! { <EmptyState title="No agents yet" hint="Agents you create will be listed here." /> }
}
