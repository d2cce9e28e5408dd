//! The provider and key configuration model: what the management API accepts, what the config store
//! keeps, and the validation between the two.
//!
//! Inputs (`*Input`) are what a caller sends; they are validated into the stored types
//! (`ProviderConfig`, `KeyConfig`). Every rejection is a [`ValidationError`] that names the offending
//! field with its JSON path, so the API can answer `400` with `param` set.
//!
//! The stored types are here; the API inputs are in `input`, their validation in `validate`.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::provider::{ProviderName, WireApi};
use crate::provider_keys::{AzureKeyConfig, BedrockKeyConfig};
use crate::secret;

mod input;
mod validate;

pub use input::{
    CircuitBreakerInput, ConcurrencyInput, CustomProviderConfigInput, KeyInput, NetworkConfigInput,
    ProviderInput,
};
pub use validate::{validate_base_url, validate_key, validate_key_id, validate_provider};

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
    /// Match model names against this provider's key `models` and `aliases` ignoring ASCII case
    /// (mittwald's ids vary only in case between its own pages); the upstream is sent the spelling
    /// the key lists.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub case_insensitive_model_ids: bool,
    /// Read the upstream's `GET /v1/models` (at start, periodically, on `refresh-models`) and send a
    /// bare model through this provider's `*` keys only if the list has it (`crate::discovery`).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub model_discovery: bool,
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
    /// Bifrost's key-level aliases: a model name clients send → the id the upstream is sent. An alias
    /// counts as a model this key serves (an explicit listing); so does its target.
    #[serde(default, skip_serializing_if = "std::collections::BTreeMap::is_empty")]
    pub aliases: std::collections::BTreeMap<String, String>,
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
            .field("aliases", &self.aliases)
            .field("azure_key_config", &self.azure_key_config)
            .field("bedrock_key_config", &self.bedrock_key_config)
            .finish()
    }
}

#[cfg(test)]
mod tests;
