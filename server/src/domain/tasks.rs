//! What a valid task is: a name and JSON Schemas that pass `schema::check`.

use contracts::CreateTask;

use super::fields::{Invalid, MAX_DESCRIPTION_CHARS, Problems, check_name, check_text};
use crate::schema;

/// Checks a task body, schemas included. Returns it with the name trimmed.
pub fn validate(mut input: CreateTask) -> Result<CreateTask, Invalid> {
    let mut problems = Problems::new();
    input.name = check_name(&mut problems, "/name", &input.name);
    check_text(
        &mut problems,
        "/description",
        &input.description,
        MAX_DESCRIPTION_CHARS,
    );
    if let Some(request_schema) = &input.request_schema {
        problems.extend(schema::check("/request_schema", request_schema));
    }
    problems.extend(schema::check("/response_schema", &input.response_schema));
    problems.finish(input)
}
