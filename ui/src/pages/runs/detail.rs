//! The run shown in detail: status, result or errors, and its events.

use contracts::RunEventKind;

use super::*;

/// The run in the URL: status, result, facts and events, live.
#[component]
pub fn RunDetail(runs: Runs) -> impl IntoView {
    let state = Memo::new(move |_| {
        match (
            runs.selected.get(),
            runs.current.with(|r| r.as_ref().map(|r| r.id)),
            runs.current_error.get(),
        ) {
            (None, _, _) => 0u8,
            (Some(id), Some(shown), _) if id == shown => 3,
            (Some(_), _, Some(_)) => 2,
            (Some(_), _, None) => 1,
        }
    });
    move || {
        match state.get() {
        0 => view! {
            <h3 id="run-result-title">"Result"</h3>
            <EmptyState
                title="No run yet"
                hint="Fill in the input and press Run: the result appears here as it happens. Or open a past run from the history."
            />
        }
        .into_any(),
        1 => view! {
            <h3 id="run-result-title">"Result"</h3>
            <Loading what="the run" />
        }
        .into_any(),
        2 => {
            let detail = runs
                .current_error
                .get()
                .map(|e| e.detail)
                .unwrap_or_default();
            view! {
                <h3 id="run-result-title">"Result"</h3>
                <div class="empty-state" role="alert">
                    <p class="empty-title">"Could not load this run"</p>
                    <p class="empty-hint">{detail}</p>
                </div>
            }
            .into_any()
        }
        _ => view! { <RunView runs=runs /> }.into_any(),
    }
    }
}

