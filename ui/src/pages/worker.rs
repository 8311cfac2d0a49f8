//! One worker (`/workers/{id}`): its status (and why it is unhealthy), the health it reports
//! with each heartbeat and the last hour of reports, its tags, the provider keys it holds,
//! what it can serve, and its current and recent runs, each linking to the run. Live: it is
//! read again when the worker changes or one of its runs does.

use contracts::{ProviderKind, Run, Topic, WorkerDetail, WorkerHealth, WorkerHealthSample};
use leptos::prelude::*;
use leptos::task::spawn_local;
use uuid::Uuid;

use super::providers::kind_label;
use super::workers::status_label;
use crate::api;
use crate::components::Loading;
use crate::router::{Route, link, use_router};
use crate::ws;

/// WorkerHealth reports listed, newest first.
const HISTORY_ROWS: usize = 12;

#[component]
pub fn WorkerPage(id: Uuid) -> impl IntoView {
    let detail = RwSignal::new(None::<Result<WorkerDetail, String>>);
    let reload = move || {
        spawn_local(async move {
            detail.set(Some(api::get_worker(id).await.map_err(|e| e.to_string())));
        });
    };
    let refetch = ws::refetch(Topic::Workers);
    Effect::new(move |_| {
        refetch.track();
        reload();
    });
    ws::on_event(Topic::Workers, move |event| {
        if event.id == id {
            reload();
        }
    });
    ws::on_event(Topic::Runs, move |event| {
        if event.data["worker_id"].as_str() == Some(id.to_string().as_str()) {
            reload();
        }
    });
    let route = use_router();
    move || {
        match detail.get() {
        None => view! { <Loading what="the worker" /> }.into_any(),
        Some(Err(e)) => view! {
            <p class="field-error" role="alert" data-testid="worker-error">{format!("Could not load the worker: {e}")}</p>
        }
        .into_any(),
        Some(Ok(detail)) => view! { <Detail detail=detail route=route /> }.into_any(),
    }
    }
}

#[component]
fn Detail(detail: WorkerDetail, route: RwSignal<Route>) -> impl IntoView {
    let worker = detail.worker;
    let status = status_label(worker.status);
    let list = |items: &[String]| {
        if items.is_empty() {
            "—".to_owned()
        } else {
            items.join(", ")
        }
    };
    // The provider kinds it reported serving.
    let kinds = if worker.capabilities.is_empty() {
        "—".to_owned()
    } else {
        worker
            .capabilities
            .iter()
            .map(|k| ProviderKind::parse(k).map_or_else(|| k.clone(), |k| kind_label(k).to_owned()))
            .collect::<Vec<_>>()
            .join(", ")
    };
    let current: Vec<Run> = detail
        .recent_runs
        .iter()
        .filter(|r| worker.current_runs.contains(&r.id))
        .cloned()
        .collect();
    let reported = worker
        .health_at
        .map(|at| at.format("%H:%M:%S UTC").to_string())
        .unwrap_or_else(|| "never".to_owned());
    view! {
        <section class="page worker-page" data-testid="worker-page" aria-label="Worker">
            <p>
                <a href=Route::Workers.path() on:click=link(route, Route::Workers)>"← All workers"</a>
            </p>
            <header class="card-head">
                <h2 data-testid="worker-name">{worker.name.clone()}</h2>
                <span class=format!("badge badge-worker-{status}") data-testid="worker-status" data-status=status>
                    {status}
                </span>
            </header>
            {worker.unhealthy_reason.clone().map(|why| view! {
                <p class="field-error" role="status" data-testid="worker-unhealthy-reason">{why}</p>
            })}
            <div class="card-grid">
                <article class="card" aria-label="Health">
                    <h3>"Health"</h3>
                    <HealthFacts health=worker.health.clone() />
                    <p class="hint">{format!("Reported with each heartbeat; last at {reported}.")}</p>
                </article>
                <article class="card" aria-label="About">
                    <h3>"About"</h3>
                    <dl class="facts">
                        <dt>"Kind"</dt><dd>{if worker.builtin { "built-in" } else { "remote" }}</dd>
                        <dt>"Version"</dt><dd>{worker.version.clone().unwrap_or_else(|| "—".into())}</dd>
                        <dt>"Platform"</dt>
                        <dd>{match (&worker.os, &worker.arch) {
                            (Some(os), Some(arch)) => format!("{os}/{arch}"),
                            _ => "—".to_owned(),
                        }}</dd>
                        <dt>"Slots"</dt>
                        <dd data-testid="worker-slots">{format!("{} of {} in use", worker.slots_in_use, worker.slots)}</dd>
                        <dt>"Tags"</dt><dd data-testid="worker-tags">{list(&worker.tags)}</dd>
                        <dt>"Keys held"</dt><dd data-testid="worker-credentials">{list(&worker.credentials)}</dd>
                        <dt>"Serves"</dt><dd data-testid="worker-capabilities">{kinds}</dd>
                        <dt>"Local networks"</dt>
                        <dd data-testid="worker-local-networks">{match worker.local_networks {
                            Some(true) => "reaches providers on loopback and private networks",
                            Some(false) => "refused, except its allow-list",
                            None => "—",
                        }}</dd>
                    </dl>
                </article>
            </div>
            <h3>"Current runs"</h3>
            <RunTable runs=current route=route testid="worker-current-runs" empty="Nothing running now." />
            <h3>"Recent runs"</h3>
            <RunTable runs=detail.recent_runs route=route testid="worker-recent-runs" empty="No runs yet." />
            <h3>"Health in the last hour"</h3>
            <HealthHistory samples=detail.health_history />
        </section>
    }
}

