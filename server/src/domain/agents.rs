//! What a valid agent configuration is: prompts, a checked template, parameter ranges.

use contracts::CreateAgent;

use contracts::rules::{
    MAX_DESCRIPTION_CHARS, MAX_MAX_TOKENS, MAX_MODEL_CHARS, MAX_NAME_CHARS, MAX_PROMPT_CHARS,
    MAX_QUEUE_TIMEOUT_SECS, MAX_RETRIES, MAX_TEMPERATURE, MAX_TIMEOUT_SECS,
};

use crate::prompt::UserPrompt;

use super::fields::{Invalid, Problems, check_name, check_prompt, check_text, is_worker_name};

/// Checks everything about an agent body that needs no database. Returns it with the name and
/// model trimmed.
pub fn validate(mut input: CreateAgent) -> Result<CreateAgent, Invalid> {
    let mut problems = Problems::new();
    input.name = check_name(&mut problems, "/name", &input.name, MAX_NAME_CHARS);
    check_text(
        &mut problems,
        "/description",
        &input.description,
        MAX_DESCRIPTION_CHARS,
    );
    input.model = check_name(&mut problems, "/model", &input.model, MAX_MODEL_CHARS);
    check_prompt(&mut problems, "/system_prompt", &input.system_prompt);
    if let Some(template) = &input.user_prompt {
        let before = problems.len();
        check_text(&mut problems, "/user_prompt", template, MAX_PROMPT_CHARS);
        if problems.len() == before
            && let Err(message) = UserPrompt::compile(template)
        {
            problems.add("/user_prompt", message);
        }
    }

    if let Some(t) = input.temperature
        && !(t.is_finite() && (0.0..=MAX_TEMPERATURE).contains(&t))
    {
        problems.add(
            "/temperature",
            format!("must be between 0 and {MAX_TEMPERATURE}"),
        );
    }
    if let Some(max_tokens) = input.max_tokens
        && (max_tokens == 0 || max_tokens > MAX_MAX_TOKENS)
    {
        problems.add(
            "/max_tokens",
            format!("must be greater than 0 and at most {MAX_MAX_TOKENS}"),
        );
    }
    if input.max_retries > MAX_RETRIES {
        problems.add(
            "/max_retries",
            format!("must be between 0 and {MAX_RETRIES}"),
        );
    }
    if input.timeout_secs == 0 || input.timeout_secs > MAX_TIMEOUT_SECS {
        problems.add(
            "/timeout_secs",
            format!("must be between 1 and {MAX_TIMEOUT_SECS}"),
        );
    }
    if input.queue_timeout_secs == 0 || input.queue_timeout_secs > MAX_QUEUE_TIMEOUT_SECS {
        problems.add(
            "/queue_timeout_secs",
            format!("must be between 1 and {MAX_QUEUE_TIMEOUT_SECS}"),
        );
    }
    input.workers = worker_names(&mut problems, "/workers", &input.workers);
    // Whether each tag exists is the service's check (it needs the database).
    input.required_tags = check_list(
        &mut problems,
        "/required_tags",
        &input.required_tags,
        |_| Ok(()),
    );
    problems.finish(input)
}

/// A list of worker names (an agent's `workers`, a provider's `credential_workers`): sorted,
/// each once, every entry a worker name.
pub fn worker_names(problems: &mut Problems, path: &str, items: &[String]) -> Vec<String> {
    check_list(problems, path, items, |name| {
        is_worker_name(name)
            .then_some(())
            .ok_or("a worker name: 1–64 letters, digits, `.`, `_` or `-`")
    })
}

/// Most entries in an agent's routing lists.
pub const MAX_ROUTING_ENTRIES: usize = 32;

/// A routing list: at most `MAX_ROUTING_ENTRIES`, each entry checked by `check`; returned
/// sorted, each entry once.
fn check_list(
    problems: &mut Problems,
    path: &str,
    items: &[String],
    check: impl Fn(&str) -> Result<(), &'static str>,
) -> Vec<String> {
    if items.len() > MAX_ROUTING_ENTRIES {
        problems.add(path, format!("at most {MAX_ROUTING_ENTRIES} entries"));
    }
    for (i, item) in items.iter().enumerate() {
        if let Err(why) = check(item) {
            problems.add(format!("{path}/{i}"), why);
        }
    }
    let unique: std::collections::BTreeSet<String> = items.iter().cloned().collect();
    unique.into_iter().collect()
}
