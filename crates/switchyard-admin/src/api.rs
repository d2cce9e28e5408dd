//! The Bifrost-compatible management API: `/api/providers` and `/api/providers/{p}/keys`.
//!
//! Handlers only parse, call [`ConfigService`](switchyard_runtime::state::ConfigService) and render views; every view
//! of a key shows its value redacted.

use std::sync::Arc;

use axum::body::Body;
use axum::extract::{Path, State};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::Serialize;
use serde_json::{json, Value};
use switchyard_core::config::{
    CircuitBreakerConfig, ConcurrencyAndBufferSize, CustomProviderConfig, KeyInput, ProviderInput,
};
use switchyard_core::routing::{RuntimeKey, RuntimeProvider};
use switchyard_core::secret::redact;

use switchyard_runtime::body::{parse_json, read_limited};
use switchyard_runtime::error::{ApiError, GatewayError};
use switchyard_runtime::runtime_state::health::{HealthRegistry, HealthView, Scope};
use switchyard_runtime::state::AppState;

/// Management bodies are small; this keeps a stray upload from being buffered.
const MAX_MANAGEMENT_BODY: usize = 1024 * 1024;

#[derive(Serialize)]
pub struct ProviderView {
    pub name: String,
    pub network_config: NetworkConfigView,
    pub concurrency_and_buffer_size: ConcurrencyAndBufferSize,
    pub custom_provider_config: Option<CustomProviderConfig>,
    pub send_back_raw_response: bool,
    pub store_raw_request_response: bool,
    pub case_insensitive_model_ids: bool,
    pub model_discovery: bool,
    pub fallbacks: Vec<String>,
    pub circuit_breaker: CircuitBreakerConfig,
    pub keys: Vec<KeyView>,
    /// The last `GET /v1/models` read of a provider with `model_discovery`: models, when it was read,
    /// and why it failed (then routing goes by the keys alone).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub discovered_models: Option<switchyard_core::discovery::ModelList>,
    pub provider_status: &'static str,
    /// The provider-wide circuit breaker (connection errors, timeouts, 5xx).
    pub health: HealthView,
}

#[derive(Serialize)]
pub struct NetworkConfigView {
    /// The effective URL (the built-in default when none was configured).
    pub base_url: String,
    pub extra_headers: std::collections::BTreeMap<String, String>,
    pub default_request_timeout_in_seconds: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub first_byte_timeout_in_seconds: Option<u64>,
    pub stream_idle_timeout_in_seconds: u64,
    pub max_retries: u32,
    pub retry_backoff_initial: u64,
    pub retry_backoff_max: u64,
}

#[derive(Serialize)]
pub struct KeyView {
    pub id: String,
    pub name: String,
    /// Always redacted (`env.VAR` references are shown as the reference).
    pub value: String,
    pub models: Vec<String>,
    pub blacklisted_models: Vec<String>,
    pub weight: f64,
    pub enabled: bool,
    #[serde(skip_serializing_if = "std::collections::BTreeMap::is_empty")]
    pub aliases: std::collections::BTreeMap<String, String>,
    /// `active`, `disabled`, or `error` (then `status_reason` says why).
    pub status: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub status_reason: Option<String>,
    /// The key's circuit breaker.
    pub health: HealthView,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub azure_key_config: Option<switchyard_core::provider_keys::AzureKeyConfig>,
    /// Credentials redacted like `value`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub bedrock_key_config: Option<switchyard_core::provider_keys::BedrockKeyConfig>,
}

impl KeyView {
    pub fn of(k: &RuntimeKey, health: &HealthRegistry) -> Self {
        let (status, status_reason) = match (&k.problem, k.config.enabled) {
            (_, false) => ("disabled", None),
            (Some(p), true) => ("error", Some(p.clone())),
            (None, true) => ("active", None),
        };
        KeyView {
            id: k.config.id.clone(),
            name: k.config.name.clone(),
            value: redact(&k.config.value),
            models: k.config.models.clone(),
            blacklisted_models: k.config.blacklisted_models.clone(),
            weight: k.config.weight,
            enabled: k.config.enabled,
            aliases: k.config.aliases.clone(),
            status,
            status_reason,
            health: health.view(Scope::Key(&k.config.id)),
            azure_key_config: k.config.azure_key_config.clone(),
            bedrock_key_config: k.config.bedrock_key_config.as_ref().map(|b| b.redacted()),
        }
    }
}

