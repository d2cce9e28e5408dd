//! Governance entities as stored (virtual keys, teams, customers, their budgets and rate limits), the
//! API inputs that create and change them, and all their validation.
//!
//! Inputs reject unknown fields (Bifrost silently ignored its removed `budget` field, and budgets went
//! unenforced); every rejection names the field.

use serde::{Deserialize, Serialize};

use super::window::{format_rfc3339, parse_rfc3339, ResetDuration};
use crate::ValidationError;

/// The prefix of every virtual key value.
pub const VK_PREFIX: &str = "sk-bf-";

/// A spending limit in USD per window.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Budget {
    pub max_limit: f64,
    pub reset_duration: ResetDuration,
    #[serde(default)]
    pub calendar_aligned: bool,
}

/// Requests and/or tokens per window. Rate-limit windows are fixed and aligned to UTC boundaries
/// (a `1m` window is a calendar minute), so every gateway sharing the counters agrees on them.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RateLimit {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub request_max_limit: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub request_reset_duration: Option<ResetDuration>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub token_max_limit: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub token_reset_duration: Option<ResetDuration>,
}

/// One provider a virtual key may use, and how.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProviderRule {
    pub provider: String,
    #[serde(default = "one")]
    pub weight: f64,
    /// `["*"]` = every model, `[]` = none. Entries may be `model` or `provider/model`.
    #[serde(default = "star")]
    pub allowed_models: Vec<String>,
    /// Beats `allowed_models`.
    #[serde(default)]
    pub blacklisted_models: Vec<String>,
    /// Provider key ids this VK may use: `["*"]` = all, `[]` = none.
    #[serde(default = "star")]
    pub key_ids: Vec<String>,
    #[serde(default)]
    pub budgets: Vec<Budget>,
    #[serde(default)]
    pub rate_limit: Option<RateLimit>,
}

fn one() -> f64 {
    1.0
}

fn star() -> Vec<String> {
    vec!["*".into()]
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct VirtualKey {
    pub id: String,
    pub name: String,
    #[serde(default)]
    pub description: String,
    /// SHA-256 of the value, hex; the value itself is never stored.
    pub value_hash: String,
    /// `sk-bf-` and the first characters, to recognise a key in lists.
    pub value_hint: String,
    pub team_id: Option<String>,
    pub customer_id: Option<String>,
    pub provider_configs: Vec<ProviderRule>,
    /// With `provider_configs`, also admit providers not listed there.
    #[serde(default)]
    pub allow_all_providers: bool,
    pub budgets: Vec<Budget>,
    pub rate_limit: Option<RateLimit>,
    /// Maximum requests in flight at once.
    pub max_concurrent_requests: Option<u32>,
    pub is_active: bool,
    pub expires_at_ms: Option<i64>,
    pub created_at_ms: i64,
    /// Which MCP clients' tools the key sees and may call (`crate::mcp::may_call`).
    #[serde(default)]
    pub mcp_configs: Vec<crate::mcp::McpKeyConfig>,
}

/// A team (optionally under a customer) or a customer: a named level with budgets and a rate limit.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Group {
    pub id: String,
    pub name: String,
    /// Teams only: the customer the team belongs to.
    #[serde(default)]
    pub customer_id: Option<String>,
    pub budgets: Vec<Budget>,
    pub rate_limit: Option<RateLimit>,
    pub created_at_ms: i64,
}

/// Body of `POST`/`PUT /api/governance/virtual-keys[/{id}]`. On `PUT`, omitted fields keep their values
/// and given lists replace the old ones. Its `Debug` never shows `value`.
#[derive(Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct VirtualKeyInput {
    pub id: Option<String>,
    pub name: Option<String>,
    pub description: Option<String>,
    /// An operator-supplied value (`sk-bf-...`), e.g. when migrating keys or sharing one key across
    /// gateways; otherwise one is generated.
    pub value: Option<String>,
    #[serde(default, deserialize_with = "double_option")]
    pub team_id: Option<Option<String>>,
    #[serde(default, deserialize_with = "double_option")]
    pub customer_id: Option<Option<String>>,
    pub provider_configs: Option<Vec<ProviderRule>>,
    pub allow_all_providers: Option<bool>,
    pub budgets: Option<Vec<Budget>>,
    #[serde(default, deserialize_with = "double_option")]
    pub rate_limit: Option<Option<RateLimit>>,
    #[serde(default, deserialize_with = "double_option")]
    pub max_concurrent_requests: Option<Option<u32>>,
    pub is_active: Option<bool>,
    /// RFC 3339; `null` removes the expiry.
    #[serde(default, deserialize_with = "double_option")]
    pub expires_at: Option<Option<String>>,
    /// `PUT` only: start every budget of this key from zero.
    pub reset_budget_usage: Option<bool>,
    /// Create only, RFC 3339: when the key was created elsewhere (migrated keys, or the same key set up
    /// in several gateways), so rolling budget windows start at the same moment everywhere.
    pub created_at: Option<String>,
    /// The MCP clients and tools the key may use; a given list replaces the old one.
    pub mcp_configs: Option<Vec<crate::mcp::McpKeyConfig>>,
}

