//! The Concurrency page (Workers section): every concurrency group with its limit and live
//! counts (runs holding a slot, runs queued, agents in it); create a group, change its
//! limit, delete it (a group agents are in is refused, and the server's reason is shown).

use contracts::{ConcurrencyGroup, CreateConcurrencyGroup, FieldError, Topic};
use leptos::prelude::*;
use leptos::task::spawn_local;
use uuid::Uuid;

use crate::api;
use crate::components::Banner;
use crate::ws;

#[component]
pub fn ConcurrencyPage() -> impl IntoView {
    let groups = RwSignal::new(None::<Vec<ConcurrencyGroup>>);
    let banner = Banner::get();
    let reload = move || {
        spawn_local(async move {
            match api::list_concurrency_groups().await {
                Ok(list) => groups.set(Some(list)),
                Err(e) => banner.show(format!("Could not load the concurrency groups: {e}")),
            }
        });
    };
    let refetch = ws::refetch(Topic::Concurrency);
    Effect::new(move |_| {
        refetch.track();
        reload();
    });
    // Counts arrive as updates of the group: applied in place, no request per change.
    ws::on_event(
        Topic::Concurrency,
        move |event| match serde_json::from_value::<ConcurrencyGroup>(event.data.clone()) {
            Ok(group) if event.event == contracts::EventKind::Updated => {
                groups.update(|list| {
                    if let Some(list) = list
                        && let Some(slot) = list.iter_mut().find(|g| g.id == group.id)
                    {
                        *slot = group;
                    }
                });
            }
            _ => reload(),
        },
    );
    // Agents joining or leaving a group change its agent count.
    ws::on_event(Topic::Agents, move |_| reload());

    let name = RwSignal::new(String::new());
    let limit = RwSignal::new(String::from("1"));
    let note = RwSignal::new(String::new());
    let errors = RwSignal::new(Vec::<FieldError>::new());
    let create = move |ev: leptos::ev::SubmitEvent| {
        ev.prevent_default();
        let Some(limit_value) = parse_limit(&limit.get_untracked(), errors) else {
            return;
        };
        let body = CreateConcurrencyGroup {
            name: name.get_untracked().trim().to_owned(),
            limit: limit_value,
            note: Some(note.get_untracked()),
        };
        spawn_local(async move {
            match api::create_concurrency_group(&body).await {
                Ok(_) => {
                    name.set(String::new());
                    limit.set("1".into());
                    note.set(String::new());
                    errors.set(Vec::new());
                    reload();
                }
                Err(e) if !e.errors.is_empty() => errors.set(e.errors),
                Err(e) => errors.set(vec![FieldError {
                    path: "/name".into(),
                    message: e.detail,
                }]),
            }
        });
    };
    let rows = move || {
        groups
            .get()
            .unwrap_or_default()
            .into_iter()
            .map(|group| view! { <GroupRow group=group on_change=reload /> })
            .collect_view()
    };
    let empty = move || groups.with(|g| g.as_ref().is_some_and(Vec::is_empty));
    let messages = move || {
        errors
            .get()
            .into_iter()
            .map(|e| view! { <p class="field-error" role="alert">{format!("{}: {}", e.path.trim_start_matches('/'), e.message)}</p> })
            .collect_view()
    };
    view! {
        <section class="page" data-testid="concurrency-page" aria-label="Concurrency groups">
            <h2>"Concurrency groups"</h2>
            <p class="hint">
                "A group caps how many runs of its agents hold a worker at once, across every worker (a rate-limited key, a small GPU). Queued runs hold no slot; they start in queue order as slots free up."
            </p>
            <Show when=empty>
                <p class="empty" data-testid="concurrency-empty">"No concurrency groups yet."</p>
            </Show>
            <table class="runs-table groups-table" data-testid="concurrency-groups">
                <thead>
                    <tr>
                        <th scope="col">"Group"</th>
                        <th scope="col">"Running"</th>
                        <th scope="col">"Queued"</th>
                        <th scope="col">"Agents"</th>
                        <th scope="col">"Limit"</th>
                        <th scope="col"></th>
                    </tr>
                </thead>
                <tbody>{rows}</tbody>
            </table>
            <form class="field-row" id="group-form" on:submit=create>
                <input id="group-name" aria-label="Group name" placeholder="openai-key" prop:value=move || name.get()
                    on:input=move |ev| name.set(event_target_value(&ev)) />
                <input id="group-limit" aria-label="Limit" type="number" min="1" max="10000" prop:value=move || limit.get()
                    on:input=move |ev| limit.set(event_target_value(&ev)) />
                <input id="group-note" aria-label="Group note" placeholder="what it protects" prop:value=move || note.get()
                    on:input=move |ev| note.set(event_target_value(&ev)) />
                <button type="submit" id="group-create" class="btn">"Create group"</button>
            </form>
            {messages}
        </section>
    }
}

