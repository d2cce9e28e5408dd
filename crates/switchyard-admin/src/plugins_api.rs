//! Bifrost's plugin API for the one built-in plugin, `semantic_cache` (the response cache):
//! `GET/POST /api/plugins`, `GET/PUT/DELETE /api/plugins/{name}`; and the cache's own panel data,
//! `GET /api/cache/stats` and `DELETE /api/cache` (clear). A plugin is kept in the governance store,
//! so it survives restarts and replicas on one PostgreSQL read the same one.

use std::sync::Arc;

use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::Json;
use serde_json::{json, Value};
use switchyard_runtime::body::{parse_json, read_limited};
use switchyard_runtime::cache::{read_plugin, ActivePlugin};
use switchyard_runtime::error::{ApiError, GatewayError};
use switchyard_runtime::state::AppState;

const MAX_BODY: usize = 64 * 1024;

type Answer = Result<Json<Value>, ApiError>;

fn view(p: &ActivePlugin) -> Value {
    json!({
        "name": p.input.name,
        "enabled": p.input.enabled,
        "config": p.input.config,
        "path": null,
        "placement": "pre_builtin",
        "order": 0,
    })
}

fn not_found(name: &str) -> GatewayError {
    GatewayError::NotFound {
        message: format!("plugin '{name}' not found; create it with POST /api/plugins"),
        code: Some("plugin_not_found"),
    }
}

async fn read_body(body: Body) -> Result<Value, GatewayError> {
    let bytes = read_limited(body, MAX_BODY).await?;
    parse_json(&bytes)
}

pub async fn list_plugins(State(state): State<Arc<AppState>>) -> Answer {
    let plugins: Vec<Value> = state.cache.plugin().iter().map(view).collect();
    Ok(Json(json!({"count": plugins.len(), "plugins": plugins})))
}

pub async fn create_plugin(
    State(state): State<Arc<AppState>>,
    body: Body,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    let v = read_body(body).await?;
    let plugin = read_plugin(&v, "").map_err(GatewayError::from)?;
    let gov = &state.governance;
    let _w = gov.lock_writes().await;
    state
        .cache
        .load(gov.store().as_ref())
        .await
        .map_err(GatewayError::from)?;
    if state.cache.plugin().is_some() {
        return Err(GatewayError::Conflict(format!(
            "plugin '{}' already exists; change it with PUT /api/plugins/{}",
            plugin.input.name, plugin.input.name
        ))
        .into());
    }
    state
        .cache
        .save(gov.store().as_ref(), Some(plugin.clone()))
        .await
        .map_err(GatewayError::from)?;
    Ok((
        StatusCode::CREATED,
        Json(json!({"message": "plugin created", "plugin": view(&plugin)})),
    ))
}

pub async fn get_plugin(State(state): State<Arc<AppState>>, Path(name): Path<String>) -> Answer {
    match state.cache.plugin().filter(|p| p.input.name == name) {
        Some(p) => Ok(Json(view(&p))),
        None => Err(not_found(&name).into()),
    }
}

/// Replaces the plugin (creates it when missing); a body `name` must match the path.
pub async fn update_plugin(
    State(state): State<Arc<AppState>>,
    Path(name): Path<String>,
    body: Body,
) -> Answer {
    let mut v = read_body(body).await?;
    if let Some(obj) = v.as_object_mut() {
        match obj.get("name") {
            None | Some(Value::Null) => {
                obj.insert("name".into(), json!(name));
            }
            Some(n) if n.as_str() == Some(name.as_str()) => {}
            Some(_) => {
                return Err(GatewayError::BadRequest {
                    message: format!("name must match the plugin in the path ('{name}')"),
                    param: Some("name".into()),
                }
                .into())
            }
        }
    }
    let plugin = read_plugin(&v, "").map_err(GatewayError::from)?;
    let gov = &state.governance;
    let _w = gov.lock_writes().await;
    state
        .cache
        .save(gov.store().as_ref(), Some(plugin.clone()))
        .await
        .map_err(GatewayError::from)?;
    Ok(Json(
        json!({"message": "plugin updated", "plugin": view(&plugin)}),
    ))
}

pub async fn delete_plugin(State(state): State<Arc<AppState>>, Path(name): Path<String>) -> Answer {
    let gov = &state.governance;
    let _w = gov.lock_writes().await;
    if state.cache.plugin().filter(|p| p.input.name == name).is_none() {
        return Err(not_found(&name).into());
    }
    state
        .cache
        .save(gov.store().as_ref(), None)
        .await
        .map_err(GatewayError::from)?;
    Ok(Json(json!({"message": "plugin deleted"})))
}

/// What the cache panel shows: on/off, TTL, threshold, hit rate, entries, where entries live.
pub async fn cache_stats(State(state): State<Arc<AppState>>) -> Answer {
    let cache = &state.cache;
    let (hits, misses) = cache.hits_and_misses();
    let lookups = hits + misses;
    let entries = cache.store().entries().await.ok();
    let plugin = cache.plugin();
    let config = plugin.as_ref().map(|p| &p.config);
    Ok(Json(json!({
        "configured": plugin.is_some(),
        "enabled": config.is_some_and(|c| c.enabled),
        "mode": match config { Some(c) if c.semantic.is_some() => "semantic", Some(_) => "direct", None => "off" },
        "ttl_seconds": config.map(|c| c.ttl.as_secs_f64()),
        "threshold": config.map(|c| c.threshold),
        "default_cache_key": config.and_then(|c| c.default_cache_key.clone()),
        "store": cache.store().kind(),
        "entries": entries,
        "hits": hits,
        "misses": misses,
        "hit_rate": (lookups > 0).then(|| hits as f64 / lookups as f64),
    })))
}

pub async fn clear_cache(State(state): State<Arc<AppState>>) -> Answer {
    let n = state
        .cache
        .store()
        .clear()
        .await
        .map_err(|e| GatewayError::Unavailable(e.to_string()))?;
    Ok(Json(json!({"message": "cache cleared", "cleared": n})))
}
