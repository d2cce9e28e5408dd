//! `/key/generate` and `/key/update` bodies mapped onto a [`VirtualKey`], and the LiteLLM view of a
//! key (`/key/info`, `/key/list?return_full_object=true`).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

use super::duration::LlmDuration;
use super::limits::{apply_limits, double_option, view_limits, LimitFields};
use crate::governance::window::format_rfc3339;
use crate::governance::{ProviderRule, VirtualKey};
use crate::ValidationError;

/// The body of `/key/generate` and `/key/update` (on update, `key` names the key to change).
#[derive(Clone, Default, Deserialize)]
pub struct KeyBody {
    pub key: Option<String>,
    #[serde(default, deserialize_with = "double_option")]
    pub key_alias: Option<Option<String>>,
    pub models: Option<Vec<String>>,
    #[serde(default, deserialize_with = "double_option")]
    pub duration: Option<Option<String>>,
    pub metadata: Option<Value>,
    #[serde(default, deserialize_with = "double_option")]
    pub max_parallel_requests: Option<Option<u32>>,
    #[serde(default, deserialize_with = "double_option")]
    pub team_id: Option<Option<String>>,
    #[serde(default, deserialize_with = "double_option")]
    pub user_id: Option<Option<String>>,
    pub blocked: Option<bool>,
    /// `/key/regenerate` only: the new value (else one is generated).
    pub new_key: Option<String>,
    #[serde(default, deserialize_with = "double_option")]
    pub max_budget: Option<Option<f64>>,
    #[serde(default, deserialize_with = "double_option")]
    pub budget_duration: Option<Option<String>>,
    #[serde(default, deserialize_with = "double_option")]
    pub tpm_limit: Option<Option<u64>>,
    #[serde(default, deserialize_with = "double_option")]
    pub rpm_limit: Option<Option<u64>>,
    /// Every other field: refused by name (a silently dropped limit is an unenforced limit).
    #[serde(flatten)]
    pub unknown: BTreeMap<String, Value>,
}

impl std::fmt::Debug for KeyBody {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KeyBody")
            .field("key", &self.key.as_ref().map(|_| "<redacted>"))
            .field("key_alias", &self.key_alias)
            .finish_non_exhaustive()
    }
}

/// What LiteLLM keeps about a key that a [`VirtualKey`] has no place for.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct KeyMeta {
    #[serde(default)]
    pub metadata: Value,
    #[serde(default)]
    pub user_id: Option<String>,
    /// Whether the key has a LiteLLM `key_alias` (else its name is a generated placeholder).
    #[serde(default = "yes")]
    pub has_alias: bool,
}

fn yes() -> bool {
    true
}

impl KeyMeta {
    /// The meta of a key made through the native API: its name is its alias.
    pub fn native() -> KeyMeta {
        KeyMeta {
            metadata: Value::Null,
            user_id: None,
            has_alias: true,
        }
    }
}

/// `models` entries meaning "every model".
fn is_all_models(models: &[String]) -> bool {
    models.is_empty()
        || models
            .iter()
            .any(|m| m == "*" || m == "all-proxy-models" || m == "all-team-models")
}

/// Rejects fields Switchyard does not implement, naming the first.
/// Largest `metadata` object kept with a key or team, serialised.
pub const MAX_METADATA_BYTES: usize = 16 * 1024;

/// `metadata` must be a JSON object of at most [`MAX_METADATA_BYTES`].
pub fn check_metadata(m: &Value) -> Result<(), ValidationError> {
    if !m.is_object() {
        return Err(ValidationError::new("metadata", "must be a JSON object"));
    }
    if m.to_string().len() > MAX_METADATA_BYTES {
        return Err(ValidationError::new(
            "metadata",
            format!("must be at most {MAX_METADATA_BYTES} bytes as JSON"),
        ));
    }
    Ok(())
}

pub fn refuse_unknown(unknown: &BTreeMap<String, Value>) -> Result<(), ValidationError> {
    match unknown.keys().next() {
        Some(k) => Err(ValidationError::new(
            k.clone(),
            format!("'{k}' is not supported by this gateway's LiteLLM API; see the README's \"Coming from LiteLLM\""),
        )),
        None => Ok(()),
    }
}

/// Whether a custom `key` value is acceptable: `sk-` and 8-200 printable characters after it.
pub fn validate_custom_key(value: &str) -> Result<(), ValidationError> {
    let rest = value.strip_prefix("sk-").unwrap_or("");
    if rest.len() < 8 || rest.len() > 200 || !rest.bytes().all(|b| b.is_ascii_graphic()) {
        return Err(ValidationError::new(
            "key",
            "a custom key is 'sk-' followed by 8-200 printable characters",
        ));
    }
    Ok(())
}

impl KeyBody {
    fn limits(&self) -> LimitFields {
        limit_fields!(self)
    }

