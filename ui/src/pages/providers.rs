//! Providers section: the LLM endpoints agents use, their live connectivity status, and the
//! form to add or change one.

use contracts::{
    Agent, CreateProvider, CredentialLocation, Provider, ProviderKind, Topic, UpdateProvider,
    Worker,
};
use leptos::prelude::*;
use leptos::task::spawn_local;
use uuid::Uuid;

use super::{Editing, SaveState, comma_list, edit_in_form, optional, page_head};
use crate::api;
use crate::components::{
    Banner, ConfirmDelete, EmptyState, FieldErrors, FormError, StatusBadge, TextField, list_body,
    use_clock,
};
use crate::store::{self, Live};

pub fn kind_label(kind: ProviderKind) -> &'static str {
    match kind {
        ProviderKind::Ollama => "Ollama",
        ProviderKind::Openai => "OpenAI",
        ProviderKind::OpenaiCompatible => "OpenAI-compatible",
        ProviderKind::Anthropic => "Anthropic",
        ProviderKind::Gemini => "Gemini",
    }
}

/// `•••• abcd` from the server's `…abcd`.
fn key_display(hint: Option<&str>) -> String {
    match hint {
        Some(hint) => format!("•••• {}", hint.trim_start_matches('…')),
        None => "••••".to_owned(),
    }
}

#[component]
pub fn ProvidersPage() -> impl IntoView {
    let live = store::providers();
    let agents = store::agents();
    let editing = RwSignal::new(Editing::Closed);
    let now = use_clock();
    // Which workers hold the keys that live on workers, live.
    let workers = RwSignal::new(Vec::<Worker>::new());
    let reload_workers = move || {
        spawn_local(async move {
            if let Ok(list) = api::list_workers().await {
                workers.set(list);
            }
        });
    };
    reload_workers();
    crate::ws::on_event(Topic::Workers, move |_| reload_workers());

    let form = move || {
        let existing = match editing.get() {
            Editing::Closed => return None,
            Editing::New => None,
            Editing::Edit(id) => Some(live.find(id)?),
        };
        Some(view! {
            <ProviderForm existing=existing live=live on_done=move || editing.set(Editing::Closed) />
        })
    };
    let empty = move || {
        view! {
            <EmptyState
                title="No providers yet"
                hint="Add an LLM provider (Ollama, OpenAI, Anthropic, Gemini or any OpenAI-compatible server) to give your agents a model to talk to."
            />
        }
        .into_any()
    };
    let filled = move || {
        view! {
            <div class="card-grid">
                <For
                    each=move || live.items.get().unwrap_or_default()
                    key=|p| p.id
                    let:provider
                >
                    <ProviderCard
                        initial=provider
                        live=live
                        agents=agents
                        workers=workers
                        now=now
                        on_edit=edit_in_form(editing)
                    />
                </For>
            </div>
        }
        .into_any()
    };
    view! {
        {page_head("Providers", "provider-new", "Add provider", editing)}
        {form}
        {list_body(live, Topic::Providers, "providers", empty, filled)}
    }
}

