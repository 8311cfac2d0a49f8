//! What a list shows while its first load runs, or when that load failed.

use leptos::prelude::*;

use crate::api::ApiError;

#[component]
pub fn Loading(what: &'static str) -> impl IntoView {
    view! {
        <div class="loading" role="status" aria-live="polite">
            <span class="spinner" aria-hidden="true"></span>
            {format!("Loading {what}…")}
        </div>
    }
}

/// A failed load, with a retry that calls `retry`.
#[component]
pub fn LoadFailed(error: ApiError, retry: impl Fn() + 'static) -> impl IntoView {
    view! {
        <div class="empty-state" role="alert">
            <p class="empty-title">"Could not load this list"</p>
            <p class="empty-hint">{error.detail}</p>
            <button type="button" class="btn" on:click=move |_| retry()>
                "Try again"
            </button>
        </div>
    }
}