    /// Applies the body to `vk` (a fresh key on generate, the stored one on update) and `meta`.
    /// `providers` are the configured provider names (a `models` list becomes one rule per provider);
    /// `now_ms` anchors `duration`.
    pub fn apply(
        &self,
        vk: &mut VirtualKey,
        meta: &mut KeyMeta,
        providers: &[String],
        now_ms: i64,
    ) -> Result<(), ValidationError> {
        refuse_unknown(&self.unknown)?;
        if self.new_key.is_some() {
            return Err(ValidationError::new("new_key", "only applies to /key/regenerate"));
        }
        if let Some(alias) = &self.key_alias {
            match alias.as_deref().map(str::trim).filter(|a| !a.is_empty()) {
                Some(a) if a.len() <= 200 => {
                    vk.name = a.to_owned();
                    meta.has_alias = true;
                }
                Some(_) => {
                    return Err(ValidationError::new(
                        "key_alias",
                        "must be at most 200 characters",
                    ))
                }
                None => meta.has_alias = false,
            }
        }
        if let Some(models) = &self.models {
            vk.provider_configs = if is_all_models(models) {
                Vec::new()
            } else if providers.is_empty() {
                // No rule would mean "every model": refuse rather than widen the key.
                return Err(ValidationError::new(
                    "models",
                    "no provider is configured yet, so the key cannot be limited to these models",
                ));
            } else {
                providers.iter().map(|p| rule(p, models)).collect()
            };
            vk.allow_all_providers = false;
        }
        if let Some(d) = &self.duration {
            vk.expires_at_ms = match d {
                Some(raw) => Some(
                    LlmDuration::parse(raw)
                        .map_err(|m| ValidationError::new("duration", m))?
                        .after(now_ms),
                ),
                None => None,
            };
        }
        if let Some(m) = &self.metadata {
            check_metadata(m)?;
            meta.metadata = m.clone();
        }
        if let Some(p) = self.max_parallel_requests {
            if p == Some(0) {
                return Err(ValidationError::new("max_parallel_requests", "must be 1 or more"));
            }
            vk.max_concurrent_requests = p;
        }
        if let Some(t) = &self.team_id {
            vk.team_id = t.clone().filter(|t| !t.is_empty());
        }
        if let Some(u) = &self.user_id {
            if u.as_ref()
                .is_some_and(|u| u.len() > 200 || u.chars().any(char::is_control))
            {
                return Err(ValidationError::new(
                    "user_id",
                    "must be at most 200 characters, without control characters",
                ));
            }
            meta.user_id = u.clone();
        }
        if let Some(b) = self.blocked {
            vk.is_active = !b;
        }
        apply_limits(&self.limits(), &mut vk.budgets, &mut vk.rate_limit)
    }
}

fn rule(provider: &str, models: &[String]) -> ProviderRule {
    ProviderRule {
        provider: provider.to_owned(),
        // Weight 0 on every rule: the rules restrict models and never reorder the routing.
        weight: 0.0,
        allowed_models: models.to_vec(),
        blacklisted_models: Vec::new(),
        key_ids: vec!["*".into()],
        budgets: Vec::new(),
        rate_limit: None,
    }
}

/// The `models` LiteLLM shows: the allowed models of the key's rules (`[]`: every model).
pub fn models_of(vk: &VirtualKey) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for r in &vk.provider_configs {
        for m in &r.allowed_models {
            if !out.contains(m) {
                out.push(m.clone());
            }
        }
    }
    out
}

