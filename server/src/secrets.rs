//! Envelope encryption of stored credentials (AES-256-GCM) and loading of the encryption keys.
//!
//! A secret is stored as one self-describing blob:
//!
//! ```text
//! [version u8 = 1][key id: 4 bytes][nonce: 12 random bytes][ciphertext + 16-byte tag]
//! ```
//!
//! The key id is a key check value (the first 4 bytes of AES-256 applied to the all-zero block),
//! so a blob names the key that sealed it and old keys are found without trial decryption. The
//! associated data binds each blob to its table, row and field: a blob copied anywhere else
//! fails to decrypt. Neither errors nor `Debug` output ever contain key material or plaintext.

use std::fmt;
use std::io::Write as _;
use std::path::{Path, PathBuf};

use aes::Aes256;
use aes::cipher::{BlockCipherEncrypt as _, KeyInit as _};
use aes_gcm::Aes256Gcm;
use aes_gcm::aead::{Aead as _, Generate as _, Nonce, Payload};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use zeroize::{Zeroize as _, Zeroizing};

/// Format version written in the first byte of every blob.
const VERSION: u8 = 1;
const KEY_ID_LEN: usize = 4;
const NONCE_LEN: usize = 12;
const TAG_LEN: usize = 16;
const HEADER_LEN: usize = 1 + KEY_ID_LEN + NONCE_LEN;
const KEY_LEN: usize = 32;

/// File in the data directory holding the generated development key.
pub const KEY_FILE_NAME: &str = "encryption.key";

/// Where a secret lives; becomes the associated data, so a blob only opens in its own place.
#[derive(Debug, Clone, Copy)]
pub struct SecretContext<'a> {
    /// Table name, e.g. `llm_providers`. A code constant, never user input.
    pub table: &'a str,
    pub row_id: uuid::Uuid,
    /// Field name, e.g. `api_key`. A code constant, never user input.
    pub field: &'a str,
}

impl SecretContext<'static> {
    /// Where a provider's API key lives: bound to its row, so a ciphertext copied onto another
    /// provider does not decrypt.
    pub fn provider_api_key(provider_id: uuid::Uuid) -> SecretContext<'static> {
        SecretContext {
            table: "llm_providers",
            row_id: provider_id,
            field: "api_key",
        }
    }
}

impl SecretContext<'_> {
    /// `agentry:v1:{table}:{row_id}:{field}`. Unambiguous because the row id has a fixed
    /// hyphenated form and table/field names are identifiers without `:`.
    fn associated_data(&self) -> Vec<u8> {
        debug_assert!(!self.table.contains(':') && !self.field.contains(':'));
        format!(
            "agentry:v1:{}:{}:{}",
            self.table,
            self.row_id.hyphenated(),
            self.field
        )
        .into_bytes()
    }
}

/// Why a stored secret could not be decrypted. Carries no key material or plaintext.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SecretError {
    #[error("the encrypted secret is truncated")]
    Truncated,
    #[error("the encrypted secret has an unsupported format version ({0})")]
    UnsupportedVersion(u8),
    #[error(
        "the secret was encrypted with key {0}, which is not configured \
         (add that key to AGENTRY_ENCRYPTION_KEYS_OLD)"
    )]
    UnknownKey(String),
    #[error(
        "the encrypted secret failed authentication (it was modified, or belongs to another \
         row or field)"
    )]
    Tampered,
    #[error("the decrypted secret is not valid UTF-8")]
    NotUtf8,
}

/// Why an encryption key could not be loaded. Names where the key came from, never its value.
#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    #[error("{origin} is empty; expected base64 of 32 random bytes (see `agentry keys generate`)")]
    Empty { origin: String },
    #[error(
        "{origin} is not valid base64 (standard alphabet with `=` padding); expected base64 of \
         32 random bytes (see `agentry keys generate`)"
    )]
    NotBase64 { origin: String },
    #[error(
        "{origin} decodes to {len} bytes, but an AES-256 key must be exactly 32 bytes \
         (see `agentry keys generate`)"
    )]
    WrongLength { origin: String, len: usize },
    #[error("cannot {action} the encryption key file {}", path.display())]
    Io {
        action: &'static str,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

/// Where the current key came from; the caller decides how loudly to log it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KeySource {
    /// `AGENTRY_ENCRYPTION_KEY`.
    Env,
    /// An existing key file in the data directory.
    File(PathBuf),
    /// No key was configured: a new one was written to this file (fine for development only).
    Generated(PathBuf),
}

struct SealingKey {
    id: [u8; KEY_ID_LEN],
    // With aes-gcm's `zeroize` feature the expanded key schedule is wiped on drop.
    cipher: Aes256Gcm,
}

impl SealingKey {
    fn new(mut key: [u8; KEY_LEN]) -> Self {
        let sealing = Self {
            id: key_check_value(&key),
            cipher: Aes256Gcm::new(&key.into()),
        };
        key.zeroize();
        sealing
    }
}

