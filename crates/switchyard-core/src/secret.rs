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
pub fn scrub_secret(message: &str, secret: &str) -> String {
    if secret.len() < 4 || !message.contains(secret) {
        return message.to_owned();
    }
    message.replace(secret, &redact(secret))
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
}
