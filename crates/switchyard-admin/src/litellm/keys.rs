//! `/key/*`: generate, info, update, block/unblock, delete, regenerate (rotation), list.

use std::sync::Arc;

use axum::body::Body;
use axum::extract::{Path, Query, State};
use axum::Json;
use serde::Deserialize;
use serde_json::{json, Value};
use switchyard_core::governance::{hash_vk_value, vk_hint, VirtualKey, VK_PREFIX};
use switchyard_core::litellm::keys::{key_record, validate_custom_key, KeyBody, KeyMeta};

use super::spend::{spend_by, SpendOf};
use super::{bad_request, load_meta, not_found, read_body, save_meta, Answer, Master, Reader};
use crate::governance_api::{insert_virtual_key, remove_virtual_key, update_virtual_key_with};
use switchyard_runtime::error::{ApiError, GatewayError};
use switchyard_runtime::governance::{now_ms, GovSnapshot};
use switchyard_runtime::state::AppState;

fn meta_name(id: &str) -> String {
    format!("litellm.key.{id}")
}

async fn meta_of(state: &AppState, id: &str) -> KeyMeta {
    let stored: Option<KeyMeta> = load_meta(state, &meta_name(id)).await;
    stored.unwrap_or_else(KeyMeta::native)
}

/// A key named by its value, its token (the SHA-256 LiteLLM calls `token`) or its native id.
fn find(snap: &GovSnapshot, given: &str) -> Option<Arc<VirtualKey>> {
    snap.by_value_hash(&hash_vk_value(given))
        .or_else(|| snap.by_value_hash(given))
        .or_else(|| snap.key(given))
        .cloned()
}

fn unknown_key() -> ApiError {
    not_found("key not found: it is not (or no longer) a key of this gateway")
}

fn fresh_value() -> String {
    format!(
        "{VK_PREFIX}{}{}",
        uuid::Uuid::new_v4().simple(),
        uuid::Uuid::new_v4().simple()
    )
}

/// What lists show of a value: Switchyard's own keys their usual hint, custom keys `sk-…` and the
/// last four characters (LiteLLM's `key_name`), so a short custom value is never half shown.
fn hint(value: &str) -> String {
    if value.starts_with(VK_PREFIX) {
        return vk_hint(value);
    }
    let tail: String = value
        .chars()
        .rev()
        .take(4)
        .collect::<Vec<_>>()
        .into_iter()
        .rev()
        .collect();
    format!("sk-…{tail}")
}

fn provider_names(state: &AppState) -> Vec<String> {
    state
        .config
        .snapshot()
        .providers
        .iter()
        .map(|p| p.config.name.to_string())
        .collect()
}

async fn record(state: &AppState, vk: &VirtualKey) -> Value {
    let spend = spend_by(state, SpendOf::Key)
        .await
        .get(&vk.id)
        .copied()
        .unwrap_or(0.0);
    let mut out = key_record(vk, &meta_of(state, &vk.id).await, spend);
    out["currency"] = state.governance.currency().code().into();
    out
}

/// `POST /key/generate`: a new key; the only answer that shows its value.
pub async fn generate(State(state): State<Arc<AppState>>, _m: Master, body: Body) -> Answer {
    let b: KeyBody = read_body(body).await?;
    let value = match &b.key {
        Some(k) => {
            validate_custom_key(k)?;
            k.clone()
        }
        None => fresh_value(),
    };
    let now = now_ms();
    let value_hash = hash_vk_value(&value);
    let mut vk = VirtualKey {
        id: uuid::Uuid::new_v4().to_string(),
        name: format!("key-{}", &value_hash[..12]),
        description: "created with LiteLLM's /key/generate".into(),
        value_hash,
        value_hint: hint(&value),
        team_id: None,
        customer_id: None,
        provider_configs: Vec::new(),
        allow_all_providers: false,
        budgets: Vec::new(),
        rate_limit: None,
        max_concurrent_requests: None,
        is_active: true,
        expires_at_ms: None,
        created_at_ms: now,
        mcp_configs: Vec::new(),
    };
    let mut meta = KeyMeta::default();
    b.apply(&mut vk, &mut meta, &provider_names(&state), now)?;
    if state
        .governance
        .snapshot()
        .by_value_hash(&vk.value_hash)
        .is_some()
    {
        return Err(bad_request(
            "key",
            "this key already exists; choose another value",
        ));
    }
    insert_virtual_key(&state.governance, &vk).await?;
    save_meta(
        &state,
        &meta_name(&vk.id),
        &serde_json::to_value(&meta).unwrap_or_default(),
    )
    .await?;
    let mut out = key_record(&vk, &meta, 0.0);
    out["key"] = json!(value);
    Ok(Json(out))
}

