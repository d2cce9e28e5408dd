//! The provider and key configuration model: what the management API accepts, what the config store
//! keeps, and the validation between the two.
//!
//! Inputs (`*Input`) are what a caller sends; they are validated into the stored types
//! (`ProviderConfig`, `KeyConfig`). Every rejection is a [`ValidationError`] that names the offending
//! field with its JSON path, so the API can answer `400` with `param` set.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::provider::{ProviderName, WireApi};
use crate::provider_keys::{validate_azure, validate_bedrock, AzureKeyConfig, BedrockKeyConfig};
use crate::secret;
use crate::upstream_policy::{url_host, UpstreamPolicy};

/// A caller mistake in a configuration body, with the JSON path of the field at fault.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{field}: {message}")]
pub struct ValidationError {
    pub field: String,
    pub message: String,
}

impl ValidationError {
    pub fn new(field: impl Into<String>, message: impl Into<String>) -> Self {
        ValidationError {
            field: field.into(),
            message: message.into(),
        }
    }
}

/// Why 600 s: reasoning models on mittwald (gpt-oss, Qwen3.5 with thinking on) routinely think for
/// minutes, mittwald's own client examples use 300 s read timeouts, and the official OpenAI/Anthropic
/// SDKs give up after 600 s. A gateway default below the client's own would cut answers the client is
/// still willing to wait for (Bifrost's 30 s is its most reported weakness).
pub const DEFAULT_REQUEST_TIMEOUT_SECS: u64 = 600;
/// mittwald's guidance is to retry 5xx (and its 429 carries no `Retry-After`); two retries with backoff
/// ride out a model restart without multiplying load during a real outage.
pub const DEFAULT_MAX_RETRIES: u32 = 2;
/// A stream that sends nothing for this long after its first event is considered stalled. Reasoning
/// output streams continuously once it has started; silence before the first event is covered by the
/// request timeout instead.
pub const DEFAULT_STREAM_IDLE_TIMEOUT_SECS: u64 = 120;
pub const DEFAULT_BREAKER_FAILURE_THRESHOLD: u32 = 5;
pub const DEFAULT_BREAKER_COOLDOWN_SECS: u64 = 30;
pub const DEFAULT_RETRY_BACKOFF_INITIAL_MS: u64 = 500;
pub const DEFAULT_RETRY_BACKOFF_MAX_MS: u64 = 5_000;
pub const DEFAULT_CONCURRENCY: u32 = 1_000;
pub const DEFAULT_BUFFER_SIZE: u32 = 5_000;

/// Request types a custom provider may be limited to (`custom_provider_config.allowed_requests`).
pub const REQUEST_TYPES: &[&str] = &[
    "list_models",
    "text_completion",
    "text_completion_stream",
    "chat_completion",
    "chat_completion_stream",
    "responses",
    "responses_stream",
    "count_tokens",
    "embedding",
    "speech",
    "speech_stream",
    "transcription",
    "transcription_stream",
    "image_generation",
    "image_generation_stream",
    "rerank",
    "batch_create",
    "batch_list",
    "batch_retrieve",
    "batch_cancel",
    "batch_results",
    "file_upload",
    "file_list",
    "file_retrieve",
    "file_delete",
    "file_content",
    "passthrough",
    "passthrough_stream",
];

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct NetworkConfig {
    /// `None` means the built-in provider's default URL.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub base_url: Option<String>,
    #[serde(default)]
    pub extra_headers: BTreeMap<String, String>,
    /// Whole non-streaming call; for streams, the wait for the first event.
    pub default_request_timeout_in_seconds: u64,
    /// Optional tighter bound on the time to the first byte (JSON headers, or the first stream event).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub first_byte_timeout_in_seconds: Option<u64>,
    /// Longest silence allowed between stream events once the stream has started.
    #[serde(default = "default_stream_idle")]
    pub stream_idle_timeout_in_seconds: u64,
    pub max_retries: u32,
    /// Milliseconds.
    pub retry_backoff_initial: u64,
    /// Milliseconds.
    pub retry_backoff_max: u64,
}

