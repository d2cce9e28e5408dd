//! LiteLLM's management API on Switchyard's governance: `/key/*`, `/team/*`, `/customer/*`, spend
//! views, `/model/info` and LiteLLM's health probes. Every write goes through the native write paths
//! (`governance::api::insert_virtual_key`, `update_virtual_key_with`, ...), so there is one set of
//! keys, visible and manageable through both APIs. What a virtual key has no place for (LiteLLM's
//! `metadata`, `user_id`) is kept in the governance store's settings, by key id.
//!
//! Management routes need the master key (`SWITCHYARD_MASTER_KEY`) or an admin token, sent as
//! `Authorization: Bearer` or `x-litellm-api-key`. Errors have the shape `{"error": {"message",
//! "type", "param", "code"}}` (`ApiError`).

pub mod config_yaml;
mod groups;
mod keys;
mod spend;

use std::sync::Arc;

use axum::extract::{FromRequestParts, State};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use http::request::Parts;
use serde::de::DeserializeOwned;
use serde_json::{json, Value};
use switchyard_core::governance::hash_vk_value;
use switchyard_core::litellm::{presented, MasterKeys};

use switchyard_runtime::error::{ApiError, GatewayError};
use switchyard_runtime::security::SecurityConfig;
use switchyard_runtime::state::AppState;

pub(crate) type Answer = Result<Json<Value>, ApiError>;

const MAX_BODY: usize = 1024 * 1024;

/// The master key and the admin tokens, as digests.
pub fn master_keys(security: &SecurityConfig) -> MasterKeys {
    MasterKeys::new(
        security.master_key.as_ref().map(|s| s.expose()),
        security.admin.tokens.iter().map(|t| t.expose()),
    )
}

pub fn router() -> Router<Arc<AppState>> {
    Router::new()
        .route("/key/generate", post(keys::generate))
        .route("/key/info", get(keys::info))
        .route("/v2/key/info", post(keys::info_v2))
        .route("/key/update", post(keys::update))
        .route("/key/block", post(keys::block))
        .route("/key/unblock", post(keys::unblock))
        .route("/key/delete", post(keys::delete))
        .route("/key/regenerate", post(keys::regenerate))
        .route("/key/{key}/regenerate", post(keys::regenerate_path))
        .route("/key/list", get(keys::list))
        .route("/team/new", post(groups::team_new))
        .route("/team/info", get(groups::team_info))
        .route("/team/update", post(groups::team_update))
        .route("/team/list", get(groups::team_list))
        .route("/team/delete", post(groups::team_delete))
        .route("/customer/new", post(groups::customer_new))
        .route("/customer/info", get(groups::customer_info))
        .route("/customer/update", post(groups::customer_update))
        .route("/customer/list", get(groups::customer_list))
        .route("/customer/delete", post(groups::customer_delete))
        .route("/end_user/new", post(groups::customer_new))
        .route("/end_user/info", get(groups::customer_info))
        .route("/end_user/delete", post(groups::customer_delete))
        .route("/spend/logs", get(spend::logs))
        .route("/global/spend/report", get(spend::report))
        .route("/global/spend/reset", post(spend::reset))
        .route("/model/info", get(model_info))
        .route("/v1/model/info", get(model_info))
        .route("/health/liveliness", get(liveliness))
        .route("/health/liveness", get(liveliness))
        .route("/health/readiness", get(readiness))
}

/// Proof that the request carries the master key (or an admin token). Refuses with 401 otherwise.
pub(crate) struct Master;

impl FromRequestParts<Arc<AppState>> for Master {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &Arc<AppState>) -> Result<Self, ApiError> {
        let given = presented(|n| parts.headers.get(n).and_then(|v| v.to_str().ok()));
        if !state.master_keys.is_configured() {
            return Err(unauthorized(
                "no master key is configured: set SWITCHYARD_MASTER_KEY (or admin tokens) to use the LiteLLM management API",
            ));
        }
        match given {
            Some(v) if state.master_keys.matches(v) => Ok(Master),
            Some(_) => Err(unauthorized("the master key sent is not valid")),
            None => Err(unauthorized(
                "master key required: send 'Authorization: Bearer <master key>' or 'x-litellm-api-key: <master key>'",
            )),
        }
    }
}

