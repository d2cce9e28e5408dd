//! Validation of the inputs into the stored types, and of stored values read back.

use super::{
    CircuitBreakerConfig, ConcurrencyAndBufferSize, CustomProviderConfig, CustomProviderConfigInput,
    KeyConfig, KeyInput, NetworkConfig, ProviderConfig, ProviderInput, ValidationError, REQUEST_TYPES,
};
use crate::provider::{ProviderName, WireApi};
use crate::provider_keys::{validate_azure, validate_bedrock};
use crate::secret;
use crate::upstream_policy::{url_host, UpstreamPolicy};

impl ProviderInput {
    /// Validates a create body into a new provider.
    pub fn into_new_provider(self) -> Result<ProviderConfig, ValidationError> {
        let raw_name = match (&self.provider, &self.name) {
            (Some(p), _) => p.clone(),
            (None, Some(n)) => n.clone(),
            (None, None) => return Err(ValidationError::new("provider", "provider is required")),
        };
        let name = ProviderName::parse(&raw_name)?;
        let base = ProviderConfig {
            name,
            network_config: NetworkConfig::default(),
            concurrency_and_buffer_size: ConcurrencyAndBufferSize::default(),
            custom_provider_config: None,
            send_back_raw_response: false,
            store_raw_request_response: false,
            fallbacks: Vec::new(),
            circuit_breaker: CircuitBreakerConfig::default(),
            case_insensitive_model_ids: false,
            model_discovery: false,
        };
        self.apply_to(base)
    }

    /// Applies an update body to a stored provider. The name in the path is authoritative; a name in
    /// the body must match it.
    pub fn apply_update(self, current: &ProviderConfig) -> Result<ProviderConfig, ValidationError> {
        for (field, value) in [("provider", &self.provider), ("name", &self.name)] {
            if let Some(v) = value {
                if v != current.name.as_str() {
                    return Err(ValidationError::new(
                        field,
                        format!("body names provider '{v}' but the path names '{}'", current.name),
                    ));
                }
            }
        }
        self.apply_to(current.clone())
    }

    fn apply_to(self, mut p: ProviderConfig) -> Result<ProviderConfig, ValidationError> {
        if let Some(n) = self.network_config {
            let nc = &mut p.network_config;
            if let Some(url) = n.base_url {
                nc.base_url = Some(validate_base_url(&url)?);
            }
            if let Some(h) = n.extra_headers {
                for (k, v) in &h {
                    validate_header(k, v)?;
                }
                nc.extra_headers = h;
            }
            if let Some(t) = n.default_request_timeout_in_seconds {
                nc.default_request_timeout_in_seconds = t;
            }
            if let Some(t) = n.first_byte_timeout_in_seconds {
                nc.first_byte_timeout_in_seconds = t;
            }
            if let Some(t) = n.stream_idle_timeout_in_seconds {
                nc.stream_idle_timeout_in_seconds = t;
            }
            if let Some(r) = n.max_retries {
                nc.max_retries = r;
            }
            if let Some(b) = n.retry_backoff_initial {
                nc.retry_backoff_initial = b;
            }
            if let Some(b) = n.retry_backoff_max {
                nc.retry_backoff_max = b;
            }
        }
        if let Some(c) = self.concurrency_and_buffer_size {
            if let Some(v) = c.concurrency {
                p.concurrency_and_buffer_size.concurrency = v;
            }
            if let Some(v) = c.buffer_size {
                p.concurrency_and_buffer_size.buffer_size = v;
            }
        }
        match self.custom_provider_config {
            None => {}
            Some(None) => p.custom_provider_config = None,
            Some(Some(c)) => p.custom_provider_config = Some(validate_custom(c, p.custom_provider_config)?),
        }
        if let Some(v) = self.send_back_raw_response {
            p.send_back_raw_response = v;
        }
        if let Some(v) = self.store_raw_request_response {
            p.store_raw_request_response = v;
        }
        if let Some(v) = self.case_insensitive_model_ids {
            p.case_insensitive_model_ids = v;
        }
        if let Some(v) = self.model_discovery {
            p.model_discovery = v;
        }
        if let Some(f) = self.fallbacks {
            p.fallbacks = f;
        }
        if let Some(cb) = self.circuit_breaker {
            if let Some(v) = cb.failure_threshold {
                p.circuit_breaker.failure_threshold = v;
            }
            if let Some(v) = cb.cooldown_in_seconds {
                p.circuit_breaker.cooldown_in_seconds = v;
            }
        }
        validate_provider(&p)?;
        Ok(p)
    }
}

