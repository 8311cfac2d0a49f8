//! Checks every response against the committed OpenAPI document: the operation exists, the
//! status is documented for it, the content type matches, and the body validates against the
//! documented schema.

use std::collections::{BTreeSet, HashMap};
use std::sync::{Mutex, OnceLock};

use reqwest::Method;
use serde_json::{Value, json};

use crate::Resp;

/// Path of the committed document.
pub fn openapi_path() -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../contracts/openapi.json")
}

/// The committed document, parsed once.
pub fn document() -> &'static Value {
    static DOC: OnceLock<Value> = OnceLock::new();
    DOC.get_or_init(|| {
        let text = std::fs::read_to_string(openapi_path()).expect("read contracts/openapi.json");
        serde_json::from_str(&text).expect("contracts/openapi.json is JSON")
    })
}

/// (method, path template, status) triples seen.
#[derive(Debug, Default)]
pub struct Coverage {
    pub seen: BTreeSet<(String, String, u16)>,
}

/// Every (method, path template, status) the document declares.
pub fn documented() -> BTreeSet<(String, String, u16)> {
    let mut all = BTreeSet::new();
    let Some(paths) = document()["paths"].as_object() else {
        return all;
    };
    for (template, item) in paths {
        for (method, operation) in item.as_object().into_iter().flatten() {
            for status in operation["responses"]
                .as_object()
                .into_iter()
                .flatten()
                .map(|(s, _)| s)
            {
                if let Ok(status) = status.parse() {
                    all.insert((method.to_uppercase(), template.clone(), status));
                }
            }
        }
    }
    all
}

/// Finds the path template matching a concrete path (query string ignored).
pub fn template_for(path: &str) -> Option<String> {
    let path = path.split('?').next().unwrap_or(path);
    let segments: Vec<&str> = path.split('/').collect();
    let paths = document()["paths"].as_object()?;
    paths
        .keys()
        .find(|template| {
            let parts: Vec<&str> = template.split('/').collect();
            parts.len() == segments.len()
                && parts.iter().zip(&segments).all(|(t, s)| {
                    (t.starts_with('{') && t.ends_with('}') && !s.is_empty()) || t == s
                })
        })
        .cloned()
}

/// Panics if `resp` does not match the document; records coverage otherwise. Paths that are
/// not documented API operations (UI assets, unknown routes) are not checked here.
pub fn check_response(method: &Method, path: &str, resp: &Resp, coverage: &Mutex<Coverage>) {
    let Some(template) = template_for(path) else {
        return;
    };
    let method_key = method.as_str().to_lowercase();
    let operation = &document()["paths"][&template][&method_key];
    if operation.is_null() {
        // 405 for a method the path does not have: nothing to check against.
        return;
    }
    let status = resp.status.as_u16();
    let response = &operation["responses"][status.to_string()];
    assert!(
        !response.is_null(),
        "{} {template} returned {status}, which the OpenAPI document does not declare; body: {}",
        method,
        resp.text
    );
    if let Some(content) = response["content"].as_object() {
        let content_type = resp
            .header("content-type")
            .unwrap_or("")
            .split(';')
            .next()
            .unwrap_or("")
            .to_owned();
        let media = content.get(&content_type).unwrap_or_else(|| {
            panic!(
                "{method} {template} {status}: content type `{content_type}` is not documented \
                 (documented: {:?})",
                content.keys().collect::<Vec<_>>()
            )
        });
        let body: Value = serde_json::from_str(&resp.text).unwrap_or_else(|e| {
            panic!(
                "{method} {template} {status}: body is not JSON ({e}): {}",
                resp.text
            )
        });
        validate(
            &media["schema"],
            &body,
            &format!("{method} {template} {status}"),
        );
    } else {
        assert!(
            resp.text.is_empty(),
            "{method} {template} {status}: documented without a body but returned {}",
            resp.text
        );
    }
    if let Ok(mut coverage) = coverage.lock() {
        coverage
            .seen
            .insert((method.as_str().to_owned(), template, status));
    }
}

/// Validates `body` against a schema from the document; `$ref`s resolve into its components.
pub fn validate(schema: &Value, body: &Value, what: &str) {
    static CACHE: OnceLock<Mutex<HashMap<String, std::sync::Arc<jsonschema::Validator>>>> =
        OnceLock::new();
    let key = schema.to_string();
    let validator = {
        let mut cache = CACHE.get_or_init(Default::default).lock().expect("cache");
        cache
            .entry(key)
            .or_insert_with(|| {
                let mut root = match schema {
                    Value::Object(map) => Value::Object(map.clone()),
                    other => json!({"allOf": [other]}),
                };
                root["components"] = document()["components"].clone();
                std::sync::Arc::new(
                    jsonschema::options()
                        .offline()
                        .build(&root)
                        .unwrap_or_else(|e| panic!("{what}: schema does not compile: {e}")),
                )
            })
            .clone()
    };
    let errors: Vec<String> = validator
        .iter_errors(body)
        .map(|e| format!("{} at {}", e, e.instance_path().as_str()))
        .collect();
    assert!(
        errors.is_empty(),
        "{what}: body does not match the documented schema: {errors:?}\nbody: {body}"
    );
}
