//! Card-based JSON Schema editor: a root object card holding property cards (nested objects,
//! arrays with an items card, enums), a live JSON preview and an import box for power users.
//!
//! Keywords the cards do not edit (`additionalProperties`, `minimum`, `$defs`, …) are kept
//! as they were imported, so a round trip through the editor does not lose them.

mod model;

use contracts::FieldError;
use leptos::prelude::*;
use serde_json::Value;

pub use model::{Kind, Node, summary};
use model::{Prop, belongs_to, pointer_segment};

#[component]
fn CardErrors(errors: RwSignal<Vec<FieldError>>, path: Signal<String>) -> impl IntoView {
    let mine = move || {
        let path = path.get();
        errors.with(|all| {
            all.iter()
                .filter(|e| belongs_to(&path, &e.path))
                .map(|e| {
                    // Name the keyword when the error is about one (`minLength: …`).
                    match e.path[path.len()..].trim_start_matches('/') {
                        "" => e.message.clone(),
                        rest => format!("{rest}: {}", e.message),
                    }
                })
                .collect::<Vec<_>>()
        })
    };
    view! {
        <For each=mine key=Clone::clone let:message>
            <p class="field-error" role="alert" data-testid="schema-error">{message}</p>
        </For>
    }
}

#[component]
fn KindSelect(node: Node, testid: &'static str, label: &'static str) -> impl IntoView {
    view! {
        <label class="field field-kind">
            <span>{label}</span>
            <select
                data-testid=testid
                on:change=move |ev| {
                    if let Some(kind) = Kind::parse(&event_target_value(&ev)) {
                        node.set_kind(kind);
                    }
                }
            >
                {Kind::ALL
                    .into_iter()
                    .map(|k| {
                        view! {
                            <option value=k.as_str() selected=move || node.kind.get() == k>
                                {k.as_str()}
                            </option>
                        }
                    })
                    .collect_view()}
            </select>
        </label>
    }
}

/// The parts of a node that depend on its kind: enum values, nested properties, items.
#[component]
fn NodeBody(node: Node, path: Signal<String>, errors: RwSignal<Vec<FieldError>>) -> AnyView {
    (move || match node.kind.get() {
        Kind::Enum => view! {
            <label class="field">
                <span>"Allowed values (comma-separated)"</span>
                <input
                    type="text"
                    data-testid="property-enum"
                    placeholder="positive, negative, neutral"
                    prop:value=move || node.enum_values.get()
                    on:input=move |ev| node.enum_values.set(event_target_value(&ev))
                />
            </label>
        }
        .into_any(),
        Kind::Object => view! { <PropList node=node path=path errors=errors /> }.into_any(),
        Kind::Array => {
            let items_path = Signal::derive(move || format!("{}/items", path.get()));
            node.items
                .get()
                .map(|items| {
                    view! {
                        <div class="card items-card" data-testid="items-card">
                            <KindSelect node=items testid="items-type" label="Each item is" />
                            <NodeBody node=items path=items_path errors=errors />
                            <CardErrors errors=errors path=items_path />
                        </div>
                    }
                })
                .into_any()
        }
        Kind::String | Kind::Number | Kind::Integer | Kind::Boolean => ().into_any(),
    })
    .into_any()
}

#[component]
fn PropCard(
    prop: Prop,
    parent: Signal<String>,
    errors: RwSignal<Vec<FieldError>>,
    on_remove: Callback<u64>,
) -> impl IntoView {
    let path = Signal::derive(move || {
        format!(
            "{}/properties/{}",
            parent.get(),
            pointer_segment(&prop.name.get())
        )
    });
    let invalid = move || {
        let path = path.get();
        errors.with(|all| all.iter().any(|e| belongs_to(&path, &e.path)))
    };
    view! {
        <div
            class="card prop-card"
            class:card-invalid=invalid
            data-testid="property-card"
            data-path=path
        >
            <div class="prop-row">
                <label class="field field-name">
                    <span>"Name"</span>
                    <input
                        type="text"
                        data-testid="property-name"
                        required
                        prop:value=move || prop.name.get()
                        on:input=move |ev| prop.name.set(event_target_value(&ev))
                    />
                </label>
                <KindSelect node=prop.node testid="property-type" label="Type" />
                <label class="check">
                    <input
                        type="checkbox"
                        data-testid="property-required"
                        prop:checked=move || prop.required.get()
                        on:change=move |ev| prop.required.set(event_target_checked(&ev))
                    />
                    <span>"Required"</span>
                </label>
                <button
                    type="button"
                    class="btn btn-quiet btn-small"
                    data-testid="remove-property"
                    aria-label=move || format!("Remove property {}", prop.name.get())
                    on:click=move |_| on_remove.run(prop.key)
                >
                    "Remove"
                </button>
            </div>
            <label class="field">
                <span>"Description"</span>
                <input
                    type="text"
                    data-testid="property-description"
                    prop:value=move || prop.node.description.get()
                    on:input=move |ev| prop.node.description.set(event_target_value(&ev))
                />
            </label>
            <NodeBody node=prop.node path=path errors=errors />
            <CardErrors errors=errors path=path />
        </div>
    }
}

