//! Tasks section: what goes into a run and what must come out, edited as schema cards.

use contracts::{CreateTask, Task, Topic};
use leptos::prelude::*;
use leptos::task::spawn_local;
use uuid::Uuid;

use super::{Editing, SaveState, edit_in_form, page_head};
use crate::api;
use crate::components::schema_editor::{Node, summary};
use crate::components::{
    Banner, ConfirmDelete, EmptyState, FormError, SchemaEditor, TextField, list_body,
};
use crate::store::{self, Live};

#[component]
pub fn TasksPage() -> impl IntoView {
    let live = store::tasks();
    let editing = RwSignal::new(Editing::Closed);

    let form = move || {
        let existing = match editing.get() {
            Editing::Closed => return None,
            Editing::New => None,
            Editing::Edit(id) => Some(live.find(id)?),
        };
        Some(view! {
            <TaskForm existing=existing live=live on_done=move || editing.set(Editing::Closed) />
        })
    };
    let empty = move || {
        view! {
            <EmptyState
                title="No tasks yet"
                hint="A task says what a run gets as input and what JSON it must answer with. Create one, then assign it to agents."
            />
        }
        .into_any()
    };
    let filled = move || {
        view! {
            <div class="card-grid">
                <For each=move || live.items.get().unwrap_or_default() key=|t| t.id let:task>
                    <TaskCard
                        initial=task
                        live=live
                        on_edit=edit_in_form(editing)
                    />
                </For>
            </div>
        }
        .into_any()
    };
    view! {
        {page_head("Tasks", "task-new", "New task", editing)}
        {form}
        {list_body(live, Topic::Tasks, "tasks", empty, filled)}
    }
}

#[component]
fn TaskCard(initial: Task, live: Live<Task>, on_edit: impl Fn(Uuid) + 'static) -> impl IntoView {
    let id = initial.id;
    let name = initial.name.clone();
    let task = Signal::derive(move || live.find(id).unwrap_or_else(|| initial.clone()));
    let banner = Banner::get();
    let confirming = RwSignal::new(false);
    let delete = move || {
        spawn_local(async move {
            match api::delete_task(id).await {
                Ok(()) => live.remove(id),
                Err(e) => banner.show(format!("Could not delete the task: {e}")),
            }
        });
    };
    let input = move || {
        task.with(|t| match &t.request_schema {
            Some(schema) => summary(schema),
            None => "any JSON".to_owned(),
        })
    };
    let output = move || task.with(|t| summary(&t.response_schema));
    let agents = move || {
        task.with(|t| {
            if t.agents.is_empty() {
                "none".to_owned()
            } else {
                t.agents
                    .iter()
                    .map(|a| a.name.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            }
        })
    };
    let assigned = move || task.with(|t| !t.agents.is_empty());
    view! {
        <article class="card task-card" data-testid="task-card" data-task-name=name>
            <header class="card-head">
                <h3 class="card-name">{move || task.with(|t| t.name.clone())}</h3>
            </header>
            {move || {
                task.with(|t| (!t.description.is_empty()).then(|| t.description.clone()))
                    .map(|d| view! { <p class="card-description">{d}</p> })
            }}
            <dl class="facts" data-testid="schema-summary">
                <dt>"Input"</dt>
                <dd class="mono">{input}</dd>
                <dt>"Output"</dt>
                <dd class="mono">{output}</dd>
                <dt>"Agents"</dt>
                <dd>{agents}</dd>
            </dl>
            <div class="actions">
                <button type="button" class="btn" data-testid="edit-task" on:click=move |_| on_edit(id)>
                    "Edit"
                </button>
                <button
                    type="button"
                    class="btn btn-danger-quiet"
                    data-testid="delete-task"
                    on:click=move |_| confirming.set(true)
                >
                    "Delete"
                </button>
            </div>
            <ConfirmDelete open=confirming text=Signal::derive(move || {
                    if assigned() {
                        "This task is assigned to agents: unassign it from them first (Agents → Manage tasks)."
                    } else {
                        "Delete this task? Its past runs stay."
                    }
                    .to_owned()
                }) confirm_label="Delete task"
                on_confirm=delete />
        </article>
    }
}

const CLAIMED: &[&str] = &[
    "/name",
    "/description",
    "/request_schema",
    "/response_schema",
];

#[component]
fn TaskForm(
    existing: Option<Task>,
    live: Live<Task>,
    on_done: impl Fn() + Copy + 'static,
) -> impl IntoView {
    let id = existing.as_ref().map(|t| t.id);
    let name = RwSignal::new(
        existing
            .as_ref()
            .map(|t| t.name.clone())
            .unwrap_or_default(),
    );
    let description = RwSignal::new(
        existing
            .as_ref()
            .map(|t| t.description.clone())
            .unwrap_or_default(),
    );
    let request_schema = existing.as_ref().and_then(|t| t.request_schema.clone());
    let has_request = RwSignal::new(request_schema.is_some());
    let request = RwSignal::new(
        request_schema
            .as_ref()
            .map_or_else(Node::object, Node::from_json),
    );
    let response = RwSignal::new(
        existing
            .as_ref()
            .map_or_else(Node::object, |t| Node::from_json(&t.response_schema)),
    );
    let save = SaveState::new();
    let SaveState {
        saving,
        failure,
        errors,
    } = save;

    let submit = move |ev: leptos::ev::SubmitEvent| {
        ev.prevent_default();
        let body = untrack(|| CreateTask {
            name: name.get().trim().to_owned(),
            description: description.get().trim().to_owned(),
            request_schema: has_request.get().then(|| request.get().to_json()),
            response_schema: response.get().to_json(),
        });
        saving.set(true);
        spawn_local(async move {
            let result = match id {
                Some(id) => api::update_task(id, &body).await,
                None => api::create_task(&body).await,
            };
            save.finish(result, live, on_done);
        });
    };
    let title = if id.is_some() {
        "Edit task"
    } else {
        "New task"
    };

    view! {
        <form class="card form" id="task-form" on:submit=submit novalidate>
            <h3>{title}</h3>
            <FormError failure=failure claimed=CLAIMED />
            <TextField id="task-name" label="Name" value=name errors=errors path="/name"
                required=true maxlength="100" autocomplete="off" />
            <TextField id="task-description" label="Description" value=description
                errors=errors path="/description" />
            <label class="check">
                <input
                    type="checkbox"
                    id="task-has-request-schema"
                    prop:checked=move || has_request.get()
                    on:change=move |ev| has_request.set(event_target_checked(&ev))
                />
                <span>"Check the run input against a request schema"</span>
            </label>
            <Show
                when=move || has_request.get()
                fallback=|| view! { <p class="hint">"Without a request schema a run accepts any JSON input."</p> }
            >
                <SchemaEditor
                    name="request"
                    title="Request schema (run input)"
                    root=request
                    base="/request_schema"
                    errors=errors
                />
            </Show>
            <SchemaEditor
                name="response"
                title="Response schema (what the model must answer)"
                root=response
                base="/response_schema"
                errors=errors
            />
            <div class="actions">
                <button type="submit" id="task-save" class="btn btn-primary" disabled=move || saving.get()>
                    {move || if saving.get() { "Saving…" } else { "Save task" }}
                </button>
                <button type="button" class="btn" on:click=move |_| on_done()>
                    "Cancel"
                </button>
            </div>
        </form>
    }
}