/// First bytes of AES-256(key, 0¹²⁸): identifies a key without revealing it.
fn key_check_value(key: &[u8; KEY_LEN]) -> [u8; KEY_ID_LEN] {
    let mut block = aes::Block::default();
    Aes256::new(&(*key).into()).encrypt_block(&mut block);
    let mut id = [0; KEY_ID_LEN];
    id.copy_from_slice(&block[..KEY_ID_LEN]);
    id
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// The current key (encrypts and decrypts) and older keys (decrypt only, until rotated away).
pub struct Keyring {
    current: SealingKey,
    old: Vec<SealingKey>,
}

impl Keyring {
    pub fn new(current: [u8; 32], mut old: Vec<[u8; 32]>) -> Keyring {
        let keyring = Keyring {
            current: SealingKey::new(current),
            old: old.iter().copied().map(SealingKey::new).collect(),
        };
        old.zeroize();
        keyring
    }

    /// Seals `plaintext` under the current key with a fresh random nonce.
    ///
    /// # Panics
    /// Only if the operating system's random number generator fails, or for a plaintext over
    /// AES-GCM's 64 GiB limit; neither can come from a request.
    pub fn encrypt(&self, plaintext: &str, ctx: &SecretContext<'_>) -> Vec<u8> {
        let nonce = Nonce::<Aes256Gcm>::generate();
        let aad = ctx.associated_data();
        let sealed = self
            .current
            .cipher
            .encrypt(
                &nonce,
                Payload {
                    msg: plaintext.as_bytes(),
                    aad: &aad,
                },
            )
            .unwrap_or_else(|_| panic!("plaintext exceeds the AES-GCM size limit"));
        let mut blob = Vec::with_capacity(HEADER_LEN + sealed.len());
        blob.push(VERSION);
        blob.extend_from_slice(&self.current.id);
        blob.extend_from_slice(&nonce);
        blob.extend_from_slice(&sealed);
        blob
    }

    /// Opens a blob made by [`Keyring::encrypt`] for the same context, with whichever
    /// configured key its key id names.
    pub fn decrypt(&self, blob: &[u8], ctx: &SecretContext<'_>) -> Result<String, SecretError> {
        // The version decides the layout, so it is checked before the length.
        let (&version, rest) = blob.split_first().ok_or(SecretError::Truncated)?;
        if version != VERSION {
            return Err(SecretError::UnsupportedVersion(version));
        }
        if blob.len() < HEADER_LEN + TAG_LEN {
            return Err(SecretError::Truncated);
        }
        let (key_id, rest) = rest
            .split_first_chunk::<KEY_ID_LEN>()
            .ok_or(SecretError::Truncated)?;
        let (nonce, sealed) = rest
            .split_first_chunk::<NONCE_LEN>()
            .ok_or(SecretError::Truncated)?;
        let nonce = Nonce::<Aes256Gcm>::from(*nonce);
        let aad = ctx.associated_data();

        // Two distinct keys share a 4-byte id with probability 2⁻³², so try every match
        // rather than trust the first.
        let mut candidates = std::iter::once(&self.current)
            .chain(&self.old)
            .filter(|key| &key.id == key_id)
            .peekable();
        if candidates.peek().is_none() {
            return Err(SecretError::UnknownKey(hex(key_id)));
        }
        let plaintext = candidates
            .find_map(|key| {
                key.cipher
                    .decrypt(
                        &nonce,
                        Payload {
                            msg: sealed,
                            aad: &aad,
                        },
                    )
                    .ok()
            })
            .ok_or(SecretError::Tampered)?;
        String::from_utf8(plaintext).map_err(|err| {
            err.into_bytes().zeroize();
            SecretError::NotUtf8
        })
    }

    /// True when `blob` was sealed with the current key (rotation can skip it).
    pub fn is_current(&self, blob: &[u8]) -> bool {
        blob.split_first()
            .and_then(|(&version, rest)| {
                let (id, _) = rest.split_first_chunk::<KEY_ID_LEN>()?;
                Some(version == VERSION && *id == self.current.id)
            })
            .unwrap_or(false)
    }

    /// Hex key id of the current key, safe to log.
    pub fn current_key_id(&self) -> String {
        hex(&self.current.id)
    }
}

impl fmt::Debug for Keyring {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let old: Vec<String> = self.old.iter().map(|key| hex(&key.id)).collect();
        f.debug_struct("Keyring")
            .field("current", &self.current_key_id())
            .field("old", &old)
            .finish()
    }
}

/// A new random key, base64 (standard alphabet, padded) as `AGENTRY_ENCRYPTION_KEY` expects.
pub fn generate_key() -> String {
    let key = Zeroizing::new(<[u8; KEY_LEN]>::generate());
    BASE64.encode(*key)
}

/// Decodes a base64 key of exactly 32 bytes. Surrounding whitespace (a trailing newline in a
/// file or a secret store) is ignored.
pub fn parse_key(b64: &str) -> Result<[u8; 32], KeyError> {
    parse_key_from(b64, "the encryption key")
}

