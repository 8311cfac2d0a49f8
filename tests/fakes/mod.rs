//! Wire-accurate fake LLM providers for black-box tests, each an in-process server on
//! 127.0.0.1:0: the cloud APIs (Anthropic, Gemini, OpenAI) answering from a script, and an
//! Ollama API answered by the real test LLM. All record their requests and can be made to
//! fail, hang or slow down while a test runs (see [`Behavior`]).

pub mod anthropic;
mod calls;
pub mod core;
pub mod gemini;
pub mod ollama;
pub mod openai;
pub mod raw;

pub use self::calls::{Call, most_at_once};
pub use self::core::{Behavior, Fake, Options, Recorded, Reply};
