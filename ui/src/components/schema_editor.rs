//! Card-based JSON Schema editor: a root object card holding property cards (nested objects,
//! arrays with an items card, enums), a live JSON preview and an import box for power users.
//!
//! Keywords the cards do not edit (`additionalProperties`, `minimum`, `$defs`, …) are kept
//! as they were imported, so a round trip through the editor does not lose them.

use std::cell::Cell;

use contracts::FieldError;
use leptos::prelude::*;
use serde_json::{Map, Value};

/// The types a property card offers. `Enum` is written as `{"enum": […]}` without a type.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    String,
    Number,
    Integer,
    Boolean,
    Object,
    Array,
    Enum,
}

impl Kind {
    const ALL: [Self; 7] = [
        Self::String,
        Self::Number,
        Self::Integer,
        Self::Boolean,
        Self::Object,
        Self::Array,
        Self::Enum,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::String => "string",
            Self::Number => "number",
            Self::Integer => "integer",
            Self::Boolean => "boolean",
            Self::Object => "object",
            Self::Array => "array",
            Self::Enum => "enum",
        }
    }

    fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|k| k.as_str() == s)
    }

    /// The kind a schema describes; a missing `type` is guessed from its other keywords.
    fn of(schema: &Map<String, Value>) -> Self {
        if schema.contains_key("enum") {
            return Self::Enum;
        }
        match schema
            .get("type")
            .and_then(Value::as_str)
            .and_then(Self::parse)
        {
            Some(kind) => kind,
            None if schema.contains_key("properties") => Self::Object,
            None if schema.contains_key("items") => Self::Array,
            None => Self::String,
        }
    }
}

thread_local! {
    static NEXT_KEY: Cell<u64> = const { Cell::new(0) };
}

fn next_key() -> u64 {
    NEXT_KEY.with(|k| {
        k.set(k.get() + 1);
        k.get()
    })
}

/// One schema node: its kind and the parts that kind uses. Every part is its own signal so
/// typing in one card re-renders nothing else.
#[derive(Clone, Copy)]
pub struct Node {
    kind: RwSignal<Kind>,
    description: RwSignal<String>,
    /// Comma-separated, as typed.
    enum_values: RwSignal<String>,
    properties: RwSignal<Vec<Prop>>,
    /// The items schema of an array; created when the kind first becomes `Array`.
    items: RwSignal<Option<Node>>,
    /// Keywords the cards do not edit, kept verbatim.
    extra: RwSignal<Map<String, Value>>,
}

/// A named property of an object node.
#[derive(Clone, Copy)]
pub struct Prop {
    key: u64,
    name: RwSignal<String>,
    required: RwSignal<bool>,
    node: Node,
}

impl Prop {
    fn new(name: &str, required: bool, node: Node) -> Self {
        Self {
            key: next_key(),
            name: RwSignal::new(name.to_owned()),
            required: RwSignal::new(required),
            node,
        }
    }
}

impl Node {
    fn new(kind: Kind) -> Self {
        Self {
            kind: RwSignal::new(kind),
            description: RwSignal::new(String::new()),
            enum_values: RwSignal::new(String::new()),
            properties: RwSignal::new(Vec::new()),
            items: RwSignal::new(None),
            extra: RwSignal::new(Map::new()),
        }
    }

    /// An empty root: `{"type": "object", "properties": {}}`.
    pub fn object() -> Self {
        Self::new(Kind::Object)
    }

    /// Builds the cards for a schema. Anything the cards cannot show goes to `extra`.
    pub fn from_json(schema: &Value) -> Self {
        let Value::Object(map) = schema else {
            let node = Self::new(Kind::String);
            return node;
        };
        let mut extra = map.clone();
        let kind = Kind::of(map);
        let node = Self::new(kind);
        if Kind::parse(map.get("type").and_then(Value::as_str).unwrap_or("")).is_some() {
            extra.remove("type");
        }
        if let Some(Value::String(d)) = extra.remove("description") {
            node.description.set(d);
        }
        if let Some(Value::Array(values)) = extra.remove("enum") {
            let text: Vec<String> = values
                .iter()
                .map(|v| match v {
                    Value::String(s) => s.clone(),
                    other => other.to_string(),
                })
                .collect();
            node.enum_values.set(text.join(", "));
        }
        if let Some(Value::Object(props)) = extra.remove("properties") {
            let required: Vec<String> = match extra.remove("required") {
                Some(Value::Array(names)) => names
                    .iter()
                    .filter_map(|n| n.as_str().map(str::to_owned))
                    .collect(),
                _ => Vec::new(),
            };
            let props = props
                .iter()
                .map(|(name, schema)| {
                    Prop::new(name, required.contains(name), Self::from_json(schema))
                })
                .collect();
            node.properties.set(props);
        }
        if matches!(extra.get("items"), Some(Value::Object(_)))
            && let Some(items) = extra.remove("items")
        {
            node.items.set(Some(Self::from_json(&items)));
        }
        node.extra.set(extra);
        node
    }

