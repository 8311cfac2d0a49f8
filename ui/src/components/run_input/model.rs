//! The form's model: which fields a request schema gives, their editing state, and the input
//! value (or the local errors) they make.

use contracts::FieldError;
use leptos::prelude::*;
use serde_json::{Map, Value};

/// Where the input sits in the request body; server errors about it start with this.
pub const INPUT: &str = "/input";

/// How one property is edited.
#[derive(Clone, Debug, PartialEq)]
pub enum FieldKind {
    Text,
    Number,
    Integer,
    Boolean,
    /// An `enum`: a select over these values (the signal holds the chosen index).
    Choice(Vec<Value>),
    /// Anything else (objects, arrays, type unions): the field's value as JSON.
    Json,
}

/// One top-level property and its editing state.
#[derive(Clone, Debug, PartialEq)]
pub struct Field {
    pub name: String,
    pub kind: FieldKind,
    pub required: bool,
    pub description: Option<String>,
    pub minimum: Option<String>,
    pub maximum: Option<String>,
    /// Text of text, number, choice and JSON fields.
    pub text: RwSignal<String>,
    /// State of boolean fields.
    pub checked: RwSignal<bool>,
    /// Position, for a stable DOM id (property names may hold any character).
    pub index: usize,
}

impl Field {
    /// The JSON pointer of this field in the request body (`/input/text`).
    pub fn path(&self) -> String {
        format!(
            "{INPUT}/{}",
            self.name.replace('~', "~0").replace('/', "~1")
        )
    }

    pub(super) fn owns(&self, error_path: &str) -> bool {
        let path = self.path();
        error_path == path || error_path.starts_with(&format!("{path}/"))
    }

    /// The field's value; `Ok(None)` when left empty (the property is then not sent).
    pub(super) fn value(&self) -> Result<Option<Value>, String> {
        let text = self.text.get_untracked();
        let trimmed = text.trim();
        match &self.kind {
            FieldKind::Boolean => Ok(Some(Value::Bool(self.checked.get_untracked()))),
            FieldKind::Text if text.is_empty() && !self.required => Ok(None),
            FieldKind::Text => Ok(Some(Value::String(text))),
            _ if trimmed.is_empty() => Ok(None),
            FieldKind::Number => trimmed
                .parse::<f64>()
                .ok()
                .and_then(serde_json::Number::from_f64)
                .map(|n| Some(Value::Number(n)))
                .ok_or_else(|| "must be a number".to_owned()),
            FieldKind::Integer => trimmed
                .parse::<i64>()
                .map(|n| Some(Value::from(n)))
                .map_err(|_| "must be a whole number".to_owned()),
            FieldKind::Choice(values) => trimmed
                .parse::<usize>()
                .ok()
                .and_then(|i| values.get(i).cloned())
                .map(Some)
                .ok_or_else(|| "choose one of the values".to_owned()),
            FieldKind::Json => serde_json::from_str(trimmed)
                .map(Some)
                .map_err(|e| format!("not valid JSON: {e}")),
        }
    }
}

/// The whole input form.
#[derive(Clone, Debug, PartialEq)]
pub enum InputForm {
    Fields(Vec<Field>),
    /// The input as one JSON document; `schema` tells whether the task has a request schema
    /// (one that is not a plain object schema).
    Json {
        text: RwSignal<String>,
        schema: bool,
    },
}

/// Whether `schema` is an object schema whose top-level properties can be form fields.
pub(super) fn plain_object(schema: &Map<String, Value>) -> Option<&Map<String, Value>> {
    pub(super) const COMPOSED: [&str; 7] = [
        "$ref",
        "oneOf",
        "anyOf",
        "allOf",
        "not",
        "if",
        "$dynamicRef",
    ];
    if schema.get("type").and_then(Value::as_str) != Some("object")
        || COMPOSED.iter().any(|k| schema.contains_key(*k))
    {
        return None;
    }
    schema
        .get("properties")
        .and_then(Value::as_object)
        .filter(|props| !props.is_empty() && props.values().all(Value::is_object))
}

pub(super) fn kind_of(prop: &Map<String, Value>) -> FieldKind {
    if let Some(values) = prop.get("enum").and_then(Value::as_array) {
        return FieldKind::Choice(values.clone());
    }
    match prop.get("type").and_then(Value::as_str) {
        Some("string") => FieldKind::Text,
        Some("number") => FieldKind::Number,
        Some("integer") => FieldKind::Integer,
        Some("boolean") => FieldKind::Boolean,
        _ => FieldKind::Json,
    }
}

