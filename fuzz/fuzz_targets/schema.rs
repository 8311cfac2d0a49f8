//! The task-schema checker: whatever JSON arrives as a request or response schema, `check`
//! answers with field errors under the given prefix, and a schema it accepts compiles and
//! validates instances without panicking or hanging.
#![no_main]

use agentry::schema;
use libfuzzer_sys::fuzz_target;
use serde_json::{Value, json};

const PREFIX: &str = "/response_schema";

fuzz_target!(|data: &[u8]| {
    let Ok(value) = serde_json::from_slice::<Value>(data) else {
        return;
    };
    let problems = schema::check(PREFIX, &value);
    for problem in &problems {
        assert!(problem.path.starts_with(PREFIX), "{problem:?}");
        assert!(!problem.message.is_empty());
    }
    if !problems.is_empty() {
        return;
    }
    let validator = schema::compile(&value).expect("a schema `check` accepts compiles");
    // Runs validate model answers against the response schema: the schema itself, and a few
    // shapes a model might answer with, exercise every compiled keyword.
    let instances = [
        value.clone(),
        Value::Null,
        json!("text"),
        json!(-1.5),
        json!([1, "a", null, {"k": []}]),
        json!({"label": "x", "score": 1, "items": [{"a": 1}], "": ""}),
    ];
    for instance in &instances {
        let valid = validator.is_valid(instance);
        assert_eq!(valid, validator.iter_errors(instance).next().is_none());
    }
});