fn default_stream_idle() -> u64 {
    DEFAULT_STREAM_IDLE_TIMEOUT_SECS
}

impl Default for NetworkConfig {
    fn default() -> Self {
        NetworkConfig {
            base_url: None,
            extra_headers: BTreeMap::new(),
            default_request_timeout_in_seconds: DEFAULT_REQUEST_TIMEOUT_SECS,
            first_byte_timeout_in_seconds: None,
            stream_idle_timeout_in_seconds: DEFAULT_STREAM_IDLE_TIMEOUT_SECS,
            max_retries: DEFAULT_MAX_RETRIES,
            retry_backoff_initial: DEFAULT_RETRY_BACKOFF_INITIAL_MS,
            retry_backoff_max: DEFAULT_RETRY_BACKOFF_MAX_MS,
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ConcurrencyAndBufferSize {
    pub concurrency: u32,
    pub buffer_size: u32,
}

impl Default for ConcurrencyAndBufferSize {
    fn default() -> Self {
        ConcurrencyAndBufferSize {
            concurrency: DEFAULT_CONCURRENCY,
            buffer_size: DEFAULT_BUFFER_SIZE,
        }
    }
}

/// The passive circuit breaker of each key (and of the provider as a whole).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct CircuitBreakerConfig {
    /// Consecutive failures (429, 401/402/403, connection errors, timeouts) that eject a key.
    pub failure_threshold: u32,
    /// How long an ejected key is skipped before one probe request may try it again.
    pub cooldown_in_seconds: u64,
}

impl Default for CircuitBreakerConfig {
    fn default() -> Self {
        CircuitBreakerConfig {
            failure_threshold: DEFAULT_BREAKER_FAILURE_THRESHOLD,
            cooldown_in_seconds: DEFAULT_BREAKER_COOLDOWN_SECS,
        }
    }
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct CustomProviderConfig {
    pub base_provider_type: WireApi,
    /// `None`: every request type is allowed. `Some`: only the types set to `true`.
    #[serde(default)]
    pub allowed_requests: Option<BTreeMap<String, bool>>,
    #[serde(default)]
    pub is_key_less: bool,
}

/// A provider as stored. Keys are stored separately (see [`KeyConfig`]).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ProviderConfig {
    pub name: ProviderName,
    pub network_config: NetworkConfig,
    pub concurrency_and_buffer_size: ConcurrencyAndBufferSize,
    #[serde(default)]
    pub custom_provider_config: Option<CustomProviderConfig>,
    #[serde(default)]
    pub send_back_raw_response: bool,
    /// Log request and response bodies of this provider's calls (off by default; the global switch
    /// `--log-content` turns it on for all providers).
    #[serde(default)]
    pub store_raw_request_response: bool,
    /// Operator-configured fallback chain: where a request for this provider goes when it fails.
    /// Each entry is `provider` (same model name) or `provider/model`.
    #[serde(default)]
    pub fallbacks: Vec<String>,
    #[serde(default)]
    pub circuit_breaker: CircuitBreakerConfig,
}

impl ProviderConfig {
    pub fn wire(&self) -> WireApi {
        match (&self.custom_provider_config, self.name.builtin()) {
            (Some(c), _) => c.base_provider_type,
            (None, Some(b)) => b.wire,
            // Validation makes this unreachable; OpenAI-compatible is the safe reading.
            (None, None) => WireApi::OpenAi,
        }
    }

    /// The base URL requests go to: the configured one, else the built-in default.
    pub fn effective_base_url(&self) -> Option<&str> {
        self.network_config
            .base_url
            .as_deref()
            .or_else(|| self.name.builtin().and_then(|b| b.default_base_url))
    }

    pub fn key_optional(&self) -> bool {
        match (&self.custom_provider_config, self.name.builtin()) {
            (Some(c), _) => c.is_key_less,
            (None, Some(b)) => b.key_optional,
            (None, None) => false,
        }
    }

    pub fn allows_request(&self, request_type: &str) -> bool {
        match self
            .custom_provider_config
            .as_ref()
            .and_then(|c| c.allowed_requests.as_ref())
        {
            None => true,
            Some(allowed) => allowed.get(request_type).copied().unwrap_or(false),
        }
    }
}

/// A provider key as stored. `value` is the literal secret or an `env.VAR` reference.
#[derive(Clone, PartialEq, Serialize, Deserialize)]
pub struct KeyConfig {
    pub id: String,
    pub name: String,
    pub value: String,
    pub models: Vec<String>,
    pub blacklisted_models: Vec<String>,
    pub weight: f64,
    pub enabled: bool,
    /// Azure OpenAI keys: endpoint, deployments, api_version.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub azure_key_config: Option<AzureKeyConfig>,
    /// AWS Bedrock keys: SigV4 credentials, region, deployments.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bedrock_key_config: Option<BedrockKeyConfig>,
}

impl std::fmt::Debug for KeyConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The secret never reaches a log line through Debug.
        f.debug_struct("KeyConfig")
            .field("id", &self.id)
            .field("name", &self.name)
            .field("value", &secret::redact(&self.value))
            .field("models", &self.models)
            .field("blacklisted_models", &self.blacklisted_models)
            .field("weight", &self.weight)
            .field("enabled", &self.enabled)
            .field("azure_key_config", &self.azure_key_config)
            .field("bedrock_key_config", &self.bedrock_key_config)
            .finish()
    }
}

