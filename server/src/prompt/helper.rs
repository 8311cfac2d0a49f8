//! The render helper: the child process (`agentry --render-helper`) that renders user prompt
//! templates for the server, so a template that builds huge values without writing them
//! (`{% set ns.s = ns.s ~ ns.s %}` in a loop) exhausts the helper's memory, not the server's.
//! minijinja bounds a rendering's steps and we bound its output, but nothing in-process can
//! bound the size of the values it builds along the way.
//!
//! The helper limits its own heap to [`MEMORY_LIMIT_BYTES`] before it reads anything, prints
//! [`HELLO`], then answers one JSON line per request line on standard input: [`Request`] in,
//! `Result<String, String>` out (`{"Ok": prompt}` or `{"Err": message}`). It ends when
//! standard input closes. Each rendering also gets [`CPU_SECS_PER_RENDER`] of CPU time: the
//! server kills a helper long before that, so this only ends a helper the server left behind
//! (it crashed) in the middle of a rendering. The server side is [`super::renderer`].

use std::collections::HashMap;
use std::io::{self, BufRead, Write};
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::process::ExitCode;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::UserPrompt;

/// The argument that makes `agentry` run as the helper. A flag rather than a subcommand: an
/// executable that is not agentry (a test harness) refuses an unknown flag instead of taking
/// it as an argument.
pub const FLAG: &str = "--render-helper";

/// The first line the helper prints; the server checks it before sending anything.
pub const HELLO: &str = "agentry render helper v1";

/// The helper's heap (its private writable memory): far more than any prompt needs (inputs
/// are at most 1 MiB, prompts 2 MiB), small enough that a runaway template costs little.
pub const MEMORY_LIMIT_BYTES: u64 = 256 << 20;

/// CPU time one rendering may use before the kernel ends the helper (SIGXCPU).
pub const CPU_SECS_PER_RENDER: u64 = 10;

/// Compiled templates kept between requests; most servers run a handful of agents.
const CACHED_TEMPLATES: usize = 32;

/// One rendering: the template's source and the run input.
#[derive(Debug, Serialize, Deserialize)]
pub struct Request<'a> {
    #[serde(borrow)]
    pub template: std::borrow::Cow<'a, str>,
    pub input: std::borrow::Cow<'a, Value>,
}

/// Runs the helper on standard input and output. Called by `main` before anything else (no
/// `.env`, no logging, no async runtime: the helper needs none of them, and every thread
/// would count against its memory).
pub fn main() -> ExitCode {
    if let Err(err) = confine() {
        eprintln!("agentry render helper: cannot limit its own resources: {err}");
        return ExitCode::FAILURE;
    }
    // A panic is answered as that rendering's error (see `render`); standard error is for
    // the helper's last words (an allocation that failed), which the server logs.
    std::panic::set_hook(Box::new(|_| {}));
    match serve(io::stdin().lock(), io::stdout().lock()) {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("agentry render helper: {err}");
            ExitCode::FAILURE
        }
    }
}

/// Answers requests until `input` ends.
pub fn serve(input: impl BufRead, mut output: impl Write) -> io::Result<()> {
    writeln!(output, "{HELLO}")?;
    output.flush()?;
    let mut cache: HashMap<String, Result<UserPrompt, String>> = HashMap::new();
    for line in input.lines() {
        let line = line?;
        budget_cpu()?;
        let reply = match serde_json::from_str::<Request>(&line) {
            Ok(request) => render(&mut cache, &request),
            Err(err) => Err(format!("the render helper got a malformed request: {err}")),
        };
        serde_json::to_writer(&mut output, &reply)?;
        output.write_all(b"\n")?;
        output.flush()?;
    }
    Ok(())
}

