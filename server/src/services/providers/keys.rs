//! Key rotation (`agentry keys rotate`): re-encrypts every stored provider key with the
//! current encryption key. Offline, like every CLI command: nothing is published.

use sea_orm::{ConnectionTrait, DbErr};
use uuid::Uuid;

use crate::db::providers;
use crate::secrets::{Keyring, SecretContext, SecretError};

/// What a rotation did. `failed` lists secrets no configured key could decrypt.
#[derive(Debug, Default)]
pub struct RotationReport {
    pub reencrypted: usize,
    pub already_current: usize,
    pub changed_concurrently: usize,
    pub failed: Vec<(Uuid, SecretError)>,
}

/// Re-encrypts each provider key not yet under the current key. Every row is its own
/// compare-and-swap update, so an interrupted rotation leaves each secret readable (old or new
/// key) and can simply be run again. Secrets already current are decrypted too, so a clean
/// report proves every secret is readable with the configured keys.
pub async fn rotate_keys(
    db: &impl ConnectionTrait,
    keyring: &Keyring,
) -> Result<RotationReport, DbErr> {
    let mut report = RotationReport::default();
    for provider in providers::with_keys(db).await? {
        let Some(blob) = provider.api_key_ciphertext else {
            continue;
        };
        let context = SecretContext::provider_api_key(provider.id);
        let plaintext = match keyring.decrypt(&blob, &context) {
            Ok(plaintext) => plaintext,
            Err(err) => {
                report.failed.push((provider.id, err));
                continue;
            }
        };
        if keyring.is_current(&blob) {
            report.already_current += 1;
            continue;
        }
        let fresh = keyring.encrypt(&plaintext, &context);
        if providers::replace_ciphertext(db, provider.id, blob, fresh).await? {
            report.reencrypted += 1;
        } else {
            // Updated since we read it, necessarily with the current key.
            report.changed_concurrently += 1;
        }
    }
    Ok(report)
}