/// What a field starts with: the property's `default`, if it has one.
pub(super) fn initial_text(kind: &FieldKind, default: Option<&Value>) -> String {
    let Some(default) = default else {
        return String::new();
    };
    match kind {
        FieldKind::Text => default.as_str().unwrap_or_default().to_owned(),
        FieldKind::Number | FieldKind::Integer => default
            .as_number()
            .map(ToString::to_string)
            .unwrap_or_default(),
        FieldKind::Choice(values) => values
            .iter()
            .position(|v| v == default)
            .map(|i| i.to_string())
            .unwrap_or_default(),
        FieldKind::Json => serde_json::to_string(default).unwrap_or_default(),
        FieldKind::Boolean => String::new(),
    }
}

impl InputForm {
    /// The form for a task's request schema (`None`: the task accepts any JSON).
    pub fn new(schema: Option<&Value>) -> Self {
        let object = schema.and_then(Value::as_object);
        let Some((schema, props)) = object.and_then(|s| Some((s, plain_object(s)?))) else {
            return Self::Json {
                text: RwSignal::new("{}".to_owned()),
                schema: schema.is_some(),
            };
        };
        let required: Vec<&str> = schema
            .get("required")
            .and_then(Value::as_array)
            .map(|r| r.iter().filter_map(Value::as_str).collect())
            .unwrap_or_default();
        let fields = props
            .iter()
            .enumerate()
            .filter_map(|(index, (name, prop))| {
                let prop = prop.as_object()?;
                let kind = kind_of(prop);
                let default = prop.get("default");
                let number = |key: &str| {
                    prop.get(key)
                        .and_then(Value::as_number)
                        .map(ToString::to_string)
                };
                Some(Field {
                    name: name.clone(),
                    required: required.contains(&name.as_str()),
                    description: prop
                        .get("description")
                        .and_then(Value::as_str)
                        .filter(|d| !d.is_empty())
                        .map(str::to_owned),
                    minimum: number("minimum"),
                    maximum: number("maximum"),
                    text: RwSignal::new(initial_text(&kind, default)),
                    checked: RwSignal::new(default.and_then(Value::as_bool).unwrap_or(false)),
                    kind,
                    index,
                })
            })
            .collect();
        Self::Fields(fields)
    }

    /// The input to send, or the problems found before sending (as `/input/…` errors).
    pub fn value(&self) -> Result<Value, Vec<FieldError>> {
        match self {
            Self::Json { text, .. } => {
                serde_json::from_str(text.get_untracked().trim()).map_err(|e| {
                    vec![FieldError {
                        path: INPUT.to_owned(),
                        message: format!("not valid JSON: {e}"),
                    }]
                })
            }
            Self::Fields(fields) => {
                let mut object = Map::new();
                let mut errors = Vec::new();
                for field in fields {
                    match field.value() {
                        Ok(Some(value)) => {
                            object.insert(field.name.clone(), value);
                        }
                        Ok(None) => {}
                        Err(message) => errors.push(FieldError {
                            path: field.path(),
                            message,
                        }),
                    }
                }
                if errors.is_empty() {
                    Ok(Value::Object(object))
                } else {
                    Err(errors)
                }
            }
        }
    }

    /// Whether a field (or the JSON box) shows the error at `path` itself.
    pub fn claims(&self, path: &str) -> bool {
        match self {
            Self::Json { .. } => path == INPUT || path.starts_with(&format!("{INPUT}/")),
            Self::Fields(fields) => fields.iter().any(|f| f.owns(path)),
        }
    }
}

/// Moves "`"text" is a required property`" from `/input` onto `/input/text`, where the
/// field shows it.
pub fn attach_required(errors: Vec<FieldError>) -> Vec<FieldError> {
    errors
        .into_iter()
        .map(|mut e| {
            if e.path == INPUT
                && let Some(rest) = e.message.strip_suffix(" is a required property")
                && let Ok(name) = serde_json::from_str::<String>(rest)
            {
                e.path = format!("{INPUT}/{}", name.replace('~', "~0").replace('/', "~1"));
                e.message = "required".to_owned();
            }
            e
        })
        .collect()
}
