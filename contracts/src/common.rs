//! Shapes shared by every resource: pages of items and list query parameters.

use serde::{Deserialize, Serialize};

/// One page of a list: `items` in a stable order, the `total` across all pages, and the
/// `limit`/`offset` that produced it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Page<T> {
    pub items: Vec<T>,
    pub total: u64,
    pub limit: u64,
    pub offset: u64,
}

/// `?limit=&offset=` for list endpoints. `limit` defaults to 50 and is capped at 200.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::IntoParams))]
#[cfg_attr(feature = "openapi", into_params(parameter_in = Query))]
#[serde(deny_unknown_fields)]
pub struct ListQuery {
    /// Items per page, 1–200 (default 50).
    #[cfg_attr(feature = "openapi", param(minimum = 1, maximum = 200))]
    pub limit: Option<u64>,
    /// Items to skip, 0–1,000,000,000 (default 0).
    #[cfg_attr(feature = "openapi", param(minimum = 0, maximum = 1000000000))]
    pub offset: Option<u64>,
}

impl ListQuery {
    pub const DEFAULT_LIMIT: u64 = 50;
    pub const MAX_LIMIT: u64 = 200;
}
