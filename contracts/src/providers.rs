//! LLM providers: where agents send their requests, with write-only credentials.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::wire::wire_enum;

wire_enum! {
    /// The API family a provider speaks.
    pub enum ProviderKind {
        Ollama = "ollama",
        Openai = "openai",
        OpenaiCompatible = "openai_compatible",
        Anthropic = "anthropic",
        Gemini = "gemini",
    }
}

impl ProviderKind {
    /// Self-hosted kinds have no default endpoint, so `base_url` is required.
    pub fn requires_base_url(self) -> bool {
        match self {
            ProviderKind::Ollama | ProviderKind::OpenaiCompatible => true,
            ProviderKind::Openai | ProviderKind::Anthropic | ProviderKind::Gemini => false,
        }
    }

    /// Cloud kinds refuse unauthenticated requests, so `api_key` is required.
    pub fn requires_api_key(self) -> bool {
        match self {
            ProviderKind::Openai | ProviderKind::Anthropic | ProviderKind::Gemini => true,
            ProviderKind::Ollama | ProviderKind::OpenaiCompatible => false,
        }
    }

    /// The public endpoint used when `base_url` is not given.
    pub fn default_base_url(self) -> Option<&'static str> {
        match self {
            ProviderKind::Openai => Some("https://api.openai.com/v1"),
            ProviderKind::Anthropic => Some("https://api.anthropic.com"),
            ProviderKind::Gemini => Some("https://generativelanguage.googleapis.com"),
            ProviderKind::Ollama | ProviderKind::OpenaiCompatible => None,
        }
    }
}

wire_enum! {
    /// Where a provider's key lives: `server` (sealed in the database, sent to the executing
    /// worker inside each assignment, never written to its disk) or `worker` (the server
    /// stores no key at all; it lives only on the workers that hold it, set there with
    /// `agentry worker credentials set <provider name>`).
    #[derive(Default)]
    pub enum CredentialLocation {
        #[default]
        Server = "server",
        Worker = "worker",
    }
}

wire_enum! {
    /// Result of the last connectivity check.
    pub enum ValidationStatus {
        Pending = "pending",
        Validating = "validating",
        Connected = "connected",
        Error = "error",
    }
}

/// A provider as the API returns it. The API key is never returned: only whether one is
/// stored and its last four characters.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Provider {
    pub id: Uuid,
    pub name: String,
    pub kind: ProviderKind,
    /// The endpoint as configured; `null` means the kind's public default.
    pub base_url: Option<String>,
    pub has_api_key: bool,
    /// `…abcd`: the last four characters of the stored key, to tell keys apart.
    pub api_key_hint: Option<String>,
    /// Where the key lives (`server` or `worker`).
    pub credential_location: CredentialLocation,
    /// Only these workers (names) may run this provider's calls; empty: any worker (that
    /// holds the key, when it lives on workers). A `server` key is sent to no other worker.
    pub credential_workers: Vec<String>,
    /// The worker that ran the last connectivity check, when a worker ran it (`worker`
    /// credentials are checked on a worker that holds them).
    pub checked_by: Option<String>,
    pub validation_status: ValidationStatus,
    pub validation_error: Option<String>,
    pub validated_at: Option<DateTime<Utc>>,
    pub latency_ms: Option<u64>,
    /// Models discovered by the last successful check.
    pub models: Vec<String>,
    /// False once deleted while agents still reference it (soft delete).
    pub is_active: bool,
    pub revision: u64,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

/// Body of `POST /api/providers`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct CreateProvider {
    /// Unique among active providers, 1–100 characters, no control characters, not blank;
    /// stored trimmed.
    #[cfg_attr(
        feature = "openapi",
        schema(
            max_length = 100,
            pattern = r"^[^\x00-\x1F\x7F-\x9F]*[^\x00-\x20\x7F-\xA0\u1680\u2000-\u200A\u2028\u2029\u202F\u205F\u3000][^\x00-\x1F\x7F-\x9F]*$"
        )
    )]
    pub name: String,
    pub kind: ProviderKind,
    /// Required for `ollama` and `openai_compatible`; optional override for the others. An
    /// `http` or `https` URL with a host and no user name, password, query or fragment, at most
    /// 2,048 characters, that the outbound policy allows (422 on `/base_url` otherwise).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "openapi", schema(max_length = 2048))]
    pub base_url: Option<String>,
    /// Required for `openai`, `anthropic` and `gemini` (422 on `/api_key` without it).
    /// Write-only. At most 4,096 characters, no whitespace or control characters inside;
    /// surrounding whitespace is trimmed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(
        feature = "openapi",
        schema(
            max_length = 4096,
            pattern = r"^[\t\n\x0B\x0C\r \x85\xA0\u1680\u2000-\u200A\u2028\u2029\u202F\u205F\u3000]*[^\x00-\x20\x7F-\xA0\u1680\u2000-\u200A\u2028\u2029\u202F\u205F\u3000]+[\t\n\x0B\x0C\r \x85\xA0\u1680\u2000-\u200A\u2028\u2029\u202F\u205F\u3000]*$"
        )
    )]
    pub api_key: Option<String>,
    /// `server` (default) or `worker`; with `worker` the body carries no `api_key`.
    #[serde(default)]
    pub credential_location: CredentialLocation,
    /// Worker names that alone may run this provider's calls (at most 32); empty: any.
    #[serde(default)]
    #[cfg_attr(feature = "openapi", schema(max_items = 32))]
    pub credential_workers: Vec<String>,
}

/// Body of `PUT /api/providers/{id}`: replaces the configuration. `api_key` absent keeps the
/// stored key; it must be sent again when the endpoint's scheme, host or port changes.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct UpdateProvider {
    /// As on create.
    #[cfg_attr(
        feature = "openapi",
        schema(
            max_length = 100,
            pattern = r"^[^\x00-\x1F\x7F-\x9F]*[^\x00-\x20\x7F-\xA0\u1680\u2000-\u200A\u2028\u2029\u202F\u205F\u3000][^\x00-\x1F\x7F-\x9F]*$"
        )
    )]
    pub name: String,
    pub kind: ProviderKind,
    /// As on create.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "openapi", schema(max_length = 2048))]
    pub base_url: Option<String>,
    /// Absent keeps the stored key, except when the endpoint's scheme, host or port changes
    /// (422 on `/api_key`). Otherwise as on create.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(
        feature = "openapi",
        schema(
            max_length = 4096,
            pattern = r"^[\t\n\x0B\x0C\r \x85\xA0\u1680\u2000-\u200A\u2028\u2029\u202F\u205F\u3000]*[^\x00-\x20\x7F-\xA0\u1680\u2000-\u200A\u2028\u2029\u202F\u205F\u3000]+[\t\n\x0B\x0C\r \x85\xA0\u1680\u2000-\u200A\u2028\u2029\u202F\u205F\u3000]*$"
        )
    )]
    pub api_key: Option<String>,
    /// `server` (default) or `worker`; with `worker` the body carries no `api_key`.
    #[serde(default)]
    pub credential_location: CredentialLocation,
    /// Worker names that alone may run this provider's calls (at most 32); empty: any.
    #[serde(default)]
    #[cfg_attr(feature = "openapi", schema(max_items = 32))]
    pub credential_workers: Vec<String>,
}

/// The short form embedded in agents.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ProviderSummary {
    pub id: Uuid,
    pub name: String,
    pub kind: ProviderKind,
    pub validation_status: ValidationStatus,
    pub is_active: bool,
}
