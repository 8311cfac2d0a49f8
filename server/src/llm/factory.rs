//! The one place a provider row becomes a client: decrypt its key (bound to the row), then
//! build the client for its kind on the guarded outbound client.

use std::sync::Arc;

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
    let api_key = match &row.api_key_ciphertext {
        Some(blob) => Some(keyring.decrypt(blob, &SecretContext::provider_api_key(row.id))?),
        None => None,
    };
    Ok(build(*row.kind, row.base_url.as_deref(), api_key, client)?)
}
