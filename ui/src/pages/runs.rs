//! Runs of one agent, live: the run shown in detail (status, result, events) and the history
//! list, both fetched over REST and kept current by WebSocket topic `runs`.

use std::cell::Cell;
use std::rc::Rc;

use contracts::{Run, RunEvent, RunEventKind, RunQuery, RunStatus, Topic};
use leptos::prelude::*;
use leptos::task::spawn_local;
use serde_json::Value;
use uuid::Uuid;

use crate::api::{self, ApiError};
use crate::components::{EmptyState, Loading};
use crate::router::{Route, navigate};
use crate::ws;

/// How many runs the history shows.
const HISTORY_LIMIT: u64 = 50;

/// How far a run has come; status only moves forward, and attempts only grow while it runs.
/// A copy of a run never replaces one that is further along (a late HTTP answer must not
/// undo a WebSocket update).
fn progress(run: &Run) -> (u8, u32) {
    let stage = match run.status {
        RunStatus::Queued => 0,
        RunStatus::Running => 1,
        RunStatus::Succeeded | RunStatus::Failed | RunStatus::Canceled => 2,
    };
    (stage, run.attempts)
}

/// Only the newest of overlapping fetches may write.
#[derive(Clone, Default)]
struct Generation(Rc<Cell<u32>>);

impl Generation {
    fn next(&self) -> u32 {
        let n = self.0.get().wrapping_add(1);
        self.0.set(n);
        n
    }

    fn is(&self, n: u32) -> bool {
        self.0.get() == n
    }
}

/// The playground's run state, shared by its views.
#[derive(Clone, Copy)]
pub struct Runs {
    agent_id: Uuid,
    route: RwSignal<Route>,
    /// The run in the URL (`?run=`).
    selected: Memo<Option<Uuid>>,
    /// The history, newest first; `None` until loaded.
    list: RwSignal<Option<Vec<Run>>>,
    list_error: RwSignal<Option<ApiError>>,
    filter: RwSignal<Option<RunStatus>>,
    /// The selected run, once loaded.
    current: RwSignal<Option<Run>>,
    current_error: RwSignal<Option<ApiError>>,
    events: RwSignal<Option<Vec<RunEvent>>>,
}

impl Runs {
    /// Creates the state and starts following the agent's runs.
    pub fn new(agent_id: Uuid, route: RwSignal<Route>) -> Self {
        let selected = Memo::new(move |_| match route.get() {
            Route::Playground { run, .. } => run,
            _ => None,
        });
        let runs = Self {
            agent_id,
            route,
            selected,
            list: RwSignal::new(None),
            list_error: RwSignal::new(None),
            filter: RwSignal::new(None),
            current: RwSignal::new(None),
            current_error: RwSignal::new(None),
            events: RwSignal::new(None),
        };
        runs.follow();
        runs
    }

