//! The user prompt template: any source either fails to compile with a message or renders
//! any input to a prompt within the size bound, in bounded time (libFuzzer's `-timeout`
//! catches a rendering that does not end).
#![no_main]

use agentry::prompt::{MAX_RENDERED_BYTES, UserPrompt};
use libfuzzer_sys::fuzz_target;
use serde_json::{Value, json};

fuzz_target!(|data: &[u8]| {
    // The template, then after the first NUL byte the run input as JSON.
    let (source, input) = match data.iter().position(|&b| b == 0) {
        Some(at) => (&data[..at], &data[at + 1..]),
        None => (data, &[][..]),
    };
    let Ok(source) = std::str::from_utf8(source) else {
        return;
    };
    let input = serde_json::from_slice::<Value>(input).unwrap_or_else(
        |_| json!({"text": "The quick brown fox", "items": [1, "two", {"three": 3.0}], "n": 3}),
    );
    let prompt = match UserPrompt::compile(source) {
        Ok(prompt) => prompt,
        Err(message) => {
            assert!(message.starts_with("is not a valid template"), "{message}");
            return;
        }
    };
    if let Ok(rendered) = prompt.render(&input) {
        assert!(rendered.len() <= MAX_RENDERED_BYTES);
    }
});