impl std::fmt::Debug for VirtualKeyInput {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("VirtualKeyInput")
            .field("id", &self.id)
            .field("name", &self.name)
            .field("value", &self.value.as_ref().map(|_| "<redacted>"))
            .field("team_id", &self.team_id)
            .field("customer_id", &self.customer_id)
            .finish_non_exhaustive()
    }
}

/// Body of the team and customer endpoints.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GroupInput {
    pub id: Option<String>,
    pub name: Option<String>,
    #[serde(default, deserialize_with = "double_option")]
    pub customer_id: Option<Option<String>>,
    pub budgets: Option<Vec<Budget>>,
    #[serde(default, deserialize_with = "double_option")]
    pub rate_limit: Option<Option<RateLimit>>,
    /// Create only, RFC 3339: see [`VirtualKeyInput::created_at`].
    pub created_at: Option<String>,
}

/// Distinguishes an absent field (`None`) from an explicit `null` (`Some(None)`).
fn double_option<'de, T: Deserialize<'de>, D: serde::Deserializer<'de>>(
    d: D,
) -> Result<Option<Option<T>>, D::Error> {
    Option::<T>::deserialize(d).map(Some)
}

fn validate_id(field: &str, id: &str) -> Result<(), ValidationError> {
    let ok = !id.is_empty()
        && id.len() <= 128
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'));
    if ok {
        Ok(())
    } else {
        Err(ValidationError::new(
            field,
            "must be 1-128 characters of letters, digits, '-', '_' or '.'",
        ))
    }
}

fn validate_name(name: &str) -> Result<(), ValidationError> {
    if name.trim().is_empty() || name.len() > 200 {
        return Err(ValidationError::new("name", "must be 1-200 characters"));
    }
    Ok(())
}

pub fn validate_budgets(prefix: &str, budgets: &[Budget]) -> Result<(), ValidationError> {
    for (i, b) in budgets.iter().enumerate() {
        if !b.max_limit.is_finite() || b.max_limit < 0.0 {
            return Err(ValidationError::new(
                format!("{prefix}budgets[{i}].max_limit"),
                "must be an amount of 0 or more (in the operator's currency)",
            ));
        }
        if budgets[..i].iter().any(|o| o.reset_duration == b.reset_duration) {
            return Err(ValidationError::new(
                format!("{prefix}budgets[{i}].reset_duration"),
                format!(
                    "two budgets with reset_duration '{}'; merge them",
                    b.reset_duration
                ),
            ));
        }
    }
    Ok(())
}

pub fn validate_rate_limit(prefix: &str, r: &RateLimit) -> Result<(), ValidationError> {
    let pair = |limit: Option<u64>, dur: Option<ResetDuration>, what: &str| match (limit, dur) {
        (Some(_), None) => Err(ValidationError::new(
            format!("{prefix}rate_limit.{what}_reset_duration"),
            format!("{what}_max_limit needs a {what}_reset_duration such as '1m'"),
        )),
        (None, Some(_)) => Err(ValidationError::new(
            format!("{prefix}rate_limit.{what}_max_limit"),
            format!("{what}_reset_duration is set but {what}_max_limit is missing"),
        )),
        _ => Ok(()),
    };
    pair(r.request_max_limit, r.request_reset_duration, "request")?;
    pair(r.token_max_limit, r.token_reset_duration, "token")
}

