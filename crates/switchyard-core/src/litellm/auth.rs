//! LiteLLM's credentials: the master key (`Authorization: Bearer <mk>` or `x-litellm-api-key: <mk>`)
//! and its virtual keys (any `sk-` value, in the same headers). Keys are kept as SHA-256 digests and
//! compared without an early exit, so neither the value nor its length leaks through timing.

use sha2::{Digest, Sha256};

use crate::governance::vk_from_headers;

/// The credentials that open LiteLLM's management routes (and pass inference without a virtual key):
/// the configured master key and the admin tokens. Never holds a value, only digests.
#[derive(Clone, Default)]
pub struct MasterKeys {
    digests: Vec<[u8; 32]>,
    /// A master key proper is configured (not only admin tokens): as in LiteLLM, every inference
    /// request then needs a key.
    master: bool,
}

impl std::fmt::Debug for MasterKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "MasterKeys({} configured)", self.digests.len())
    }
}

fn digest(v: &str) -> [u8; 32] {
    Sha256::digest(v.as_bytes()).into()
}

impl MasterKeys {
    /// The master key (if any) and the admin tokens, which open the same routes.
    pub fn new<'a>(master: Option<&'a str>, admin_tokens: impl IntoIterator<Item = &'a str>) -> MasterKeys {
        let master = master.filter(|m| !m.is_empty());
        MasterKeys {
            digests: master
                .into_iter()
                .chain(admin_tokens)
                .filter(|v| !v.is_empty())
                .map(digest)
                .collect(),
            master: master.is_some(),
        }
    }

    /// Whether a master key proper is configured: inference then always needs a credential.
    pub fn requires_key_on_inference(&self) -> bool {
        self.master
    }

    pub fn is_configured(&self) -> bool {
        !self.digests.is_empty()
    }

    /// Whether `value` is one of the keys; every stored digest is compared in full.
    pub fn matches(&self, value: &str) -> bool {
        let d = digest(value);
        let mut found = 0u8;
        for k in &self.digests {
            let diff = k.iter().zip(d.iter()).fold(0u8, |acc, (a, b)| acc | (a ^ b));
            found |= u8::from(diff == 0);
        }
        found == 1
    }
}

/// The credential a LiteLLM client sends: `x-litellm-api-key`, else the `Authorization: Bearer` value.
pub fn presented<'a>(get: impl Fn(&str) -> Option<&'a str>) -> Option<&'a str> {
    if let Some(v) = get("x-litellm-api-key").map(str::trim).filter(|v| !v.is_empty()) {
        return Some(v);
    }
    get("authorization")
        .and_then(|a| {
            let (scheme, rest) = a.trim().split_once(' ')?;
            scheme.eq_ignore_ascii_case("bearer").then(|| rest.trim())
        })
        .filter(|v| !v.is_empty())
}

/// What an inference request presents.
#[derive(Debug, PartialEq, Eq)]
pub enum InferenceCredential<'a> {
    /// The master key (or an admin token): served without a virtual key's limits.
    Master,
    /// A virtual key value to look up (`sk-bf-...`, or a LiteLLM `sk-...` key).
    Key(&'a str),
    /// Nothing that is a gateway credential (e.g. a provider key meant for pass-through, or nothing).
    None,
}

/// Classifies an inference request's credentials: the master key first, then Switchyard's own
/// virtual key headers, then a LiteLLM key (`sk-` in `x-litellm-api-key` or `Authorization`).
pub fn inference_credential<'a>(
    masters: &MasterKeys,
    get: impl Fn(&str) -> Option<&'a str> + Copy,
) -> InferenceCredential<'a> {
    let litellm = presented(get);
    if masters.is_configured() && litellm.is_some_and(|v| masters.matches(v)) {
        return InferenceCredential::Master;
    }
    if let Some(v) = vk_from_headers(get) {
        return InferenceCredential::Key(v);
    }
    match litellm {
        Some(v) if v.starts_with("sk-") => InferenceCredential::Key(v),
        _ => InferenceCredential::None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers<'a>(pairs: &'a [(&'a str, &'a str)]) -> impl Fn(&str) -> Option<&'a str> + Copy + 'a {
        move |name: &str| pairs.iter().find(|(n, _)| *n == name).map(|(_, v)| *v)
    }

    #[test]
    fn master_keys_match_exactly() {
        let m = MasterKeys::new(Some("sk-master-1234"), [""]);
        assert!(m.is_configured());
        assert!(m.matches("sk-master-1234"));
        assert!(!m.matches("sk-master-123"));
        assert!(!m.matches(""));
        assert!(!format!("{m:?}").contains("master"));
        assert!(m.requires_key_on_inference());
        assert!(!MasterKeys::new(Some(""), []).is_configured());
        let tokens = MasterKeys::new(None, ["sy-admin-token"]);
        assert!(tokens.matches("sy-admin-token") && !tokens.requires_key_on_inference());
    }

    #[test]
    fn credentials_are_classified() {
        let m = MasterKeys::new(Some("sk-master-1234"), []);
        let c = |pairs: &[(&str, &str)]| format!("{:?}", inference_credential(&m, headers(pairs)));
        assert_eq!(c(&[("authorization", "Bearer sk-master-1234")]), "Master");
        assert_eq!(c(&[("x-litellm-api-key", "sk-master-1234")]), "Master");
        assert_eq!(c(&[("authorization", "Bearer sk-abc")]), "Key(\"sk-abc\")");
        assert_eq!(c(&[("x-litellm-api-key", "sk-abc")]), "Key(\"sk-abc\")");
        assert_eq!(c(&[("x-bf-vk", "sk-bf-x")]), "Key(\"sk-bf-x\")");
        assert_eq!(c(&[("authorization", "Bearer ollama-token")]), "None");
        assert_eq!(c(&[]), "None");
        // Without a master key configured, nothing is the master key.
        let none = MasterKeys::default();
        assert_eq!(
            inference_credential(&none, headers(&[("authorization", "Bearer sk-x")])),
            InferenceCredential::Key("sk-x")
        );
    }
}