// === Inputs ===

#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NetworkConfigInput {
    pub base_url: Option<String>,
    pub extra_headers: Option<BTreeMap<String, String>>,
    pub default_request_timeout_in_seconds: Option<u64>,
    /// `null` clears it.
    #[serde(default, deserialize_with = "double_option")]
    pub first_byte_timeout_in_seconds: Option<Option<u64>>,
    pub stream_idle_timeout_in_seconds: Option<u64>,
    pub max_retries: Option<u32>,
    pub retry_backoff_initial: Option<u64>,
    pub retry_backoff_max: Option<u64>,
}

#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConcurrencyInput {
    pub concurrency: Option<u32>,
    pub buffer_size: Option<u32>,
}

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CustomProviderConfigInput {
    pub base_provider_type: Option<String>,
    pub allowed_requests: Option<BTreeMap<String, bool>>,
    pub is_key_less: Option<bool>,
}

#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CircuitBreakerInput {
    pub failure_threshold: Option<u32>,
    pub cooldown_in_seconds: Option<u64>,
}

/// Body of `POST /api/providers` and `PUT /api/providers/{provider}`.
///
/// On PUT, blocks that are present replace the stored ones field by field; absent blocks are kept, and
/// an explicit `"custom_provider_config": null` is only accepted where a built-in provider can live
/// without it.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProviderInput {
    pub provider: Option<String>,
    /// Accepted so that a `GET` answer can be sent back as a `PUT` body.
    pub name: Option<String>,
    pub network_config: Option<NetworkConfigInput>,
    pub concurrency_and_buffer_size: Option<ConcurrencyInput>,
    #[serde(default, deserialize_with = "double_option")]
    pub custom_provider_config: Option<Option<CustomProviderConfigInput>>,
    pub send_back_raw_response: Option<bool>,
    pub store_raw_request_response: Option<bool>,
    pub fallbacks: Option<Vec<String>>,
    pub circuit_breaker: Option<CircuitBreakerInput>,
    /// Pre-v1.5 Bifrost bodies create keys together with the provider (POST only).
    pub keys: Option<Vec<KeyInput>>,
    /// Response-only fields, accepted and ignored so GET -> PUT round trips work.
    pub provider_status: Option<serde_json::Value>,
    pub health: Option<serde_json::Value>,
}

fn double_option<'de, D, T>(d: D) -> Result<Option<Option<T>>, D::Error>
where
    D: serde::Deserializer<'de>,
    T: Deserialize<'de>,
{
    Option::<T>::deserialize(d).map(Some)
}

