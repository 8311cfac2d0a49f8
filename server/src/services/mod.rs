//! Services: one module per resource, each owning its operations end to end — ids and
//! timestamps, validation, sealing secrets, the write, the event and any trigger (a provider
//! check, a run start). Handlers in `routes/` parse, call one service method and map its
//! result; services return their own small errors, which `error.rs` maps to HTTP at the edge.
//! Each table has one writer here, and each WebSocket topic one publisher.

pub mod agents;
pub mod assignments;
pub mod concurrency;
pub mod providers;
pub mod runs;
pub mod schedules;
pub mod tags;
pub mod tasks;
pub mod workers;

pub use agents::Agents;
pub use assignments::Assignments;
pub use concurrency::ConcurrencyGroups;
pub use providers::Providers;
pub use runs::Runs;
pub use schedules::Schedules;
pub use tags::Tags;
pub use tasks::Tasks;
pub use workers::Workers;
