//! Providers section: the LLM providers agents can use.

use leptos::prelude::*;

use crate::components::EmptyState;

#[component]
pub fn ProvidersPage() -> impl IntoView {
    view! {
        <EmptyState
            title="No providers yet"
            hint="Add an LLM provider to give your agents a model to talk to."
        />
    }
}