#[component]
fn ProviderCard(
    initial: Provider,
    live: Live<Provider>,
    agents: Live<Agent>,
    workers: RwSignal<Vec<Worker>>,
    now: RwSignal<f64>,
    on_edit: impl Fn(Uuid) + 'static,
) -> impl IntoView {
    let id = initial.id;
    let name = initial.name.clone();
    let provider = Signal::derive(move || live.find(id).unwrap_or_else(|| initial.clone()));
    let banner = Banner::get();
    let confirming = RwSignal::new(false);
    let checking = RwSignal::new(false);
    let users = move || {
        agents.items.with(|a| {
            a.as_ref()
                .map(|a| a.iter().filter(|a| a.provider_id == id).count())
        })
    };

    let check = move |_| {
        checking.set(true);
        spawn_local(async move {
            match api::validate_provider(id).await {
                Ok(p) => live.merge(p),
                Err(e) => banner.show(format!("Could not start the check: {e}")),
            }
            checking.set(false);
        });
    };
    let delete = move || {
        spawn_local(async move {
            match api::delete_provider(id).await {
                Ok(()) => live.remove(id),
                Err(e) => banner.show(format!("Could not delete the provider: {e}")),
            }
        });
    };
    let endpoint = move || {
        provider.with(|p| match &p.base_url {
            Some(url) => url.clone(),
            None => format!("default ({})", p.kind.default_base_url().unwrap_or("none")),
        })
    };
    let models = move || {
        provider.with(|p| match p.models.len() {
            1 => "1 model".to_owned(),
            n => format!("{n} models"),
        })
    };
    let key = move || {
        provider.with(|p| {
            if p.credential_location == CredentialLocation::Worker {
                let holders: Vec<String> = workers.with(|w| {
                    w.iter()
                        .filter(|w| w.credentials.contains(&p.name))
                        .filter(|w| {
                            p.credential_workers.is_empty()
                                || p.credential_workers.contains(&w.name)
                        })
                        .map(|w| w.name.clone())
                        .collect()
                });
                if holders.is_empty() {
                    "on workers (no worker holds it yet)".to_owned()
                } else {
                    format!("on workers: {}", holders.join(", "))
                }
            } else if p.has_api_key {
                key_display(p.api_key_hint.as_deref())
            } else {
                "none".to_owned()
            }
        })
    };
    let key_workers = move || {
        provider
            .with(|p| (!p.credential_workers.is_empty()).then(|| p.credential_workers.join(", ")))
    };
    let checked_by = move || provider.with(|p| p.checked_by.clone());
    let latency = move || provider.with(|p| p.latency_ms.map(|ms| format!("{ms} ms")));
    let delete_text = move || {
        match users() {
        Some(0) => "No agent uses it, so it is removed for good.".to_owned(),
        Some(1) => "1 agent uses it: it will be hidden from lists but kept for that agent (soft delete) until the agent is moved to another provider. Its name can be reused.".to_owned(),
        Some(n) => format!("{n} agents use it: it will be hidden from lists but kept for them (soft delete) until they are moved to another provider. Its name can be reused."),
        None => "If agents use it, it is hidden from lists but kept for them (soft delete) until they are moved to another provider.".to_owned(),
    }
    };

    view! {
        <article class="card provider-card" data-testid="provider-card" data-provider-name=name>
            <header class="card-head">
                <h3 class="card-name">{move || provider.with(|p| p.name.clone())}</h3>
                <span class="tag">{move || provider.with(|p| kind_label(p.kind))}</span>
            </header>
            <StatusBadge provider=provider now=now />
            <dl class="facts">
                <dt>"Endpoint"</dt>
                <dd class="mono">{endpoint}</dd>
                <dt>"Models"</dt>
                <dd data-testid="models-count">{models}</dd>
                <dt>"API key"</dt>
                <dd class="mono" data-testid="provider-key">{key}</dd>
                {move || key_workers().map(|w| view! { <dt>"Only on"</dt><dd data-testid="provider-key-workers">{w}</dd> })}
                {move || checked_by().map(|w| view! { <dt>"Checked by"</dt><dd data-testid="provider-checked-by">{w}</dd> })}
                {move || latency().map(|l| view! { <dt>"Latency"</dt><dd>{l}</dd> })}
            </dl>
            <div class="actions">
                <button
                    type="button"
                    class="btn"
                    data-testid="check-now"
                    disabled=move || checking.get()
                    on:click=check
                >
                    "Check now"
                </button>
                <button
                    type="button"
                    class="btn"
                    data-testid="edit-provider"
                    on:click=move |_| on_edit(id)
                >
                    "Edit"
                </button>
                <button
                    type="button"
                    class="btn btn-danger-quiet"
                    data-testid="delete-provider"
                    on:click=move |_| confirming.set(true)
                >
                    "Delete"
                </button>
            </div>
            <ConfirmDelete open=confirming text=Signal::derive(delete_text) confirm_label="Delete provider"
                on_confirm=delete />
        </article>
    }
}

const CLAIMED: &[&str] = &[
    "/name",
    "/kind",
    "/base_url",
    "/api_key",
    "/credential_location",
    "/credential_workers",
];