fn render(
    cache: &mut HashMap<String, Result<UserPrompt, String>>,
    request: &Request,
) -> Result<String, String> {
    if !cache.contains_key(request.template.as_ref()) && cache.len() >= CACHED_TEMPLATES {
        cache.clear();
    }
    let compiled = cache
        .entry(request.template.clone().into_owned())
        .or_insert_with(|| UserPrompt::compile(&request.template));
    let prompt = compiled.as_ref().map_err(Clone::clone)?;
    // A panic inside minijinja (none is known) fails this rendering, not the helper.
    catch_unwind(AssertUnwindSafe(|| prompt.render(&request.input))).unwrap_or_else(|panic| {
        let message = panic
            .downcast_ref::<&str>()
            .map(|s| (*s).to_owned())
            .or_else(|| panic.downcast_ref::<String>().cloned())
            .unwrap_or_default();
        Err(format!(
            "rendering the template failed unexpectedly: {message}"
        ))
    })
}

/// Limits the heap.
#[cfg(target_os = "linux")]
fn confine() -> io::Result<()> {
    use rustix::process::{Resource, Rlimit, setrlimit};
    // RLIMIT_DATA counts what the heap can grow into (brk and private writable mappings),
    // not the executable's own mappings: the limit means the same for any binary size. An
    // allocation past it fails, and Rust aborts the process.
    let limit = Rlimit {
        current: Some(MEMORY_LIMIT_BYTES),
        maximum: Some(MEMORY_LIMIT_BYTES),
    };
    setrlimit(Resource::Data, limit)?;
    Ok(())
}

/// Moves the CPU time limit to [`CPU_SECS_PER_RENDER`] past what the helper has used so far.
/// (A parent-death signal would not do: Linux sends it when the thread that started the
/// helper ends, and the server's async runtime does not promise to keep that thread.)
#[cfg(target_os = "linux")]
fn budget_cpu() -> io::Result<()> {
    use rustix::process::{Resource, Rlimit, getrlimit, setrlimit};
    use rustix::time::{ClockId, clock_gettime};
    let used = clock_gettime(ClockId::ProcessCPUTime);
    let used_secs = u64::try_from(used.tv_sec).unwrap_or(0) + 1;
    // Only the soft limit moves: an unprivileged process cannot raise its hard limit again.
    let limit = Rlimit {
        current: Some(used_secs + CPU_SECS_PER_RENDER),
        maximum: getrlimit(Resource::Cpu).maximum,
    };
    setrlimit(Resource::Cpu, limit)?;
    Ok(())
}

/// Elsewhere the server's deadline still applies, but memory and CPU are not limited.
#[cfg(not(target_os = "linux"))]
fn confine() -> io::Result<()> {
    Ok(())
}

#[cfg(not(target_os = "linux"))]
fn budget_cpu() -> io::Result<()> {
    Ok(())
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn exchange(lines: &[String]) -> Vec<String> {
        let input = lines.join("\n");
        let mut output = Vec::new();
        serve(input.as_bytes(), &mut output).unwrap();
        String::from_utf8(output)
            .unwrap()
            .lines()
            .map(str::to_owned)
            .collect()
    }

    fn request(template: &str, input: Value) -> String {
        serde_json::to_string(&Request {
            template: template.into(),
            input: std::borrow::Cow::Owned(input),
        })
        .unwrap()
    }

    #[test]
    fn says_hello_then_answers_each_line() {
        let replies = exchange(&[
            request("Hi {{ name }}", json!({"name": "Ada"})),
            request("{{ missing }}", json!({})),
            request("{{ broken", json!({})),
            "not json".to_owned(),
            request("Hi {{ name }}", json!({"name": "Bob"})),
        ]);
        assert_eq!(replies[0], HELLO);
        let parsed: Vec<Result<String, String>> = replies[1..]
            .iter()
            .map(|line| serde_json::from_str(line).unwrap())
            .collect();
        assert_eq!(parsed[0], Ok("Hi Ada".to_owned()));
        assert!(parsed[1].as_ref().unwrap_err().contains("undefined"));
        assert!(
            parsed[2]
                .as_ref()
                .unwrap_err()
                .starts_with("is not a valid template")
        );
        assert!(
            parsed[3]
                .as_ref()
                .unwrap_err()
                .contains("malformed request")
        );
        assert_eq!(parsed[4], Ok("Hi Bob".to_owned()));
    }
}