fn validate_custom(
    c: CustomProviderConfigInput,
    current: Option<CustomProviderConfig>,
) -> Result<CustomProviderConfig, ValidationError> {
    const FIELD: &str = "custom_provider_config.base_provider_type";
    let base_provider_type = match (c.base_provider_type, &current) {
        (Some(t), _) => WireApi::from_base_provider_type(&t).ok_or_else(|| {
            ValidationError::new(
                FIELD,
                format!(
                    "unknown base_provider_type '{t}'; use one of openai, anthropic, gemini, bedrock, cohere"
                ),
            )
        })?,
        (None, Some(cur)) => cur.base_provider_type,
        (None, None) => {
            return Err(ValidationError::new(
                FIELD,
                "base_provider_type is required (e.g. \"openai\")",
            ))
        }
    };
    let allowed_requests = match c.allowed_requests {
        Some(map) => {
            for k in map.keys() {
                if !REQUEST_TYPES.contains(&k.as_str()) {
                    return Err(ValidationError::new(
                        format!("custom_provider_config.allowed_requests.{k}"),
                        format!("unknown request type '{k}'"),
                    ));
                }
            }
            Some(map)
        }
        None => current.as_ref().and_then(|c| c.allowed_requests.clone()),
    };
    let is_key_less = c.is_key_less.or(current.map(|c| c.is_key_less)).unwrap_or(false);
    Ok(CustomProviderConfig {
        base_provider_type,
        allowed_requests,
        is_key_less,
    })
}

/// A Bedrock key with `bedrock_key_config` needs no `value` (SigV4); whether its credentials are
/// complete is then checked, with the field named, by `validate_bedrock`.
fn key_value_optional(provider: &ProviderConfig, input: &KeyInput) -> bool {
    provider.wire() == WireApi::Bedrock && matches!(&input.bedrock_key_config, Some(Some(_)))
}

/// Checks the whole provider after all fields are applied (some rules span fields).
pub fn validate_provider(p: &ProviderConfig) -> Result<(), ValidationError> {
    validate_kind(p)?;
    validate_network(p)?;
    validate_fallbacks(p)?;
    validate_capacity(p)
}

/// `value` must lie in `range`; `message` says so when it does not.
fn check_range<T: PartialOrd>(
    field: &str,
    value: T,
    range: std::ops::RangeInclusive<T>,
    message: &str,
) -> Result<(), ValidationError> {
    if range.contains(&value) {
        Ok(())
    } else {
        Err(ValidationError::new(field, message))
    }
}

const SECONDS_RANGE: &str = "must be between 1 and 86400 seconds";

/// Built-in providers take no `custom_provider_config`; every other name needs one.
fn validate_kind(p: &ProviderConfig) -> Result<(), ValidationError> {
    match (p.name.builtin(), &p.custom_provider_config) {
        (Some(b), Some(_)) => Err(ValidationError::new(
            "custom_provider_config",
            format!(
                "'{}' is a built-in provider and cannot take custom_provider_config; \
                 register the endpoint under another name (e.g. '{}-custom') to make it custom",
                b.name, b.name
            ),
        )),
        (None, None) => Err(ValidationError::new(
            "custom_provider_config",
            format!(
                "'{}' is not a built-in provider; a custom provider needs \
                 custom_provider_config.base_provider_type (e.g. \"openai\" for an OpenAI-compatible endpoint)",
                p.name
            ),
        )),
        _ => Ok(()),
    }
}