fn parse_key_from(b64: &str, origin: &str) -> Result<[u8; 32], KeyError> {
    let trimmed = b64.trim();
    if trimmed.is_empty() {
        return Err(KeyError::Empty {
            origin: origin.to_owned(),
        });
    }
    // The decoder's own error would quote the offending character; ours names only the origin.
    let bytes = Zeroizing::new(BASE64.decode(trimmed).map_err(|_| KeyError::NotBase64 {
        origin: origin.to_owned(),
    })?);
    <[u8; KEY_LEN]>::try_from(bytes.as_slice()).map_err(|_| KeyError::WrongLength {
        origin: origin.to_owned(),
        len: bytes.len(),
    })
}

/// Builds the keyring from settings: `current` (AGENTRY_ENCRYPTION_KEY) if given, else the key
/// file in `data_dir`, else a newly generated key written to that file. A key that is given
/// but invalid is an error, never a reason to fall back.
pub fn load_keyring(
    current: Option<&str>,
    old: &[String],
    data_dir: &Path,
) -> Result<(Keyring, KeySource), KeyError> {
    let old_keys = old
        .iter()
        .enumerate()
        .map(|(i, key)| {
            parse_key_from(
                key,
                &format!("old key #{} in AGENTRY_ENCRYPTION_KEYS_OLD", i + 1),
            )
        })
        .collect::<Result<Vec<_>, _>>()?;

    let (mut current_key, source) = match current {
        Some(key) => (
            parse_key_from(key, "AGENTRY_ENCRYPTION_KEY")?,
            KeySource::Env,
        ),
        None => load_or_generate_key_file(data_dir)?,
    };
    // `Keyring::new` wipes the old keys it is given; the current key is `Copy`, so this copy
    // is wiped here.
    let keyring = Keyring::new(current_key, old_keys);
    current_key.zeroize();
    Ok((keyring, source))
}

/// The keyring of a key kept in the file `name` inside `dir`, generated (mode 0600) on first
/// use: a worker's own key for the credentials it holds.
pub fn file_keyring(dir: &Path, name: &str) -> Result<Keyring, KeyError> {
    let (mut key, _) = load_or_generate_key_at(dir, &dir.join(name))?;
    let keyring = Keyring::new(key, Vec::new());
    key.zeroize();
    Ok(keyring)
}

fn load_or_generate_key_file(data_dir: &Path) -> Result<([u8; 32], KeySource), KeyError> {
    load_or_generate_key_at(data_dir, &data_dir.join(KEY_FILE_NAME))
}

fn load_or_generate_key_at(
    data_dir: &Path,
    path: &Path,
) -> Result<([u8; 32], KeySource), KeyError> {
    let path = path.to_owned();
    match std::fs::read_to_string(&path) {
        Ok(content) => {
            let content = Zeroizing::new(content);
            warn_if_readable_by_others(&path);
            let key = parse_key_from(&content, &format!("the key in {}", path.display()))?;
            Ok((key, KeySource::File(path)))
        }
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => {
            let encoded = Zeroizing::new(generate_key());
            write_new_key_file(data_dir, &path, &encoded)?;
            let key = parse_key_from(&encoded, "the generated key")?;
            Ok((key, KeySource::Generated(path)))
        }
        Err(source) => Err(KeyError::Io {
            action: "read",
            path,
            source,
        }),
    }
}

/// Creates the key file, refusing to overwrite one (another process may have just made it:
/// replacing it would orphan everything encrypted with that key). Unix mode 0600.
fn write_new_key_file(data_dir: &Path, path: &Path, encoded: &str) -> Result<(), KeyError> {
    let io_err = |action, source| KeyError::Io {
        action,
        path: path.to_owned(),
        source,
    };
    std::fs::create_dir_all(data_dir).map_err(|e| io_err("create the directory of", e))?;
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let mut file = options.open(path).map_err(|e| io_err("create", e))?;
    let line = Zeroizing::new(format!("{encoded}\n"));
    let written = file
        .write_all(line.as_bytes())
        .and_then(|()| file.sync_all());
    if let Err(e) = written {
        // A half-written file would stop every later start-up; better to try again next time.
        drop(file);
        let _ = std::fs::remove_file(path);
        return Err(io_err("write", e));
    }
    Ok(())
}

#[cfg(unix)]
fn warn_if_readable_by_others(path: &Path) {
    use std::os::unix::fs::PermissionsExt as _;
    if let Ok(meta) = std::fs::metadata(path)
        && meta.permissions().mode() & 0o077 != 0
    {
        tracing::warn!(
            path = %path.display(),
            "the encryption key file is accessible to other users; restrict it with chmod 600"
        );
    }
}

#[cfg(not(unix))]
fn warn_if_readable_by_others(_path: &Path) {}

#[cfg(test)]
#[path = "secrets_tests.rs"]
mod tests;