impl ProviderView {
    pub fn of(p: &RuntimeProvider, health: &HealthRegistry) -> Self {
        let nc = &p.config.network_config;
        ProviderView {
            name: p.config.name.to_string(),
            network_config: NetworkConfigView {
                base_url: p.base_url.clone(),
                extra_headers: nc.extra_headers.clone(),
                default_request_timeout_in_seconds: nc.default_request_timeout_in_seconds,
                first_byte_timeout_in_seconds: nc.first_byte_timeout_in_seconds,
                stream_idle_timeout_in_seconds: nc.stream_idle_timeout_in_seconds,
                max_retries: nc.max_retries,
                retry_backoff_initial: nc.retry_backoff_initial,
                retry_backoff_max: nc.retry_backoff_max,
            },
            concurrency_and_buffer_size: p.config.concurrency_and_buffer_size,
            custom_provider_config: p.config.custom_provider_config.clone(),
            send_back_raw_response: p.config.send_back_raw_response,
            store_raw_request_response: p.config.store_raw_request_response,
            case_insensitive_model_ids: p.config.case_insensitive_model_ids,
            model_discovery: p.config.model_discovery,
            fallbacks: p.config.fallbacks.clone(),
            circuit_breaker: p.config.circuit_breaker,
            keys: p.keys.iter().map(|k| KeyView::of(k, health)).collect(),
            discovered_models: None,
            provider_status: "active",
            health: health.view(Scope::Provider(p.config.name.as_str())),
        }
    }
}

/// A provider's view with its discovered model list.
fn view_of(state: &AppState, p: &RuntimeProvider) -> ProviderView {
    let mut view = ProviderView::of(p, &state.health);
    view.discovered_models = state.model_lists.load().get(p.config.name.as_str()).cloned();
    view
}

fn provider_view(state: &AppState, name: &str) -> Result<ProviderView, GatewayError> {
    state
        .config
        .snapshot()
        .provider(name)
        .map(|p| view_of(state, p))
        .ok_or_else(|| GatewayError::NotFound {
            message: format!("provider '{name}' not found; list providers with GET /api/providers"),
            code: Some("provider_not_found"),
        })
}

fn key_view(state: &AppState, provider: &str, key_id: &str) -> Result<KeyView, GatewayError> {
    let snap = state.config.snapshot();
    let p = snap.provider(provider).ok_or_else(|| GatewayError::NotFound {
        message: format!("provider '{provider}' not found"),
        code: Some("provider_not_found"),
    })?;
    p.keys
        .iter()
        .find(|k| k.config.id == key_id)
        .map(|k| KeyView::of(k, &state.health))
        .ok_or_else(|| GatewayError::NotFound {
            message: format!("key '{key_id}' not found in provider '{provider}'"),
            code: Some("key_not_found"),
        })
}

async fn json_body<T: serde::de::DeserializeOwned>(body: Body) -> Result<T, GatewayError> {
    let bytes = read_limited(body, MAX_MANAGEMENT_BODY).await?;
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Err(GatewayError::BadRequest {
            message: "request body is empty; send a JSON object".into(),
            param: None,
        });
    }
    parse_json(&bytes)
}

pub async fn list_providers(State(state): State<Arc<AppState>>) -> Json<Value> {
    let snap = state.config.snapshot();
    let providers: Vec<ProviderView> = snap.providers.iter().map(|p| view_of(&state, p)).collect();
    Json(json!({"total": providers.len(), "providers": providers}))
}

pub async fn create_provider(State(state): State<Arc<AppState>>, body: Body) -> Result<Response, ApiError> {
    // A read-only config refuses the write before looking at the body.
    state.config.check_writable()?;
    let input: ProviderInput = json_body(body).await?;
    let name = state.config.create_provider(input).await?;
    Ok(Json(provider_view(&state, &name)?).into_response())
}

