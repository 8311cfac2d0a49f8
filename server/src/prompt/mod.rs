//! The agent's user prompt template (Jinja syntax, rendered by minijinja): compiled when an
//! agent is saved and again when it becomes runnable, rendered once per run with the run's
//! input. Rendering is bounded: a template cannot loop for ever (it has a step budget,
//! minijinja's fuel) or produce a prompt of unbounded size. Runs render in a helper process
//! ([`helper`], driven by [`Renderer`]) with a deadline and a memory limit, since a template
//! can also build huge values without writing them.

pub mod helper;
pub mod renderer;

pub use renderer::{RenderError, Renderer};

use std::fmt;
use std::io;

use minijinja::value::ValueKind;
use minijinja::{Environment, Error, ErrorKind, Output, State, UndefinedBehavior, Value as Jinja};
use serde_json::Value;

/// Steps (minijinja instructions) one rendering may take. A template filling in a few
/// hundred fields, or looping over a few thousand input items, needs well under 100,000;
/// nested loops over `range(100000)` would otherwise keep a server thread busy for hours.
pub const MAX_RENDER_STEPS: u64 = 1_000_000;

/// Largest prompt a template may render. Twice the largest request body, so a template that
/// shows the whole input (`{{ input }}`) always fits.
pub const MAX_RENDERED_BYTES: usize = 2 * crate::extract::MAX_BODY_BYTES;

const NAME: &str = "user_prompt";

/// A compiled user prompt template.
pub struct UserPrompt {
    env: Environment<'static>,
}

impl fmt::Debug for UserPrompt {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("UserPrompt").finish_non_exhaustive()
    }
}

impl UserPrompt {
    /// Compiles `source`; the error is a message for the user (syntax error and where).
    pub fn compile(source: &str) -> Result<UserPrompt, String> {
        let mut env = Environment::new();
        // An undefined variable is an error, never an empty string in the prompt.
        env.set_undefined_behavior(UndefinedBehavior::Strict);
        env.set_fuel(Some(MAX_RENDER_STEPS));
        env.set_formatter(bounded_formatter);
        env.add_template_owned(NAME, source.to_owned())
            .map_err(|err| format!("is not a valid template: {err}"))?;
        Ok(UserPrompt { env })
    }

    /// The prompt for `input`, which the template sees as `input` and, when it is an object,
    /// also as its top-level fields.
    pub fn render(&self, input: &Value) -> Result<String, String> {
        let template = self.env.get_template(NAME).map_err(|err| err.to_string())?;
        let mut context = match input {
            Value::Object(map) => map.clone(),
            _ => serde_json::Map::new(),
        };
        context.insert("input".to_owned(), input.clone());
        let mut out = Capped::default();
        match template.render_captured_to(minijinja::Value::from_serialize(&context), &mut out) {
            Ok(_) => String::from_utf8(out.bytes).map_err(|_| "rendered invalid UTF-8".to_owned()),
            Err(_) if out.overflowed => Err(format!(
                "renders a prompt of more than {MAX_RENDERED_BYTES} bytes"
            )),
            Err(err) if err.kind() == ErrorKind::OutOfFuel => Err(format!(
                "takes more than {MAX_RENDER_STEPS} steps to render (loops over too much)"
            )),
            Err(err) => Err(err.to_string()),
        }
    }
}

/// Writes a value into the prompt like minijinja's own formatter, except that sequences and
/// maps are written item by item and stop at the first refused write. (minijinja writes them
/// through `fmt::DebugList`, which keeps iterating after the output refused more: `{{ items *
/// 10**9 }}` would walk a billion items one step after the prompt was already full.) A
/// sequence with more items than the prompt has bytes is refused before it is walked.
fn bounded_formatter(out: &mut Output, state: &State, value: &Jinja) -> Result<(), Error> {
    match value.kind() {
        ValueKind::Seq | ValueKind::Iterable | ValueKind::Map => write_container(out, value),
        _ => minijinja::escape_formatter(out, state, value),
    }
}

fn too_large() -> Error {
    Error::new(
        ErrorKind::InvalidOperation,
        format!("renders a prompt of more than {MAX_RENDERED_BYTES} bytes"),
    )
}

