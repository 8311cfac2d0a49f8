//! Checks shared by every resource's input: names, free text, collected field errors.

use contracts::FieldError;
use serde_json::Value;

pub use contracts::rules::{MAX_DESCRIPTION_CHARS, MAX_NAME_CHARS, MAX_PROMPT_CHARS};

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

    /// Problems found so far.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
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

/// A name (or model id): at most `max` characters as sent, no control characters, not
/// blank (`contracts::rules::NAME_PATTERN`). Returns it trimmed.
pub fn check_name(problems: &mut Problems, path: &str, name: &str, max: usize) -> String {
    if name.chars().count() > max {
        problems.add(path, format!("must be at most {max} characters"));
    } else if name.chars().any(char::is_control) {
        problems.add(path, "must not contain control characters");
    } else if name.trim().is_empty() {
        problems.add(path, "must not be empty");
    }
    name.trim().to_owned()
}

/// Free text such as a description or a template: at most `max` characters, no U+0000
/// (`contracts::rules::TEXT_PATTERN`).
pub fn check_text(problems: &mut Problems, path: &str, text: &str, max: usize) {
    if text.chars().count() > max {
        problems.add(path, format!("must be at most {max} characters"));
    } else if text.contains('\0') {
        problems.add(path, NUL_MESSAGE);
    }
}

/// A prompt: free text that is not blank (`contracts::rules::PROMPT_PATTERN`).
pub fn check_prompt(problems: &mut Problems, path: &str, text: &str) {
    if text.trim().is_empty() && text.chars().count() <= MAX_PROMPT_CHARS {
        problems.add(path, "is required and must not be blank");
    } else {
        check_text(problems, path, text, MAX_PROMPT_CHARS);
    }
}

/// RFC 6901 escaping of one JSON pointer segment.
pub fn escape_pointer(segment: &str) -> String {
    segment.replace('~', "~0").replace('/', "~1")
}

const NUL_MESSAGE: &str = "must not contain the character U+0000 (NUL), which cannot be stored";

/// Every U+0000 in the strings and keys of a JSON value (a schema, a run's input), by JSON
/// pointer under `prefix`: PostgreSQL cannot store them, so neither database takes them.
pub fn check_json_text(problems: &mut Problems, prefix: &str, value: &Value) {
    match value {
        Value::String(text) if text.contains('\0') => problems.add(prefix, NUL_MESSAGE),
        Value::Array(items) => {
            for (i, item) in items.iter().enumerate() {
                check_json_text(problems, &format!("{prefix}/{i}"), item);
            }
        }
        Value::Object(map) => {
            for (key, item) in map {
                let path = format!("{prefix}/{}", escape_pointer(key));
                if key.contains('\0') {
                    problems.add(&path, "a key must not contain the character U+0000 (NUL)");
                }
                check_json_text(problems, &path, item);
            }
        }
        Value::Null | Value::Bool(_) | Value::Number(_) | Value::String(_) => {}
    }
}

/// What a worker name may be (`is_worker_name`).
pub const WORKER_NAME_RULE: &str = "1–64 letters, digits, `.`, `_` or `-`";

/// A worker name: 1–64 ASCII letters, digits, `.`, `_` or `-` (names are shown in commands
/// and logs, and agents route by them).
pub fn is_worker_name(name: &str) -> bool {
    (1..=64).contains(&name.chars().count())
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'))
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn name_problems(name: &str) -> Vec<FieldError> {
        let mut problems = Problems::new();
        check_name(&mut problems, "/name", name, MAX_NAME_CHARS);
        problems.0
    }

    #[test]
    fn names_are_counted_as_sent_and_stored_trimmed() {
        let mut problems = Problems::new();
        assert_eq!(check_name(&mut problems, "/n", "  local  ", 100), "local");
        assert!(problems.0.is_empty());
        assert!(name_problems(&"x".repeat(100)).is_empty());
        let table = [
            ("".to_owned(), "empty"),
            (" \u{3000} ".to_owned(), "only whitespace"),
            ("x".repeat(101), "101 characters"),
            (
                format!(" {} ", "x".repeat(99)),
                "100 after trimming but 101 as sent",
            ),
            ("a\u{0}b".to_owned(), "NUL"),
            ("a\u{1b}b".to_owned(), "escape"),
            ("a\u{85}b".to_owned(), "C1 control"),
            ("tab\tname".to_owned(), "tab"),
        ];
        for (name, why) in table {
            assert_eq!(name_problems(&name).len(), 1, "{why}: {name:?}");
        }
    }

    #[test]
    fn nul_is_found_anywhere_in_json_and_named_by_pointer() {
        let mut problems = Problems::new();
        let value = json!({"a": ["ok", "bad\u{0}"], "k\u{0}": 1, "x/y": {"z": "\u{0}"}});
        check_json_text(&mut problems, "/input", &value);
        let mut paths: Vec<String> = problems.0.into_iter().map(|e| e.path).collect();
        paths.sort();
        assert_eq!(paths, ["/input/a/1", "/input/k\u{0}", "/input/x~1y/z"]);
    }
}
