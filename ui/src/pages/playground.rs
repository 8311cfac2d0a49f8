//! The run playground (`/agents/{id}/run`): pick one of the agent's tasks, fill in the input
//! generated from its request schema, run it and follow the run live; below, the agent's run
//! history.

use contracts::{Agent, CreateRun, FieldError, Run, RunMode, Task, Topic};
use leptos::prelude::*;
use leptos::task::spawn_local;
use uuid::Uuid;

use super::providers::kind_label;
use super::runs::{RunDetail, RunHistory, Runs};
use crate::api::{self, ApiError};
use crate::components::run_input::{InputForm, RunInput, attach_required};
use crate::components::{EmptyState, LoadFailed, Loading};
use crate::router::{Route, link, navigate, replace, use_router};
use crate::store::{self, Live};
use crate::ws;

#[component]
pub fn PlaygroundPage(agent_id: Uuid) -> impl IntoView {
    let route = use_router();
    let agents = store::agents();
    let tasks = store::tasks();
    let runs = Runs::new(agent_id, route);

    let agent = Memo::new(move |_| agents.find(agent_id));
    let state = Memo::new(move |_| {
        let loaded = agents.items.with(Option::is_some);
        match (loaded, agent.with(Option::is_some), agents.error.get()) {
            (_, true, _) => 2u8,
            (true, false, _) => 1,
            (false, _, Some(_)) => 3,
            (false, _, None) => 0,
        }
    });
    // The chosen task: the one in the URL when the agent has it, else its first task.
    let task_id = Memo::new(move |_| {
        let wanted = match route.get() {
            Route::Playground { task, .. } => task,
            _ => None,
        };
        agent.with(|a| {
            let tasks = &a.as_ref()?.tasks;
            tasks
                .iter()
                .find(|t| Some(t.id) == wanted)
                .or_else(|| tasks.first())
                .map(|t| t.id)
        })
    });
    let agent_signal = Signal::derive(move || agent.get());

    let back = link(route, Route::Agents);
    let heading = move || {
        agent.with(|a| match a {
            Some(a) => format!("Run {}", a.name),
            None => "Run".to_owned(),
        })
    };
    let subtitle = move || {
        agent.with(|a| {
            a.as_ref().map(|a| {
                format!(
                    "{} · {} · {}",
                    a.provider.name,
                    kind_label(a.provider.kind),
                    a.model
                )
            })
        })
    };

    let body = move || {
        match state.get() {
        0 => view! { <Loading what="agent" /> }.into_any(),
        3 => {
            let error = agents.error.get().unwrap_or_else(|| ApiError {
                status: 0,
                code: None,
                detail: String::new(),
                errors: Vec::new(),
            });
            view! { <LoadFailed error=error retry=move || ws::bump(&[Topic::Agents]) /> }
                .into_any()
        }
        1 => view! {
            <EmptyState
                title="Agent not found"
                hint="It may have been deleted. Go back to the agents list to pick another."
            />
        }
        .into_any(),
        _ => view! {
            <div class="playground">
                <section class="card run-form-card" aria-labelledby="run-form-title">
                    <h3 id="run-form-title">"New run"</h3>
                    <RunForm
                        agent=agent_signal
                        tasks=tasks
                        task_id=task_id
                        on_started=Callback::new(move |run: Run| {
                            runs.started(run.clone());
                            let task = Some(run.task_id);
                            navigate(route, Route::Playground { agent: agent_id, task, run: Some(run.id) });
                        })
                    />
                </section>
                <section class="card run-result" id="run-result" aria-labelledby="run-result-title">
                    <RunDetail runs=runs />
                </section>
            </div>
            <RunHistory runs=runs />
        }
        .into_any(),
    }
    };

    view! {
        <div class="page-head page-head-stack">
            <div>
                <a href="/agents" class="back-link" on:click=back>"← All agents"</a>
                <h2>{heading}</h2>
                <p class="muted small">{subtitle}</p>
            </div>
        </div>
        {body}
    }
}