fn percent(value: Option<f32>) -> String {
    value.map_or_else(|| "—".to_owned(), |v| format!("{v:.0} %"))
}

fn bytes(value: Option<u64>) -> String {
    let Some(value) = value else {
        return "—".to_owned();
    };
    const GIB: f64 = 1024.0 * 1024.0 * 1024.0;
    let value = value as f64;
    if value >= GIB {
        format!("{:.1} GiB", value / GIB)
    } else {
        format!("{:.0} MiB", value / (1024.0 * 1024.0))
    }
}

#[component]
fn HealthFacts(health: Option<WorkerHealth>) -> impl IntoView {
    let Some(health) = health else {
        return view! { <p class="hint" data-testid="worker-health">"No report yet."</p> }
            .into_any();
    };
    let disk = match (health.disk_free_bytes, health.disk_total_bytes) {
        (Some(_), Some(_)) => format!(
            "{} free of {}",
            bytes(health.disk_free_bytes),
            bytes(health.disk_total_bytes)
        ),
        _ => "—".to_owned(),
    };
    view! {
        <dl class="facts" data-testid="worker-health">
            <dt>"CPU"</dt><dd data-testid="health-cpu">{percent(health.cpu_percent)}</dd>
            <dt>"Memory"</dt><dd data-testid="health-memory">{percent(health.memory_percent)}</dd>
            <dt>"Disk"</dt><dd data-testid="health-disk">{disk}</dd>
            <dt>"Load (1 min)"</dt>
            <dd data-testid="health-load">{health.load_1m.map_or_else(|| "—".to_owned(), |l| format!("{l:.2}"))}</dd>
        </dl>
    }
    .into_any()
}

#[component]
fn HealthHistory(samples: Vec<WorkerHealthSample>) -> impl IntoView {
    if samples.is_empty() {
        return view! { <p class="hint">"No reports in the last hour."</p> }.into_any();
    }
    let rows = samples
        .iter()
        .rev()
        .take(HISTORY_ROWS)
        .map(|s| {
            view! {
                <tr data-testid="health-sample">
                    <td>{s.at.format("%H:%M:%S").to_string()}</td>
                    <td>{percent(s.health.cpu_percent)}</td>
                    <td>{percent(s.health.memory_percent)}</td>
                    <td>{bytes(s.health.disk_free_bytes)}</td>
                    <td>{s.health.load_1m.map_or_else(|| "—".to_owned(), |l| format!("{l:.2}"))}</td>
                </tr>
            }
        })
        .collect_view();
    view! {
        <table class="runs-table" data-testid="health-history">
            <thead>
                <tr><th>"At (UTC)"</th><th>"CPU"</th><th>"Memory"</th><th>"Disk free"</th><th>"Load"</th></tr>
            </thead>
            <tbody>{rows}</tbody>
        </table>
    }
    .into_any()
}

#[component]
fn RunTable(
    runs: Vec<Run>,
    route: RwSignal<Route>,
    testid: &'static str,
    empty: &'static str,
) -> impl IntoView {
    if runs.is_empty() {
        return view! { <p class="hint" data-testid=testid>{empty}</p> }.into_any();
    }
    let rows = runs
        .into_iter()
        .map(|run| {
            let to = Route::Playground {
                agent: run.agent_id,
                task: Some(run.task_id),
                run: Some(run.id),
            };
            view! {
                <tr data-testid="worker-run" data-run=run.id.to_string()>
                    <td><span class=format!("badge badge-run-{}", run.status.as_str())>{run.status.as_str()}</span></td>
                    <td>{run.snapshot.agent_name.clone()}</td>
                    <td>{run.snapshot.task_name.clone()}</td>
                    <td>{run.created_at.format("%Y-%m-%d %H:%M:%S").to_string()}</td>
                    <td>
                        <a href=to.path() data-testid="worker-run-link" on:click=link(route, to)>"Open"</a>
                    </td>
                </tr>
            }
        })
        .collect_view();
    view! {
        <table class="runs-table" data-testid=testid>
            <thead>
                <tr><th>"Status"</th><th>"Agent"</th><th>"Task"</th><th>"Created"</th><th></th></tr>
            </thead>
            <tbody>{rows}</tbody>
        </table>
    }
    .into_any()
}
