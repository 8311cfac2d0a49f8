//! Tests of `secrets`.

use super::*;
use uuid::Uuid;

const KEY_A: [u8; 32] = [0xA5; 32];
const KEY_B: [u8; 32] = [0x3C; 32];

fn ctx(row: u128) -> SecretContext<'static> {
    SecretContext {
        table: "llm_providers",
        row_id: Uuid::from_u128(row),
        field: "api_key",
    }
}

/// A fresh directory under the system temp dir, removed on drop.
struct TempDir(PathBuf);

impl TempDir {
    fn new() -> Self {
        let dir = std::env::temp_dir().join(format!("agentry-secrets-{}", Uuid::now_v7()));
        Self(dir)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

#[test]
fn encrypt_then_decrypt_returns_the_plaintext() {
    let keyring = Keyring::new(KEY_A, vec![]);
    for plaintext in ["sk-test-1234567890abcdef", "", "ünïcödé 🔑"] {
        let blob = keyring.encrypt(plaintext, &ctx(1));
        assert_eq!(blob.len(), HEADER_LEN + plaintext.len() + TAG_LEN);
        assert_eq!(blob[0], VERSION);
        assert_eq!(keyring.decrypt(&blob, &ctx(1)).as_deref(), Ok(plaintext));
    }
}

#[test]
fn each_encryption_uses_a_fresh_nonce() {
    let keyring = Keyring::new(KEY_A, vec![]);
    let a = keyring.encrypt("same", &ctx(1));
    let b = keyring.encrypt("same", &ctx(1));
    assert_ne!(a[5..HEADER_LEN], b[5..HEADER_LEN]);
    assert_ne!(a, b);
}

#[test]
fn bad_blobs_map_to_typed_errors() {
    use SecretError::{Tampered, Truncated, UnknownKey, UnsupportedVersion};
    let keyring = Keyring::new(KEY_A, vec![]);
    let good = keyring.encrypt("sk-secret", &ctx(1));
    let empty_plaintext = keyring.encrypt("", &ctx(1));
    let flip = |i: usize| {
        let mut b = good.clone();
        b[i] ^= 0x01;
        b
    };
    let other_key = key_check_value(&KEY_B);
    let under_other_key = [&[VERSION][..], &other_key, &good[5..]].concat();
    let tag_cut = |b: &[u8]| b[..b.len() - 1].to_vec();

    let cases: Vec<(&str, Vec<u8>, SecretError)> = vec![
        ("empty", vec![], Truncated),
        ("shorter than the header", good[..10].to_vec(), Truncated),
        ("header only", good[..HEADER_LEN].to_vec(), Truncated),
        (
            "header and a short tag",
            tag_cut(&empty_plaintext),
            Truncated,
        ),
        ("wrong version byte", flip(0), UnsupportedVersion(0)),
        ("lone unknown version byte", vec![7], UnsupportedVersion(7)),
        (
            "unknown key id",
            under_other_key,
            UnknownKey(hex(&other_key)),
        ),
        ("flipped bit in the nonce", flip(5), Tampered),
        ("flipped bit in the ciphertext", flip(HEADER_LEN), Tampered),
        ("flipped bit in the tag", flip(good.len() - 1), Tampered),
        ("truncated tag", tag_cut(&good), Tampered),
    ];
    for (why, blob, expected) in cases {
        assert_eq!(keyring.decrypt(&blob, &ctx(1)), Err(expected), "{why}");
    }

    let moved = [
        ("another row", ctx(2)),
        (
            "another field",
            SecretContext {
                field: "base_url",
                ..ctx(1)
            },
        ),
        (
            "another table",
            SecretContext {
                table: "agent_configs",
                ..ctx(1)
            },
        ),
    ];
    for (why, context) in moved {
        assert_eq!(keyring.decrypt(&good, &context), Err(Tampered), "{why}");
    }
}

#[test]
fn a_flipped_key_id_is_an_unknown_key() {
    let keyring = Keyring::new(KEY_A, vec![]);
    let mut blob = keyring.encrypt("sk-secret", &ctx(1));
    blob[1] ^= 0x80;
    let expected_id = hex(&blob[1..5]);
    assert_eq!(
        keyring.decrypt(&blob, &ctx(1)),
        Err(SecretError::UnknownKey(expected_id))
    );
}

#[test]
fn non_utf8_plaintext_is_reported_without_its_bytes() {
    let keyring = Keyring::new(KEY_A, vec![]);
    let nonce = Nonce::<Aes256Gcm>::generate();
    let aad = ctx(1).associated_data();
    let sealed = keyring
        .current
        .cipher
        .encrypt(
            &nonce,
            Payload {
                msg: &[0xff, 0xfe],
                aad: &aad,
            },
        )
        .unwrap();
    let blob = [
        &[VERSION][..],
        &keyring.current.id,
        nonce.as_slice(),
        &sealed,
    ]
    .concat();
    assert_eq!(keyring.decrypt(&blob, &ctx(1)), Err(SecretError::NotUtf8));
}

#[test]
fn old_keys_decrypt_but_are_not_current() {
    let before = Keyring::new(KEY_A, vec![]);
    let blob = before.encrypt("sk-old", &ctx(1));
    let after = Keyring::new(KEY_B, vec![KEY_A]);

    assert_eq!(after.decrypt(&blob, &ctx(1)).as_deref(), Ok("sk-old"));
    assert!(!after.is_current(&blob));
    assert!(before.is_current(&blob));
    assert!(after.is_current(&after.encrypt("sk-new", &ctx(1))));
    assert!(!after.is_current(&[]));
    assert!(!after.is_current(&[VERSION, 1, 2]));
}

#[test]
fn without_the_old_key_the_error_names_its_id() {
    let before = Keyring::new(KEY_A, vec![]);
    let blob = before.encrypt("sk-old", &ctx(1));
    let after = Keyring::new(KEY_B, vec![]);
    assert_eq!(
        after.decrypt(&blob, &ctx(1)),
        Err(SecretError::UnknownKey(before.current_key_id()))
    );
}

#[test]
fn key_id_is_the_aes_key_check_value() {
    // FIPS-197 / NIST AESAVS KAT: AES-256 with an all-zero key encrypts the zero block to
    // dc95c078a2408989ad48a21492842087.
    let keyring = Keyring::new([0; 32], vec![]);
    assert_eq!(keyring.current_key_id(), "dc95c078");
}

#[test]
fn keys_parse_or_fail_with_a_reason() {
    let valid = BASE64.encode(KEY_A);
    assert_eq!(parse_key(&valid).unwrap(), KEY_A);
    assert_eq!(parse_key(&format!("  {valid}\n")).unwrap(), KEY_A);

    let cases: Vec<(String, &str, &str)> = vec![
        (
            "not base64 at all!".into(),
            "is not valid base64",
            "bad base64",
        ),
        (BASE64.encode([1_u8; 31]), "decodes to 31 bytes", "31 bytes"),
        (BASE64.encode([1_u8; 33]), "decodes to 33 bytes", "33 bytes"),
        (String::new(), "is empty", "empty"),
        ("  \n".into(), "is empty", "whitespace only"),
    ];
    for (input, expected, why) in cases {
        let message = parse_key(&input).expect_err(why).to_string();
        assert!(message.contains(expected), "{why}: {message}");
        assert!(
            message.contains("32"),
            "{why}: names the expected length: {message}"
        );
        if !input.trim().is_empty() {
            assert!(!message.contains(input.trim()), "{why}: echoes the key");
        }
    }
}

#[test]
fn generated_keys_parse_and_differ() {
    let a = generate_key();
    let b = generate_key();
    assert_ne!(a, b);
    assert!(parse_key(&a).is_ok());
}

#[test]
fn load_keyring_generates_a_private_key_file_then_reuses_it() {
    let dir = TempDir::new();
    let data_dir = dir.0.join("nested/data");

    let (first, source) = load_keyring(None, &[], &data_dir).unwrap();
    let path = data_dir.join(KEY_FILE_NAME);
    assert_eq!(source, KeySource::Generated(path.clone()));
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        let mode = std::fs::metadata(&path).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
    }

    let (second, source) = load_keyring(None, &[], &data_dir).unwrap();
    assert_eq!(source, KeySource::File(path));
    assert_eq!(first.current_key_id(), second.current_key_id());
    let blob = first.encrypt("sk-kept", &ctx(1));
    assert_eq!(second.decrypt(&blob, &ctx(1)).as_deref(), Ok("sk-kept"));
}

#[test]
fn load_keyring_prefers_the_configured_key_and_never_falls_back() {
    let dir = TempDir::new();
    let key = BASE64.encode(KEY_B);

    let (keyring, source) = load_keyring(Some(&key), &[], &dir.0).unwrap();
    assert_eq!(source, KeySource::Env);
    assert_eq!(keyring.current_key_id(), hex(&key_check_value(&KEY_B)));
    assert!(
        !dir.0.exists(),
        "no key file is written when a key is configured"
    );

    let err = load_keyring(Some("short"), &[], &dir.0)
        .unwrap_err()
        .to_string();
    assert!(err.contains("AGENTRY_ENCRYPTION_KEY"), "{err}");
    assert!(
        !dir.0.exists(),
        "an invalid key does not fall back to a generated one"
    );
}

#[test]
fn load_keyring_names_a_bad_key_file() {
    let dir = TempDir::new();
    std::fs::create_dir_all(&dir.0).unwrap();
    let path = dir.0.join(KEY_FILE_NAME);
    std::fs::write(&path, "garbage").unwrap();

    let err = load_keyring(None, &[], &dir.0).unwrap_err().to_string();
    assert!(err.contains(&path.display().to_string()), "{err}");
    assert!(err.contains("base64"), "{err}");
}

#[test]
fn load_keyring_names_the_position_of_a_bad_old_key() {
    let dir = TempDir::new();
    let current = BASE64.encode(KEY_A);
    let old = vec![BASE64.encode(KEY_B), "bad!".to_owned()];
    let err = load_keyring(Some(&current), &old, &dir.0)
        .unwrap_err()
        .to_string();
    assert!(err.contains("old key #2"), "{err}");

    let (keyring, _) = load_keyring(Some(&current), &old[..1], &dir.0).unwrap();
    let blob = Keyring::new(KEY_B, vec![]).encrypt("sk-old", &ctx(1));
    assert_eq!(keyring.decrypt(&blob, &ctx(1)).as_deref(), Ok("sk-old"));
}

#[test]
fn debug_output_shows_key_ids_only() {
    let keyring = Keyring::new(KEY_A, vec![KEY_B]);
    let debug = format!("{keyring:?}");
    assert!(debug.contains(&keyring.current_key_id()), "{debug}");
    for key in [KEY_A, KEY_B] {
        assert!(!debug.contains(&hex(&key)), "{debug}");
        assert!(!debug.contains(&BASE64.encode(key)), "{debug}");
        assert!(!debug.contains(&format!("{:?}", &key[..4])), "{debug}");
    }
}
