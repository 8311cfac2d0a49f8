//! JSON Schema checking for task schemas: size and depth limits, local-only `$ref`s, supported
//! drafts, meta-schema validation and compilation with a linear-time regex engine.

use contracts::FieldError;
use jsonschema::{PatternOptions, Validator};
use serde_json::Value;

use crate::domain::fields::escape_pointer;

pub const MAX_SCHEMA_BYTES: usize = 64 * 1024;
pub const MAX_SCHEMA_DEPTH: usize = 32;

/// `$schema` values we validate against bundled meta-schemas. Anything else would need a
/// fetch, which we never do.
const SUPPORTED_DRAFTS: [&str; 5] = [
    "json-schema.org/draft-04/schema",
    "json-schema.org/draft-06/schema",
    "json-schema.org/draft-07/schema",
    "json-schema.org/draft/2019-09/schema",
    "json-schema.org/draft/2020-12/schema",
];

/// Keywords whose value is a URI reference to another schema.
const REF_KEYWORDS: [&str; 3] = ["$ref", "$dynamicRef", "$recursiveRef"];

/// Every problem with `schema`, with paths under `prefix` (e.g. `/response_schema`).
/// An empty list means the schema is usable.
pub fn check(prefix: &str, schema: &Value) -> Vec<FieldError> {
    let one = |path: String, message: String| vec![FieldError { path, message }];

    if !(schema.is_object() || schema.is_boolean()) {
        return one(
            prefix.to_owned(),
            "must be a JSON Schema (an object or a boolean)".to_owned(),
        );
    }
    let size = serde_json::to_vec(schema).map(|v| v.len()).unwrap_or(0);
    if size > MAX_SCHEMA_BYTES {
        return one(
            prefix.to_owned(),
            format!("is {size} bytes; the limit is {MAX_SCHEMA_BYTES} bytes"),
        );
    }
    if depth(schema) > MAX_SCHEMA_DEPTH {
        return one(
            prefix.to_owned(),
            format!("is nested more than {MAX_SCHEMA_DEPTH} levels deep"),
        );
    }

    let mut errors = Vec::new();
    check_refs(schema, prefix, &mut errors);
    if let Some(declared) = schema.get("$schema")
        && !declared.as_str().is_some_and(is_supported_draft)
    {
        errors.push(FieldError {
            path: format!("{prefix}/$schema"),
            message: format!(
                "names an unsupported draft ({declared}); use draft 2020-12, 2019-09, 7, 6 or 4"
            ),
        });
    }
    if !errors.is_empty() {
        return errors;
    }

    // Only bundled drafts reach here, so building the meta-validator needs no fetch.
    match jsonschema::meta::validator_for(schema) {
        Ok(meta) => errors.extend(meta.iter_errors(schema).map(|err| FieldError {
            path: format!("{prefix}{}", err.instance_path().as_str()),
            message: err.to_string(),
        })),
        Err(err) => return one(prefix.to_owned(), format!("cannot be checked: {err}")),
    }
    if !errors.is_empty() {
        return errors;
    }
    match compile(schema) {
        Ok(_) => Vec::new(),
        Err(err) => one(
            format!("{prefix}{}", err.instance_path().as_str()),
            format!("does not compile: {err}"),
        ),
    }
}

/// What is wrong with `value` under `validator`, with paths under `prefix` (e.g. `/input`).
pub fn problems(validator: &Validator, value: &Value, prefix: &str) -> Vec<FieldError> {
    validator
        .iter_errors(value)
        .map(|e| FieldError {
            path: format!("{prefix}{}", e.instance_path().as_str()),
            message: e.to_string(),
        })
        .collect()
}

/// Problems in one line: `path: message; …` (the message alone at the root).
pub fn describe(errors: &[FieldError]) -> String {
    errors
        .iter()
        .map(|e| {
            if e.path.is_empty() {
                e.message.clone()
            } else {
                format!("{}: {}", e.path, e.message)
            }
        })
        .collect::<Vec<_>>()
        .join("; ")
}

/// Builds a validator: offline (no remote or file `$ref` is ever fetched) and with a
/// linear-time regex engine for `pattern`, so user schemas cannot cause catastrophic
/// backtracking.
pub fn compile(schema: &Value) -> Result<Validator, jsonschema::ValidationError<'static>> {
    jsonschema::options()
        .offline()
        .with_pattern_options(PatternOptions::regex())
        .build(schema)
}

