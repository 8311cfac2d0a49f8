//! The Runs section: every run across agents, newest first, filtered by status, agent, task
//! and worker, updated live; cancel and retry on each row, and each row opens the run's
//! detail (the playground's run view).

use contracts::{Page, Run, RunQuery, RunStatus, Topic, Worker};
use leptos::prelude::*;
use leptos::task::spawn_local;
use uuid::Uuid;

use super::{badge_class, duration, local_time, progress};
use crate::api;
use crate::components::{Banner, EmptyState, Loading};
use crate::router::{Route, navigate, use_router};
use crate::store;
use crate::ws;

/// How many runs the section shows.
const LIMIT: u64 = 100;

/// A filter select's value: empty means "any".
fn parse_id(value: &str) -> Option<Uuid> {
    Uuid::parse_str(value).ok()
}

#[component]
pub fn AllRunsPage() -> impl IntoView {
    let banner = Banner::get();
    let agents = store::agents();
    let tasks = store::tasks();
    let workers = RwSignal::new(Vec::<Worker>::new());
    let status = RwSignal::new(None::<RunStatus>);
    let agent = RwSignal::new(None::<Uuid>);
    let task = RwSignal::new(None::<Uuid>);
    let worker = RwSignal::new(None::<Uuid>);
    let page = RwSignal::new(None::<Page<Run>>);
    let refetch = ws::refetch(Topic::Runs);

    spawn_local(async move {
        if let Ok(list) = api::list_workers().await {
            workers.set(list);
        }
    });
    Effect::new(move |_| {
        refetch.track();
        let query = RunQuery {
            agent_id: agent.get(),
            task_id: task.get(),
            worker_id: worker.get(),
            status: status.get(),
            limit: Some(LIMIT),
            offset: None,
        };
        spawn_local(async move {
            match api::list_runs(&query).await {
                Ok(runs) => page.set(Some(runs)),
                Err(e) => banner.show(format!("Could not load the runs: {e}")),
            }
        });
    });
    // Live: a run that changed replaces its row when it is further along; a new one that
    // matches the filters comes first.
    ws::on_event(Topic::Runs, move |event| {
        let Ok(run) = serde_json::from_value::<Run>(event.data.clone()) else {
            return;
        };
        let matches = status.get_untracked().is_none_or(|s| s == run.status)
            && agent.get_untracked().is_none_or(|a| a == run.agent_id)
            && task.get_untracked().is_none_or(|t| t == run.task_id)
            && worker
                .get_untracked()
                .is_none_or(|w| Some(w) == run.worker_id);
        page.update(|page| {
            let Some(page) = page else { return };
            match page.items.iter().position(|r| r.id == run.id) {
                Some(i) if !matches => {
                    page.items.remove(i);
                }
                Some(i) if progress(&run) >= progress(&page.items[i]) => {
                    page.items[i] = run;
                }
                Some(_) => {}
                None if matches && run.status == RunStatus::Queued && run.assigned_at.is_none() => {
                    page.items.insert(0, run);
                    page.total += 1;
                    page.items.truncate(LIMIT as usize);
                }
                None => {}
            }
        });
    });

    let select = |signal: RwSignal<Option<Uuid>>| {
        move |ev: leptos::ev::Event| signal.set(parse_id(&event_target_value(&ev)))
    };
    let status_options = RunStatus::ALL
        .into_iter()
        .map(|s| view! { <option value=s.as_str()>{s.as_str()}</option> })
        .collect_view();
    let agent_options = move || {
        agents
            .items
            .get()
            .unwrap_or_default()
            .into_iter()
            .map(|a| view! { <option value=a.id.to_string()>{a.name}</option> })
            .collect_view()
    };
    let task_options = move || {
        tasks
            .items
            .get()
            .unwrap_or_default()
            .into_iter()
            .map(|t| view! { <option value=t.id.to_string()>{t.name}</option> })
            .collect_view()
    };
    let worker_options = move || {
        workers
            .get()
            .into_iter()
            .map(|w| view! { <option value=w.id.to_string()>{w.name}</option> })
            .collect_view()
    };
    let worker_name = move |id: Option<Uuid>| {
        id.map(|id| {
            workers.with(|all| {
                all.iter()
                    .find(|w| w.id == id)
                    .map_or_else(|| id.to_string()[..8].to_owned(), |w| w.name.clone())
            })
        })
    };

    let rows = move || match page.get() {
        None => view! { <Loading what="runs" /> }.into_any(),
        Some(page) if page.items.is_empty() => view! {
            <EmptyState title="No runs" hint="Runs appear here as soon as they are started." />
        }
        .into_any(),
        Some(page) => view! {
            <p class="muted small" data-testid="runs-total">
                {format!("{} run(s)", page.total)}
            </p>
            <table class="runs-table" data-testid="runs-table">
                <thead>
                    <tr>
                        <th>"Status"</th><th>"Agent"</th><th>"Task"</th><th>"Worker"</th>
                        <th>"Created"</th><th>"Attempts"</th><th>"Latency"</th><th></th>
                    </tr>
                </thead>
                <tbody>
                    {page
                        .items
                        .into_iter()
                        .map(|run| {
                            let worker = worker_name(run.worker_id);
                            view! { <RunLine run=run worker=worker /> }
                        })
                        .collect_view()}
                </tbody>
            </table>
        }
        .into_any(),
    };

    view! {
        <div class="page-head">
            <h2>"Runs"</h2>
        </div>
        <div class="filters" role="group" aria-label="Filter runs">
            <label>
                "Status "
                <select
                    id="runs-filter-status"
                    on:change=move |ev| status.set(RunStatus::parse(&event_target_value(&ev)))
                >
                    <option value="">"any"</option>
                    {status_options}
                </select>
            </label>
            <label>
                "Agent "
                <select id="runs-filter-agent" on:change=select(agent)>
                    <option value="">"any"</option>
                    {agent_options}
                </select>
            </label>
            <label>
                "Task "
                <select id="runs-filter-task" on:change=select(task)>
                    <option value="">"any"</option>
                    {task_options}
                </select>
            </label>
            <label>
                "Worker "
                <select id="runs-filter-worker" on:change=select(worker)>
                    <option value="">"any"</option>
                    {worker_options}
                </select>
            </label>
        </div>
        {rows}
    }
}