#[component]
fn ProviderForm(
    existing: Option<Provider>,
    live: Live<Provider>,
    on_done: impl Fn() + Copy + 'static,
) -> impl IntoView {
    let id = existing.as_ref().map(|p| p.id);
    let stored_key = existing
        .as_ref()
        .filter(|p| p.has_api_key)
        .map(|p| key_display(p.api_key_hint.as_deref()));
    let name = RwSignal::new(
        existing
            .as_ref()
            .map(|p| p.name.clone())
            .unwrap_or_default(),
    );
    let kind = RwSignal::new(existing.as_ref().map_or(ProviderKind::Ollama, |p| p.kind));
    let base_url = RwSignal::new(
        existing
            .as_ref()
            .and_then(|p| p.base_url.clone())
            .unwrap_or_default(),
    );
    let api_key = RwSignal::new(String::new());
    let location = RwSignal::new(
        existing
            .as_ref()
            .map_or(CredentialLocation::Server, |p| p.credential_location),
    );
    let key_workers = RwSignal::new(
        existing
            .as_ref()
            .map(|p| p.credential_workers.join(", "))
            .unwrap_or_default(),
    );
    let save = SaveState::new();
    let SaveState {
        saving,
        failure,
        errors,
    } = save;

    let submit = move |ev: leptos::ev::SubmitEvent| {
        ev.prevent_default();
        let name = name.get_untracked().trim().to_owned();
        let kind = kind.get_untracked();
        let base_url = optional(&base_url.get_untracked());
        let credential_location = location.get_untracked();
        let credential_workers = comma_list(&key_workers.get_untracked());
        // An empty key field keeps the stored key (update) or sends none (create); a key
        // that lives on workers is never sent.
        let api_key = optional(&api_key.get_untracked())
            .filter(|_| credential_location == CredentialLocation::Server);
        saving.set(true);
        spawn_local(async move {
            let result = match id {
                Some(id) => {
                    let body = UpdateProvider {
                        name,
                        kind,
                        base_url,
                        api_key,
                        credential_location,
                        credential_workers,
                    };
                    api::update_provider(id, &body).await
                }
                None => {
                    let body = CreateProvider {
                        name,
                        kind,
                        base_url,
                        api_key,
                        credential_location,
                        credential_workers,
                    };
                    api::create_provider(&body).await
                }
            };
            save.finish(result, live, on_done);
        });
    };

    let base_url_label = move || {
        if kind.get().requires_base_url() {
            "Base URL"
        } else {
            "Base URL (optional override)"
        }
    };
    let base_url_placeholder = move || match kind.get() {
        ProviderKind::Ollama => "http://localhost:11434",
        ProviderKind::OpenaiCompatible => "http://localhost:8080/v1",
        other => other.default_base_url().unwrap_or(""),
    };
    let key_label = move || {
        if kind.get().requires_api_key() {
            "API key"
        } else {
            "API key (optional)"
        }
    };
    let key_required = {
        let has_stored = stored_key.is_some();
        move || kind.get().requires_api_key() && !has_stored
    };
    let on_server = move || location.get() == CredentialLocation::Server;
    let key_placeholder = StoredValue::new(stored_key.clone().unwrap_or_default());
    let stored_hint =
        StoredValue::new(stored_key.as_ref().map(|k| {
            format!("Stored key {k}. Leave empty to keep it; type a new one to replace it.")
        }));
    let title = if id.is_some() {
        "Edit provider"
    } else {
        "New provider"
    };

    view! {
        <form class="card form" id="provider-form" on:submit=submit novalidate>
            <h3>{title}</h3>
            <FormError failure=failure claimed=CLAIMED />
            <TextField id="provider-name" label="Name" value=name errors=errors path="/name"
                required=true maxlength="100" autocomplete="off" />
            <div class="field">
                <label for="provider-kind">"Kind"</label>
                <select
                    id="provider-kind"
                    on:change=move |ev| {
                        if let Some(k) = ProviderKind::parse(&event_target_value(&ev)) {
                            kind.set(k);
                        }
                    }
                >
                    {ProviderKind::ALL
                        .into_iter()
                        .map(|k| {
                            view! {
                                <option value=k.as_str() selected=move || kind.get() == k>
                                    {kind_label(k)}
                                </option>
                            }
                        })
                        .collect_view()}
                </select>
                <FieldErrors errors=errors path="/kind" />
            </div>
            <TextField id="provider-base-url" label=Signal::derive(move || base_url_label().to_owned())
                value=base_url errors=errors path="/base_url" kind="url" autocomplete="off"
                placeholder=Signal::derive(move || Some(base_url_placeholder().to_owned()))
                required=Signal::derive(move || kind.get().requires_base_url()) />
            <div class="field">
                <label for="provider-credential-location">"Where the key lives"</label>
                <select
                    id="provider-credential-location"
                    on:change=move |ev| {
                        if let Some(l) = CredentialLocation::parse(&event_target_value(&ev)) {
                            location.set(l);
                        }
                    }
                >
                    <option value="server" selected=move || location.get() == CredentialLocation::Server>
                        "On the server (encrypted; sent to the worker running each call)"
                    </option>
                    <option value="worker" selected=move || location.get() == CredentialLocation::Worker>
                        "Only on workers (the server never has it)"
                    </option>
                </select>
                <FieldErrors errors=errors path="/credential_location" />
            </div>
            <Show when=on_server fallback=move || view! {
                <p class="hint" data-testid="worker-key-hint">
                    "Set the key on each worker that should use it: "
                    <code>{move || format!("agentry worker credentials set \"{}\"", name.get().trim())}</code>
                    ". A key stored on the server is deleted when you save."
                </p>
                <FieldErrors errors=errors path="/api_key" />
            }>
                <TextField id="provider-api-key" label=Signal::derive(move || key_label().to_owned())
                    value=api_key errors=errors path="/api_key" kind="password"
                    autocomplete="new-password" required=Signal::derive(key_required)
                    placeholder=key_placeholder.get_value()>
                    {move || stored_hint.get_value().map(|hint| {
                        view! { <p class="hint" data-testid="stored-key">{hint}</p> }
                    })}
                </TextField>
            </Show>
            <TextField id="provider-credential-workers" label="Only these workers may use the key"
                value=key_workers errors=errors path="/credential_workers"
                placeholder="any worker (names, comma-separated)" />
            <div class="actions">
                <button
                    type="submit"
                    id="provider-save"
                    class="btn btn-primary"
                    disabled=move || saving.get()
                >
                    {move || if saving.get() { "Saving…" } else { "Save provider" }}
                </button>
                <button type="button" class="btn" on:click=move |_| on_done()>
                    "Cancel"
                </button>
            </div>
        </form>
    }
}
