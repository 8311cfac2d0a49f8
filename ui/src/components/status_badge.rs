//! A provider's connectivity status as a coloured badge, with its age.

use contracts::{Provider, ValidationStatus};
use leptos::prelude::*;

/// Milliseconds since the epoch, ticking once a second while the page is open.
pub fn use_clock() -> RwSignal<f64> {
    let now = RwSignal::new(js_sys::Date::now());
    if let Ok(handle) = set_interval_with_handle(
        move || now.set(js_sys::Date::now()),
        std::time::Duration::from_secs(1),
    ) {
        on_cleanup(move || handle.clear());
    }
    now
}

fn ago(seconds: i64) -> String {
    match seconds {
        ..=0 => "checked just now".to_owned(),
        1..=119 => format!("checked {seconds} s ago"),
        120..=7199 => format!("checked {} min ago", seconds / 60),
        _ => format!("checked {} h ago", seconds / 3600),
    }
}

#[component]
pub fn StatusBadge(provider: Signal<Provider>, now: RwSignal<f64>) -> impl IntoView {
    let status = move || provider.with(|p| p.validation_status);
    let class = move || format!("badge badge-{}", status().as_str());
    let age = move || {
        provider.with(|p| p.validated_at).map(|at| {
            let seconds = ((now.get() - at.timestamp_millis() as f64) / 1000.0).floor() as i64;
            ago(seconds)
        })
    };
    view! {
        <div class="status">
            <span class=class data-testid="status-badge" data-status=move || status().as_str()>
                {move || status().as_str()}
            </span>
            {move || {
                (status() == ValidationStatus::Error)
                    .then(|| provider.with(|p| p.validation_error.clone()))
                    .flatten()
                    .map(|e| view! { <span class="status-error" data-testid="status-error">{e}</span> })
            }}
            <span class="status-age muted" data-testid="status-age">{age}</span>
        </div>
    }
}
