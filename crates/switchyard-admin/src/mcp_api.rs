//! The MCP gateway's management API in Bifrost's dialect: `GET /api/mcp/clients`,
//! `POST /api/mcp/client`, `PUT`/`DELETE /api/mcp/client/{id}`, `POST /api/mcp/client/{id}/reconnect`,
//! and the tool-call records at `GET /api/mcp-logs`. Registering a stdio client runs a program on the
//! gateway's host, which is why all of this is admin-only (`admin_check`, like every `/api/*` path).
//!
//! The clients are kept in the governance store as one setting (`mcp_clients`), written under the
//! governance write lock, and handed to the hub, which (re)connects what changed.

use std::sync::Arc;

use axum::body::Body;
use axum::extract::{Path, Query, State};
use axum::{Extension, Json};
use serde_json::{json, Value};
use switchyard_core::mcp::{McpClientConfig, McpClientInput, McpFileConfig};
use switchyard_logs::McpCallQuery;
use switchyard_mcp::hub::ClientView;
use switchyard_mcp::{Hub, HubSettings};
use switchyard_runtime::body::{parse_json, read_limited};
use switchyard_runtime::error::{ApiError, GatewayError};
use switchyard_runtime::governance::Governance;
use switchyard_runtime::state::AppState;
use switchyard_store::{open_secret, seal_secret, SealingKey};

/// The governance-store setting that holds the registered clients.
pub const MCP_CLIENTS: &str = "mcp_clients";
const MAX_BODY: usize = 1024 * 1024;

type Answer = Result<Json<Value>, ApiError>;
type H = Extension<Arc<Hub>>;

/// The stored clients (none when the setting is absent), header values opened.
pub async fn load(gov: &Governance, key: Option<&SealingKey>) -> Result<Vec<McpClientConfig>, GatewayError> {
    let Some(v) = gov.store().get_setting(MCP_CLIENTS).await? else {
        return Ok(Vec::new());
    };
    let mut clients: Vec<McpClientConfig> = serde_json::from_value(v)
        .map_err(|e| GatewayError::Unavailable(format!("stored MCP clients are unreadable: {e}")))?;
    for c in &mut clients {
        for (name, value) in &mut c.headers {
            *value = open_secret(key, value, &header_aad(&c.client_id, name)).map_err(|e| {
                GatewayError::Unavailable(format!("header '{name}' of MCP client '{}': {e}", c.name))
            })?;
        }
    }
    Ok(clients)
}

/// Writes the clients; with an encryption key, header values (upstream credentials) are sealed like
/// provider keys, each bound to its client and header name.
async fn save(
    gov: &Governance,
    key: Option<&SealingKey>,
    clients: &[McpClientConfig],
) -> Result<(), GatewayError> {
    let mut stored = clients.to_vec();
    for c in &mut stored {
        for (name, value) in &mut c.headers {
            *value = seal_secret(key, value, &header_aad(&c.client_id, name));
        }
    }
    gov.store().put_setting(MCP_CLIENTS, &json!(stored)).await?;
    Ok(())
}

fn header_aad(client_id: &str, header: &str) -> String {
    format!("mcp_client:{client_id}#headers.{header}")
}

/// Start-up: the stored clients, with `config.json`'s `mcp.client_configs` applied by name (a file
/// entry creates the client or replaces the stored one of that name), saved, and connected.
/// With an encryption key the clients are always written back, so header values stored in clear before
/// the key was set are sealed now.
pub async fn start(
    gov: &Governance,
    key: Option<&SealingKey>,
    hub: &Hub,
    file: Option<&McpFileConfig>,
) -> Result<usize, GatewayError> {
    let _w = gov.lock_writes().await;
    let mut clients = load(gov, key).await?;
    let mut applied = 0;
    if let Some(file) = file {
        let mut settings: HubSettings = hub.settings();
        if let Some(t) = file.tool_execution_timeout {
            settings.tool_execution_timeout = t;
        }
        if let Some(t) = file.tool_sync_interval {
            settings.timings.tool_sync_interval = t;
        }
        hub.set_settings(settings);
        for (i, input) in file.clients.iter().enumerate() {
            let at = |e: switchyard_core::ValidationError| GatewayError::BadRequest {
                message: format!("mcp.client_configs[{i}].{}: {}", e.field, e.message),
                param: Some(format!("mcp.client_configs[{i}].{}", e.field)),
            };
            let name = input.name.clone().unwrap_or_default();
            let config = match clients.iter().position(|c| c.name == name) {
                Some(pos) => {
                    let mut fresh = input.clone();
                    fresh.client_id = None;
                    let c = fresh.apply_update(&clients[pos]).map_err(at)?;
                    clients[pos] = c.clone();
                    c
                }
                None => {
                    let id = input.client_id.clone().unwrap_or_else(|| format!("file-{name}"));
                    let c = input.clone().into_new(id).map_err(at)?;
                    clients.push(c.clone());
                    c
                }
            };
            tracing::info!(client = %config.name, "MCP client from config.json");
            applied += 1;
        }
    }
    if file.is_some() || key.is_some() {
        save(gov, key, &clients).await?;
    }
    hub.sync(&clients);
    Ok(applied)
}