#[component]
fn RunLine(run: Run, worker: Option<String>) -> impl IntoView {
    let route = use_router();
    let banner = Banner::get();
    let id = run.id;
    let detail = Route::Playground {
        agent: run.agent_id,
        task: Some(run.task_id),
        run: Some(id),
    };
    let finished = run.status.is_finished();
    let cancel = move |_| {
        spawn_local(async move {
            if let Err(e) = api::cancel_run(id).await {
                banner.show(format!("Could not cancel the run: {e}"));
            }
        });
    };
    let retry = move |_| {
        spawn_local(async move {
            if let Err(e) = api::retry_run(id).await {
                banner.show(format!("Could not retry the run: {e}"));
            }
        });
    };
    view! {
        <tr data-testid="all-run-row" data-run-id=id.to_string() data-status=run.status.as_str()>
            <td><span class=badge_class(run.status)>{run.status.as_str()}</span></td>
            <td>
                <a
                    href=detail.path()
                    data-testid="all-run-open"
                    on:click=move |ev| {
                        if !(ev.ctrl_key() || ev.meta_key() || ev.shift_key() || ev.button() != 0) {
                            ev.prevent_default();
                            navigate(route, detail);
                        }
                    }
                >
                    {run.snapshot.agent_name.clone()}
                </a>
            </td>
            <td>{run.snapshot.task_name.clone()}</td>
            <td data-testid="all-run-worker">{worker.unwrap_or_else(|| "—".into())}</td>
            <td class="small">{local_time(run.created_at.timestamp_millis())}</td>
            <td>{run.attempts}</td>
            <td>{run.latency_ms.map(duration).unwrap_or_default()}</td>
            <td class="actions">
                {if finished {
                    view! {
                        <button type="button" class="btn btn-small" data-testid="all-run-retry" on:click=retry>
                            "Retry"
                        </button>
                    }
                    .into_any()
                } else {
                    view! {
                        <button type="button" class="btn btn-small" data-testid="all-run-cancel" on:click=cancel>
                            "Cancel"
                        </button>
                    }
                    .into_any()
                }}
            </td>
        </tr>
    }
}