fn validate_rules(rules: &[ProviderRule]) -> Result<(), ValidationError> {
    for (i, r) in rules.iter().enumerate() {
        let prefix = format!("provider_configs[{i}].");
        if r.provider.trim().is_empty() {
            return Err(ValidationError::new(format!("{prefix}provider"), "is required"));
        }
        if rules[..i].iter().any(|o| o.provider == r.provider) {
            return Err(ValidationError::new(
                format!("{prefix}provider"),
                format!("provider '{}' is listed twice", r.provider),
            ));
        }
        if !r.weight.is_finite() || r.weight < 0.0 {
            return Err(ValidationError::new(
                format!("{prefix}weight"),
                "must be a number of 0 or more",
            ));
        }
        validate_budgets(&prefix, &r.budgets)?;
        if let Some(rl) = &r.rate_limit {
            validate_rate_limit(&prefix, rl)?;
        }
    }
    Ok(())
}

fn parse_expiry(raw: &str) -> Result<i64, ValidationError> {
    parse_rfc3339(raw).ok_or_else(|| {
        ValidationError::new(
            "expires_at",
            format!("'{raw}' is not an RFC 3339 time such as 2026-12-31T23:59:59Z"),
        )
    })
}

fn created_at(raw: Option<&str>, now_ms: i64) -> Result<i64, ValidationError> {
    match raw {
        None => Ok(now_ms),
        Some(r) => parse_rfc3339(r).ok_or_else(|| {
            ValidationError::new(
                "created_at",
                format!("'{r}' is not an RFC 3339 time such as 2026-01-01T00:00:00Z"),
            )
        }),
    }
}

/// Whether `value` has the shape of a virtual key.
pub fn validate_vk_value(value: &str) -> Result<(), ValidationError> {
    let rest = value.strip_prefix(VK_PREFIX).unwrap_or("");
    if rest.len() < 16 || rest.len() > 200 || !rest.bytes().all(|b| b.is_ascii_graphic()) {
        return Err(ValidationError::new(
            "value",
            format!("a virtual key value is '{VK_PREFIX}' followed by 16-200 printable characters"),
        ));
    }
    Ok(())
}

impl VirtualKeyInput {
    /// A new key from a create body. `id`, `value_hash`, `value_hint` and `now_ms` come from the caller
    /// (which generated or received the value).
    pub fn into_new(
        self,
        id: String,
        value_hash: String,
        value_hint: String,
        now_ms: i64,
    ) -> Result<VirtualKey, ValidationError> {
        if self.reset_budget_usage.is_some() {
            return Err(ValidationError::new("reset_budget_usage", "only applies to PUT"));
        }
        let name = self
            .name
            .clone()
            .ok_or_else(|| ValidationError::new("name", "is required"))?;
        let now_ms = created_at(self.created_at.as_deref(), now_ms)?;
        let mut vk = VirtualKey {
            id,
            name,
            description: String::new(),
            value_hash,
            value_hint,
            team_id: None,
            customer_id: None,
            provider_configs: Vec::new(),
            allow_all_providers: false,
            budgets: Vec::new(),
            rate_limit: None,
            max_concurrent_requests: None,
            is_active: true,
            expires_at_ms: None,
            created_at_ms: now_ms,
            mcp_configs: Vec::new(),
        };
        self.apply_to(&mut vk)?;
        Ok(vk)
    }

    /// This body applied to a stored key (`PUT`). `id` and `value` cannot change.
    pub fn apply_update(self, current: &VirtualKey) -> Result<VirtualKey, ValidationError> {
        if self.id.as_ref().is_some_and(|id| id != &current.id) {
            return Err(ValidationError::new("id", "cannot be changed"));
        }
        if self.value.is_some() {
            return Err(ValidationError::new(
                "value",
                "cannot be changed; create a new key instead",
            ));
        }
        let mut vk = current.clone();
        self.apply_to(&mut vk)?;
        Ok(vk)
    }

