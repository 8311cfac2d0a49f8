//! Worker credentials: registration tokens and worker keys. Both are 32 random bytes
//! (base64url, with a prefix that says what they are), shown once and stored only as their
//! SHA-256, so a database dump reveals neither.

use aes_gcm::aead::Generate as _;
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use sha2::{Digest as _, Sha256};

/// Prefix of registration tokens.
pub const TOKEN_PREFIX: &str = "agwt_";
/// Prefix of worker keys.
pub const KEY_PREFIX: &str = "agwk_";

/// A fresh secret with `prefix`.
pub fn generate(prefix: &str) -> String {
    let bytes = zeroize::Zeroizing::new(<[u8; 32]>::generate());
    format!("{prefix}{}", URL_SAFE_NO_PAD.encode(bytes.as_slice()))
}

/// What is stored of a secret: its SHA-256, hex.
pub fn hash(secret: &str) -> String {
    let digest = Sha256::digest(secret.trim().as_bytes());
    digest.iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_are_random_prefixed_and_hashed_stably() {
        let a = generate(TOKEN_PREFIX);
        let b = generate(TOKEN_PREFIX);
        assert_ne!(a, b);
        assert!(a.starts_with(TOKEN_PREFIX));
        assert_eq!(a.len(), TOKEN_PREFIX.len() + 43, "256 bits in base64url");
        assert_eq!(hash(&a), hash(&format!(" {a}\n")));
        assert_ne!(hash(&a), hash(&b));
        assert_eq!(hash(&a).len(), 64);
    }
}
