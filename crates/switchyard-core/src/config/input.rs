//! The API inputs: what a caller sends to create or change a provider or a key.

use std::collections::BTreeMap;

use serde::Deserialize;

use crate::provider_keys::{AzureKeyConfig, BedrockKeyConfig};
use crate::secret;

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
    pub case_insensitive_model_ids: Option<bool>,
    pub model_discovery: Option<bool>,
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
    /// Replaces the stored aliases on PUT (`{}` removes them all).
    pub aliases: Option<std::collections::BTreeMap<String, String>>,
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
            .field("aliases", &self.aliases)
            .finish_non_exhaustive()
    }
}
