//! Secret values: `env.VAR` references, redaction, and a wrapper whose `Debug` never shows the value.

use std::fmt;

pub const ENV_PREFIX: &str = "env.";

/// Where a configured secret comes from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SecretSource<'a> {
    Literal(&'a str),
    /// `env.NAME`: resolved from the process environment, stored as the reference.
    Env(&'a str),
}

pub fn source(value: &str) -> SecretSource<'_> {
    match value.strip_prefix(ENV_PREFIX) {
        Some(var) => SecretSource::Env(var),
        None => SecretSource::Literal(value),
    }
}

pub fn is_valid_env_name(name: &str) -> bool {
    let mut bytes = name.bytes();
    matches!(bytes.next(), Some(b) if b.is_ascii_alphabetic() || b == b'_')
        && bytes.all(|b| b.is_ascii_alphanumeric() || b == b'_')
}

/// Bifrost's redaction: an `env.VAR` reference is not a secret and is shown as is; a value of up to 8
/// characters becomes all `*`; a longer one keeps its first and last 4 characters around 24 `*`.
pub fn redact(value: &str) -> String {
    if let SecretSource::Env(_) = source(value) {
        return value.to_owned();
    }
    let n = value.chars().count();
    if n <= 8 {
        return "*".repeat(n);
    }
    let head: String = value.chars().take(4).collect();
    let tail: String = value.chars().skip(n - 4).collect();
    format!("{head}{}{tail}", "*".repeat(24))
}

/// True when `candidate` is what [`redact`] shows for `stored` (and `stored` is a real secret), i.e. a
/// client sent back the redacted value it read.
pub fn is_redacted_form_of(candidate: &str, stored: &str) -> bool {
    !matches!(source(stored), SecretSource::Env(_)) && candidate.contains('*') && redact(stored) == candidate
}

/// Replaces every occurrence of `secret` in `message` by its redacted form (upstreams sometimes echo
/// the key they rejected in their error message).
/// The match ignores ASCII case (an upstream may echo the key lower-cased).
pub fn scrub_secret(message: &str, secret: &str) -> String {
    if secret.len() < 4 || !secret.is_ascii() {
        return if secret.len() >= 4 && message.contains(secret) {
            message.replace(secret, &redact(secret))
        } else {
            message.to_owned()
        };
    }
    let hay = message.to_ascii_lowercase();
    let needle = secret.to_ascii_lowercase();
    let mut out = String::with_capacity(message.len());
    let mut last = 0;
    // ASCII lower-casing keeps byte offsets, and an ASCII needle only matches at char boundaries.
    for (at, _) in hay.match_indices(&needle) {
        if at < last {
            continue;
        }
        out.push_str(&message[last..at]);
        out.push_str(&redact(secret));
        last = at + needle.len();
    }
    out.push_str(&message[last..]);
    out
}

/// Base64 decoders that take padded and unpadded tokens alike (built at compile time: building one
/// computes its decode table).
const LENIENT: base64::engine::GeneralPurposeConfig = base64::engine::GeneralPurposeConfig::new()
    .with_decode_padding_mode(base64::engine::DecodePaddingMode::Indifferent)
    .with_decode_allow_trailing_bits(true);
const LENIENT_STANDARD: base64::engine::GeneralPurpose =
    base64::engine::GeneralPurpose::new(&base64::alphabet::STANDARD, LENIENT);
const LENIENT_URL_SAFE: base64::engine::GeneralPurpose =
    base64::engine::GeneralPurpose::new(&base64::alphabet::URL_SAFE, LENIENT);

/// Whether a header value carries `secret`: as is or in another case, percent-encoded, or inside a
/// base64 (standard or URL-safe, padded or not) or hex token, e.g. `Basic base64(user:key)`.
pub fn echoes_secret(value: &[u8], secret: &str) -> bool {
    // Every encoding checked is at least as long as what it encodes, so a shorter value (most
    // headers: dates, lengths, content types) cannot carry the secret.
    if secret.len() < 4 || value.len() < secret.len() {
        return false;
    }
    let needle = secret.as_bytes();
    let contains = |hay: &[u8]| {
        hay.len() >= needle.len() && hay.windows(needle.len()).any(|w| w.eq_ignore_ascii_case(needle))
    };
    if contains(value) || (value.contains(&b'%') && contains(&percent_decode(value))) {
        return true;
    }
    // Base64 of n bytes takes at least 4n/3 characters and hex 2n: a shorter token cannot decode
    // to the secret.
    let base64_min = (needle.len() * 4).div_ceil(3);
    value
        .split(|b| b.is_ascii_whitespace() || matches!(b, b',' | b';' | b':' | b'"' | b'\''))
        .filter(|t| t.len() >= base64_min)
        .any(|token| token_decodes_to(token, needle.len(), &contains))
}