/// Body of `POST .../keys` and `PUT .../keys/{key_id}`. On PUT, absent fields keep their stored value
/// (unlike Bifrost, where an omitted `name` is cleared).
#[derive(Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KeyInput {
    pub id: Option<String>,
    pub name: Option<String>,
    pub value: Option<String>,
    pub models: Option<Vec<String>>,
    pub blacklisted_models: Option<Vec<String>>,
    pub weight: Option<f64>,
    pub enabled: Option<bool>,
    /// `null` removes the stored config on PUT.
    #[serde(default, deserialize_with = "double_option")]
    pub azure_key_config: Option<Option<AzureKeyConfig>>,
    #[serde(default, deserialize_with = "double_option")]
    pub bedrock_key_config: Option<Option<BedrockKeyConfig>>,
    /// Response-only fields, accepted and ignored so GET -> PUT round trips work.
    pub status: Option<serde_json::Value>,
    pub status_reason: Option<serde_json::Value>,
    pub health: Option<serde_json::Value>,
}

impl std::fmt::Debug for KeyInput {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // A create or update body carries the secret in clear; Debug shows it redacted.
        f.debug_struct("KeyInput")
            .field("id", &self.id)
            .field("name", &self.name)
            .field("value", &self.value.as_deref().map(secret::redact))
            .field("models", &self.models)
            .field("blacklisted_models", &self.blacklisted_models)
            .field("weight", &self.weight)
            .field("enabled", &self.enabled)
            .finish_non_exhaustive()
    }
}

