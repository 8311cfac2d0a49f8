//! The input rules the server enforces, named once: the server's checks use these limits, the
//! OpenAPI document states them (`maxLength`, `pattern`, `minimum`, …), and a contract test
//! holds the two together. Lengths count Unicode scalar values, as JSON Schema does.
//!
//! "Whitespace" is Rust's `char::is_whitespace` (Unicode `White_Space`), which the patterns
//! spell out as a class: the server trims exactly that set.

/// Names of providers, agents and tasks.
pub const MAX_NAME_CHARS: usize = 100;
/// Model ids.
pub const MAX_MODEL_CHARS: usize = 200;
/// Descriptions.
pub const MAX_DESCRIPTION_CHARS: usize = 2_000;
/// System prompts and user prompt templates.
pub const MAX_PROMPT_CHARS: usize = 65_536;
/// Provider base URLs.
pub const MAX_URL_CHARS: usize = 2_048;
/// Provider API keys.
pub const MAX_API_KEY_CHARS: usize = 4_096;

pub const MAX_TEMPERATURE: f64 = 2.0;
pub const MAX_MAX_TOKENS: u32 = 1_000_000;
pub const MAX_RETRIES: u32 = 10;
pub const MAX_TIMEOUT_SECS: u32 = 3_600;
/// A run waits at most a day in the queue for a worker.
pub const MAX_QUEUE_TIMEOUT_SECS: u32 = 86_400;

/// The largest `offset` a list accepts (far beyond any real table; it keeps the value inside
/// the databases' signed 64-bit integers).
pub const MAX_OFFSET: u64 = 1_000_000_000;

/// A name or model id: no control character anywhere, at least one character that is not
/// whitespace. Stored trimmed.
pub const NAME_PATTERN: &str = r"^[^\x00-\x1F\x7F-\x9F]*[^\x00-\x20\x7F-\xA0\u1680\u2000-\u200A\u2028\u2029\u202F\u205F\u3000][^\x00-\x1F\x7F-\x9F]*$";
/// A prompt: at least one character that is not whitespace, and no U+0000 (which PostgreSQL
/// cannot store).
pub const PROMPT_PATTERN: &str = r"^[^\x00]*[^\x00\t\n\x0B\x0C\r \x85\xA0\u1680\u2000-\u200A\u2028\u2029\u202F\u205F\u3000][^\x00]*$";
/// Free text (descriptions, templates): anything but U+0000.
pub const TEXT_PATTERN: &str = r"^[^\x00]*$";
/// An API key: one run of characters that are neither whitespace nor control characters,
/// optionally surrounded by whitespace (trimmed away).
pub const API_KEY_PATTERN: &str = r"^[\t\n\x0B\x0C\r \x85\xA0\u1680\u2000-\u200A\u2028\u2029\u202F\u205F\u3000]*[^\x00-\x20\x7F-\xA0\u1680\u2000-\u200A\u2028\u2029\u202F\u205F\u3000]+[\t\n\x0B\x0C\r \x85\xA0\u1680\u2000-\u200A\u2028\u2029\u202F\u205F\u3000]*$";

/// Integer fields: JSON Schema counts `120.0` as the integer 120, so do we. Anything with a
/// fraction, out of range or not a number is refused by serde with the field's path.
pub mod int {
    use serde::de::{Deserializer, Error, Unexpected, Visitor};
    use std::fmt;

    struct U32;

    impl Visitor<'_> for U32 {
        type Value = u32;

        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("an integer between 0 and 4294967295")
        }

        fn visit_u64<E: Error>(self, v: u64) -> Result<u32, E> {
            u32::try_from(v).map_err(|_| E::invalid_value(Unexpected::Unsigned(v), &self))
        }

        fn visit_i64<E: Error>(self, v: i64) -> Result<u32, E> {
            u32::try_from(v).map_err(|_| E::invalid_value(Unexpected::Signed(v), &self))
        }

        fn visit_f64<E: Error>(self, v: f64) -> Result<u32, E> {
            let whole = v.fract() == 0.0 && v >= 0.0 && v <= f64::from(u32::MAX);
            if whole {
                // In range and integral: the cast is exact.
                Ok(v as u32)
            } else {
                Err(E::invalid_value(Unexpected::Float(v), &self))
            }
        }
    }

    /// A `u32` given as an integer or as a number with a zero fraction.
    pub fn u32<'de, D: Deserializer<'de>>(deserializer: D) -> Result<u32, D::Error> {
        deserializer.deserialize_any(U32)
    }

    /// Like [`u32`], for optional fields (`null` is `None`).
    pub fn opt_u32<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Option<u32>, D::Error> {
        struct Opt;
        impl<'de> Visitor<'de> for Opt {
            type Value = Option<u32>;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("an integer between 0 and 4294967295, or null")
            }

            fn visit_none<E: Error>(self) -> Result<Option<u32>, E> {
                Ok(None)
            }

            fn visit_unit<E: Error>(self) -> Result<Option<u32>, E> {
                Ok(None)
            }

            fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<Option<u32>, D::Error> {
                super::int::u32(d).map(Some)
            }
        }
        deserializer.deserialize_option(Opt)
    }
}

#[cfg(test)]
mod tests {
    use serde::Deserialize;
    use serde_json::json;

    #[derive(Debug, Deserialize)]
    struct Body {
        #[serde(deserialize_with = "super::int::u32")]
        n: u32,
        #[serde(default, deserialize_with = "super::int::opt_u32")]
        m: Option<u32>,
    }

    fn parse(value: serde_json::Value) -> Result<Body, String> {
        serde_json::from_value(value).map_err(|e| e.to_string())
    }

    #[test]
    fn integers_may_be_written_with_a_zero_fraction_but_nothing_else() {
        assert_eq!(parse(json!({"n": 120})).map(|b| b.n), Ok(120));
        assert_eq!(parse(json!({"n": 120.0})).map(|b| b.n), Ok(120));
        assert_eq!(
            parse(json!({"n": 1, "m": 56168473.0})).map(|b| b.m),
            Ok(Some(56168473))
        );
        assert_eq!(parse(json!({"n": 1, "m": null})).map(|b| b.m), Ok(None));
        assert_eq!(parse(json!({"n": 1})).map(|b| b.m), Ok(None));
        for bad in [
            json!({"n": 1.5}),
            json!({"n": -1}),
            json!({"n": -1.0}),
            json!({"n": 4294967296_u64}),
            json!({"n": 4294967296.0}),
            json!({"n": "1"}),
            json!({"n": null}),
            json!({"n": 1, "m": 0.5}),
        ] {
            assert!(parse(bad.clone()).is_err(), "{bad} was accepted");
        }
    }
}