/// Whether `token`, read as base64 (standard or URL-safe, padded or not) or as hex, holds what
/// `contains` looks for. A token with a byte outside an encoding's alphabet is not decoded in it
/// (the decoder would refuse it), and a short token is decoded on the stack: most answer headers
/// (dates, ids, content types) cost no allocation.
fn token_decodes_to(token: &[u8], secret_len: usize, contains: &impl Fn(&[u8]) -> bool) -> bool {
    use base64::Engine as _;
    let in_alphabet = |extra: [u8; 2]| {
        token
            .iter()
            .all(|&b| b.is_ascii_alphanumeric() || b == b'=' || extra.contains(&b))
    };
    let mut buf = [0u8; 768];
    let mut decoded = |engine: &base64::engine::GeneralPurpose| match engine.decode_slice(token, &mut buf) {
        Ok(n) => contains(&buf[..n]),
        Err(base64::DecodeSliceError::OutputSliceTooSmall) => {
            engine.decode(token).is_ok_and(|v| contains(&v))
        }
        Err(base64::DecodeSliceError::DecodeError(_)) => false,
    };
    if in_alphabet(*b"+/") && decoded(&LENIENT_STANDARD) {
        return true;
    }
    if in_alphabet(*b"-_") && decoded(&LENIENT_URL_SAFE) {
        return true;
    }
    let hex = token.len().is_multiple_of(2)
        && token.len() >= 2 * secret_len
        && token.iter().all(u8::is_ascii_hexdigit);
    hex && {
        let digit = |b: u8| (b as char).to_digit(16).unwrap_or(0) as u8;
        let bytes: Vec<u8> = token
            .chunks_exact(2)
            .map(|p| digit(p[0]) << 4 | digit(p[1]))
            .collect();
        contains(&bytes)
    }
}

fn percent_decode(value: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(value.len());
    let mut i = 0;
    while i < value.len() {
        let hex = value.get(i + 1..i + 3).and_then(|h| std::str::from_utf8(h).ok());
        match (value[i], hex.and_then(|h| u8::from_str_radix(h, 16).ok())) {
            (b'%', Some(b)) => {
                out.push(b);
                i += 3;
            }
            (b, _) => {
                out.push(b);
                i += 1;
            }
        }
    }
    out
}

/// A resolved secret. Its `Debug` and `Display` show the redacted form only.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    pub fn new(value: impl Into<String>) -> Self {
        Secret(value.into())
    }

    /// The only way to read the clear value; call sites are where secrets leave the process.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Secret({})", redact(&self.0))
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&redact(&self.0))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redaction_follows_bifrost() {
        assert_eq!(redact("short"), "*****");
        assert_eq!(redact("12345678"), "********");
        assert_eq!(
            redact("sk-abcdefghijklmnop"),
            format!("sk-a{}mnop", "*".repeat(24))
        );
        assert_eq!(redact("env.MITTWALD_API_KEY"), "env.MITTWALD_API_KEY");
        assert_eq!(redact(""), "");
    }

    #[test]
    fn redaction_respects_multibyte_characters() {
        let r = redact("äöüßäöüßäöüß");
        assert!(r.starts_with("äöüß") && r.ends_with("äöüß"));
    }

    #[test]
    fn debug_never_shows_the_secret() {
        let s = Secret::new("sk-live-0123456789abcdef");
        assert!(!format!("{s:?} {s}").contains("0123456789"));
    }

    #[test]
    fn redacted_forms_are_recognised() {
        let stored = "sk-live-0123456789abcdef";
        assert!(is_redacted_form_of(&redact(stored), stored));
        assert!(!is_redacted_form_of("sk-live-new-value", stored));
        assert!(!is_redacted_form_of("env.X", "env.X"));
    }

    #[test]
    fn env_names() {
        assert!(is_valid_env_name("MITTWALD_API_KEY"));
        assert!(is_valid_env_name("_x1"));
        assert!(!is_valid_env_name("1X"));
        assert!(!is_valid_env_name(""));
        assert!(!is_valid_env_name("A-B"));
    }

    #[test]
    fn echoed_keys_are_scrubbed() {
        let m = scrub_secret(
            "Incorrect API key provided: sk-live-abcdefghijkl",
            "sk-live-abcdefghijkl",
        );
        assert!(!m.contains("sk-live-abcdefghijkl"), "{m}");
    }

    #[test]
    fn echoed_keys_are_scrubbed_in_any_case() {
        let m = scrub_secret(
            "Incorrect API key provided: SK-LIVE-ABCDEFGHIJKL and sk-live-abcdefghijkl.",
            "sk-live-AbcdefGhijkl",
        );
        assert!(!m.to_ascii_lowercase().contains("abcdefghijkl"), "{m}");
        assert!(
            m.starts_with("Incorrect API key provided: ") && m.ends_with('.'),
            "{m}"
        );
        assert_eq!(
            scrub_secret("nothing here", "sk-live-abcdefghijkl"),
            "nothing here"
        );
    }

    #[test]
    fn secrets_are_found_in_common_encodings() {
        use base64::Engine as _;
        let key = "sk-live-abcdefghijkl";
        let b64 = |s: &str| base64::engine::general_purpose::STANDARD.encode(s);
        let b64url = |s: &str| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(s);
        let hex: String = key.bytes().map(|b| format!("{b:02x}")).collect();
        for value in [
            format!("Bearer {key}"),
            format!("bearer {}", key.to_ascii_uppercase()),
            format!("Basic {}", b64(&format!("user:{key}"))),
            format!("token={}", b64url(key)).replace("token=", "token "),
            format!("x {hex}"),
            format!("x {}", hex.to_ascii_uppercase()),
            // Longer than the decoder's stack buffer.
            format!("Basic {}", b64(&format!("{}:{key}", "u".repeat(900)))),
            "sk%2Dlive%2Dabcdefghijkl".to_owned(),
        ] {
            assert!(echoes_secret(value.as_bytes(), key), "{value}");
        }
        let long_other = b64(&"u".repeat(1200));
        for value in [
            "Bearer other",
            "req_123",
            "",
            "c2stbGl2ZQ==",
            &long_other,
            &hex[2..],
        ] {
            assert!(!echoes_secret(value.as_bytes(), key), "{value}");
        }
    }
}