#[component]
fn RunView(runs: Runs) -> impl IntoView {
    let run = move || runs.current.get();
    let field =
        move |f: fn(&Run) -> Option<String>| move || runs.current.with(|r| r.as_ref().and_then(f));
    let status = Memo::new(move |_| {
        runs.current
            .with(|r| r.as_ref().map_or(RunStatus::Queued, |r| r.status))
    });
    let attempts = move || runs.current.with(|r| r.as_ref().map_or(0, |r| r.attempts));
    let canceling = RwSignal::new(false);
    let cancel_error = RwSignal::new(None::<String>);
    let cancel = move |_| {
        let Some(id) = runs.current.with_untracked(|r| r.as_ref().map(|r| r.id)) else {
            return;
        };
        canceling.set(true);
        spawn_local(async move {
            match api::cancel_run(id).await {
                Ok(run) => {
                    runs.merge(run.clone());
                    runs.upsert(run);
                    cancel_error.set(None);
                }
                Err(e) => cancel_error.set(Some(e.detail)),
            }
            canceling.set(false);
        });
    };

    // Why no worker can take the queued run (its agent's routing matches none), while so.
    let waiting_reason = move || {
        runs.current
            .with(|r| r.as_ref().and_then(|r| r.waiting_reason.clone()))
    };
    let result = move || {
        match status.get() {
        RunStatus::Queued | RunStatus::Assigned | RunStatus::Running => view! {
            <div class="loading" data-testid="run-waiting">
                <span class="spinner" aria-hidden="true"></span>
                {move || {
                    match status.get() {
                        RunStatus::Queued => "Queued: waiting for a worker…",
                        RunStatus::Assigned => "Assigned: waiting for the worker to start it…",
                        _ => "Running: waiting for the model…",
                    }
                }}
            </div>
            {move || waiting_reason().map(|reason| view! {
                <p class="field-error" role="status" data-testid="run-waiting-reason">
                    {format!("No worker can take it: {reason}. It fails when its queue timeout passes.")}
                </p>
            })}
        }
        .into_any(),
        RunStatus::Succeeded => {
            let output = runs
                .current
                .with(|r| r.as_ref().and_then(|r| r.output.as_ref()).map(pretty))
                .unwrap_or_default();
            view! {
                <p class="run-valid" data-testid="run-valid">
                    "✓ valid against the task's response schema"
                </p>
                <pre class="json-block" data-testid="run-output" tabindex="0" aria-label="Output">
                    {output}
                </pre>
            }
            .into_any()
        }
        RunStatus::Failed | RunStatus::Canceled => {
            let error = runs
                .current
                .with(|r| r.as_ref().and_then(|r| r.error.clone()))
                .unwrap_or_default();
            let failed = status.get() == RunStatus::Failed;
            view! {
                <div class="run-error" role="alert" data-testid="run-error">
                    <p>{error}</p>
                </div>
                {failed.then(|| view! { <ValidationErrors runs=runs /> })}
            }
            .into_any()
        }
    }
    };

    let tokens = field(|r| match (r.prompt_tokens, r.completion_tokens) {
        (None, None) => None,
        (p, c) => Some(format!(
            "{} in · {} out",
            p.map_or("?".to_owned(), |n| n.to_string()),
            c.map_or("?".to_owned(), |n| n.to_string())
        )),
    });
    let facts = move || {
        let run = run()?;
        let mut rows: Vec<(&'static str, String)> = vec![
            ("Task", run.snapshot.task_name.clone()),
            ("Model", run.snapshot.model.clone()),
            ("Provider", run.snapshot.provider_name.clone()),
            ("Created", local_time(run.created_at.timestamp_millis())),
        ];
        if let Some(at) = run.started_at {
            rows.push(("Started", local_time(at.timestamp_millis())));
        }
        if let Some(at) = run.finished_at {
            rows.push(("Finished", local_time(at.timestamp_millis())));
        }
        if let Some(ms) = run.latency_ms {
            rows.push(("Latency", duration(ms)));
        }
        rows.push(("Run id", run.id.to_string()));
        Some(
            rows.into_iter()
                .map(|(k, v)| view! { <dt>{k}</dt><dd>{v}</dd> })
                .collect_view(),
        )
    };
    let input = move || runs.current.with(|r| r.as_ref().map(|r| pretty(&r.input)));
    let raw = field(|r| r.raw_output.clone());

    view! {
        <div class="run-head">
            <h3 id="run-result-title">"Result"</h3>
            <span
                class=move || badge_class(status.get())
                data-testid="run-status"
                data-status=move || status.get().as_str()
                role="status"
                aria-live="polite"
            >
                {move || status.get().as_str()}
            </span>
            <span class="muted small">
                "Attempts: " <span data-testid="run-attempts">{attempts}</span>
            </span>
            <Show when=move || !status.get().is_finished()>
                <button
                    type="button"
                    id="run-cancel"
                    class="btn btn-small btn-danger-quiet"
                    disabled=move || canceling.get()
                    on:click=cancel
                >
                    {move || if canceling.get() { "Canceling…" } else { "Cancel" }}
                </button>
            </Show>
        </div>
        {move || cancel_error.get().map(|e| view! { <p class="field-error" role="alert">{e}</p> })}
        {result}
        <dl class="facts" data-testid="run-facts">
            {facts}
            {move || tokens().map(|t| view! { <dt>"Tokens"</dt><dd>{t}</dd> })}
        </dl>
        <details class="run-more">
            <summary>"Input"</summary>
            <pre class="json-block" data-testid="run-input">{input}</pre>
        </details>
        {move || {
            raw()
                .map(|raw| {
                    view! {
                        <details class="run-more">
                            <summary>"Raw model output"</summary>
                            <pre class="json-block" data-testid="run-raw">{raw}</pre>
                        </details>
                    }
                })
        }}
        <RunEvents runs=runs />
    }
}

/// One attempt's validation errors, as a `validation_error` event records them.
fn attempt_errors(event: &RunEvent) -> Option<(u64, Vec<String>)> {
    if event.kind != RunEventKind::ValidationError {
        return None;
    }
    let attempt = event
        .data
        .get("attempt")
        .and_then(Value::as_u64)
        .unwrap_or(0);
    let errors = event
        .data
        .get("errors")
        .and_then(Value::as_array)
        .map(|errors| {
            errors
                .iter()
                .map(|e| {
                    let path = e.get("path").and_then(Value::as_str).unwrap_or_default();
                    let message = e.get("message").and_then(Value::as_str).unwrap_or_default();
                    if path.is_empty() {
                        message.to_owned()
                    } else {
                        format!("{path}: {message}")
                    }
                })
                .collect()
        })
        .unwrap_or_default();
    Some((attempt, errors))
}

