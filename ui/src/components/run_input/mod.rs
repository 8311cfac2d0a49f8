//! The run input form generated from a task's request schema: one input per top-level
//! property of a plain object schema, or one JSON box for anything else (or no schema).

mod model;

use contracts::FieldError;
use leptos::prelude::*;

pub use model::{Field, FieldKind, INPUT, InputForm, attach_required};

/// Messages about `path` or below it; paths below it are named.
fn messages(errors: &[FieldError], path: &str) -> Vec<String> {
    errors
        .iter()
        .filter(|e| e.path == path || e.path.starts_with(&format!("{path}/")))
        .map(|e| match e.path[path.len()..].trim_start_matches('/') {
            "" => e.message.clone(),
            rest => format!("{rest}: {}", e.message),
        })
        .collect()
}

#[component]
fn Messages(errors: RwSignal<Vec<FieldError>>, path: String) -> impl IntoView {
    let mine = move || errors.with(|all| messages(all, &path));
    view! {
        <For each=mine key=Clone::clone let:message>
            <p class="field-error" role="alert">{message}</p>
        </For>
    }
}

#[component]
fn FieldInput(field: Field, errors: RwSignal<Vec<FieldError>>) -> impl IntoView {
    let id = format!("run-field-{}", field.index);
    let testid = format!("run-input-{}", field.name);
    let text = field.text;
    let path = field.path();
    let invalid = {
        let path = path.clone();
        move || {
            errors
                .with(|all| !messages(all, &path).is_empty())
                .to_string()
        }
    };
    let required = field.required.then_some("true");
    let description = field
        .description
        .clone()
        .map(|d| view! { <p class="hint">{d}</p> });
    let label = view! {
        <label for=id.clone()>
            <span class="mono">{field.name.clone()}</span>
            {marker_for(field.required)}
        </label>
    };
    let input = match field.kind.clone() {
        FieldKind::Boolean => {
            let checked = field.checked;
            return view! {
                <div class="field">
                    <label class="check">
                        <input
                            id=id.clone()
                            type="checkbox"
                            data-testid=testid
                            prop:checked=move || checked.get()
                            on:change=move |ev| checked.set(event_target_checked(&ev))
                        />
                        <span class="mono">{field.name.clone()}</span>
                        {marker_for(field.required)}
                    </label>
                    {description}
                    <Messages errors=errors path=path />
                </div>
            }
            .into_any();
        }
        FieldKind::Text => view! {
            <input
                id=id
                type="text"
                data-testid=testid
                aria-required=required
                aria-invalid=invalid
                autocomplete="off"
                prop:value=move || text.get()
                on:input=move |ev| text.set(event_target_value(&ev))
            />
        }
        .into_any(),
        kind @ (FieldKind::Number | FieldKind::Integer) => view! {
            <input
                id=id
                type="number"
                inputmode=if kind == FieldKind::Integer { "numeric" } else { "decimal" }
                step=if kind == FieldKind::Integer { "1" } else { "any" }
                min=field.minimum.clone()
                max=field.maximum.clone()
                data-testid=testid
                aria-required=required
                aria-invalid=invalid
                prop:value=move || text.get()
                on:input=move |ev| text.set(event_target_value(&ev))
            />
        }
        .into_any(),
        FieldKind::Choice(values) => {
            let options = values
                .iter()
                .enumerate()
                .map(|(i, v)| {
                    let label = v.as_str().map_or_else(|| v.to_string(), str::to_owned);
                    let value = i.to_string();
                    let selected = {
                        let value = value.clone();
                        move || text.with(|t| *t == value)
                    };
                    view! { <option value=value selected=selected>{label}</option> }
                })
                .collect_view();
            view! {
                <select
                    id=id
                    data-testid=testid
                    aria-required=required
                    aria-invalid=invalid
                    on:change=move |ev| text.set(event_target_value(&ev))
                >
                    <option value="" selected=move || text.with(String::is_empty)>
                        "— choose —"
                    </option>
                    {options}
                </select>
            }
            .into_any()
        }
        FieldKind::Json => view! {
            <textarea
                id=id
                class="mono"
                rows="3"
                data-testid=testid
                aria-required=required
                aria-invalid=invalid
                placeholder="JSON"
                spellcheck="false"
                prop:value=move || text.get()
                on:input=move |ev| text.set(event_target_value(&ev))
            ></textarea>
        }
        .into_any(),
    };
    let json_hint =
        (field.kind == FieldKind::Json).then(|| view! { <p class="hint">"As JSON."</p> });
    view! {
        <div class="field">
            {label}
            {input}
            {description}
            {json_hint}
            <Messages errors=errors path=path />
        </div>
    }
    .into_any()
}

fn marker_for(required: bool) -> Option<impl IntoView> {
    required.then(|| view! { <span class="required" title="required">" *"</span> })
}

/// The inputs of `form`, with the server's (and local) errors next to the field they concern.
#[component]
pub fn RunInput(form: InputForm, errors: RwSignal<Vec<FieldError>>) -> impl IntoView {
    match form {
        InputForm::Json { text, schema } => {
            let hint = if schema {
                "The request schema is not a plain object, so the input is entered as JSON; it is checked against the schema when you run."
            } else {
                "This task has no request schema: any JSON is accepted."
            };
            view! {
                <div class="field">
                    <label for="run-input-json">"Input (JSON)"</label>
                    <textarea
                        id="run-input-json"
                        class="mono"
                        rows="8"
                        spellcheck="false"
                        prop:value=move || text.get()
                        on:input=move |ev| text.set(event_target_value(&ev))
                    ></textarea>
                    <p class="hint">{hint}</p>
                    <Messages errors=errors path=INPUT.to_owned() />
                </div>
            }
            .into_any()
        }
        InputForm::Fields(fields) => {
            let any_required = fields.iter().any(|f| f.required);
            view! {
                <fieldset class="run-fields">
                    <legend>"Input"</legend>
                    {any_required
                        .then(|| view! { <p class="hint"><span class="required">"*"</span>" required"</p> })}
                    {fields
                        .into_iter()
                        .map(|field| view! { <FieldInput field=field errors=errors /> })
                        .collect_view()}
                </fieldset>
            }
            .into_any()
        }
    }
}
