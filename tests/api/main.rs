//! Black-box tests of the HTTP API, each against the real server on port 0, on SQLite and on
//! PostgreSQL.
#![expect(
    clippy::expect_used,
    clippy::unwrap_used,
    reason = "tests: a failed expectation is a failed test"
)]
#![expect(
    clippy::disallowed_methods,
    reason = "tests drive the server from outside: their own HTTP client, fakes and tasks"
)]

mod agents;
mod assignments;
mod auth;
mod canary;
mod cli;
mod concurrency;
mod contract;
mod contract_rules;
mod credentials;
mod enqueue;
mod errors;
mod fakes_smoke;
mod faults;
mod health;
mod hostile;
mod policy;
mod providers;
mod queue;
mod restarts;
mod routing;
mod runs;
mod schedules;
mod schemathesis;
mod security_headers;
mod tags;
mod tasks;
mod validator;
mod worker_health;
mod workers;
mod ws;