    fn apply_to(self, vk: &mut VirtualKey) -> Result<(), ValidationError> {
        if let Some(id) = &self.id {
            validate_id("id", id)?;
        }
        if let Some(v) = &self.value {
            validate_vk_value(v)?;
        }
        if let Some(n) = self.name {
            validate_name(&n)?;
            vk.name = n;
        }
        if let Some(d) = self.description {
            vk.description = d;
        }
        if let Some(t) = self.team_id {
            vk.team_id = t.filter(|s| !s.is_empty());
        }
        if let Some(c) = self.customer_id {
            vk.customer_id = c.filter(|s| !s.is_empty());
        }
        if vk.team_id.is_some() && vk.customer_id.is_some() {
            return Err(ValidationError::new(
                "team_id",
                "a virtual key belongs to a team or to a customer, not both",
            ));
        }
        if let Some(p) = self.provider_configs {
            validate_rules(&p)?;
            vk.provider_configs = p;
        }
        if let Some(a) = self.allow_all_providers {
            vk.allow_all_providers = a;
        }
        if let Some(m) = self.mcp_configs {
            crate::mcp::validate_key_configs(&m)?;
            vk.mcp_configs = m;
        }
        if let Some(b) = self.budgets {
            validate_budgets("", &b)?;
            vk.budgets = b;
        }
        if let Some(r) = self.rate_limit {
            if let Some(r) = &r {
                validate_rate_limit("", r)?;
            }
            vk.rate_limit = r;
        }
        if let Some(m) = self.max_concurrent_requests {
            if m == Some(0) {
                return Err(ValidationError::new(
                    "max_concurrent_requests",
                    "must be 1 or more (or null for no limit)",
                ));
            }
            vk.max_concurrent_requests = m;
        }
        if let Some(a) = self.is_active {
            vk.is_active = a;
        }
        if let Some(e) = self.expires_at {
            vk.expires_at_ms = e.as_deref().map(parse_expiry).transpose()?;
        }
        Ok(())
    }
}

impl GroupInput {
    pub fn into_new(self, id: String, now_ms: i64, is_team: bool) -> Result<Group, ValidationError> {
        let name = self
            .name
            .clone()
            .ok_or_else(|| ValidationError::new("name", "is required"))?;
        let now_ms = created_at(self.created_at.as_deref(), now_ms)?;
        let mut g = Group {
            id,
            name,
            customer_id: None,
            budgets: Vec::new(),
            rate_limit: None,
            created_at_ms: now_ms,
        };
        self.apply_to(&mut g, is_team)?;
        Ok(g)
    }

    pub fn apply_update(self, current: &Group, is_team: bool) -> Result<Group, ValidationError> {
        if self.id.as_ref().is_some_and(|id| id != &current.id) {
            return Err(ValidationError::new("id", "cannot be changed"));
        }
        if self.created_at.is_some() {
            return Err(ValidationError::new("created_at", "can only be set on creation"));
        }
        let mut g = current.clone();
        self.apply_to(&mut g, is_team)?;
        Ok(g)
    }

    fn apply_to(self, g: &mut Group, is_team: bool) -> Result<(), ValidationError> {
        if let Some(id) = &self.id {
            validate_id("id", id)?;
        }
        if let Some(n) = self.name {
            validate_name(&n)?;
            g.name = n;
        }
        if let Some(c) = self.customer_id {
            if !is_team {
                return Err(ValidationError::new(
                    "customer_id",
                    "only teams belong to a customer",
                ));
            }
            g.customer_id = c.filter(|s| !s.is_empty());
        }
        if let Some(b) = self.budgets {
            validate_budgets("", &b)?;
            g.budgets = b;
        }
        if let Some(r) = self.rate_limit {
            if let Some(r) = &r {
                validate_rate_limit("", r)?;
            }
            g.rate_limit = r;
        }
        Ok(())
    }
}

impl VirtualKey {
    pub fn expires_at(&self) -> Option<String> {
        self.expires_at_ms.map(format_rfc3339)
    }

    pub fn is_expired(&self, now_ms: i64) -> bool {
        self.expires_at_ms.is_some_and(|e| now_ms >= e)
    }
}

/// Why a VK may not use a provider/model.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Denial {
    ProviderNotAllowed,
    ModelNotAllowed,
    ModelBlacklisted,
}

fn lists(list: &[String], provider: &str, model: &str) -> bool {
    list.iter().any(|m| {
        m == "*"
            || m == model
            || m.split_once('/')
                .is_some_and(|(p, rest)| p == provider && rest == model)
    })
}

impl ProviderRule {
    pub fn allows_key(&self, key_id: &str) -> bool {
        self.key_ids.iter().any(|k| k == "*" || k == key_id)
    }
}