/// The LiteLLM record of a key: what `/key/info` puts under `info` and `/key/list` returns in full.
/// `spend` is read by the caller (USD); never contains the key's value.
pub fn key_record(vk: &VirtualKey, meta: &KeyMeta, spend: f64) -> Value {
    let l = view_limits(&vk.budgets, vk.rate_limit.as_ref());
    json!({
        "token": vk.value_hash,
        "key_name": vk.value_hint,
        "key_alias": meta.has_alias.then_some(&vk.name),
        "spend": spend,
        "max_budget": l.max_budget,
        "budget_duration": l.budget_duration,
        "models": models_of(vk),
        "metadata": if meta.metadata.is_null() { json!({}) } else { meta.metadata.clone() },
        "tpm_limit": l.tpm_limit,
        "rpm_limit": l.rpm_limit,
        "max_parallel_requests": vk.max_concurrent_requests,
        "team_id": vk.team_id,
        "user_id": meta.user_id,
        "blocked": !vk.is_active,
        "expires": vk.expires_at_ms.map(format_rfc3339),
        "created_at": format_rfc3339(vk.created_at_ms),
        "id": vk.id,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn blank() -> VirtualKey {
        VirtualKey {
            id: "id1".into(),
            name: "key-1".into(),
            description: String::new(),
            value_hash: "h".into(),
            value_hint: "sk-bf-abcd…".into(),
            team_id: None,
            customer_id: None,
            provider_configs: Vec::new(),
            allow_all_providers: false,
            budgets: Vec::new(),
            rate_limit: None,
            max_concurrent_requests: None,
            is_active: true,
            expires_at_ms: None,
            created_at_ms: 0,
            mcp_configs: Vec::new(),
        }
    }

    fn body(v: Value) -> KeyBody {
        serde_json::from_value(v).unwrap()
    }

    #[test]
    fn the_guides_generate_body_maps_onto_a_virtual_key() {
        let b = body(
            json!({"models": ["gpt-oss-120b"], "key_alias": "customer-a", "metadata": {"customer": "a"},
            "tpm_limit": 100000, "rpm_limit": 60, "max_budget": 25.0, "duration": "30d", "max_parallel_requests": 2}),
        );
        let (mut vk, mut meta) = (blank(), KeyMeta::default());
        b.apply(&mut vk, &mut meta, &["mittwald".into(), "openai".into()], 1000)
            .unwrap();
        assert_eq!(vk.name, "customer-a");
        assert_eq!(vk.provider_configs.len(), 2);
        assert_eq!(vk.expires_at_ms, Some(1000 + 30 * 86_400_000));
        let rec = key_record(&vk, &meta, 0.5);
        assert_eq!(rec["models"], json!(["gpt-oss-120b"]));
        assert_eq!(rec["rpm_limit"], 60);
        assert_eq!(rec["tpm_limit"], 100000);
        assert_eq!(rec["max_budget"], 25.0);
        assert_eq!(rec["max_parallel_requests"], 2);
        assert_eq!(rec["metadata"]["customer"], "a");
        assert_eq!(rec["blocked"], false);
        assert_eq!(rec["spend"], 0.5);
        // Blocking, and "every model" again.
        body(json!({"blocked": true, "models": []}))
            .apply(&mut vk, &mut meta, &[], 0)
            .unwrap();
        assert!(!vk.is_active && vk.provider_configs.is_empty());
    }

    #[test]
    fn unknown_and_bad_fields_are_named() {
        let (mut vk, mut meta) = (blank(), KeyMeta::default());
        let e = body(json!({"guardrails": ["x"]}))
            .apply(&mut vk, &mut meta, &[], 0)
            .unwrap_err();
        assert_eq!(e.field, "guardrails");
        let e = body(json!({"duration": "forever"}))
            .apply(&mut vk, &mut meta, &[], 0)
            .unwrap_err();
        assert_eq!(e.field, "duration");
        let e = body(json!({"models": ["m"]}))
            .apply(&mut vk, &mut meta, &[], 0)
            .unwrap_err();
        assert_eq!(e.field, "models");
        let e = body(json!({"metadata": [1]}))
            .apply(&mut vk, &mut meta, &[], 0)
            .unwrap_err();
        assert_eq!(e.field, "metadata");
        assert_eq!(validate_custom_key("sk-short").unwrap_err().field, "key");
        assert_eq!(validate_custom_key("pk-0123456789").unwrap_err().field, "key");
        assert!(validate_custom_key("sk-my-custom-key-0001").is_ok());
        let shown = format!("{:?}", body(json!({"key": "sk-very-secret-123"})));
        assert!(!shown.contains("very-secret"), "{shown}");
    }

    proptest::proptest! {
        #[test]
        fn limits_round_trip_and_nothing_panics(
            budget in proptest::option::of(-1.0f64..1e6),
            rpm in proptest::option::of(1u64..1_000_000),
            duration in "[0-9]{0,3}(s|m|h|d|w|mo|y|x)?",
        ) {
            let (mut vk, mut meta) = (blank(), KeyMeta::default());
            let b = body(json!({"max_budget": budget, "rpm_limit": rpm, "budget_duration": duration,
                "duration": duration}));
            if b.apply(&mut vk, &mut meta, &["p".into()], 0).is_ok() {
                let rec = key_record(&vk, &meta, 0.0);
                proptest::prop_assert_eq!(rec["max_budget"].as_f64(), budget);
                proptest::prop_assert_eq!(rec["rpm_limit"].as_u64(), rpm);
                proptest::prop_assert_eq!(rec["budget_duration"].as_str().is_some(), budget.is_some());
            }
        }
    }

    #[test]
    fn a_native_key_shows_its_name_as_alias() {
        let rec = key_record(
            &blank(),
            &KeyMeta {
                has_alias: true,
                ..KeyMeta::default()
            },
            0.0,
        );
        assert_eq!(rec["key_alias"], "key-1");
        assert_eq!(rec["token"], "h");
        let rec = key_record(
            &blank(),
            &KeyMeta {
                has_alias: false,
                ..KeyMeta::default()
            },
            0.0,
        );
        assert!(rec["key_alias"].is_null());
    }
}