/// The endpoint, timeouts and retry settings of `network_config`.
fn validate_network(p: &ProviderConfig) -> Result<(), ValidationError> {
    // Azure and Bedrock endpoints come from each key (endpoint, region) unless one is set here.
    if p.effective_base_url().is_none() && !matches!(p.wire(), WireApi::Azure | WireApi::Bedrock) {
        return Err(ValidationError::new(
            "network_config.base_url",
            format!(
                "provider '{}' has no default endpoint; network_config.base_url is required",
                p.name
            ),
        ));
    }
    let nc = &p.network_config;
    check_range(
        "network_config.default_request_timeout_in_seconds",
        nc.default_request_timeout_in_seconds,
        1..=86_400,
        SECONDS_RANGE,
    )?;
    if let Some(t) = nc.first_byte_timeout_in_seconds {
        check_range(
            "network_config.first_byte_timeout_in_seconds",
            t,
            1..=86_400,
            SECONDS_RANGE,
        )?;
    }
    check_range(
        "network_config.stream_idle_timeout_in_seconds",
        nc.stream_idle_timeout_in_seconds,
        1..=86_400,
        SECONDS_RANGE,
    )?;
    check_range(
        "network_config.max_retries",
        nc.max_retries,
        0..=20,
        "must be between 0 and 20",
    )?;
    check_range(
        "network_config.retry_backoff_initial",
        nc.retry_backoff_initial,
        1..=600_000,
        "must be between 1 and 600000 milliseconds",
    )?;
    check_range(
        "network_config.retry_backoff_max",
        nc.retry_backoff_max,
        nc.retry_backoff_initial..=3_600_000,
        "must be at least retry_backoff_initial and at most 3600000 milliseconds",
    )
}

/// Each fallback names a provider (and maybe a model), never this provider with the same model.
fn validate_fallbacks(p: &ProviderConfig) -> Result<(), ValidationError> {
    for (i, f) in p.fallbacks.iter().enumerate() {
        let field = format!("fallbacks[{i}]");
        let provider = f.split_once('/').map_or(f.as_str(), |(p, _)| p);
        ProviderName::parse(provider).map_err(|e| ValidationError::new(field.clone(), e.message))?;
        if f.ends_with('/') {
            return Err(ValidationError::new(field, "use 'provider' or 'provider/model'"));
        }
        if provider == p.name.as_str() && !f.contains('/') {
            return Err(ValidationError::new(
                field,
                "a provider cannot fall back to itself with the same model",
            ));
        }
    }
    if p.fallbacks.len() > 10 {
        return Err(ValidationError::new("fallbacks", "at most 10 fallbacks"));
    }
    Ok(())
}

/// The circuit breaker and the concurrency limits.
fn validate_capacity(p: &ProviderConfig) -> Result<(), ValidationError> {
    let cb = &p.circuit_breaker;
    check_range(
        "circuit_breaker.failure_threshold",
        cb.failure_threshold,
        1..=1000,
        "must be between 1 and 1000",
    )?;
    check_range(
        "circuit_breaker.cooldown_in_seconds",
        cb.cooldown_in_seconds,
        1..=86_400,
        SECONDS_RANGE,
    )?;
    let c = &p.concurrency_and_buffer_size;
    check_range(
        "concurrency_and_buffer_size.concurrency",
        c.concurrency,
        1..=100_000,
        "must be between 1 and 100000",
    )?;
    check_range(
        "concurrency_and_buffer_size.buffer_size",
        c.buffer_size,
        0..=10_000_000,
        "must be at most 10000000",
    )
}

/// Accepts `http(s)://host[:port][/path]`, without query or fragment; trailing slashes are dropped so
/// URL joining never produces `//`.
pub fn validate_base_url(url: &str) -> Result<String, ValidationError> {
    const FIELD: &str = "network_config.base_url";
    let url = url.trim();
    let rest = url
        .strip_prefix("https://")
        .or_else(|| url.strip_prefix("http://"))
        .ok_or_else(|| ValidationError::new(FIELD, format!("'{url}' must start with http:// or https://")))?;
    let host = rest.split('/').next().unwrap_or("");
    if host.is_empty() || host.starts_with(':') {
        return Err(ValidationError::new(FIELD, format!("'{url}' has no host")));
    }
    if url.chars().any(|c| c.is_whitespace() || c.is_control()) || url.contains(['?', '#']) {
        return Err(ValidationError::new(
            FIELD,
            format!("'{url}' may not contain whitespace, a query or a fragment"),
        ));
    }
    if let Some(reason) = url_host(url).and_then(|h| UpstreamPolicy::default().refuses_host(h)) {
        return Err(ValidationError::new(
            FIELD,
            format!("'{url}' is refused: {reason}; upstreams may be public or private addresses, never metadata services"),
        ));
    }
    Ok(url.trim_end_matches('/').to_owned())
}

/// Headers the gateway owns on the upstream connection.
const RESERVED_HEADERS: &[&str] = &[
    "host",
    "content-length",
    "transfer-encoding",
    "connection",
    "keep-alive",
    "te",
    "upgrade",
    "trailer",
];

