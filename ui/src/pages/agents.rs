//! Agents section: the agents configured on this server, their form and the tasks each may
//! run.

use contracts::{Agent, CreateAgent, FieldError, Provider, Task, Topic};
use leptos::prelude::*;
use leptos::task::spawn_local;
use uuid::Uuid;

use super::providers::kind_label;
use super::{Editing, edit_in_form, optional, page_head};
use crate::api::{self, ApiError};
use crate::components::{Banner, EmptyState, FieldErrors, FormError, list_body};
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

    let delete = move |_| {
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
            <Show when=move || confirming.get()>
                <div class="confirm" role="alertdialog" aria-label="Confirm delete">
                    <p>"Delete this agent and its task assignments? Its past runs stay."</p>
                    <div class="actions">
                        <button
                            type="button"
                            class="btn btn-danger"
                            data-testid="confirm-delete"
                            on:click=delete
                        >
                            "Delete agent"
                        </button>
                        <button type="button" class="btn" on:click=move |_| confirming.set(false)>
                            "Cancel"
                        </button>
                    </div>
                </div>
            </Show>
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

const CLAIMED: &[&str] = &[
    "/name",
    "/description",
    "/provider_id",
    "/model",
    "/system_prompt",
    "/user_prompt",
    "/temperature",
    "/max_tokens",
    "/max_retries",
    "/timeout_secs",
];

/// Parses an optional number field, recording a field error when it is not a number.
fn number<T: std::str::FromStr>(text: &str, path: &str, errors: &mut Vec<FieldError>) -> Option<T> {
    let text = optional(text)?;
    match text.parse() {
        Ok(n) => Some(n),
        Err(_) => {
            errors.push(FieldError {
                path: path.to_owned(),
                message: "must be a number".to_owned(),
            });
            None
        }
    }
}

#[component]
fn AgentForm(
    existing: Option<Agent>,
    live: Live<Agent>,
    providers: Live<Provider>,
    on_done: impl Fn() + Copy + 'static,
) -> impl IntoView {
    let id = existing.as_ref().map(|a| a.id);
    let text =
        |f: fn(&Agent) -> String| RwSignal::new(existing.as_ref().map(f).unwrap_or_default());
    let name = text(|a| a.name.clone());
    let description = text(|a| a.description.clone());
    let model = text(|a| a.model.clone());
    let system_prompt = text(|a| a.system_prompt.clone());
    let user_prompt = text(|a| a.user_prompt.clone().unwrap_or_default());
    let temperature = text(|a| a.temperature.map(|t| t.to_string()).unwrap_or_default());
    let max_tokens = text(|a| a.max_tokens.map(|t| t.to_string()).unwrap_or_default());
    let max_retries = RwSignal::new(
        existing
            .as_ref()
            .map_or(defaults::MAX_RETRIES, |a| a.max_retries)
            .to_string(),
    );
    let timeout = RwSignal::new(
        existing
            .as_ref()
            .map_or(defaults::TIMEOUT_SECS, |a| a.timeout_secs)
            .to_string(),
    );
    // The agent's provider may be soft-deleted: keep it selectable so saving does not move it.
    let current_provider = existing.as_ref().map(|a| a.provider.clone());
    let provider_id = RwSignal::new(existing.as_ref().map(|a| a.provider_id));
    Effect::new(move |_| {
        if provider_id.get_untracked().is_none()
            && let Some(first) = providers.items.with(|p| p.as_ref()?.first().map(|p| p.id))
        {
            provider_id.set(Some(first));
        }
    });
    let failure = RwSignal::new(None::<ApiError>);
    let errors = RwSignal::new(Vec::<FieldError>::new());
    let saving = RwSignal::new(false);

    let submit = move |ev: leptos::ev::SubmitEvent| {
        ev.prevent_default();
        let mut local = Vec::new();
        let temperature = number::<f64>(&temperature.get_untracked(), "/temperature", &mut local);
        let max_tokens = number::<u32>(&max_tokens.get_untracked(), "/max_tokens", &mut local);
        let max_retries = number::<u32>(&max_retries.get_untracked(), "/max_retries", &mut local);
        let timeout_secs = number::<u32>(&timeout.get_untracked(), "/timeout_secs", &mut local);
        let Some(provider_id) = provider_id.get_untracked() else {
            local.push(FieldError {
                path: "/provider_id".into(),
                message: "choose a provider".into(),
            });
            errors.set(local);
            return;
        };
        if !local.is_empty() {
            errors.set(local);
            failure.set(None);
            return;
        }
        let body = CreateAgent {
            name: name.get_untracked().trim().to_owned(),
            description: description.get_untracked().trim().to_owned(),
            provider_id,
            model: model.get_untracked().trim().to_owned(),
            system_prompt: system_prompt.get_untracked(),
            user_prompt: optional(&user_prompt.get_untracked())
                .map(|_| user_prompt.get_untracked()),
            temperature,
            max_tokens,
            max_retries: max_retries.unwrap_or(defaults::MAX_RETRIES),
            timeout_secs: timeout_secs.unwrap_or(defaults::TIMEOUT_SECS),
        };
        saving.set(true);
        spawn_local(async move {
            let result = match id {
                Some(id) => api::update_agent(id, &body).await,
                None => api::create_agent(&body).await,
            };
            saving.set(false);
            match result {
                Ok(agent) => {
                    live.merge(agent);
                    on_done();
                }
                Err(e) => {
                    errors.set(e.errors.clone());
                    failure.set(Some(e));
                }
            }
        });
    };

    let provider_options = move || {
        let mut options: Vec<(Uuid, String)> = providers
            .items
            .get()
            .unwrap_or_default()
            .into_iter()
            .map(|p| (p.id, format!("{} ({})", p.name, kind_label(p.kind))))
            .collect();
        if let Some(current) = &current_provider
            && !options.iter().any(|(id, _)| *id == current.id)
        {
            options.push((current.id, format!("{} (deleted)", current.name)));
        }
        options
            .into_iter()
            .map(|(id, label)| {
                view! {
                    <option value=id.to_string() selected=move || provider_id.get() == Some(id)>
                        {label}
                    </option>
                }
            })
            .collect_view()
    };
    let no_providers = move || {
        providers
            .items
            .with(|p| p.as_ref().is_some_and(Vec::is_empty))
    };
    let models = move || {
        provider_id
            .get()
            .and_then(|id| providers.find(id))
            .map(|p| p.models)
            .unwrap_or_default()
    };
    let model_hint = move || match models().len() {
        0 => "No models discovered yet (the provider is not connected): type the model name."
            .to_owned(),
        n => format!("{n} models discovered; pick one or type another."),
    };
    let title = if id.is_some() {
        "Edit agent"
    } else {
        "New agent"
    };

    view! {
        <form class="card form" id="agent-form" on:submit=submit novalidate>
            <h3>{title}</h3>
            <FormError failure=failure claimed=CLAIMED />
            <div class="field">
                <label for="agent-name">"Name"</label>
                <input
                    id="agent-name"
                    type="text"
                    required
                    maxlength="100"
                    autocomplete="off"
                    prop:value=move || name.get()
                    on:input=move |ev| name.set(event_target_value(&ev))
                />
                <FieldErrors errors=errors path="/name" />
            </div>
            <div class="field">
                <label for="agent-description">"Description"</label>
                <input
                    id="agent-description"
                    type="text"
                    prop:value=move || description.get()
                    on:input=move |ev| description.set(event_target_value(&ev))
                />
                <FieldErrors errors=errors path="/description" />
            </div>
            <div class="field-row">
                <div class="field">
                    <label for="agent-provider">"Provider"</label>
                    <select
                        id="agent-provider"
                        on:change=move |ev| {
                            provider_id.set(event_target_value(&ev).parse::<Uuid>().ok())
                        }
                    >
                        {provider_options}
                    </select>
                    <Show when=no_providers>
                        <p class="hint">
                            "No providers yet: " <a href="/providers">"add one first"</a> "."
                        </p>
                    </Show>
                    <FieldErrors errors=errors path="/provider_id" />
                </div>
                <div class="field">
                    <label for="agent-model">"Model"</label>
                    <input
                        id="agent-model"
                        type="text"
                        list="agent-model-options"
                        required
                        autocomplete="off"
                        prop:value=move || model.get()
                        on:input=move |ev| model.set(event_target_value(&ev))
                    />
                    <datalist id="agent-model-options">
                        {move || {
                            models()
                                .into_iter()
                                .map(|m| view! { <option value=m></option> })
                                .collect_view()
                        }}
                    </datalist>
                    <p class="hint">{model_hint}</p>
                    <FieldErrors errors=errors path="/model" />
                </div>
            </div>
            <div class="field">
                <label for="agent-system-prompt">"System prompt"</label>
                <textarea
                    id="agent-system-prompt"
                    rows="5"
                    required
                    prop:value=move || system_prompt.get()
                    on:input=move |ev| system_prompt.set(event_target_value(&ev))
                ></textarea>
                <FieldErrors errors=errors path="/system_prompt" />
            </div>
            <div class="field">
                <label for="agent-user-prompt">"User prompt template (optional)"</label>
                <textarea
                    id="agent-user-prompt"
                    rows="3"
                    placeholder="Classify this text: {{ text }}"
                    prop:value=move || user_prompt.get()
                    on:input=move |ev| user_prompt.set(event_target_value(&ev))
                ></textarea>
                <p class="hint">
                    "A minijinja template rendered with the run input ({{ input }}, or its fields such as {{ text }}). Empty sends the input as JSON."
                </p>
                <FieldErrors errors=errors path="/user_prompt" />
            </div>
            <div class="field-row field-row-4">
                <NumberField id="agent-temperature" label="Temperature" value=temperature errors=errors path="/temperature" step="0.1" placeholder="default" />
                <NumberField id="agent-max-tokens" label="Max tokens" value=max_tokens errors=errors path="/max_tokens" step="1" placeholder="default" />
                <NumberField id="agent-max-retries" label="Max retries" value=max_retries errors=errors path="/max_retries" step="1" placeholder="2" />
                <NumberField id="agent-timeout" label="Timeout (s)" value=timeout errors=errors path="/timeout_secs" step="1" placeholder="120" />
            </div>
            <div class="actions">
                <button type="submit" id="agent-save" class="btn btn-primary" disabled=move || saving.get()>
                    {move || if saving.get() { "Saving…" } else { "Save agent" }}
                </button>
                <button type="button" class="btn" on:click=move |_| on_done()>
                    "Cancel"
                </button>
            </div>
        </form>
    }
}

#[component]
fn NumberField(
    id: &'static str,
    label: &'static str,
    value: RwSignal<String>,
    errors: RwSignal<Vec<FieldError>>,
    path: &'static str,
    step: &'static str,
    placeholder: &'static str,
) -> impl IntoView {
    view! {
        <div class="field">
            <label for=id>{label}</label>
            <input
                id=id
                type="number"
                inputmode="decimal"
                step=step
                min="0"
                placeholder=placeholder
                prop:value=move || value.get()
                on:input=move |ev| value.set(event_target_value(&ev))
            />
            <FieldErrors errors=errors path=path />
        </div>
    }
}

/// The server's defaults, named here so the form shows what an empty field means.
mod defaults {
    pub const MAX_RETRIES: u32 = 2;
    pub const TIMEOUT_SECS: u32 = 120;
}