/// Who calls a read route: the master key, or a virtual key asking about itself.
pub(crate) enum Reader {
    Master,
    /// The SHA-256 of the virtual key value presented.
    Key(String),
}

impl FromRequestParts<Arc<AppState>> for Reader {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &Arc<AppState>) -> Result<Self, ApiError> {
        let given = presented(|n| parts.headers.get(n).and_then(|v| v.to_str().ok()));
        match given {
            Some(v) if state.master_keys.matches(v) => Ok(Reader::Master),
            Some(v) => {
                let hash = hash_vk_value(v);
                let snap = state.governance.snapshot();
                match snap.by_value_hash(&hash) {
                    Some(k) if k.is_active => Ok(Reader::Key(hash)),
                    _ => Err(unauthorized(
                        "the key sent is neither the master key nor an active key",
                    )),
                }
            }
            None => Err(unauthorized(
                "send the master key or a key as 'Authorization: Bearer ...' or 'x-litellm-api-key: ...'",
            )),
        }
    }
}

pub(crate) fn unauthorized(message: &str) -> ApiError {
    GatewayError::Unauthorized {
        message: message.to_owned(),
        code: "litellm_auth_error",
    }
    .into()
}

pub(crate) fn bad_request(param: &str, message: impl Into<String>) -> ApiError {
    bad_param(param, message).into()
}

pub(crate) fn bad_param(param: &str, message: impl Into<String>) -> GatewayError {
    GatewayError::BadRequest {
        message: message.into(),
        param: Some(param.to_owned()),
    }
}

pub(crate) fn not_found(message: impl Into<String>) -> ApiError {
    GatewayError::NotFound {
        message: message.into(),
        code: Some("not_found"),
    }
    .into()
}

/// A JSON body, size-limited, every error naming its field.
pub(crate) async fn read_body<T: DeserializeOwned>(body: axum::body::Body) -> Result<T, ApiError> {
    let bytes = switchyard_runtime::body::read_limited(body, MAX_BODY).await?;
    let bytes = if bytes.iter().all(u8::is_ascii_whitespace) {
        bytes::Bytes::from_static(b"{}")
    } else {
        bytes
    };
    Ok(switchyard_runtime::body::parse_json(&bytes)?)
}

/// LiteLLM-side data of an entity, kept in the governance store's settings.
pub(crate) async fn load_meta<T: DeserializeOwned + Default>(state: &AppState, name: &str) -> T {
    match state.governance.store().get_setting(name).await {
        Ok(Some(v)) if !v.is_null() => serde_json::from_value(v).unwrap_or_default(),
        _ => T::default(),
    }
}

pub(crate) async fn save_meta(state: &AppState, name: &str, value: &Value) -> Result<(), ApiError> {
    state
        .governance
        .store()
        .put_setting(name, value)
        .await
        .map_err(|e| ApiError::from(GatewayError::Store(e)))
}

/// `/model/info`, `/v1/model/info`: every routable model name with its provider, no secrets.
async fn model_info(State(state): State<Arc<AppState>>, _who: Reader) -> Answer {
    let config = state.config.snapshot();
    let mut data = Vec::new();
    for p in &config.providers {
        let mut names: Vec<&str> = Vec::new();
        for k in &p.keys {
            for m in k.config.models.iter().filter(|m| m.as_str() != "*") {
                if !names.contains(&m.as_str()) {
                    names.push(m);
                }
            }
        }
        for m in names {
            data.push(json!({
                "model_name": m,
                "litellm_params": {"model": format!("{}/{m}", p.config.name)},
                "model_info": {"id": format!("{}/{m}", p.config.name), "provider": p.config.name.to_string()},
            }));
        }
    }
    Ok(Json(json!({"data": data})))
}

async fn liveliness() -> Json<Value> {
    Json(json!("I'm alive!"))
}

async fn readiness(State(state): State<Arc<AppState>>) -> Response {
    let db = state.config.ping().await.is_ok();
    let body = json!({
        "status": if db { "healthy" } else { "unhealthy" },
        "db": if db { "connected" } else { "disconnected" },
        "cache": state.governance.counters.kind(),
        "litellm_version": concat!("switchyard-", env!("CARGO_PKG_VERSION")),
    });
    let status = if db {
        http::StatusCode::OK
    } else {
        http::StatusCode::SERVICE_UNAVAILABLE
    };
    (status, Json(body)).into_response()
}