fn validate_header(name: &str, value: &str) -> Result<(), ValidationError> {
    let field = format!("network_config.extra_headers.{name}");
    let token = |b: u8| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b);
    if name.is_empty() || !name.bytes().all(token) {
        return Err(ValidationError::new(
            field,
            format!("'{name}' is not a valid HTTP header name"),
        ));
    }
    if RESERVED_HEADERS.contains(&name.to_ascii_lowercase().as_str()) {
        return Err(ValidationError::new(
            field,
            format!("'{name}' is set by the gateway itself"),
        ));
    }
    if value.bytes().any(|b| b == b'\r' || b == b'\n' || b == 0) {
        return Err(ValidationError::new(
            field,
            "header values may not contain line breaks or NUL",
        ));
    }
    Ok(())
}

impl KeyInput {
    /// Validates a create body. `generated_id` is used when the body has no `id`.
    pub fn into_new_key(
        self,
        provider: &ProviderConfig,
        generated_id: String,
    ) -> Result<KeyConfig, ValidationError> {
        let id = match self.id.clone() {
            Some(id) => validate_key_id(&id)?,
            None => generated_id,
        };
        let name = match &self.name {
            Some(n) => n.clone(),
            None => {
                return Err(ValidationError::new(
                    "name",
                    "name is required (it identifies the key in logs)",
                ))
            }
        };
        let value = match &self.value {
            Some(v) => v.clone(),
            None if provider.key_optional() || key_value_optional(provider, &self) => String::new(),
            None => {
                return Err(ValidationError::new(
                    "value",
                    "value is required (the API key or env.VAR_NAME)",
                ))
            }
        };
        let key = KeyConfig {
            id,
            name,
            value,
            models: Vec::new(),
            blacklisted_models: Vec::new(),
            weight: 1.0,
            enabled: true,
            aliases: Default::default(),
            azure_key_config: None,
            bedrock_key_config: None,
        };
        self.apply_fields(key, provider)
    }

    /// Applies an update body. A `value` equal to the redacted form of the stored secret keeps the
    /// stored secret, so a GET answer can be sent back unchanged.
    pub fn apply_update(
        self,
        current: &KeyConfig,
        provider: &ProviderConfig,
    ) -> Result<KeyConfig, ValidationError> {
        if let Some(id) = &self.id {
            if id != &current.id {
                return Err(ValidationError::new(
                    "id",
                    format!("body names key '{id}' but the path names '{}'", current.id),
                ));
            }
        }
        let mut key = current.clone();
        if let Some(n) = &self.name {
            key.name = n.clone();
        }
        if let Some(v) = &self.value {
            if !secret::is_redacted_form_of(v, &current.value) {
                key.value = v.clone();
            }
        }
        self.apply_fields(key, provider)
    }

    fn apply_fields(
        self,
        mut key: KeyConfig,
        provider: &ProviderConfig,
    ) -> Result<KeyConfig, ValidationError> {
        if let Some(m) = self.models {
            key.models = validate_models("models", m)?;
        }
        if let Some(m) = self.blacklisted_models {
            key.blacklisted_models = validate_models("blacklisted_models", m)?;
        }
        if let Some(w) = self.weight {
            key.weight = w;
        }
        if let Some(e) = self.enabled {
            key.enabled = e;
        }
        if let Some(a) = self.aliases {
            key.aliases = validate_aliases(a)?;
        }
        if let Some(a) = self.azure_key_config {
            key.azure_key_config = a;
        }
        if let Some(b) = self.bedrock_key_config {
            key.bedrock_key_config = b.map(|b| b.merged_over(key.bedrock_key_config.as_ref()));
        }
        if let Some(a) = &key.azure_key_config {
            key.azure_key_config = Some(validate_azure(a, provider.network_config.base_url.as_deref())?);
        }
        validate_key(&key, provider)?;
        Ok(key)
    }
}

pub fn validate_key_id(id: &str) -> Result<String, ValidationError> {
    if id.is_empty()
        || id.len() > 128
        || !id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b))
    {
        return Err(ValidationError::new(
            "id",
            "id must be 1-128 characters of letters, digits, '-', '_' and '.'",
        ));
    }
    Ok(id.to_owned())
}