    fn follow(self) {
        let refetch = ws::refetch(Topic::Runs);

        // The history: on filter change, and whenever events may have been missed.
        let generation = Generation::default();
        let refetch_list = refetch.clone();
        Effect::new(move |_| {
            refetch_list.track();
            let query = RunQuery {
                agent_id: Some(self.agent_id),
                status: self.filter.get(),
                limit: Some(HISTORY_LIMIT),
                ..RunQuery::default()
            };
            let generation = generation.clone();
            let mine = generation.next();
            spawn_local(async move {
                let result = api::list_runs(&query).await;
                if !generation.is(mine) {
                    return;
                }
                match result {
                    Ok(page) => {
                        self.list.set(Some(page.items));
                        self.list_error.set(None);
                    }
                    Err(e) => self.list_error.set(Some(e)),
                }
            });
        });

        // The selected run: when it changes, and once after every (re)connect.
        let generation = Generation::default();
        Effect::new(move |_| {
            refetch.track();
            let mine = generation.next();
            let Some(id) = self.selected.get() else {
                self.current.set(None);
                self.events.set(None);
                return;
            };
            if self.current.with_untracked(|r| r.as_ref().map(|r| r.id)) != Some(id) {
                self.current.set(None);
                self.events.set(None);
            }
            self.current_error.set(None);
            let generation = generation.clone();
            spawn_local(async move {
                let result = api::get_run(id).await;
                if !generation.is(mine) {
                    return;
                }
                match result {
                    Ok(run) => self.merge(run),
                    Err(e) => self.current_error.set(Some(e)),
                }
            });
        });

        // Its events: again whenever it moves (each move follows new events).
        let moved = Memo::new(move |_| {
            self.current
                .with(|r| r.as_ref().map(|r| (r.id, r.status, r.attempts)))
        });
        let generation = Generation::default();
        Effect::new(move |_| {
            let Some((id, _, _)) = moved.get() else {
                return;
            };
            let generation = generation.clone();
            let mine = generation.next();
            spawn_local(async move {
                if let Ok(events) = api::run_events(id).await
                    && generation.is(mine)
                {
                    self.events.set(Some(events));
                }
            });
        });

        ws::on_event(Topic::Runs, move |event| {
            let Ok(run) = serde_json::from_value::<Run>(event.data.clone()) else {
                return;
            };
            if run.agent_id != self.agent_id {
                return;
            }
            self.merge(run.clone());
            self.upsert(run);
        });
    }

    /// Shows `run` as the selected run unless a copy further along is already shown.
    fn merge(self, run: Run) {
        if self.selected.get_untracked() != Some(run.id) {
            return;
        }
        let newer = self.current.with_untracked(|known| {
            known
                .as_ref()
                .is_none_or(|k| k.id != run.id || progress(k) <= progress(&run))
        });
        if newer {
            self.current.set(Some(run));
        }
    }

    /// Puts `run` into the history (or takes it out when it no longer passes the filter).
    fn upsert(self, run: Run) {
        let shown = self.filter.get_untracked().is_none_or(|s| s == run.status);
        self.list.update(|list| {
            let Some(list) = list else { return };
            let pos = list.iter().position(|r| r.id == run.id);
            match (pos, shown) {
                (Some(pos), true) => {
                    if progress(&list[pos]) <= progress(&run) {
                        list[pos] = run;
                    }
                }
                (Some(pos), false) => {
                    list.remove(pos);
                }
                (None, true) => {
                    list.push(run);
                    list.sort_by_key(|r| std::cmp::Reverse(r.created_at));
                }
                (None, false) => {}
            }
        });
    }

    /// A run this page just started: show it at once, before any event arrives.
    pub fn started(self, run: Run) {
        self.current.set(Some(run.clone()));
        self.events.set(None);
        self.upsert(run);
    }

    fn open(self, run: Uuid) {
        if let Route::Playground { agent, task, .. } = self.route.get_untracked() {
            navigate(
                self.route,
                Route::Playground {
                    agent,
                    task,
                    run: Some(run),
                },
            );
        }
    }

    fn href(self, run: Uuid) -> String {
        let task = match self.route.get_untracked() {
            Route::Playground { task, .. } => task,
            _ => None,
        };
        Route::Playground {
            agent: self.agent_id,
            task,
            run: Some(run),
        }
        .path()
    }
}

fn js_date(millis: i64) -> js_sys::Date {
    js_sys::Date::new(&wasm_bindgen::JsValue::from_f64(millis as f64))
}

/// A date and time in the browser's locale and time zone.
fn local_time(millis: i64) -> String {
    String::from(js_date(millis).to_locale_string("default", &wasm_bindgen::JsValue::UNDEFINED))
}

/// The time of day only, for events (their run's date is shown above them).
fn local_clock(millis: i64) -> String {
    String::from(js_date(millis).to_locale_time_string("default"))
}

fn duration(ms: u64) -> String {
    if ms < 1_000 {
        format!("{ms} ms")
    } else {
        format!("{:.1} s", ms as f64 / 1_000.0)
    }
}

fn pretty(value: &Value) -> String {
    serde_json::to_string_pretty(value).unwrap_or_default()
}