pub async fn get_provider(
    State(state): State<Arc<AppState>>,
    Path(name): Path<String>,
) -> Result<Response, ApiError> {
    Ok(Json(provider_view(&state, &name)?).into_response())
}

pub async fn update_provider(
    State(state): State<Arc<AppState>>,
    Path(name): Path<String>,
    body: Body,
) -> Result<Response, ApiError> {
    // A read-only config refuses the write before looking at the body.
    state.config.check_writable()?;
    let input: ProviderInput = json_body(body).await?;
    state.config.update_provider(&name, input).await?;
    Ok(Json(provider_view(&state, &name)?).into_response())
}

pub async fn delete_provider(
    State(state): State<Arc<AppState>>,
    Path(name): Path<String>,
) -> Result<Response, ApiError> {
    state.config.delete_provider(&name).await?;
    Ok(Json(json!({"message": format!("provider '{name}' deleted")})).into_response())
}

pub async fn list_keys(
    State(state): State<Arc<AppState>>,
    Path(name): Path<String>,
) -> Result<Response, ApiError> {
    let view = provider_view(&state, &name)?;
    Ok(Json(json!({"total": view.keys.len(), "keys": view.keys})).into_response())
}

pub async fn create_key(
    State(state): State<Arc<AppState>>,
    Path(name): Path<String>,
    body: Body,
) -> Result<Response, ApiError> {
    // A read-only config refuses the write before looking at the body.
    state.config.check_writable()?;
    let input: KeyInput = json_body(body).await?;
    let id = state.config.create_key(&name, input).await?;
    Ok(Json(key_view(&state, &name, &id)?).into_response())
}

pub async fn get_key(
    State(state): State<Arc<AppState>>,
    Path((name, key_id)): Path<(String, String)>,
) -> Result<Response, ApiError> {
    Ok(Json(key_view(&state, &name, &key_id)?).into_response())
}

pub async fn update_key(
    State(state): State<Arc<AppState>>,
    Path((name, key_id)): Path<(String, String)>,
    body: Body,
) -> Result<Response, ApiError> {
    // A read-only config refuses the write before looking at the body.
    state.config.check_writable()?;
    let input: KeyInput = json_body(body).await?;
    state.config.update_key(&name, &key_id, input).await?;
    Ok(Json(key_view(&state, &name, &key_id)?).into_response())
}

pub async fn delete_key(
    State(state): State<Arc<AppState>>,
    Path((name, key_id)): Path<(String, String)>,
) -> Result<Response, ApiError> {
    state.config.delete_key(&name, &key_id).await?;
    Ok(Json(json!({"message": format!("key '{key_id}' deleted from provider '{name}'")})).into_response())
}

/// `POST /api/providers/{p}/keys/{id}/check` (Switchyard extension): probes the key against its
/// upstream (a model listing, which costs no tokens) and reports whether it works.
pub async fn check_key(
    State(state): State<Arc<AppState>>,
    Path((name, key_id)): Path<(String, String)>,
) -> Result<Response, ApiError> {
    let snap = state.config.snapshot();
    key_view(&state, &name, &key_id)?;
    let p = snap.provider(&name).expect("checked above");
    let k = p
        .keys
        .iter()
        .find(|k| k.config.id == key_id)
        .expect("checked above");
    Ok(Json(switchyard_proxy::routes::models::check_key(&state.upstream, p, k).await).into_response())
}

/// `POST /api/providers/{p}/refresh-models` (Switchyard extension): reads the provider's
/// `GET /v1/models` now with one of its stored keys and answers the list routing will use. Only for
/// providers with `model_discovery`.
pub async fn refresh_models(
    State(state): State<Arc<AppState>>,
    Path(name): Path<String>,
) -> Result<Response, ApiError> {
    let discovering = provider_view(&state, &name)?.model_discovery;
    if !discovering {
        return Err(GatewayError::BadRequest {
            message: format!(
                "provider '{name}' does not discover its models; set \"model_discovery\": true with PUT /api/providers/{name}"
            ),
            param: Some("model_discovery".into()),
        }
        .into());
    }
    let list = switchyard_proxy::discovery::refresh(&state, &name).await;
    Ok(Json(json!({"provider": name, "discovered_models": list})).into_response())
}