impl VirtualKey {
    /// Whether this key may send `model` to `provider`; on success the provider's rule, if it has one.
    pub fn rule_for(&self, provider: &str, model: &str) -> Result<Option<&ProviderRule>, Denial> {
        if self.provider_configs.is_empty() {
            return Ok(None);
        }
        let Some(rule) = self.provider_configs.iter().find(|r| r.provider == provider) else {
            return if self.allow_all_providers {
                Ok(None)
            } else {
                Err(Denial::ProviderNotAllowed)
            };
        };
        if lists(&rule.blacklisted_models, provider, model) {
            return Err(Denial::ModelBlacklisted);
        }
        if !lists(&rule.allowed_models, provider, model) {
            return Err(Denial::ModelNotAllowed);
        }
        Ok(Some(rule))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vk(body: serde_json::Value) -> Result<VirtualKey, ValidationError> {
        let input: VirtualKeyInput =
            serde_json::from_value(body).map_err(|e| ValidationError::new("body", e.to_string()))?;
        input.into_new("vk1".into(), "h".into(), "sk-bf-abcd".into(), 0)
    }

    #[test]
    fn unknown_and_removed_fields_are_rejected() {
        let err = vk(serde_json::json!({"name": "a", "budget": {"max_limit": 1}})).unwrap_err();
        assert!(err.message.contains("unknown field `budget`"), "{err:?}");
    }

    #[test]
    fn validation_names_the_field() {
        let e = vk(serde_json::json!({"name": "a", "budgets": [{"max_limit": -1, "reset_duration": "1h"}]}))
            .unwrap_err();
        assert_eq!(e.field, "budgets[0].max_limit");
        let e = vk(serde_json::json!({"name": "a", "rate_limit": {"request_max_limit": 5}})).unwrap_err();
        assert_eq!(e.field, "rate_limit.request_reset_duration");
        let e = vk(serde_json::json!({"name": "a", "team_id": "t", "customer_id": "c"})).unwrap_err();
        assert_eq!(e.field, "team_id");
        let e = vk(serde_json::json!({"name": "a", "expires_at": "soon"})).unwrap_err();
        assert_eq!(e.field, "expires_at");
        let e =
            vk(serde_json::json!({"name": "a", "provider_configs": [{"provider": "p"}, {"provider": "p"}]}))
                .unwrap_err();
        assert_eq!(e.field, "provider_configs[1].provider");
        let e = vk(serde_json::json!({"name": "a", "value": "sk-bf-short"})).unwrap_err();
        assert_eq!(e.field, "value");
    }

    #[test]
    fn provider_rules_allow_and_deny() {
        let k = vk(serde_json::json!({"name": "a", "provider_configs": [
            {"provider": "openai", "allowed_models": ["gpt-4o-mini", "openai/gpt-4o"], "blacklisted_models": ["gpt-4o"]},
            {"provider": "mittwald", "blacklisted_models": ["big"]}
        ]}))
        .unwrap();
        assert!(k.rule_for("openai", "gpt-4o-mini").is_ok());
        assert_eq!(k.rule_for("openai", "gpt-4o"), Err(Denial::ModelBlacklisted));
        assert_eq!(k.rule_for("openai", "o1"), Err(Denial::ModelNotAllowed));
        assert!(k.rule_for("mittwald", "anything").is_ok());
        assert_eq!(k.rule_for("mittwald", "big"), Err(Denial::ModelBlacklisted));
        assert_eq!(k.rule_for("anthropic", "claude"), Err(Denial::ProviderNotAllowed));
        let open = vk(serde_json::json!({"name": "b"})).unwrap();
        assert_eq!(open.rule_for("anthropic", "claude"), Ok(None));
        let none = vk(
            serde_json::json!({"name": "c", "provider_configs": [{"provider": "p", "allowed_models": []}]}),
        )
        .unwrap();
        assert_eq!(none.rule_for("p", "m"), Err(Denial::ModelNotAllowed));
    }

    #[test]
    fn debug_never_shows_the_value() {
        let input: VirtualKeyInput =
            serde_json::from_value(serde_json::json!({"name": "a", "value": "sk-bf-very-secret-value-123"}))
                .unwrap();
        let shown = format!("{input:?}");
        assert!(
            !shown.contains("very-secret") && shown.contains("<redacted>"),
            "{shown}"
        );
    }

    #[test]
    fn updates_keep_omitted_fields() {
        let k = vk(serde_json::json!({"name": "a", "budgets": [{"max_limit": 5, "reset_duration": "1d"}], "max_concurrent_requests": 3})).unwrap();
        let input: VirtualKeyInput = serde_json::from_value(serde_json::json!({"is_active": false})).unwrap();
        let u = input.apply_update(&k).unwrap();
        assert!(!u.is_active);
        assert_eq!(u.budgets, k.budgets);
        assert_eq!(u.max_concurrent_requests, Some(3));
        let input: VirtualKeyInput =
            serde_json::from_value(serde_json::json!({"max_concurrent_requests": null})).unwrap();
        assert_eq!(input.apply_update(&k).unwrap().max_concurrent_requests, None);
    }
}
