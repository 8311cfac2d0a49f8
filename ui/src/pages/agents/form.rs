//! The agent form: create or replace an agent's configuration, with the server's field
//! errors next to the fields they concern.

use contracts::{Agent, ConcurrencyGroup, CreateAgent, FieldError, Provider};
use leptos::prelude::*;
use leptos::task::spawn_local;
use uuid::Uuid;

use crate::api;
use crate::components::{FieldErrors, FormError, TextField};
use crate::pages::providers::kind_label;
use crate::pages::{SaveState, comma_list, optional};
use crate::store::Live;

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
    "/queue_timeout_secs",
    "/concurrency_group_id",
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
pub(super) fn AgentForm(
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
    let workers = text(|a| a.workers.join(", "));
    let required_tags = text(|a| a.required_tags.join(", "));
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
    let queue_timeout = RwSignal::new(
        existing
            .as_ref()
            .map_or(defaults::QUEUE_TIMEOUT_SECS, |a| a.queue_timeout_secs)
            .to_string(),
    );
    // The tags that exist, to pick required tags from.
    let tag_names = RwSignal::new(Vec::<String>::new());
    spawn_local(async move {
        if let Ok(list) = api::list_tags().await {
            tag_names.set(list.into_iter().map(|t| t.name).collect());
        }
    });
    let toggle_tag = move |tag: String| {
        let mut chosen = comma_list(&required_tags.get_untracked());
        match chosen.iter().position(|t| *t == tag) {
            Some(at) => {
                chosen.remove(at);
            }
            None => chosen.push(tag),
        }
        required_tags.set(chosen.join(", "));
    };
    let tag_picker = move || {
        let chosen = comma_list(&required_tags.get());
        tag_names
            .get()
            .into_iter()
            .map(|tag| {
                let on = chosen.contains(&tag);
                let name = tag.clone();
                let data = tag.clone();
                view! {
                    <button
                        type="button"
                        class=if on { "tag tag-picked" } else { "tag" }
                        aria-pressed=if on { "true" } else { "false" }
                        data-testid="tag-pick"
                        data-tag=data
                        on:click=move |_| toggle_tag(name.clone())
                    >
                        {tag}
                    </button>
                }
            })
            .collect_view()
    };
    let group_id = RwSignal::new(existing.as_ref().and_then(|a| a.concurrency_group_id));
    let groups = RwSignal::new(Vec::<ConcurrencyGroup>::new());
    spawn_local(async move {
        // Without the list the picker offers only "none" (and the agent's current group).
        if let Ok(list) = api::list_concurrency_groups().await {
            groups.set(list);
        }
    });
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
    let save = SaveState::new();
    let SaveState {
        saving,
        failure,
        errors,
    } = save;

    let submit = move |ev: leptos::ev::SubmitEvent| {
        ev.prevent_default();
        let mut local = Vec::new();
        let temperature = number::<f64>(&temperature.get_untracked(), "/temperature", &mut local);
        let max_tokens = number::<u32>(&max_tokens.get_untracked(), "/max_tokens", &mut local);
        let max_retries = number::<u32>(&max_retries.get_untracked(), "/max_retries", &mut local);
        let timeout_secs = number::<u32>(&timeout.get_untracked(), "/timeout_secs", &mut local);
        let queue_timeout_secs = number::<u32>(
            &queue_timeout.get_untracked(),
            "/queue_timeout_secs",
            &mut local,
        );
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
            queue_timeout_secs: queue_timeout_secs.unwrap_or(defaults::QUEUE_TIMEOUT_SECS),
            workers: comma_list(&workers.get_untracked()),
            required_tags: comma_list(&required_tags.get_untracked()),
            concurrency_group_id: group_id.get_untracked(),
        };
        saving.set(true);
        spawn_local(async move {
            let result = match id {
                Some(id) => api::update_agent(id, &body).await,
                None => api::create_agent(&body).await,
            };
            save.finish(result, live, on_done);
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
    let group_options = move || {
        let mut options: Vec<(Uuid, String)> = groups
            .get()
            .into_iter()
            .map(|g| (g.id, format!("{} (at most {} at once)", g.name, g.limit)))
            .collect();
        if let Some(current) = group_id.get_untracked()
            && !options.iter().any(|(id, _)| *id == current)
        {
            options.push((current, "current group".to_owned()));
        }
        options
            .into_iter()
            .map(|(id, label)| {
                view! {
                    <option value=id.to_string() selected=move || group_id.get() == Some(id)>
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
            <TextField id="agent-name" label="Name" value=name errors=errors path="/name"
                required=true maxlength="100" autocomplete="off" />
            <TextField id="agent-description" label="Description" value=description
                errors=errors path="/description" />
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
                <TextField id="agent-model" label="Model" value=model errors=errors path="/model"
                    required=true autocomplete="off" list="agent-model-options">
                    <datalist id="agent-model-options">
                        {move || {
                            models()
                                .into_iter()
                                .map(|m| view! { <option value=m></option> })
                                .collect_view()
                        }}
                    </datalist>
                    <p class="hint">{model_hint}</p>
                </TextField>
            </div>
            <TextField id="agent-system-prompt" label="System prompt" value=system_prompt
                errors=errors path="/system_prompt" required=true rows=5 />
            <TextField id="agent-user-prompt" label="User prompt template (optional)"
                value=user_prompt errors=errors path="/user_prompt" rows=3
                placeholder="Classify this text: {{ text }}">
                <p class="hint">
                    "A minijinja template rendered with the run input ({{ input }}, or its fields such as {{ text }}). Empty sends the input as JSON."
                </p>
            </TextField>
            <div class="field-row field-row-4">
                <NumberField id="agent-temperature" label="Temperature" value=temperature errors=errors path="/temperature" step="0.1" placeholder="default" />
                <NumberField id="agent-max-tokens" label="Max tokens" value=max_tokens errors=errors path="/max_tokens" step="1" placeholder="default" />
                <NumberField id="agent-max-retries" label="Max retries" value=max_retries errors=errors path="/max_retries" step="1" placeholder="2" />
                <NumberField id="agent-timeout" label="Timeout (s)" value=timeout errors=errors path="/timeout_secs" step="1" placeholder="120" />
            </div>
            <div class="field-row field-row-4">
                <NumberField id="agent-queue-timeout" label="Queue timeout (s)" value=queue_timeout errors=errors path="/queue_timeout_secs" step="1" placeholder="300" />
                <div class="field">
                    <label for="agent-concurrency-group">"Concurrency group"</label>
                    <select
                        id="agent-concurrency-group"
                        on:change=move |ev| group_id.set(event_target_value(&ev).parse::<Uuid>().ok())
                    >
                        <option value="" selected=move || group_id.get().is_none()>"none"</option>
                        {group_options}
                    </select>
                    <FieldErrors errors=errors path="/concurrency_group_id" />
                </div>
            </div>
            <div class="field-row">
                <TextField id="agent-workers" label="Run only on workers" value=workers errors=errors path="/workers" placeholder="any worker (names, comma-separated)" />
                <TextField id="agent-required-tags" label="Required tags" value=required_tags errors=errors path="/required_tags" placeholder="none (tags, comma-separated; a worker needs all)">
                    <div class="tag-picker" role="group" aria-label="Pick required tags" data-testid="tag-picker">
                        {tag_picker}
                    </div>
                </TextField>
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
    pub const QUEUE_TIMEOUT_SECS: u32 = 300;
}
