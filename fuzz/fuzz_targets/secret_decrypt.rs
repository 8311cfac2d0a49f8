//! The secret envelope: a stored API key opens only as the exact blob `encrypt` made, for
//! the row and field it was made for. Any truncation, extension, flipped bit or other row
//! is an error — never a panic, never a different plaintext.
#![no_main]

use std::sync::LazyLock;

use agentry::secrets::{Keyring, SecretContext};
use libfuzzer_sys::fuzz_target;
use uuid::Uuid;

const PLAINTEXT: &str = "sk-fuzz-canary-0123456789";
const ROW: Uuid = Uuid::from_u128(0x0123_4567_89ab_cdef_0123_4567_89ab_cdef);

struct Fixture {
    keyring: Keyring,
    /// Sealed with the current key and with the old one, for `ROW`.
    blobs: [Vec<u8>; 2],
}

static FIXTURE: LazyLock<Fixture> = LazyLock::new(|| {
    let ctx = SecretContext::provider_api_key(ROW);
    let old = Keyring::new([9; 32], Vec::new());
    let keyring = Keyring::new([7; 32], vec![[9; 32]]);
    let blobs = [
        keyring.encrypt(PLAINTEXT, &ctx),
        old.encrypt(PLAINTEXT, &ctx),
    ];
    Fixture { keyring, blobs }
});

fuzz_target!(|data: &[u8]| {
    let fixture = &*FIXTURE;
    let ctx = SecretContext::provider_api_key(ROW);
    // The input as a blob of its own.
    check(fixture, data, &ctx);
    // The input as edits of a real blob: byte 0 picks the blob and whether to cut it to the
    // length in byte 1; the rest is XORed over it from byte 2 on, or appended when longer.
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    let mut edited = fixture.blobs[usize::from(mode & 1)].clone();
    let rest = if mode & 2 != 0 {
        let Some((&len, rest)) = rest.split_first() else {
            return;
        };
        edited.truncate(usize::from(len));
        rest
    } else {
        rest
    };
    for (i, byte) in rest.iter().enumerate() {
        match edited.get_mut(i) {
            Some(b) => *b ^= byte,
            None => edited.push(*byte),
        }
    }
    check(fixture, &edited, &ctx);
    // The same bytes for another row never open.
    let other = SecretContext::provider_api_key(Uuid::from_u128(ROW.as_u128() ^ 1));
    assert!(fixture.keyring.decrypt(&edited, &other).is_err());
});

fn check(fixture: &Fixture, blob: &[u8], ctx: &SecretContext<'_>) {
    match fixture.keyring.decrypt(blob, ctx) {
        Ok(plaintext) => {
            assert!(
                fixture.blobs.iter().any(|b| b == blob),
                "an edited blob opened"
            );
            assert_eq!(plaintext, PLAINTEXT);
        }
        Err(err) => assert!(!err.to_string().contains(PLAINTEXT)),
    }
}