fn not_found(id: &str) -> GatewayError {
    GatewayError::NotFound {
        message: format!("MCP client '{id}' not found"),
        code: Some("not_found"),
    }
}

fn view(hub: &Hub, id: &str) -> Value {
    hub.views()
        .into_iter()
        .find(|v: &ClientView| v.config.client_id == id)
        .map_or(Value::Null, |v| json!(v))
}

pub async fn list(Extension(hub): H) -> Answer {
    let views = hub.views();
    Ok(Json(
        json!({"clients": views, "count": views.len(), "total_count": views.len()}),
    ))
}

pub async fn create(State(state): State<Arc<AppState>>, Extension(hub): H, body: Body) -> Answer {
    let bytes = read_limited(body, MAX_BODY).await?;
    let input: McpClientInput = parse_json(&bytes)?;
    let gov = &state.governance;
    let _w = gov.lock_writes().await;
    let mut clients = load(gov, state.sealing.as_ref()).await?;
    let id = input
        .client_id
        .clone()
        .unwrap_or_else(|| uuid::Uuid::new_v4().to_string());
    let config = input.into_new(id)?;
    if let Some(c) = clients
        .iter()
        .find(|c| c.name == config.name || c.client_id == config.client_id)
    {
        let what = if c.name == config.name {
            "name"
        } else {
            "client_id"
        };
        return Err(GatewayError::Conflict(format!("an MCP client with this {what} already exists")).into());
    }
    clients.push(config.clone());
    save(gov, state.sealing.as_ref(), &clients).await?;
    hub.upsert(config.clone());
    Ok(Json(json!({
        "status": "success",
        "message": "MCP client created",
        "client": view(&hub, &config.client_id),
    })))
}

pub async fn update(
    State(state): State<Arc<AppState>>,
    Extension(hub): H,
    Path(id): Path<String>,
    body: Body,
) -> Answer {
    let bytes = read_limited(body, MAX_BODY).await?;
    let input: McpClientInput = parse_json(&bytes)?;
    let gov = &state.governance;
    let _w = gov.lock_writes().await;
    let mut clients = load(gov, state.sealing.as_ref()).await?;
    let pos = clients
        .iter()
        .position(|c| c.client_id == id)
        .ok_or_else(|| not_found(&id))?;
    let config = input.apply_update(&clients[pos])?;
    if clients.iter().any(|c| c.client_id != id && c.name == config.name) {
        return Err(GatewayError::Conflict("an MCP client with this name already exists".into()).into());
    }
    clients[pos] = config.clone();
    save(gov, state.sealing.as_ref(), &clients).await?;
    hub.upsert(config);
    Ok(Json(
        json!({"status": "success", "message": "MCP client updated", "client": view(&hub, &id)}),
    ))
}

pub async fn delete(State(state): State<Arc<AppState>>, Extension(hub): H, Path(id): Path<String>) -> Answer {
    let gov = &state.governance;
    let _w = gov.lock_writes().await;
    let mut clients = load(gov, state.sealing.as_ref()).await?;
    let before = clients.len();
    clients.retain(|c| c.client_id != id);
    if clients.len() == before {
        return Err(not_found(&id).into());
    }
    save(gov, state.sealing.as_ref(), &clients).await?;
    hub.remove(&id);
    Ok(Json(
        json!({"status": "success", "message": "MCP client removed"}),
    ))
}

pub async fn reconnect(Extension(hub): H, Path(id): Path<String>) -> Answer {
    if !hub.reconnect(&id) {
        return Err(not_found(&id).into());
    }
    Ok(Json(
        json!({"status": "success", "message": "MCP client reconnecting"}),
    ))
}

#[derive(serde::Deserialize)]
pub struct LogsQuery {
    limit: Option<usize>,
    server: Option<String>,
    virtual_key_id: Option<String>,
}

/// The newest tool-call records first (`limit`, default 100, at most 1000; `server`, `virtual_key_id`):
/// from the log store, or from the hub's memory when request logging is off.
pub async fn logs(
    Extension(hub): H,
    query: Result<Query<LogsQuery>, axum::extract::rejection::QueryRejection>,
) -> Answer {
    let Query(q) = query.map_err(|e| GatewayError::BadRequest {
        message: e.body_text(),
        param: None,
    })?;
    let limit = q.limit.unwrap_or(100).clamp(1, 1000);
    let (logs, total) = match hub.store() {
        Some(store) => {
            let query = McpCallQuery {
                server: q.server,
                virtual_key_id: q.virtual_key_id,
                limit: limit as u32,
            };
            store
                .mcp_calls(&query)
                .await
                .map_err(|e| GatewayError::Unavailable(format!("the log store failed: {e}")))?
        }
        None => {
            let (logs, total) = hub.records(q.server.as_deref(), q.virtual_key_id.as_deref(), limit);
            (logs, total as u64)
        }
    };
    Ok(Json(
        json!({"logs": logs, "count": logs.len(), "total_count": total}),
    ))
}