#[derive(Deserialize)]
pub struct InfoQuery {
    key: Option<String>,
}

/// `GET /key/info?key=<key or token>`: the master key sees every key, a key sees itself (also
/// without `key=`).
pub async fn info(State(state): State<Arc<AppState>>, who: Reader, Query(q): Query<InfoQuery>) -> Answer {
    let snap = state.governance.snapshot();
    let vk = match (&who, q.key.as_deref()) {
        (_, Some(k)) => find(&snap, k).ok_or_else(unknown_key)?,
        (Reader::Key(hash), None) => snap.by_value_hash(hash).cloned().ok_or_else(unknown_key)?,
        (Reader::Master, None) => {
            return Err(bad_request("key", "name the key: /key/info?key=<key or token>"))
        }
    };
    if let Reader::Key(hash) = &who {
        if &vk.value_hash != hash {
            return Err(super::unauthorized("a key may only read its own info"));
        }
    }
    Ok(Json(
        json!({"key": vk.value_hash, "info": record(&state, &vk).await}),
    ))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KeysBody {
    keys: Vec<String>,
}

/// `POST /v2/key/info {"keys": [...]}`.
pub async fn info_v2(State(state): State<Arc<AppState>>, _m: Master, body: Body) -> Answer {
    let b: KeysBody = read_body(body).await?;
    let snap = state.governance.snapshot();
    let (mut tokens, mut out) = (Vec::new(), Vec::new());
    for k in &b.keys {
        if let Some(vk) = find(&snap, k) {
            tokens.push(vk.value_hash.clone());
            out.push(record(&state, &vk).await);
        }
    }
    Ok(Json(json!({"key": tokens, "info": out})))
}

/// Applies `change` to the key named `given` through the native write path, saving its meta too.
async fn change_key(
    state: &AppState,
    given: &str,
    change: impl FnOnce(&mut VirtualKey, &mut KeyMeta) -> Result<(), GatewayError>,
) -> Result<(VirtualKey, KeyMeta), ApiError> {
    let current = find(&state.governance.snapshot(), given).ok_or_else(unknown_key)?;
    let mut meta = meta_of(state, &current.id).await;
    let updated = update_virtual_key_with(&state.governance, &current.id, |cur| {
        let mut vk = cur.clone();
        change(&mut vk, &mut meta)?;
        Ok(vk)
    })
    .await?;
    save_meta(
        state,
        &meta_name(&updated.id),
        &serde_json::to_value(&meta).unwrap_or_default(),
    )
    .await?;
    Ok((updated, meta))
}

fn key_param(b: &KeyBody) -> Result<String, GatewayError> {
    b.key
        .clone()
        .ok_or_else(|| super::bad_param("key", "'key' (the key or its token) is required"))
}

/// `POST /key/update`: `key` names the key; the other fields change it (absent: kept, null: removed).
pub async fn update(State(state): State<Arc<AppState>>, _m: Master, body: Body) -> Answer {
    let b: KeyBody = read_body(body).await?;
    let given = key_param(&b)?;
    let providers = provider_names(&state);
    let (vk, _) = change_key(&state, &given, |vk, meta| {
        let mut without_key = b.clone();
        without_key.key = None;
        Ok(without_key.apply(vk, meta, &providers, now_ms())?)
    })
    .await?;
    Ok(Json(record(&state, &vk).await))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KeyOnly {
    key: String,
}

async fn set_blocked(state: &AppState, body: Body, blocked: bool) -> Answer {
    let b: KeyOnly = read_body(body).await?;
    let (vk, _) = change_key(state, &b.key, |vk, _| {
        vk.is_active = !blocked;
        Ok(())
    })
    .await?;
    Ok(Json(record(state, &vk).await))
}

/// `POST /key/block {"key"}`: the key is refused on inference at once; answers the record.
pub async fn block(State(state): State<Arc<AppState>>, _m: Master, body: Body) -> Answer {
    set_blocked(&state, body, true).await
}

pub async fn unblock(State(state): State<Arc<AppState>>, _m: Master, body: Body) -> Answer {
    set_blocked(&state, body, false).await
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DeleteBody {
    #[serde(default)]
    keys: Vec<String>,
    #[serde(default)]
    key_aliases: Vec<String>,
}

/// `POST /key/delete {"keys": [...]}` (or `key_aliases`): all named keys exist, or nothing is
/// deleted. Answers the tokens of the deleted keys, never their values.
pub async fn delete(State(state): State<Arc<AppState>>, _m: Master, body: Body) -> Answer {
    let b: DeleteBody = read_body(body).await?;
    if b.keys.is_empty() && b.key_aliases.is_empty() {
        return Err(bad_request("keys", "name the keys to delete: {\"keys\": [...]}"));
    }
    let snap = state.governance.snapshot();
    let mut found = Vec::new();
    for (i, k) in b.keys.iter().enumerate() {
        let vk = find(&snap, k).ok_or_else(|| not_found(format!("keys[{i}]: key not found")))?;
        found.push(vk);
    }
    for a in &b.key_aliases {
        let vk = snap.keys.iter().find(|k| &k.name == a).cloned();
        found.push(vk.ok_or_else(|| not_found(format!("no key with key_alias '{a}'")))?);
    }
    let mut deleted = Vec::new();
    for vk in found {
        remove_virtual_key(&state.governance, &vk.id).await?;
        save_meta(&state, &meta_name(&vk.id), &Value::Null).await?;
        deleted.push(vk.value_hash.clone());
    }
    Ok(Json(json!({"deleted_keys": deleted})))
}

/// Rotation: a new value for the same key (id, alias, limits and usage carried over); the old value
/// is refused from the next request on. Other `/key/update` fields may come along.
async fn rotate(state: &AppState, given: &str, mut b: KeyBody) -> Answer {
    let value = match b.new_key.take() {
        Some(v) => {
            validate_custom_key(&v).map_err(|mut e| {
                e.field = "new_key".into();
                e
            })?;
            v
        }
        None => fresh_value(),
    };
    b.key = None;
    let providers = provider_names(state);
    let (vk, meta) = change_key(state, given, |vk, meta| {
        b.apply(vk, meta, &providers, now_ms())?;
        vk.value_hash = hash_vk_value(&value);
        vk.value_hint = hint(&value);
        Ok(())
    })
    .await?;
    let spend = spend_by(state, SpendOf::Key)
        .await
        .get(&vk.id)
        .copied()
        .unwrap_or(0.0);
    let mut out = key_record(&vk, &meta, spend);
    out["key"] = json!(value);
    Ok(Json(out))
}

/// `POST /key/regenerate {"key": ...}`.
pub async fn regenerate(State(state): State<Arc<AppState>>, _m: Master, body: Body) -> Answer {
    let b: KeyBody = read_body(body).await?;
    let given = key_param(&b)?;
    rotate(&state, &given, b).await
}

/// `POST /key/{key}/regenerate` (body optional).
pub async fn regenerate_path(
    State(state): State<Arc<AppState>>,
    _m: Master,
    Path(key): Path<String>,
    body: Body,
) -> Answer {
    let b: KeyBody = read_body(body).await?;
    rotate(&state, &key, b).await
}

#[derive(Deserialize)]
pub struct ListQuery {
    return_full_object: Option<bool>,
    key_alias: Option<String>,
    team_id: Option<String>,
    user_id: Option<String>,
    page: Option<usize>,
    size: Option<usize>,
}

/// `GET /key/list`: tokens (or full records with `return_full_object=true`), never values.
pub async fn list(State(state): State<Arc<AppState>>, _m: Master, Query(q): Query<ListQuery>) -> Answer {
    let snap = state.governance.snapshot();
    let spend = spend_by(&state, SpendOf::Key).await;
    let mut rows = Vec::new();
    for vk in &snap.keys {
        let meta = meta_of(&state, &vk.id).await;
        let alias_ok = q
            .key_alias
            .as_ref()
            .is_none_or(|a| meta.has_alias && &vk.name == a);
        let team_ok = q.team_id.as_ref().is_none_or(|t| vk.team_id.as_ref() == Some(t));
        let user_ok = q
            .user_id
            .as_ref()
            .is_none_or(|u| meta.user_id.as_ref() == Some(u));
        if alias_ok && team_ok && user_ok {
            rows.push((vk.clone(), meta));
        }
    }
    let size = q.size.unwrap_or(100).clamp(1, 1000);
    let page = q.page.unwrap_or(1).max(1);
    let total = rows.len();
    let keys: Vec<Value> = rows
        .into_iter()
        .skip((page - 1) * size)
        .take(size)
        .map(|(vk, meta)| {
            if q.return_full_object == Some(true) {
                key_record(&vk, &meta, spend.get(&vk.id).copied().unwrap_or(0.0))
            } else {
                json!(vk.value_hash)
            }
        })
        .collect();
    Ok(Json(json!({
        "keys": keys,
        "total_count": total,
        "current_page": page,
        "total_pages": total.div_ceil(size),
    })))
}
