//! What a valid task is: a name and JSON Schemas that pass `schema::check`.

use contracts::CreateTask;
use contracts::rules::{MAX_DESCRIPTION_CHARS, MAX_NAME_CHARS};

use super::fields::{Invalid, Problems, check_json_text, check_name, check_text};
use crate::schema;

/// Checks a task body, schemas included. Returns it with the name trimmed.
pub fn validate(mut input: CreateTask) -> Result<CreateTask, Invalid> {
    let mut problems = Problems::new();
    input.name = check_name(&mut problems, "/name", &input.name, MAX_NAME_CHARS);
    check_text(
        &mut problems,
        "/description",
        &input.description,
        MAX_DESCRIPTION_CHARS,
    );
    if let Some(request_schema) = &input.request_schema {
        check_json_text(&mut problems, "/request_schema", request_schema);
        problems.extend(schema::check("/request_schema", request_schema));
    }
    check_json_text(&mut problems, "/response_schema", &input.response_schema);
    problems.extend(schema::check("/response_schema", &input.response_schema));
    problems.finish(input)
}
