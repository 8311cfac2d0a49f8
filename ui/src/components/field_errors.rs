//! Server-side validation messages shown next to the field (or form) they concern.

use contracts::FieldError;
use leptos::prelude::*;

use crate::api::ApiError;

/// Messages whose JSON pointer is `path` or lies under it.
#[component]
pub fn FieldErrors(errors: RwSignal<Vec<FieldError>>, path: &'static str) -> impl IntoView {
    let mine = move || {
        errors.with(|all| {
            all.iter()
                .filter(|e| e.path == path || e.path.starts_with(&format!("{path}/")))
                .map(|e| e.message.clone())
                .collect::<Vec<_>>()
        })
    };
    view! {
        <For each=mine key=Clone::clone let:message>
            <p class="field-error" role="alert">{message}</p>
        </For>
    }
}

/// The form-level failure: the server's detail, and every field message no field claims
/// (`claimed` lists the paths that have their own [`FieldErrors`]).
#[component]
pub fn FormError(
    failure: RwSignal<Option<ApiError>>,
    claimed: &'static [&'static str],
) -> impl IntoView {
    move || {
        failure.get().map(|failure| {
            let unclaimed: Vec<String> = failure
                .errors
                .iter()
                .filter(|e| {
                    !claimed
                        .iter()
                        .any(|p| e.path == *p || e.path.starts_with(&format!("{p}/")))
                })
                .map(|e| format!("{}: {}", e.path, e.message))
                .collect();
            let detail = if failure.errors.is_empty() {
                failure.detail.clone()
            } else {
                "Please correct the highlighted fields.".to_owned()
            };
            view! {
                <div class="form-error" role="alert" data-testid="form-error">
                    <p>{detail}</p>
                    <ul>{unclaimed.into_iter().map(|m| view! { <li>{m}</li> }).collect_view()}</ul>
                </div>
            }
        })
    }
}