fn is_supported_draft(uri: &str) -> bool {
    let rest = uri
        .strip_prefix("https://")
        .or_else(|| uri.strip_prefix("http://"))
        .unwrap_or("");
    let rest = rest.strip_suffix('#').unwrap_or(rest);
    SUPPORTED_DRAFTS.contains(&rest)
}

/// Nesting depth of a JSON value, iteratively so a hostile document cannot blow the stack.
fn depth(value: &Value) -> usize {
    let mut max = 0;
    let mut stack = vec![(value, 1usize)];
    while let Some((value, level)) = stack.pop() {
        max = max.max(level);
        match value {
            Value::Object(map) => stack.extend(map.values().map(|v| (v, level + 1))),
            Value::Array(items) => stack.extend(items.iter().map(|v| (v, level + 1))),
            _ => {}
        }
    }
    max
}

/// Only same-document references (`#…`) are allowed.
fn check_refs(value: &Value, path: &str, errors: &mut Vec<FieldError>) {
    match value {
        Value::Object(map) => {
            for (key, child) in map {
                let child_path = format!("{path}/{}", escape_pointer(key));
                if REF_KEYWORDS.contains(&key.as_str())
                    && let Some(target) = child.as_str()
                    && !target.starts_with('#')
                {
                    errors.push(FieldError {
                        path: child_path.clone(),
                        message: format!(
                            "`{target}` is not a local reference; only references within the \
                             schema (starting with `#`) are allowed"
                        ),
                    });
                }
                check_refs(child, &child_path, errors);
            }
        }
        Value::Array(items) => {
            for (i, child) in items.iter().enumerate() {
                check_refs(child, &format!("{path}/{i}"), errors);
            }
        }
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn accepts_ordinary_schemas() {
        let table = [
            json!({"type": "object", "properties": {"a": {"type": "string"}}, "required": ["a"]}),
            json!(true),
            json!({"$schema": "http://json-schema.org/draft-07/schema#", "type": "number"}),
            json!({"$defs": {"s": {"type": "string"}}, "items": {"$ref": "#/$defs/s"}}),
            json!({"type": "string", "pattern": "^[a-z]+$"}),
        ];
        for schema in table {
            assert_eq!(check("/s", &schema), vec![], "{schema}");
        }
    }

    #[test]
    fn rejects_bad_schemas_with_paths() {
        let deep = (0..40).fold(json!({"type": "string"}), |acc, _| json!({"items": acc}));
        let table = [
            (json!("string"), "/s", "not an object"),
            (json!({"type": "strng"}), "/s/type", "unknown type"),
            (
                json!({"properties": {"a": {"type": 5}}}),
                "/s/properties/a/type",
                "type not a string",
            ),
            (
                json!({"$ref": "https://example.com/s.json"}),
                "/s/$ref",
                "remote ref",
            ),
            (
                json!({"items": {"$ref": "file:///etc/passwd"}}),
                "/s/items/$ref",
                "file ref",
            ),
            (
                json!({"$schema": "https://example.com/meta"}),
                "/s/$schema",
                "unknown draft",
            ),
            (
                json!({"type": "string", "pattern": "(?=a)b"}),
                "/s",
                "lookahead needs backtracking",
            ),
            (
                json!({"type": "string", "pattern": "("}),
                "/s",
                "regex does not compile",
            ),
            (deep, "/s", "too deep"),
        ];
        for (schema, path, why) in table {
            let errors = check("/s", &schema);
            assert!(!errors.is_empty(), "{why}: accepted");
            assert!(
                errors.iter().any(|e| e.path.starts_with(path)),
                "{why}: paths {errors:?} do not start with {path}"
            );
        }
    }

    #[test]
    fn rejects_oversized_schema() {
        let big: serde_json::Map<String, Value> = (0..5_000)
            .map(|i| (format!("property_{i}"), json!({"type": "string"})))
            .collect();
        let errors = check("/s", &json!({"properties": big}));
        assert_eq!(errors.len(), 1);
        assert!(errors[0].message.contains("limit"));
    }
}