// === Validation ===

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
    let builtin = p.name.builtin();
    match (builtin, &p.custom_provider_config) {
        (Some(b), Some(_)) => {
            return Err(ValidationError::new(
                "custom_provider_config",
                format!(
                    "'{}' is a built-in provider and cannot take custom_provider_config; \
                     register the endpoint under another name (e.g. '{}-custom') to make it custom",
                    b.name, b.name
                ),
            ))
        }
        (None, None) => {
            return Err(ValidationError::new(
                "custom_provider_config",
                format!(
                    "'{}' is not a built-in provider; a custom provider needs \
                     custom_provider_config.base_provider_type (e.g. \"openai\" for an OpenAI-compatible endpoint)",
                    p.name
                ),
            ))
        }
        _ => {}
    }
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
    if !(1..=86_400).contains(&nc.default_request_timeout_in_seconds) {
        return Err(ValidationError::new(
            "network_config.default_request_timeout_in_seconds",
            "must be between 1 and 86400 seconds",
        ));
    }
    if let Some(t) = nc.first_byte_timeout_in_seconds {
        if !(1..=86_400).contains(&t) {
            return Err(ValidationError::new(
                "network_config.first_byte_timeout_in_seconds",
                "must be between 1 and 86400 seconds",
            ));
        }
    }
    if !(1..=86_400).contains(&nc.stream_idle_timeout_in_seconds) {
        return Err(ValidationError::new(
            "network_config.stream_idle_timeout_in_seconds",
            "must be between 1 and 86400 seconds",
        ));
    }
    if nc.max_retries > 20 {
        return Err(ValidationError::new(
            "network_config.max_retries",
            "must be between 0 and 20",
        ));
    }
    if !(1..=600_000).contains(&nc.retry_backoff_initial) {
        return Err(ValidationError::new(
            "network_config.retry_backoff_initial",
            "must be between 1 and 600000 milliseconds",
        ));
    }
    if nc.retry_backoff_max < nc.retry_backoff_initial || nc.retry_backoff_max > 3_600_000 {
        return Err(ValidationError::new(
            "network_config.retry_backoff_max",
            "must be at least retry_backoff_initial and at most 3600000 milliseconds",
        ));
    }
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
    let cb = &p.circuit_breaker;
    if !(1..=1000).contains(&cb.failure_threshold) {
        return Err(ValidationError::new(
            "circuit_breaker.failure_threshold",
            "must be between 1 and 1000",
        ));
    }
    if !(1..=86_400).contains(&cb.cooldown_in_seconds) {
        return Err(ValidationError::new(
            "circuit_breaker.cooldown_in_seconds",
            "must be between 1 and 86400 seconds",
        ));
    }
    let c = &p.concurrency_and_buffer_size;
    if !(1..=100_000).contains(&c.concurrency) {
        return Err(ValidationError::new(
            "concurrency_and_buffer_size.concurrency",
            "must be between 1 and 100000",
        ));
    }
    if c.buffer_size > 10_000_000 {
        return Err(ValidationError::new(
            "concurrency_and_buffer_size.buffer_size",
            "must be at most 10000000",
        ));
    }
    Ok(())
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_output_of_inputs_never_shows_key_values() {
        let body = r#"{"provider":"openai","keys":[{"name":"k","value":"sk-live-0123456789abcdef","models":["*"]}]}"#;
        let p: ProviderInput = serde_json::from_str(body).unwrap();
        let shown = format!("{p:?} {:?}", p.keys.as_ref().unwrap()[0]);
        assert!(!shown.contains("0123456789"), "{shown}");
        assert!(shown.contains("sk-l"), "the redacted form is shown: {shown}");
    }

    #[test]
    fn metadata_base_urls_are_refused_at_config_time() {
        for url in [
            "http://169.254.169.254/latest/meta-data",
            "http://metadata.google.internal/v1",
            "http://[fd00:ec2::254]/v1",
            "http://2852039166/v1",
        ] {
            let err = validate_base_url(url).unwrap_err();
            assert_eq!(err.field, "network_config.base_url");
            assert!(err.message.contains("metadata"), "{}", err.message);
        }
        assert!(validate_base_url("http://10.0.0.7:8000/v1").is_ok());
        assert!(validate_base_url("http://vllm.ai.svc.cluster.local/v1").is_ok());
    }

    fn input(json: &str) -> ProviderInput {
        serde_json::from_str(json).unwrap()
    }

    #[test]
    fn seed_dedicated_provider_is_accepted_with_defaults() {
        let p = input(r#"{"provider":"openai","network_config":{"base_url":"https://your-company.llm.aihosting.mittwald.de/v1"}}"#)
            .into_new_provider()
            .unwrap();
        assert_eq!(
            p.effective_base_url(),
            Some("https://your-company.llm.aihosting.mittwald.de/v1")
        );
        assert_eq!(p.network_config.default_request_timeout_in_seconds, 600);
        assert_eq!(p.wire(), WireApi::OpenAi);
    }

    #[test]
    fn seed_custom_provider_speaks_its_base_type() {
        let p = input(
            r#"{"provider":"mittwald-shared","network_config":{"base_url":"https://llm.aihosting.mittwald.de/v1/"},
                "custom_provider_config":{"base_provider_type":"openai"}}"#,
        )
        .into_new_provider()
        .unwrap();
        assert_eq!(p.wire(), WireApi::OpenAi);
        assert_eq!(
            p.network_config.base_url.as_deref(),
            Some("https://llm.aihosting.mittwald.de/v1")
        );
    }

    #[test]
    fn anthropic_without_body_uses_default_endpoint() {
        let p = input(r#"{"provider":"anthropic"}"#).into_new_provider().unwrap();
        assert_eq!(p.effective_base_url(), Some("https://api.anthropic.com"));
    }

    #[test]
    fn errors_name_the_field() {
        let cases = [
            (
                r#"{"provider":"mittwald-shared","network_config":{"base_url":"https://x/v1"}}"#,
                "custom_provider_config",
            ),
            (
                r#"{"provider":"x","custom_provider_config":{"base_provider_type":"openai"}}"#,
                "network_config.base_url",
            ),
            (
                r#"{"provider":"x","network_config":{"base_url":"ftp://x"},"custom_provider_config":{"base_provider_type":"openai"}}"#,
                "network_config.base_url",
            ),
            (
                r#"{"provider":"x","network_config":{"base_url":"http://x"},"custom_provider_config":{"base_provider_type":"soap"}}"#,
                "custom_provider_config.base_provider_type",
            ),
            (
                r#"{"provider":"openai","network_config":{"default_request_timeout_in_seconds":0}}"#,
                "network_config.default_request_timeout_in_seconds",
            ),
            (
                r#"{"provider":"openai","network_config":{"extra_headers":{"bad header":"x"}}}"#,
                "network_config.extra_headers.bad header",
            ),
            (
                r#"{"provider":"openai","network_config":{"retry_backoff_initial":1000,"retry_backoff_max":10}}"#,
                "network_config.retry_backoff_max",
            ),
            (
                r#"{"provider":"openai","custom_provider_config":{"base_provider_type":"openai"}}"#,
                "custom_provider_config",
            ),
            (r#"{"network_config":{}}"#, "provider"),
        ];
        for (body, field) in cases {
            let err = input(body).into_new_provider().unwrap_err();
            assert_eq!(err.field, field, "{body}: {err}");
        }
    }

    #[test]
    fn update_keeps_absent_blocks() {
        let p =
            input(r#"{"provider":"openai","network_config":{"base_url":"https://a/v1","max_retries":3}}"#)
                .into_new_provider()
                .unwrap();
        let updated = input(r#"{"network_config":{"default_request_timeout_in_seconds":900}}"#)
            .apply_update(&p)
            .unwrap();
        assert_eq!(updated.network_config.base_url.as_deref(), Some("https://a/v1"));
        assert_eq!(updated.network_config.max_retries, 3);
        assert_eq!(updated.network_config.default_request_timeout_in_seconds, 900);
        let err = input(r#"{"provider":"other"}"#).apply_update(&p).unwrap_err();
        assert_eq!(err.field, "provider");
    }

    fn key(json: &str, p: &ProviderConfig) -> Result<KeyConfig, ValidationError> {
        serde_json::from_str::<KeyInput>(json)
            .unwrap()
            .into_new_key(p, "gen-1".into())
    }

    #[test]
    fn seed_key_is_accepted() {
        let p = input(r#"{"provider":"openai"}"#).into_new_provider().unwrap();
        let k = key(
            r#"{"name":"mittwald-dedicated","value":"YOUR_DEDICATED_API_KEY","models":["*"],"weight":1.0}"#,
            &p,
        )
        .unwrap();
        assert_eq!(k.id, "gen-1");
        assert!(k.enabled);
        assert_eq!(k.models, vec!["*"]);
    }

    #[test]
    fn key_errors_name_the_field() {
        let p = input(r#"{"provider":"openai"}"#).into_new_provider().unwrap();
        for (body, field) in [
            (r#"{"value":"x"}"#, "name"),
            (r#"{"name":"a"}"#, "value"),
            (r#"{"name":"a","value":"x","weight":-1}"#, "weight"),
            (r#"{"name":"a","value":"x","models":[""]}"#, "models[0]"),
            (r#"{"name":"a","value":"env.1BAD"}"#, "value"),
            (r#"{"name":"a","value":"x","id":"a/b"}"#, "id"),
        ] {
            assert_eq!(key(body, &p).unwrap_err().field, field, "{body}");
        }
    }

    #[test]
    fn keyless_providers_need_no_value() {
        let p = input(r#"{"provider":"ollama"}"#).into_new_provider().unwrap();
        assert!(key(r#"{"name":"local","models":["*"]}"#, &p).is_ok());
    }

    #[test]
    fn redacted_value_on_update_keeps_the_secret() {
        let p = input(r#"{"provider":"openai"}"#).into_new_provider().unwrap();
        let k = key(r#"{"name":"a","value":"sk-very-secret-value-1234"}"#, &p).unwrap();
        let redacted = secret::redact(&k.value);
        let body = format!(r#"{{"value":"{redacted}","weight":2.5}}"#);
        let updated = serde_json::from_str::<KeyInput>(&body)
            .unwrap()
            .apply_update(&k, &p)
            .unwrap();
        assert_eq!(updated.value, "sk-very-secret-value-1234");
        assert_eq!(updated.weight, 2.5);
        assert_eq!(updated.name, "a", "an omitted name is kept, not cleared");
    }

    #[test]
    fn allowed_requests_gate_request_types() {
        let p = input(
            r#"{"provider":"m","network_config":{"base_url":"http://m/v1"},
                "custom_provider_config":{"base_provider_type":"openai","allowed_requests":{"chat_completion":true,"embedding":false}}}"#,
        )
        .into_new_provider()
        .unwrap();
        assert!(p.allows_request("chat_completion"));
        assert!(!p.allows_request("embedding"));
        assert!(!p.allows_request("rerank"));
    }
}