fn badge_class(status: RunStatus) -> String {
    format!("badge badge-run-{}", status.as_str())
}

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

    let result = move || match status.get() {
        RunStatus::Queued | RunStatus::Running => view! {
            <div class="loading" data-testid="run-waiting">
                <span class="spinner" aria-hidden="true"></span>
                {move || {
                    if status.get() == RunStatus::Queued {
                        "Queued: waiting to start…"
                    } else {
                        "Running: waiting for the model…"
                    }
                }}
            </div>
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

/// The agent's runs, newest first, with a status filter.
#[component]
pub fn RunHistory(runs: Runs) -> impl IntoView {
    let set_filter = move |ev: leptos::ev::Event| {
        runs.filter.set(RunStatus::parse(&event_target_value(&ev)));
    };
    let options = RunStatus::ALL
        .into_iter()
        .map(|s| {
            view! {
                <option value=s.as_str() selected=move || runs.filter.get() == Some(s)>
                    {s.as_str()}
                </option>
            }
        })
        .collect_view();
    let body = move || {
        let loaded = runs.list.with(Option::is_some);
        if !loaded {
            return match runs.list_error.get() {
                Some(e) => view! {
                    <div class="empty-state" role="alert">
                        <p class="empty-title">"Could not load the runs"</p>
                        <p class="empty-hint">{e.detail}</p>
                        <button type="button" class="btn" on:click=move |_| ws::bump(&[Topic::Runs])>
                            "Try again"
                        </button>
                    </div>
                }
                .into_any(),
                None => view! { <Loading what="runs" /> }.into_any(),
            };
        }
        if runs.list.with(|l| l.as_ref().is_some_and(Vec::is_empty)) {
            return match runs.filter.get() {
                None => view! {
                    <EmptyState title="No runs yet" hint="Runs of this agent appear here, newest first." />
                }
                .into_any(),
                Some(_) => view! {
                    <EmptyState title="No runs with this status" hint="Choose another status, or all." />
                }
                .into_any(),
            };
        }
        view! {
            <ul class="run-list">
                <For
                    each=move || runs.list.get().unwrap_or_default()
                    key=|r| (r.id, r.status, r.attempts)
                    let:run
                >
                    <RunRow run=run runs=runs />
                </For>
            </ul>
        }
        .into_any()
    };
    view! {
        <section class="run-history" aria-labelledby="run-history-title">
            <div class="page-head">
                <h3 id="run-history-title">"History"</h3>
                <label class="inline-field">
                    <span class="small muted">"Status"</span>
                    <select id="run-filter-status" on:change=set_filter>
                        <option value="" selected=move || runs.filter.get().is_none()>
                            "all"
                        </option>
                        {options}
                    </select>
                </label>
            </div>
            {body}
        </section>
    }
}

#[component]
fn RunRow(run: Run, runs: Runs) -> impl IntoView {
    let id = run.id;
    let current = move || (runs.selected.get() == Some(id)).then_some("true");
    let href = move || {
        runs.route.track();
        runs.href(id)
    };
    let attempts = match run.attempts {
        1 => "1 attempt".to_owned(),
        n => format!("{n} attempts"),
    };
    let latency = run.latency_ms.map(duration);
    view! {
        <li>
            <a
                class="run-row"
                data-testid="run-row"
                data-status=run.status.as_str()
                data-run-id=id.to_string()
                href=href
                aria-current=current
                on:click=move |ev| {
                    if !(ev.ctrl_key() || ev.meta_key() || ev.shift_key() || ev.button() != 0) {
                        ev.prevent_default();
                        runs.open(id);
                    }
                }
            >
                <span class=badge_class(run.status)>{run.status.as_str()}</span>
                <span class="run-row-task">{run.snapshot.task_name.clone()}</span>
                <span class="run-row-meta muted small">
                    {local_time(run.created_at.timestamp_millis())} " · " {attempts}
                    {latency.map(|l| format!(" · {l}"))}
                </span>
            </a>
        </li>
    }
}
