//! The one place a provider becomes a client: a stored row (its key decrypted, bound to the
//! row) on the server, or the endpoint description a worker receives in a job; either way
//! the client for its kind is built on the guarded outbound client.

use std::sync::Arc;

use contracts::worker::ProviderEndpoint;

use super::{LlmProvider, ProviderError, build};
use crate::db::providers;
use crate::outbound::GuardedClient;
use crate::secrets::{Keyring, SecretContext, SecretError};

/// Why a stored provider cannot be turned into a client.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    #[error("the stored API key cannot be decrypted: {0}")]
    Key(#[from] SecretError),
    #[error("the provider cannot be used: {0}")]
    Provider(#[from] ProviderError),
}

/// The client for a stored provider.
pub fn from_row(
    row: &providers::Model,
    keyring: &Keyring,
    client: GuardedClient,
) -> Result<Arc<dyn LlmProvider>, ClientError> {
    Ok(from_endpoint(&endpoint_of(row, keyring)?, client)?)
}

/// How a worker reaches a stored provider, with its key decrypted.
pub fn endpoint_of(
    row: &providers::Model,
    keyring: &Keyring,
) -> Result<ProviderEndpoint, ClientError> {
    let api_key = match &row.api_key_ciphertext {
        Some(blob) => Some(keyring.decrypt(blob, &SecretContext::provider_api_key(row.id))?),
        None => None,
    };
    Ok(ProviderEndpoint {
        kind: *row.kind,
        base_url: row.base_url.clone(),
        api_key,
        // A key that lives on workers: the one executing the run uses its own.
        credential: row.key_on_workers().then(|| row.name.clone()),
    })
}

/// The client for an endpoint a worker received.
pub fn from_endpoint(
    endpoint: &ProviderEndpoint,
    client: GuardedClient,
) -> Result<Arc<dyn LlmProvider>, ProviderError> {
    build(
        endpoint.kind,
        endpoint.base_url.as_deref(),
        endpoint.api_key.clone(),
        client,
    )
}