fn validate_models(field: &str, models: Vec<String>) -> Result<Vec<String>, ValidationError> {
    for (i, m) in models.iter().enumerate() {
        if m.trim().is_empty() || m.len() > 256 || m.chars().any(char::is_control) {
            return Err(ValidationError::new(
                format!("{field}[{i}]"),
                "model names must be 1-256 printable characters",
            ));
        }
    }
    Ok(models)
}

/// Aliases map a client's model name to the upstream's id: both 1-256 printable characters, no
/// `*`, and an alias is not the target of another alias (one step, no chains).
fn validate_aliases(
    aliases: std::collections::BTreeMap<String, String>,
) -> Result<std::collections::BTreeMap<String, String>, ValidationError> {
    let bad = |m: &str| m.trim().is_empty() || m.len() > 256 || m.chars().any(char::is_control) || m == "*";
    for (alias, target) in &aliases {
        if bad(alias) {
            return Err(ValidationError::new(
                format!("aliases.{alias}"),
                "an alias must be 1-256 printable characters and not '*'",
            ));
        }
        if bad(target) {
            return Err(ValidationError::new(
                format!("aliases.{alias}"),
                "the target must be a model id of 1-256 printable characters, not '*'",
            ));
        }
        if target != alias && aliases.contains_key(target) {
            return Err(ValidationError::new(
                format!("aliases.{alias}"),
                format!("'{target}' is itself an alias; aliases map straight to the upstream's id"),
            ));
        }
    }
    Ok(aliases)
}

pub fn validate_key(key: &KeyConfig, provider: &ProviderConfig) -> Result<(), ValidationError> {
    if key.name.trim().is_empty() || key.name.len() > 128 || key.name.chars().any(char::is_control) {
        return Err(ValidationError::new(
            "name",
            "name must be 1-128 printable characters",
        ));
    }
    match (provider.wire(), &key.azure_key_config, &key.bedrock_key_config) {
        (_, Some(_), Some(_)) => {
            return Err(ValidationError::new(
                "bedrock_key_config",
                "a key has either azure_key_config or bedrock_key_config",
            ))
        }
        (WireApi::Azure, None, _) if provider.network_config.base_url.is_none() => {
            return Err(ValidationError::new(
                "azure_key_config.endpoint",
                "an Azure key needs azure_key_config.endpoint (or the provider a network_config.base_url)",
            ))
        }
        (WireApi::Azure, _, None) => {}
        (WireApi::Bedrock, None, Some(b)) => validate_bedrock(b, !key.value.is_empty())?,
        (WireApi::Bedrock, None, None) => {}
        (_, None, None) => {}
        (wire, Some(_), _) => {
            return Err(ValidationError::new(
                "azure_key_config",
                format!(
                    "azure_key_config is only for Azure providers; '{}' speaks {}",
                    provider.name,
                    wire.as_str()
                ),
            ))
        }
        (wire, _, Some(_)) => {
            return Err(ValidationError::new(
                "bedrock_key_config",
                format!(
                    "bedrock_key_config is only for Bedrock providers; '{}' speaks {}",
                    provider.name,
                    wire.as_str()
                ),
            ))
        }
    }
    let sigv4 = key
        .bedrock_key_config
        .as_ref()
        .is_some_and(|b| b.has_sigv4_credentials());
    if key.value.is_empty() && !provider.key_optional() && !sigv4 {
        return Err(ValidationError::new("value", "value may not be empty"));
    }
    if key.value.chars().any(|c| c == '\r' || c == '\n' || c == '\0') {
        return Err(ValidationError::new(
            "value",
            "value may not contain line breaks or NUL",
        ));
    }
    if key.value.starts_with("sy-enc:") {
        // The config store's prefix for encrypted values: a clear value may not look like one.
        return Err(ValidationError::new(
            "value",
            "value may not start with 'sy-enc:' (reserved for encrypted values)",
        ));
    }
    if let Some(var) = key.value.strip_prefix(secret::ENV_PREFIX) {
        if !secret::is_valid_env_name(var) {
            return Err(ValidationError::new(
                "value",
                format!("'env.{var}' is not a valid environment variable reference"),
            ));
        }
    }
    if !(key.weight.is_finite() && (0.0..=1_000_000.0).contains(&key.weight)) {
        return Err(ValidationError::new(
            "weight",
            "weight must be a number between 0 and 1000000",
        ));
    }
    Ok(())
}
