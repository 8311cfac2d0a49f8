//! Tasks: what goes in and what must come out, typed by JSON Schema.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use uuid::Uuid;

use crate::AgentSummary;

/// A task as the API returns it, with the agents it is assigned to.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Task {
    pub id: Uuid,
    pub name: String,
    pub description: String,
    /// JSON Schema for run input; `null` accepts any JSON.
    pub request_schema: Option<Value>,
    /// JSON Schema every successful run's output matches.
    pub response_schema: Value,
    pub agents: Vec<AgentSummary>,
    pub revision: u64,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

/// Body of `POST /api/tasks`, and of `PUT /api/tasks/{id}` (which replaces the whole
/// configuration). Schemas are draft 2020-12 unless `$schema` names another supported draft;
/// at most 64 KiB and 32 levels deep each, with only local (`#…`) `$ref`s.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct CreateTask {
    /// Unique, 1–100 characters, no control characters, not blank; stored trimmed.
    #[cfg_attr(
        feature = "openapi",
        schema(
            max_length = 100,
            pattern = r"^[^\x00-\x1F\x7F-\x9F]*[^\x00-\x20\x7F-\xA0\u1680\u2000-\u200A\u2028\u2029\u202F\u205F\u3000][^\x00-\x1F\x7F-\x9F]*$"
        )
    )]
    pub name: String,
    /// At most 2,000 characters.
    #[serde(default)]
    #[cfg_attr(
        feature = "openapi",
        schema(max_length = 2000, pattern = r"^[^\x00]*$")
    )]
    pub description: String,
    /// JSON Schema for run input (an object or a boolean); absent or `null` accepts any JSON.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "openapi", schema(schema_with = nullable_json_schema))]
    pub request_schema: Option<Value>,
    /// JSON Schema every successful run's output matches (an object or a boolean).
    #[cfg_attr(feature = "openapi", schema(schema_with = json_schema))]
    pub response_schema: Value,
}

/// A JSON Schema document: an object or a boolean. Its own rules (meta-schema, limits, local
/// `$ref`s only) are checked by the server and reported on the field's path.
#[cfg(feature = "openapi")]
fn json_schema() -> utoipa::openapi::Object {
    use utoipa::openapi::{ObjectBuilder, schema::SchemaType, schema::Type};
    ObjectBuilder::new()
        .schema_type(SchemaType::Array(vec![Type::Object, Type::Boolean]))
        .build()
}

#[cfg(feature = "openapi")]
fn nullable_json_schema() -> utoipa::openapi::Object {
    use utoipa::openapi::{ObjectBuilder, schema::SchemaType, schema::Type};
    ObjectBuilder::new()
        .schema_type(SchemaType::Array(vec![
            Type::Object,
            Type::Boolean,
            Type::Null,
        ]))
        .build()
}

/// `PUT /api/tasks/{id}` replaces the configuration, so it takes the same body as create.
pub type UpdateTask = CreateTask;

/// The short form embedded in agents and assignment lists.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct TaskSummary {
    pub id: Uuid,
    pub name: String,
    pub description: String,
}
