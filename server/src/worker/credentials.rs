//! Provider keys a worker holds itself, for providers whose key lives on workers
//! (`credential_location: worker`): the server never has them. Kept in the worker's data
//! directory — `credentials.json` (mode 0600) with each key sealed (AES-256-GCM, bound to its
//! entry) by a worker-local key in `credentials.key` (mode 0600, made on first use).
//!
//! `agentry worker credentials set|list|remove` edits the store while the worker may run:
//! the running worker notices the file changed (`refresh`), reports the providers it now
//! holds keys for (names only) and uses the new keys for runs that start afterwards.

use std::collections::BTreeMap;
use std::io::{BufRead as _, IsTerminal as _, Read as _, Write as _};
use std::path::{Path, PathBuf};
use std::time::SystemTime;

use anyhow::{Context, bail};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use parking_lot::Mutex;
use serde::{Deserialize, Serialize};
use uuid::Uuid;
use zeroize::Zeroizing;

use crate::secrets::{Keyring, SecretContext, file_keyring};

const STORE_FILE: &str = "credentials.json";
const KEY_FILE: &str = "credentials.key";
/// Longest key accepted (as the server's API does).
const MAX_KEY_CHARS: usize = contracts::rules::MAX_API_KEY_CHARS;

/// The file as stored: one sealed key per provider name.
#[derive(Debug, Default, Serialize, Deserialize)]
struct Stored {
    credentials: BTreeMap<String, Entry>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
struct Entry {
    /// Binds the sealed key to this entry: a blob copied onto another name does not open.
    id: Uuid,
    sealed: String,
}

fn context(id: Uuid) -> SecretContext<'static> {
    SecretContext {
        table: "worker_credentials",
        row_id: id,
        field: "api_key",
    }
}

/// The store of one data directory.
pub struct CredentialStore {
    path: PathBuf,
    keyring: Keyring,
    /// The entries as last read, and the file's (modified, length) then.
    loaded: Mutex<(Stored, Option<(SystemTime, u64)>)>,
}

impl std::fmt::Debug for CredentialStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CredentialStore")
            .field("path", &self.path)
            .finish_non_exhaustive()
    }
}

impl CredentialStore {
    /// Opens (or starts) the store in `dir`.
    pub fn open(dir: &Path) -> anyhow::Result<CredentialStore> {
        std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
        let keyring = file_keyring(dir, KEY_FILE).with_context(|| {
            format!(
                "cannot load the worker's credential key in {}",
                dir.display()
            )
        })?;
        let store = CredentialStore {
            path: dir.join(STORE_FILE),
            keyring,
            loaded: Mutex::new((Stored::default(), None)),
        };
        store.refresh()?;
        Ok(store)
    }

    /// Reads the file again if it changed since it was last read; whether it did.
    pub fn refresh(&self) -> anyhow::Result<bool> {
        let stamp = stamp(&self.path);
        if self.loaded.lock().1 == stamp {
            return Ok(false);
        }
        let stored = read(&self.path)?;
        *self.loaded.lock() = (stored, stamp);
        Ok(true)
    }

    /// The providers it holds keys for, sorted.
    pub fn names(&self) -> Vec<String> {
        self.loaded.lock().0.credentials.keys().cloned().collect()
    }

    /// The key held for `provider`, if any.
    pub fn get(&self, provider: &str) -> anyhow::Result<Option<Zeroizing<String>>> {
        let entry = self.loaded.lock().0.credentials.get(provider).cloned();
        let Some(entry) = entry else {
            return Ok(None);
        };
        let blob = BASE64
            .decode(&entry.sealed)
            .context("a stored credential is corrupt")?;
        let key = self
            .keyring
            .decrypt(&blob, &context(entry.id))
            .context("a stored credential cannot be decrypted (was credentials.key replaced?)")?;
        Ok(Some(Zeroizing::new(key)))
    }

    /// Stores (or replaces) the key for `provider`.
    pub fn set(&self, provider: &str, key: &str) -> anyhow::Result<()> {
        check_provider(provider)?;
        let key = check_key(key)?;
        let mut stored = read(&self.path)?;
        let id = Uuid::new_v4();
        let sealed = BASE64.encode(self.keyring.encrypt(key, &context(id)));
        stored
            .credentials
            .insert(provider.to_owned(), Entry { id, sealed });
        self.write(&stored)
    }

    /// Forgets the key for `provider`; whether there was one.
    pub fn remove(&self, provider: &str) -> anyhow::Result<bool> {
        let mut stored = read(&self.path)?;
        let removed = stored.credentials.remove(provider).is_some();
        if removed {
            self.write(&stored)?;
        }
        Ok(removed)
    }

    /// Replaces the file atomically (a new file, mode 0600, renamed over the old one).
    fn write(&self, stored: &Stored) -> anyhow::Result<()> {
        let dir = self.path.parent().unwrap_or(Path::new("."));
        let temp = dir.join(format!(".{STORE_FILE}.{}", Uuid::new_v4().simple()));
        let bytes = serde_json::to_vec_pretty(stored)?;
        let mut options = std::fs::OpenOptions::new();
        options.write(true).create_new(true);
        #[cfg(unix)]
        std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
        let written = options.open(&temp).and_then(|mut file| {
            file.write_all(&bytes)?;
            file.sync_all()
        });
        if let Err(err) = written.and_then(|()| std::fs::rename(&temp, &self.path)) {
            let _ = std::fs::remove_file(&temp);
            return Err(err).with_context(|| format!("cannot write {}", self.path.display()));
        }
        self.refresh()?;
        Ok(())
    }
}

