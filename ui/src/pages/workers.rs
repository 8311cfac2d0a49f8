//! Workers section: the built-in worker and every remote worker with live status, version,
//! platform, address, slots in use, the runs each executes and when it was last seen;
//! enable/disable, revoke (remote workers), and "Add worker", which creates a registration
//! token and shows the command to run on the other machine.

use contracts::{CreateWorkerToken, SetWorkerTags, Topic, UpdateWorker, Worker, WorkerStatus};
use leptos::prelude::*;
use leptos::task::spawn_local;
use uuid::Uuid;

use crate::api;
use crate::components::{Banner, ConfirmDelete, EmptyState, Loading};
use crate::pages::comma_list;
use crate::pages::tags::TagManager;
use crate::router::{Route, link, use_router};
use crate::ws;

#[component]
pub fn WorkersPage() -> impl IntoView {
    let workers = RwSignal::new(None::<Vec<Worker>>);
    let banner = Banner::get();
    let refetch = ws::refetch(Topic::Workers);
    let reload = move || {
        spawn_local(async move {
            match api::list_workers().await {
                Ok(list) => workers.set(Some(list)),
                Err(e) => banner.show(format!("Could not load the workers: {e}")),
            }
        });
    };
    Effect::new(move |_| {
        refetch.track();
        reload();
    });
    // Any change to a worker (connected, disconnected, registered, revoked, switched):
    // the list is small, so read it whole.
    ws::on_event(Topic::Workers, move |_| reload());
    let adding = RwSignal::new(false);

    let empty = move || workers.with(|w| w.as_ref().is_some_and(Vec::is_empty));
    let loading = move || workers.with(Option::is_none);
    // Keyed by id: a reload after a live event updates the cards in place, so a card's own
    // state (an open "revoke?" confirmation) survives it.
    let list = view! {
        <Show when=loading>
            <Loading what="workers" />
        </Show>
        <Show when=empty>
            <EmptyState title="No workers" hint="Add a worker to execute runs." />
        </Show>
        <div class="card-grid" data-testid="worker-list">
            <For
                each=move || workers.get().unwrap_or_default()
                key=|w| w.id
                let:worker
            >
                <WorkerCard initial=worker workers=workers on_change=reload />
            </For>
        </div>
    };
    view! {
        <div class="page-head">
            <h2>"Workers"</h2>
            <button
                type="button"
                id="worker-add"
                class="btn btn-primary"
                on:click=move |_| adding.set(true)
            >
                "Add worker"
            </button>
        </div>
        <Show when=move || adding.get()>
            <AddWorker on_close=move || adding.set(false) />
        </Show>
        {list}
        <TagManager />
    }
}

pub(super) fn status_label(status: WorkerStatus) -> &'static str {
    match status {
        WorkerStatus::Online => "online",
        WorkerStatus::Unhealthy => "unhealthy",
        WorkerStatus::Offline => "offline",
        WorkerStatus::Disabled => "disabled",
    }
}

