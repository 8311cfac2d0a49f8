//! Agents section: the agents configured on this server, their form and the tasks each may
//! run.

use contracts::{Agent, Task, Topic};
use leptos::prelude::*;
use leptos::task::spawn_local;
use uuid::Uuid;

mod form;

use form::AgentForm;

use super::providers::kind_label;
use super::{Editing, edit_in_form, page_head};
use crate::api;
use crate::components::{Banner, ConfirmDelete, EmptyState, list_body};
use crate::router::{Route, link, use_router};
use crate::store::{self, Live};

#[component]
pub fn AgentsPage() -> impl IntoView {
    let live = store::agents();
    let providers = store::providers();
    let tasks = store::tasks();
    let editing = RwSignal::new(Editing::Closed);

    let form = move || {
        let existing = match editing.get() {
            Editing::Closed => return None,
            Editing::New => None,
            Editing::Edit(id) => Some(live.find(id)?),
        };
        Some(view! {
            <AgentForm
                existing=existing
                live=live
                providers=providers
                on_done=move || editing.set(Editing::Closed)
            />
        })
    };
    let empty = move || {
        view! {
            <EmptyState
                title="No agents yet"
                hint="An agent is a model on a provider with a system prompt. Create one, then give it tasks to run."
            />
        }
        .into_any()
    };
    let filled = move || {
        view! {
            <div class="card-grid">
                <For each=move || live.items.get().unwrap_or_default() key=|a| a.id let:agent>
                    <AgentCard
                        initial=agent
                        live=live
                        tasks=tasks
                        on_edit=edit_in_form(editing)
                    />
                </For>
            </div>
        }
        .into_any()
    };
    view! {
        {page_head("Agents", "agent-new", "New agent", editing)}
        {form}
        {list_body(live, Topic::Agents, "agents", empty, filled)}
    }
}

#[component]
fn AgentCard(
    initial: Agent,
    live: Live<Agent>,
    tasks: Live<Task>,
    on_edit: impl Fn(Uuid) + 'static,
) -> impl IntoView {
    let id = initial.id;
    let name = initial.name.clone();
    let agent = Signal::derive(move || live.find(id).unwrap_or_else(|| initial.clone()));
    let banner = Banner::get();
    let playground = Route::Playground {
        agent: id,
        task: None,
        run: None,
    };
    let open_playground = link(use_router(), playground);
    let managing = RwSignal::new(false);
    let confirming = RwSignal::new(false);

    let delete = move || {
        spawn_local(async move {
            match api::delete_agent(id).await {
                Ok(()) => live.remove(id),
                Err(e) => banner.show(format!("Could not delete the agent: {e}")),
            }
        });
    };
    let task_count = move || {
        agent.with(|a| match a.tasks.len() {
            1 => "1 task".to_owned(),
            n => format!("{n} tasks"),
        })
    };
    let provider = move || {
        agent.with(|a| {
            let state = if a.provider.is_active {
                ""
            } else {
                " (deleted)"
            };
            format!(
                "{} · {}{state}",
                a.provider.name,
                kind_label(a.provider.kind)
            )
        })
    };

    view! {
        <article class="card agent-card" data-testid="agent-card" data-agent-name=name.clone()>
            <header class="card-head">
                <h3 class="card-name">{move || agent.with(|a| a.name.clone())}</h3>
                <span class="tag" data-testid="task-count">{task_count}</span>
            </header>
            {move || {
                agent
                    .with(|a| (!a.description.is_empty()).then(|| a.description.clone()))
                    .map(|d| view! { <p class="card-description">{d}</p> })
            }}
            <dl class="facts">
                <dt>"Provider"</dt>
                <dd>{provider}</dd>
                <dt>"Model"</dt>
                <dd class="mono">{move || agent.with(|a| a.model.clone())}</dd>
            </dl>
            <div class="actions">
                <a
                    class="btn btn-primary"
                    href=playground.path()
                    data-testid="open-playground"
                    aria-label=format!("Run a task with {name}")
                    on:click=open_playground
                >
                    "▶ Run"
                </a>
                <button
                    type="button"
                    class="btn"
                    data-testid="manage-tasks"
                    aria-expanded=move || managing.get().to_string()
                    on:click=move |_| managing.update(|m| *m = !*m)
                >
                    "Manage tasks"
                </button>
                <button
                    type="button"
                    class="btn"
                    data-testid="edit-agent"
                    on:click=move |_| on_edit(id)
                >
                    "Edit"
                </button>
                <button
                    type="button"
                    class="btn btn-danger-quiet"
                    data-testid="delete-agent"
                    on:click=move |_| confirming.set(true)
                >
                    "Delete"
                </button>
            </div>
            <ConfirmDelete open=confirming text="Delete this agent and its task assignments? Its past runs stay." confirm_label="Delete agent"
                on_confirm=delete />
            <Show when=move || managing.get()>
                <TaskAssignments agent=agent live=live tasks=tasks />
            </Show>
        </article>
    }
}

/// Checkboxes assigning and unassigning every task to one agent.
#[component]
fn TaskAssignments(agent: Signal<Agent>, live: Live<Agent>, tasks: Live<Task>) -> impl IntoView {
    let banner = Banner::get();
    let busy = RwSignal::new(None::<Uuid>);
    let toggle = move |task_id: Uuid, assign: bool| {
        let agent_id = agent.with_untracked(|a| a.id);
        busy.set(Some(task_id));
        spawn_local(async move {
            let result = if assign {
                api::assign_task(agent_id, task_id).await.map(drop)
            } else {
                api::unassign_task(agent_id, task_id).await
            };
            match result {
                // The WebSocket also delivers the change; fetching keeps this tab right
                // when it is not connected.
                Ok(()) => {
                    if let Ok(fresh) = api::get_agent(agent_id).await {
                        live.upsert(fresh);
                    }
                }
                Err(e) => banner.show(format!("Could not change the assignment: {e}")),
            }
            busy.set(None);
        });
    };
    let rows = move || {
        let all = tasks.items.get().unwrap_or_default();
        if all.is_empty() {
            return view! {
                <p class="muted">"No tasks exist yet. Create one on the Tasks tab."</p>
            }
            .into_any();
        }
        all.into_iter()
            .map(|task| {
                let task_id = task.id;
                let assigned = move || agent.with(|a| a.tasks.iter().any(|t| t.id == task_id));
                view! {
                    <li>
                        <label class="check">
                            <input
                                type="checkbox"
                                data-testid="assign-task"
                                data-task-name=task.name.clone()
                                prop:checked=assigned
                                disabled=move || busy.get() == Some(task_id)
                                on:change=move |ev| toggle(task_id, event_target_checked(&ev))
                            />
                            <span>{task.name.clone()}</span>
                        </label>
                    </li>
                }
            })
            .collect_view()
            .into_any()
    };
    view! {
        <div class="assignments" data-testid="task-assignments">
            <p class="card-title">"Tasks this agent may run"</p>
            <ul class="check-list">{rows}</ul>
        </div>
    }
}