fn stamp(path: &Path) -> Option<(SystemTime, u64)> {
    let meta = std::fs::metadata(path).ok()?;
    Some((meta.modified().ok()?, meta.len()))
}

fn read(path: &Path) -> anyhow::Result<Stored> {
    match std::fs::read(path) {
        Ok(bytes) => serde_json::from_slice(&bytes)
            .with_context(|| format!("{} is not a credential store", path.display())),
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => Ok(Stored::default()),
        Err(err) => Err(err).with_context(|| format!("cannot read {}", path.display())),
    }
}

/// A provider name as the server has it (1–100 characters, no control characters).
fn check_provider(provider: &str) -> anyhow::Result<()> {
    let name = provider.trim();
    if name.is_empty()
        || name != provider
        || name.chars().count() > contracts::rules::MAX_NAME_CHARS
        || name.chars().any(char::is_control)
    {
        bail!(
            "`{}` is not a provider name: use the provider's name as the server shows it \
             (1–{} characters, no control characters or surrounding spaces)",
            provider.escape_debug(),
            contracts::rules::MAX_NAME_CHARS
        );
    }
    Ok(())
}

/// A key as it can travel in an HTTP header; returned trimmed.
fn check_key(key: &str) -> anyhow::Result<&str> {
    let key = key.trim();
    if key.is_empty() {
        bail!("the key is empty");
    }
    if key.chars().count() > MAX_KEY_CHARS {
        bail!("the key is longer than {MAX_KEY_CHARS} characters");
    }
    if key.chars().any(|c| c.is_whitespace() || c.is_control()) {
        bail!("the key contains whitespace or control characters");
    }
    Ok(key)
}

/// The key for `provider`: typed at a prompt without echo when standard input is a
/// terminal, otherwise read from standard input (`… credentials set NAME < key.txt`).
pub fn read_key(provider: &str) -> anyhow::Result<Zeroizing<String>> {
    let stdin = std::io::stdin();
    let mut key = Zeroizing::new(String::new());
    if !stdin.is_terminal() {
        stdin
            .lock()
            .read_to_string(&mut key)
            .context("cannot read the key from standard input")?;
        return Ok(key);
    }
    eprint!("API key for provider {provider} (not shown): ");
    std::io::stderr().flush().ok();
    let echo = |on: bool| {
        std::process::Command::new("stty")
            .arg(if on { "echo" } else { "-echo" })
            .stdin(std::process::Stdio::inherit())
            .status()
            .is_ok_and(|s| s.success())
    };
    if !echo(false) {
        bail!("cannot turn off echo on this terminal; pipe the key on standard input instead");
    }
    let read = stdin.lock().read_line(&mut key);
    echo(true);
    eprintln!();
    read.context("cannot read the key")?;
    Ok(key)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_sealed_bound_to_their_entry_and_private() {
        let dir = tempfile::tempdir().unwrap();
        let store = CredentialStore::open(dir.path()).unwrap();
        assert!(store.names().is_empty());
        store.set("openai prod", "sk-secret-1234567890").unwrap();
        store.set("local", "  tok-2  ").unwrap();
        assert_eq!(store.names(), ["local", "openai prod"]);
        assert_eq!(store.get("local").unwrap().unwrap().as_str(), "tok-2");
        let text = std::fs::read_to_string(dir.path().join(STORE_FILE)).unwrap();
        assert!(!text.contains("sk-secret"), "sealed at rest: {text}");
        #[cfg(unix)]
        for file in [STORE_FILE, KEY_FILE] {
            use std::os::unix::fs::PermissionsExt as _;
            let mode = std::fs::metadata(dir.path().join(file))
                .unwrap()
                .permissions()
                .mode();
            assert_eq!(mode & 0o777, 0o600, "{file}");
        }
        // Another process's change is seen on refresh.
        let other = CredentialStore::open(dir.path()).unwrap();
        assert!(other.remove("local").unwrap());
        assert!(!other.remove("local").unwrap());
        assert!(store.refresh().unwrap());
        assert_eq!(store.names(), ["openai prod"]);
        assert!(!store.refresh().unwrap(), "unchanged");
        // A sealed key moved onto another name does not open.
        let mut stored = read(&dir.path().join(STORE_FILE)).unwrap();
        let entry = stored.credentials["openai prod"].clone();
        stored.credentials.insert(
            "moved".into(),
            Entry {
                id: Uuid::new_v4(),
                sealed: entry.sealed,
            },
        );
        std::fs::write(
            dir.path().join(STORE_FILE),
            serde_json::to_vec(&stored).unwrap(),
        )
        .unwrap();
        store.refresh().unwrap();
        assert!(store.get("moved").is_err());
    }

    #[test]
    fn bad_names_and_keys_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let store = CredentialStore::open(dir.path()).unwrap();
        for (provider, key) in [
            ("", "k"),
            (" padded", "k"),
            ("tab\tname", "k"),
            ("ok", ""),
            ("ok", "   "),
            ("ok", "two words"),
            ("ok", "bell\u{7}"),
        ] {
            assert!(store.set(provider, key).is_err(), "{provider:?} {key:?}");
        }
        assert!(store.names().is_empty(), "nothing stored");
        let long = "k".repeat(MAX_KEY_CHARS + 1);
        assert!(store.set("ok", &long).is_err());
    }
}