/// `[a, "b"]` and `{"k": v}`, the way minijinja displays them, nested values included.
fn write_container(out: &mut Output, value: &Jinja) -> Result<(), Error> {
    use std::fmt::Write as _;
    if value.len().is_some_and(|len| len > MAX_RENDERED_BYTES) {
        return Err(too_large());
    }
    let map = value.kind() == ValueKind::Map;
    out.write_char(if map { '{' } else { '[' })
        .map_err(|_| too_large())?;
    for (i, item) in value.try_iter()?.enumerate() {
        if i > 0 {
            out.write_str(", ").map_err(|_| too_large())?;
        }
        if map {
            write!(out, "{item:?}: ").map_err(|_| too_large())?;
            write_nested(out, &value.get_item(&item)?)?;
        } else {
            write_nested(out, &item)?;
        }
    }
    out.write_char(if map { '}' } else { ']' })
        .map_err(|_| too_large())
}

fn write_nested(out: &mut Output, value: &Jinja) -> Result<(), Error> {
    match value.kind() {
        ValueKind::Seq | ValueKind::Iterable | ValueKind::Map => write_container(out, value),
        _ => write!(out, "{value:?}").map_err(|_| too_large()),
    }
}

/// Collects the rendered prompt and refuses to grow past [`MAX_RENDERED_BYTES`].
#[derive(Default)]
struct Capped {
    bytes: Vec<u8>,
    overflowed: bool,
}

impl io::Write for Capped {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        if self.bytes.len() + buf.len() > MAX_RENDERED_BYTES {
            self.overflowed = true;
            return Err(io::Error::other("prompt too large"));
        }
        self.bytes.extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn fills_in_the_input_and_its_fields() {
        let prompt = UserPrompt::compile("{{ text }} / {{ input.text }}").unwrap();
        assert_eq!(prompt.render(&json!({"text": "hi"})).unwrap(), "hi / hi");
        let list = UserPrompt::compile("{% for x in input %}[{{ x }}]{% endfor %}").unwrap();
        assert_eq!(list.render(&json!([1, "a"])).unwrap(), "[1][a]");
    }

    #[test]
    fn syntax_errors_are_reported_at_compile_time() {
        for bad in ["{{ input", "{% if %}", "{% for x in y %}", "{{ a | }}"] {
            let err = UserPrompt::compile(bad).unwrap_err();
            assert!(err.starts_with("is not a valid template"), "{bad:?}: {err}");
        }
    }

    #[test]
    fn an_undefined_variable_is_an_error() {
        let prompt = UserPrompt::compile("{{ missing }}").unwrap();
        assert!(prompt.render(&json!({})).unwrap_err().contains("undefined"));
    }

    #[test]
    fn endless_work_runs_out_of_steps() {
        let nested = "{% for a in range(100000) %}{% for b in range(100000) %}\
                      {% endfor %}{% endfor %}";
        let prompt = UserPrompt::compile(nested).unwrap();
        let err = prompt.render(&json!({})).unwrap_err();
        assert!(err.contains("steps"), "{err}");
    }

    #[test]
    fn containers_are_written_as_minijinja_writes_them() {
        let prompt = UserPrompt::compile("{{ input }} {{ input.items }} {{ [] }}").unwrap();
        let input = json!({"items": [1, "two", {"three": 3.5, "n": null}, [true]]});
        let mut env = Environment::new();
        env.add_template("t", "{{ input }} {{ input.items }} {{ [] }}")
            .unwrap();
        let plain = env
            .get_template("t")
            .unwrap()
            .render(minijinja::context! { input => Jinja::from_serialize(&input) })
            .unwrap();
        assert_eq!(prompt.render(&input).unwrap(), plain);
    }

    #[test]
    fn a_sequence_repeated_a_billion_times_is_refused_at_once() {
        let context = json!({"items": [1, "two", {"three": 3.0}]});
        for source in [
            "{{ items * 17**7 }}",
            "{{ [items * 30000] * 30000 }}",
            "{{ {'k': items * 10**9} }}",
        ] {
            let prompt = UserPrompt::compile(source).unwrap();
            let err = prompt.render(&context).unwrap_err();
            assert!(err.contains("bytes"), "{source}: {err}");
        }
    }

    #[test]
    fn a_huge_prompt_is_refused() {
        let prompt =
            UserPrompt::compile("{% for a in range(100) %}{{ 'x' * 100000 }}{% endfor %}").unwrap();
        let err = prompt.render(&json!({})).unwrap_err();
        assert!(err.contains("bytes"), "{err}");
        let fits = UserPrompt::compile("{{ input }}").unwrap();
        let big = json!("x".repeat(crate::extract::MAX_BODY_BYTES));
        assert!(fits.render(&big).is_ok());
    }
}
