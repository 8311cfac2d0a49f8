//! The editor's model: cards as reactive nodes, and their conversion from and to JSON Schema.
//! Keywords the cards do not edit are kept as they were imported.

use std::cell::Cell;

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
    pub(super) const ALL: [Self; 7] = [
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

    pub(super) fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|k| k.as_str() == s)
    }

    /// The kind a schema describes; a missing `type` is guessed from its other keywords.
    pub(super) fn of(schema: &Map<String, Value>) -> Self {
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

pub(super) fn next_key() -> u64 {
    NEXT_KEY.with(|k| {
        k.set(k.get() + 1);
        k.get()
    })
}

/// One schema node: its kind and the parts that kind uses. Every part is its own signal so
/// typing in one card re-renders nothing else.
#[derive(Clone, Copy)]
pub struct Node {
    pub(super) kind: RwSignal<Kind>,
    pub(super) description: RwSignal<String>,
    /// Comma-separated, as typed.
    pub(super) enum_values: RwSignal<String>,
    pub(super) properties: RwSignal<Vec<Prop>>,
    /// The items schema of an array; created when the kind first becomes `Array`.
    pub(super) items: RwSignal<Option<Node>>,
    /// Keywords the cards do not edit, kept verbatim.
    pub(super) extra: RwSignal<Map<String, Value>>,
}

/// A named property of an object node.
#[derive(Clone, Copy)]
pub struct Prop {
    pub(super) key: u64,
    pub(super) name: RwSignal<String>,
    pub(super) required: RwSignal<bool>,
    pub(super) node: Node,
}

impl Prop {
    pub(super) fn new(name: &str, required: bool, node: Node) -> Self {
        Self {
            key: next_key(),
            name: RwSignal::new(name.to_owned()),
            required: RwSignal::new(required),
            node,
        }
    }
}

impl Node {
    pub(super) fn new(kind: Kind) -> Self {
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

    pub(super) fn set_kind(self, kind: Kind) {
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
pub(super) fn pointer_segment(name: &str) -> String {
    name.replace('~', "~0").replace('/', "~1")
}

/// Whether an error at `error` belongs to the card at `card` rather than to a deeper one.
pub(super) fn belongs_to(card: &str, error: &str) -> bool {
    let Some(rest) = error.strip_prefix(card) else {
        return false;
    };
    rest.is_empty()
        || (rest.starts_with('/')
            && !rest.starts_with("/properties/")
            && rest != "/items"
            && !rest.starts_with("/items/"))
}

impl Kind {
    pub(super) fn of_value(schema: &Value) -> Self {
        schema.as_object().map_or(Self::String, Self::of)
    }
}
