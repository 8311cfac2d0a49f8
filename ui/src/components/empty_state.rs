//! Placeholder shown when a list has nothing in it yet.

use leptos::prelude::*;

#[component]
pub fn EmptyState(
    /// One short sentence, e.g. "No agents yet".
    title: &'static str,
    /// What will appear here, or how to get started.
    hint: &'static str,
) -> impl IntoView {
    view! {
        <div class="empty-state">
            <p class="empty-title">{title}</p>
            <p class="empty-hint">{hint}</p>
        </div>
    }
}
