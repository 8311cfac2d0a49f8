//! The agent's run history with a status filter; each row opens the run.

use super::*;

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