/// Task picker, generated input form and the Run button.
#[component]
fn RunForm(
    agent: Signal<Option<Agent>>,
    tasks: Live<Task>,
    task_id: Memo<Option<Uuid>>,
    on_started: Callback<Run>,
) -> impl IntoView {
    let route = use_router();
    let errors = RwSignal::new(Vec::<FieldError>::new());
    let failure = RwSignal::new(None::<ApiError>);
    let starting = RwSignal::new(false);
    // The form on screen, for the submit handler; rebuilt when the task or its schema changes.
    let form = RwSignal::new(None::<InputForm>);
    let key = Memo::new(move |_| {
        let id = task_id.get()?;
        let revision = tasks.find(id).map(|t| t.revision);
        Some((id, revision))
    });

    let agent_tasks =
        move || agent.with(|a| a.as_ref().map(|a| a.tasks.clone()).unwrap_or_default());
    let choose = move |ev: leptos::ev::Event| {
        let Ok(task) = event_target_value(&ev).parse::<Uuid>() else {
            return;
        };
        if let Route::Playground { agent, run, .. } = route.get_untracked() {
            replace(
                route,
                Route::Playground {
                    agent,
                    task: Some(task),
                    run,
                },
            );
        }
    };

    let inputs = move || {
        let (id, revision) = key.get()?;
        errors.set(Vec::new());
        failure.set(None);
        let Some(_) = revision else {
            form.set(None);
            return Some(if tasks.items.with_untracked(Option::is_none) {
                view! { <Loading what="the task" /> }.into_any()
            } else {
                view! { <p class="field-error">"This task could not be loaded."</p> }.into_any()
            });
        };
        let task = untrack(|| tasks.find(id))?;
        let input = InputForm::new(task.request_schema.as_ref());
        form.set(Some(input.clone()));
        let description = (!task.description.is_empty())
            .then(|| view! { <p class="hint">{task.description.clone()}</p> });
        Some(
            view! {
                {description}
                <RunInput form=input errors=errors />
            }
            .into_any(),
        )
    };

    let submit = move |ev: leptos::ev::SubmitEvent| {
        ev.prevent_default();
        let (Some(task_id), Some(input_form)) = (task_id.get_untracked(), form.get_untracked())
        else {
            return;
        };
        let Some(agent_id) = agent.with_untracked(|a| a.as_ref().map(|a| a.id)) else {
            return;
        };
        let input = match input_form.value() {
            Ok(input) => input,
            Err(local) => {
                errors.set(local);
                failure.set(None);
                return;
            }
        };
        starting.set(true);
        spawn_local(async move {
            let body = CreateRun {
                input,
                mode: RunMode::Async,
            };
            let result = api::create_run(agent_id, task_id, &body).await;
            starting.set(false);
            match result {
                Ok(run) => {
                    errors.set(Vec::new());
                    failure.set(None);
                    on_started.run(run);
                }
                Err(e) => {
                    errors.set(attach_required(e.errors.clone()));
                    failure.set(Some(e));
                }
            }
        });
    };

    // The server's message, and every field message no field shows.
    let form_error = move || {
        let failure = failure.get()?;
        let unclaimed: Vec<String> = errors.with(|all| {
            all.iter()
                .filter(|e| !form.with(|f| f.as_ref().is_some_and(|f| f.claims(&e.path))))
                .map(|e| format!("{}: {}", e.path, e.message))
                .collect()
        });
        let detail = if failure.errors.is_empty() {
            failure.detail.clone()
        } else {
            "The input does not match the task's request schema.".to_owned()
        };
        Some(view! {
            <div class="form-error" role="alert" data-testid="form-error">
                <p>{detail}</p>
                <ul>{unclaimed.into_iter().map(|m| view! { <li>{m}</li> }).collect_view()}</ul>
            </div>
        })
    };

    let no_tasks = move || agent.with(|a| a.as_ref().is_none_or(|a| a.tasks.is_empty()));

    view! {
        <Show
            when=move || !no_tasks()
            fallback=|| {
                view! {
                    <EmptyState
                        title="No tasks to run"
                        hint="Assign a task to this agent first: “Manage tasks” on its card in the agents list."
                    />
                }
            }
        >
            <form class="run-form" on:submit=submit novalidate>
                <div class="field">
                    <label for="run-task">"Task"</label>
                    <select id="run-task" on:change=choose>
                        {move || {
                            agent_tasks()
                                .into_iter()
                                .map(|t| {
                                    let id = t.id;
                                    view! {
                                        <option value=id.to_string() selected=move || task_id.get() == Some(id)>
                                            {t.name}
                                        </option>
                                    }
                                })
                                .collect_view()
                        }}
                    </select>
                </div>
                {inputs}
                {form_error}
                <div class="actions">
                    <button
                        type="submit"
                        id="run-start"
                        class="btn btn-primary"
                        disabled=move || starting.get() || form.with(Option::is_none)
                    >
                        {move || if starting.get() { "Starting…" } else { "▶ Run" }}
                    </button>
                </div>
            </form>
        </Show>
    }
}