#[component]
fn PropList(node: Node, path: Signal<String>, errors: RwSignal<Vec<FieldError>>) -> impl IntoView {
    let remove = Callback::new(move |key: u64| {
        node.properties
            .update(|props| props.retain(|p| p.key != key));
    });
    let add = move |_| {
        node.properties
            .update(|props| props.push(Prop::new("", false, Node::new(Kind::String))));
    };
    view! {
        <div class="prop-list">
            <For each=move || node.properties.get() key=|p| p.key let:prop>
                <PropCard prop=prop parent=path errors=errors on_remove=remove />
            </For>
            <Show when=move || node.properties.with(Vec::is_empty)>
                <p class="muted small">"No properties yet."</p>
            </Show>
            <button type="button" class="btn btn-small" data-testid="add-property" on:click=add>
                "+ Add property"
            </button>
        </div>
    }
}

/// The editor for one schema. `root` may be replaced by the form (editing another task) or
/// by the import box; `base` is where the schema sits in the request body, so server errors
/// (`/response_schema/properties/score/type`) land on the card they concern.
#[component]
pub fn SchemaEditor(
    /// `request` or `response`: prefixes this editor's ids.
    name: &'static str,
    title: &'static str,
    root: RwSignal<Node>,
    base: &'static str,
    errors: RwSignal<Vec<FieldError>>,
) -> impl IntoView {
    let base_path = Signal::derive(move || base.to_owned());
    let preview = move || serde_json::to_string_pretty(&root.get().to_json()).unwrap_or_default();
    let import_text = RwSignal::new(String::new());
    let import_error = RwSignal::new(None::<String>);
    let import = move |_| match serde_json::from_str::<Value>(&import_text.get_untracked()) {
        Ok(schema) if schema.is_object() && Kind::of_value(&schema) == Kind::Object => {
            root.set(Node::from_json(&schema));
            import_error.set(None);
            import_text.set(String::new());
        }
        Ok(_) => import_error.set(Some(
            "The editor needs an object schema at the top ({\"type\": \"object\", …}).".into(),
        )),
        Err(e) => import_error.set(Some(format!("Not valid JSON: {e}"))),
    };
    let import_id = format!("{name}-schema-import");
    view! {
        <section class="schema-editor" id=format!("{name}-schema") data-testid=format!("{name}-schema-editor")>
            <h3>{title}</h3>
            <div class="schema-columns">
                <div class="card root-card" data-testid="root-card">
                    <p class="card-title">"Object"</p>
                    {move || {
                        let node = root.get();
                        view! { <PropList node=node path=base_path errors=errors /> }
                    }}
                    <CardErrors errors=errors path=base_path />
                </div>
                <div class="schema-side">
                    <p class="card-title">"JSON preview"</p>
                    <pre class="schema-preview" data-testid="schema-preview">{preview}</pre>
                    <details class="import">
                        <summary>"Import JSON Schema"</summary>
                        <label for=import_id.clone() class="small muted">
                            "Paste a schema; it replaces the cards above."
                        </label>
                        <textarea
                            id=import_id
                            rows="6"
                            data-testid="schema-import"
                            prop:value=move || import_text.get()
                            on:input=move |ev| import_text.set(event_target_value(&ev))
                        ></textarea>
                        <button type="button" class="btn btn-small" on:click=import>
                            "Import"
                        </button>
                        {move || import_error.get().map(|e| view! { <p class="field-error">{e}</p> })}
                    </details>
                </div>
            </div>
        </section>
    }
}
