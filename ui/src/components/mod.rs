//! Reusable views shared by several pages.

mod empty_state;

pub use empty_state::EmptyState;