/// Each attempt's validation errors of a failed run.
#[component]
fn ValidationErrors(runs: Runs) -> impl IntoView {
    move || {
        let attempts: Vec<(u64, Vec<String>)> = runs
            .events
            .with(|events| events.iter().flatten().filter_map(attempt_errors).collect());
        (!attempts.is_empty()).then(|| {
            view! {
                <div class="run-errors" data-testid="run-errors">
                    <p class="card-title">"Why the answers were rejected"</p>
                    <ul>
                        {attempts
                            .into_iter()
                            .map(|(attempt, errors)| {
                                view! {
                                    <li>
                                        <span class="attempt">{format!("Attempt {attempt}")}</span>
                                        <ul>
                                            {errors
                                                .into_iter()
                                                .map(|e| view! { <li class="mono">{e}</li> })
                                                .collect_view()}
                                        </ul>
                                    </li>
                                }
                            })
                            .collect_view()}
                    </ul>
                </div>
            }
        })
    }
}

fn kind_label(kind: RunEventKind) -> &'static str {
    match kind {
        RunEventKind::Status => "status",
        RunEventKind::Attempt => "attempt",
        RunEventKind::ValidationError => "validation error",
        RunEventKind::ProviderError => "provider error",
    }
}

/// What an event says, in one line (plus an optional block of text).
fn describe(event: &RunEvent) -> (String, Option<String>) {
    let data = &event.data;
    let text = |key: &str| data.get(key).and_then(Value::as_str).unwrap_or_default();
    let attempt = data.get("attempt").and_then(Value::as_u64).unwrap_or(0);
    match event.kind {
        RunEventKind::Status => (format!("→ {}", text("status")), None),
        RunEventKind::Attempt => (
            format!("attempt {attempt} answered"),
            Some(text("raw_output").to_owned()),
        ),
        RunEventKind::ValidationError => {
            let errors = attempt_errors(event).map(|(_, e)| e).unwrap_or_default();
            (
                format!("attempt {attempt} did not match the schema"),
                Some(errors.join("\n")),
            )
        }
        RunEventKind::ProviderError => {
            let retry = data
                .get("retry_in_ms")
                .and_then(Value::as_u64)
                .map(|ms| format!(" (retrying in {})", duration(ms)))
                .unwrap_or_default();
            (format!("{}: {}{retry}", text("class"), text("error")), None)
        }
    }
}

/// The run's history, in order.
#[component]
fn RunEvents(runs: Runs) -> impl IntoView {
    let rows = move || {
        let events = runs.events.get();
        let Some(events) = events else {
            return view! { <Loading what="events" /> }.into_any();
        };
        if events.is_empty() {
            return view! { <p class="muted small">"No events yet."</p> }.into_any();
        }
        view! {
            <ol class="events">
                {events
                    .into_iter()
                    .map(|event| {
                        let (summary, block) = describe(&event);
                        view! {
                            <li class="event" data-testid="run-event" data-kind=kind_label(event.kind)>
                                <span class=format!("event-kind event-{:?}", event.kind)>
                                    {kind_label(event.kind)}
                                </span>
                                <span class="event-summary">{summary}</span>
                                <time class="muted small">{local_clock(event.created_at.timestamp_millis())}</time>
                                {block
                                    .filter(|b| !b.is_empty())
                                    .map(|b| view! { <pre class="json-block event-block">{b}</pre> })}
                            </li>
                        }
                    })
                    .collect_view()}
            </ol>
        }
        .into_any()
    };
    view! {
        <details class="run-more" open>
            <summary>"Events"</summary>
            {rows}
        </details>
    }
}
