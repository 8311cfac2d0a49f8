//! Checks shared by every resource's input: names, free text, collected field errors.

use contracts::FieldError;

pub const MAX_NAME_CHARS: usize = 100;
pub const MAX_DESCRIPTION_CHARS: usize = 2_000;
pub const MAX_PROMPT_BYTES: usize = 64 * 1024;

/// A request that breaks rules: every problem, each with the JSON pointer of its field.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("the request is invalid")]
pub struct Invalid(pub Vec<FieldError>);

impl Invalid {
    /// One field problem.
    pub fn field(path: impl Into<String>, message: impl Into<String>) -> Invalid {
        Invalid(vec![FieldError {
            path: path.into(),
            message: message.into(),
        }])
    }
}

/// Collects every problem of one request so the client sees them all at once.
#[derive(Debug, Default)]
pub struct Problems(Vec<FieldError>);

impl Problems {
    pub fn new() -> Problems {
        Problems::default()
    }

    pub fn add(&mut self, path: impl Into<String>, message: impl Into<String>) {
        self.0.push(FieldError {
            path: path.into(),
            message: message.into(),
        });
    }

    pub fn extend(&mut self, errors: Vec<FieldError>) {
        self.0.extend(errors);
    }

    /// `Ok(value)` when nothing was added, otherwise every problem.
    pub fn finish<T>(self, value: T) -> Result<T, Invalid> {
        if self.0.is_empty() {
            Ok(value)
        } else {
            Err(Invalid(self.0))
        }
    }
}

/// A name: trimmed, 1–100 characters, no control characters. Returns the trimmed name.
pub fn check_name(problems: &mut Problems, path: &str, name: &str) -> String {
    let trimmed = name.trim();
    if trimmed.is_empty() {
        problems.add(path, "must not be empty");
    } else if trimmed.chars().count() > MAX_NAME_CHARS {
        problems.add(path, format!("must be at most {MAX_NAME_CHARS} characters"));
    } else if trimmed.chars().any(char::is_control) {
        problems.add(path, "must not contain control characters");
    }
    trimmed.to_owned()
}

/// Free text such as a description: at most `max` characters.
pub fn check_text(problems: &mut Problems, path: &str, text: &str, max: usize) {
    if text.chars().count() > max {
        problems.add(path, format!("must be at most {max} characters"));
    }
}
