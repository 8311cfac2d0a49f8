//! Reusable views shared by several pages.

mod confirm_delete;
mod empty_state;
mod error_banner;
mod field_errors;
mod list_body;
mod loading;
mod pool_status;
pub mod run_input;
pub mod schema_editor;
mod status_badge;
mod text_field;
mod token_dialog;

pub use confirm_delete::ConfirmDelete;
pub use empty_state::EmptyState;
pub use error_banner::{Banner, ErrorBanner};
pub use field_errors::{FieldErrors, FormError};
pub use list_body::list_body;
pub use loading::{LoadFailed, Loading};
pub use pool_status::PoolStatus;
pub use schema_editor::SchemaEditor;
pub use status_badge::{StatusBadge, use_clock};
pub use text_field::TextField;
pub use token_dialog::TokenDialog;