    /// The schema the cards describe (reads the signals, so previews follow edits).
    pub fn to_json(self) -> Value {
        let mut map = self.extra.get();
        let kind = self.kind.get();
        match kind {
            Kind::Enum => {
                map.remove("type");
                let values = self
                    .enum_values
                    .get()
                    .split(',')
                    .map(str::trim)
                    .filter(|v| !v.is_empty())
                    .map(|v| Value::String(v.to_owned()))
                    .collect();
                map.insert("enum".into(), Value::Array(values));
            }
            other => {
                // A `type` the cards cannot show (`["string", "null"]`) stays in `extra`
                // until the type select is changed.
                map.entry("type")
                    .or_insert_with(|| Value::String(other.as_str().into()));
            }
        }
        if kind == Kind::Object {
            let mut properties = Map::new();
            let mut required = Vec::new();
            for prop in self.properties.get() {
                let name = prop.name.get();
                if name.is_empty() {
                    continue;
                }
                if prop.required.get() {
                    required.push(Value::String(name.clone()));
                }
                properties.insert(name, prop.node.to_json());
            }
            map.insert("properties".into(), Value::Object(properties));
            if required.is_empty() {
                map.remove("required");
            } else {
                map.insert("required".into(), Value::Array(required));
            }
        }
        if kind == Kind::Array
            && let Some(items) = self.items.get()
        {
            map.insert("items".into(), items.to_json());
        }
        let description = self.description.get();
        if description.trim().is_empty() {
            map.remove("description");
        } else {
            map.insert("description".into(), Value::String(description));
        }
        Value::Object(map)
    }

    fn set_kind(self, kind: Kind) {
        self.kind.set(kind);
        self.extra.update(|extra| {
            extra.remove("type");
        });
        if kind == Kind::Array && self.items.get_untracked().is_none() {
            self.items.set(Some(Self::new(Kind::String)));
        }
    }
}

/// A short, one-line description of an object schema's properties: `score*: number, tags:
/// array` (`*` marks required ones).
pub fn summary(schema: &Value) -> String {
    let Some(props) = schema.get("properties").and_then(Value::as_object) else {
        return match schema.get("type").and_then(Value::as_str) {
            Some(t) => t.to_owned(),
            None => "any JSON".to_owned(),
        };
    };
    if props.is_empty() {
        return "empty object".to_owned();
    }
    let required: Vec<&str> = schema
        .get("required")
        .and_then(Value::as_array)
        .map(|r| r.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default();
    props
        .iter()
        .map(|(name, prop)| {
            let kind = prop.as_object().map(Kind::of).map_or("any", Kind::as_str);
            let star = if required.contains(&name.as_str()) {
                "*"
            } else {
                ""
            };
            format!("{name}{star}: {kind}")
        })
        .collect::<Vec<_>>()
        .join(", ")
}

/// Escapes a property name for a JSON pointer (RFC 6901).
fn pointer_segment(name: &str) -> String {
    name.replace('~', "~0").replace('/', "~1")
}

/// Whether an error at `error` belongs to the card at `card` rather than to a deeper one.
fn belongs_to(card: &str, error: &str) -> bool {
    let Some(rest) = error.strip_prefix(card) else {
        return false;
    };
    rest.is_empty()
        || (rest.starts_with('/')
            && !rest.starts_with("/properties/")
            && rest != "/items"
            && !rest.starts_with("/items/"))
}

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

impl Kind {
    fn of_value(schema: &Value) -> Self {
        schema.as_object().map_or(Self::String, Self::of)
    }
}