#[component]
fn WorkerCard(
    initial: Worker,
    workers: RwSignal<Option<Vec<Worker>>>,
    on_change: impl Fn() + Copy + Send + Sync + 'static,
) -> impl IntoView {
    let banner = Banner::get();
    let route = use_router();
    let id: Uuid = initial.id;
    let name = initial.name.clone();
    let builtin = initial.builtin;
    let worker = Signal::derive(move || {
        workers
            .with(|all| {
                all.as_ref()
                    .and_then(|all| all.iter().find(|w| w.id == id).cloned())
            })
            .unwrap_or_else(|| initial.clone())
    });
    let confirming = RwSignal::new(false);
    let toggle = move |_| {
        let enabled = worker.with_untracked(|w| w.enabled);
        spawn_local(async move {
            let body = UpdateWorker {
                enabled: Some(!enabled),
                name: None,
            };
            match api::update_worker(id, &body).await {
                Ok(_) => on_change(),
                Err(e) => banner.show(format!("Could not switch the worker: {e}")),
            }
        });
    };
    let revoke = move || {
        spawn_local(async move {
            match api::delete_worker(id).await {
                Ok(()) => on_change(),
                Err(e) => banner.show(format!("Could not revoke the worker: {e}")),
            }
        });
    };
    let text = |f: fn(&Worker) -> String| move || worker.with(f);
    let platform = text(|w| match (&w.os, &w.arch) {
        (Some(os), Some(arch)) => format!("{os}/{arch}"),
        _ => "—".to_owned(),
    });
    let last_seen = text(|w| {
        w.last_seen_at.map_or_else(
            || "never".to_owned(),
            |at| at.format("%Y-%m-%d %H:%M:%S UTC").to_string(),
        )
    });
    let version = text(|w| w.version.clone().unwrap_or_else(|| "—".into()));
    let address = text(|w| {
        w.address
            .clone()
            .filter(|a| !a.is_empty())
            .unwrap_or_else(|| "in-process".into())
    });
    let slots = text(|w| format!("{} / {}", w.slots_in_use, w.slots));
    let tags = text(|w| {
        if w.tags.is_empty() {
            "—".to_owned()
        } else {
            w.tags.join(", ")
        }
    });
    let credentials = Signal::derive(move || {
        worker.with(|w| {
            if w.credentials.is_empty() {
                "—".to_owned()
            } else {
                w.credentials.join(", ")
            }
        })
    });
    let status = move || status_label(worker.with(|w| w.status));
    let runs = move || {
        worker.with(|w| {
            w.current_runs
                .iter()
                .map(|run| {
                    let short = run.simple().to_string();
                    view! { <li class="mono" data-testid="worker-run">{short[24..].to_owned()}</li> }
                })
                .collect_view()
        })
    };
    let busy = move || worker.with(|w| !w.current_runs.is_empty());
    let tag_text = RwSignal::new(String::new());
    let editing_tags = RwSignal::new(false);
    let save_tags = move |ev: leptos::ev::SubmitEvent| {
        ev.prevent_default();
        let body = SetWorkerTags {
            tags: comma_list(&tag_text.get_untracked()),
        };
        spawn_local(async move {
            match api::set_worker_tags(id, &body).await {
                Ok(_) => {
                    editing_tags.set(false);
                    on_change();
                }
                Err(e) => banner.show(format!("Could not set the worker's tags: {e}")),
            }
        });
    };
    let kind = if builtin { "built-in" } else { "remote" };
    view! {
        <article class="card" data-testid="worker-card" data-worker=name.clone()>
            <header class="card-head">
                <h3>
                    <a
                        href=Route::Worker(id).path()
                        data-testid="worker-detail-link"
                        on:click=link(route, Route::Worker(id))
                    >
                        {name.clone()}
                    </a>
                </h3>
                <span
                    class=move || format!("badge badge-worker-{}", status())
                    data-testid="worker-status"
                    data-status=status
                >
                    {status}
                </span>
            </header>
            <dl class="facts">
                <dt>"Kind"</dt><dd>{kind}</dd>
                <dt>"Version"</dt><dd>{version}</dd>
                <dt>"Platform"</dt><dd>{platform}</dd>
                <dt>"Address"</dt><dd>{address}</dd>
                <dt>"Slots"</dt>
                <dd data-testid="worker-slots">{slots}</dd>
                <dt>"Tags"</dt>
                <dd data-testid="worker-tags">{tags}</dd>
                <dt>"Keys held"</dt>
                <dd data-testid="worker-credentials">{credentials}</dd>
                <dt>"Last seen"</dt><dd>{last_seen}</dd>
            </dl>
            <Show when=busy>
                <p class="hint">"Executing:"</p>
            </Show>
            <ul class="run-ids">{runs}</ul>
            <Show when=move || editing_tags.get()>
                <form class="field-row" data-testid="worker-tags-form" on:submit=save_tags>
                    <input
                        data-testid="worker-tags-input"
                        aria-label="Tags, comma-separated"
                        placeholder="gpu, region=eu"
                        prop:value=move || tag_text.get()
                    on:input=move |ev| tag_text.set(event_target_value(&ev))
                    />
                    <button type="submit" class="btn" data-testid="worker-tags-save">"Save tags"</button>
                </form>
            </Show>
            <div class="actions">
                <button
                    type="button"
                    class="btn"
                    data-testid="worker-tags-edit"
                    on:click=move |_| {
                        tag_text.set(worker.with_untracked(|w| w.tags.join(", ")));
                        editing_tags.set(true);
                    }
                >
                    "Tags…"
                </button>
                <button type="button" class="btn" data-testid="worker-toggle" on:click=toggle>
                    {move || if worker.with(|w| w.enabled) { "Disable" } else { "Enable" }}
                </button>
                <Show when=move || !builtin>
                    <button
                        type="button"
                        class="btn btn-danger"
                        data-testid="worker-revoke"
                        on:click=move |_| confirming.set(true)
                    >
                        "Revoke"
                    </button>
                </Show>
            </div>
            <ConfirmDelete
                open=confirming
                text="Revoke this worker? Its connection closes, its runs go back to the queue and its key stops working.".to_owned()
                confirm_label="Revoke"
                on_confirm=revoke
            />
        </article>
    }
}

/// Creates a registration token and shows the exact command to run on the other machine.
#[component]
fn AddWorker(on_close: impl Fn() + Copy + Send + Sync + 'static) -> impl IntoView {
    let banner = Banner::get();
    let command = RwSignal::new(None::<String>);
    let copied = RwSignal::new(false);
    spawn_local(async move {
        let body = CreateWorkerToken {
            ttl_secs: None,
            note: Some("added from the web app".into()),
            tags: Vec::new(),
        };
        match api::create_worker_token(&body).await {
            Ok(created) => {
                let origin = web_sys::window()
                    .and_then(|w| w.location().origin().ok())
                    .unwrap_or_default();
                command.set(Some(format!(
                    "agentry worker --server {origin} --token {}",
                    created.token
                )));
            }
            Err(e) => banner.show(format!("Could not create a registration token: {e}")),
        }
    });
    let copy = move |_| {
        if let (Some(text), Some(window)) = (command.get_untracked(), web_sys::window()) {
            let _promise = window.navigator().clipboard().write_text(&text);
            copied.set(true);
        }
    };
    view! {
        <section class="card add-worker" data-testid="add-worker" aria-label="Add worker">
            <h3>"Add a worker"</h3>
            <p>
                "Run this on the machine that should execute runs. The token registers one "
                "worker, once, within an hour; the worker then keeps its own key."
            </p>
            {move || match command.get() {
                None => view! { <Loading what="a registration token" /> }.into_any(),
                Some(text) => view! {
                    <pre class="command" data-testid="worker-command">{text}</pre>
                    <div class="actions">
                        <button type="button" class="btn btn-primary" data-testid="worker-command-copy" on:click=copy>
                            {move || if copied.get() { "Copied" } else { "Copy" }}
                        </button>
                        <button type="button" class="btn" on:click=move |_| on_close()>"Close"</button>
                    </div>
                }
                .into_any(),
            }}
            <p class="hint">
                "The new worker appears below as soon as it connects. See docs/workers.md for a systemd unit."
            </p>
        </section>
    }
}
