//! Agentry: a self-hosted platform for managing LLM agents. The binary in `main.rs` is a thin
//! wrapper; everything lives here so tests can run the real server in-process on port 0.

pub mod assets;
pub mod auth;
pub mod background;
pub mod cli;
pub mod config;
pub mod db;
pub mod domain;
pub mod error;
pub mod events;
pub mod extract;
pub mod llm;
pub mod outbound;
pub mod prompt;
pub mod registry;
pub mod routes;
pub mod schema;
pub mod secrets;
pub mod security;
pub mod serve;
pub mod services;
pub mod startup;
pub mod state;
pub mod telemetry;
pub mod worker;

pub use config::Config;
pub use startup::Application;