/// A whole number for `/limit`, or the problem shown under the form.
fn parse_limit(text: &str, errors: RwSignal<Vec<FieldError>>) -> Option<u32> {
    match text.trim().parse::<u32>() {
        Ok(value) => Some(value),
        Err(_) => {
            errors.set(vec![FieldError {
                path: "/limit".into(),
                message: "a whole number of runs, 1–10,000".into(),
            }]);
            None
        }
    }
}

#[component]
fn GroupRow(
    group: ConcurrencyGroup,
    on_change: impl Fn() + Copy + Send + Sync + 'static,
) -> impl IntoView {
    let banner = Banner::get();
    let id: Uuid = group.id;
    let limit = RwSignal::new(group.limit.to_string());
    let errors = RwSignal::new(Vec::<FieldError>::new());
    let (name, note) = (group.name.clone(), group.note.clone());
    let save = {
        let (name, note) = (name.clone(), note.clone());
        move |ev: leptos::ev::SubmitEvent| {
            ev.prevent_default();
            let Some(value) = parse_limit(&limit.get_untracked(), errors) else {
                return;
            };
            let body = CreateConcurrencyGroup {
                name: name.clone(),
                limit: value,
                note: Some(note.clone()),
            };
            spawn_local(async move {
                match api::update_concurrency_group(id, &body).await {
                    Ok(_) => {
                        errors.set(Vec::new());
                        on_change();
                    }
                    Err(e) if !e.errors.is_empty() => errors.set(e.errors),
                    Err(e) => banner.show(format!("Could not change the limit: {e}")),
                }
            });
        }
    };
    let delete = move |_| {
        spawn_local(async move {
            match api::delete_concurrency_group(id).await {
                Ok(()) => on_change(),
                Err(e) => banner.show(format!("Could not delete the group: {e}")),
            }
        });
    };
    let full = group.active >= group.limit;
    let problems = move || {
        errors
            .get()
            .into_iter()
            .map(|e| view! { <p class="field-error" role="alert">{e.message}</p> })
            .collect_view()
    };
    view! {
        <tr data-testid="group-row" data-group=name.clone()>
            <th scope="row">
                <span class="mono">{name.clone()}</span>
                <span class="hint">{note}</span>
            </th>
            <td data-testid="group-active" class=if full { "count count-full" } else { "count" }>
                {format!("{} / {}", group.active, group.limit)}
            </td>
            <td data-testid="group-queued">{group.queued}</td>
            <td data-testid="group-agents">{group.agents}</td>
            <td>
                <form class="field-row group-limit" data-testid="group-limit-form" on:submit=save>
                    <input
                        data-testid="group-limit-input"
                        aria-label=format!("Limit of {name}")
                        type="number"
                        min="1"
                        max="10000"
                        prop:value=move || limit.get()
                        on:input=move |ev| limit.set(event_target_value(&ev))
                    />
                    <button type="submit" class="btn" data-testid="group-limit-save">"Save"</button>
                </form>
                {problems}
            </td>
            <td>
                <button type="button" class="btn btn-danger" data-testid="group-delete" on:click=delete>
                    "Delete"
                </button>
            </td>
        </tr>
    }
}
