//! `/team/*` and `/customer/*` (LiteLLM's end users) on Switchyard's teams and customers.

use std::collections::HashMap;
use std::sync::Arc;

use axum::body::Body;
use axum::extract::{Query, State};
use axum::Json;
use serde::Deserialize;
use serde_json::{json, Value};
use switchyard_core::governance::Group;
use switchyard_core::litellm::groups::{customer_record, new_group, team_record, CustomerBody, TeamBody};
use switchyard_core::litellm::keys::{key_record, KeyMeta};
use switchyard_core::ValidationError;

use super::spend::{spend_by, SpendOf};
use super::{bad_request, load_meta, not_found, read_body, save_meta, Answer, Master};
use crate::governance_api::{insert_group, remove_group, update_group_with};
use switchyard_runtime::error::GatewayError;
use switchyard_runtime::governance::now_ms;
use switchyard_runtime::state::AppState;

fn team_meta(id: &str) -> String {
    format!("litellm.team.{id}")
}

async fn team_view(state: &AppState, g: &Group) -> Value {
    team_view_with(state, g, &spend_by(state, SpendOf::Team).await).await
}

async fn team_view_with(state: &AppState, g: &Group, spend: &HashMap<String, f64>) -> Value {
    let meta: Value = load_meta(state, &team_meta(&g.id)).await;
    let mut out = team_record(g, spend.get(&g.id).copied().unwrap_or(0.0), &meta);
    out["currency"] = state.governance.currency().code().into();
    out
}

fn valid_id(field: &str, id: &str) -> Result<(), ValidationError> {
    let ok = !id.is_empty()
        && id.len() <= 128
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'@'));
    if ok {
        Ok(())
    } else {
        Err(ValidationError::new(
            field,
            "must be 1-128 characters of letters, digits, '-', '_', '.' or '@'",
        ))
    }
}

/// `POST /team/new {team_alias, team_id?, max_budget, budget_duration, tpm_limit, rpm_limit, metadata}`.
pub async fn team_new(State(state): State<Arc<AppState>>, _m: Master, body: Body) -> Answer {
    let b: TeamBody = read_body(body).await?;
    let id = b
        .team_id
        .clone()
        .unwrap_or_else(|| uuid::Uuid::new_v4().to_string());
    valid_id("team_id", &id)?;
    let mut g = new_group(
        id.clone(),
        b.team_alias.clone().unwrap_or_else(|| id.clone()),
        now_ms(),
    );
    b.apply(&mut g)?;
    if state.governance.snapshot().team(&id).is_some() {
        return Err(bad_request("team_id", format!("team '{id}' already exists")));
    }
    insert_group(&state.governance, true, &g).await?;
    if let Some(m) = &b.metadata {
        save_meta(&state, &team_meta(&id), m).await?;
    }
    Ok(Json(team_view(&state, &g).await))
}

#[derive(Deserialize)]
pub struct TeamQuery {
    team_id: Option<String>,
}

/// `GET /team/info?team_id=`: the team and its keys (tokens and records, never values).
pub async fn team_info(State(state): State<Arc<AppState>>, _m: Master, Query(q): Query<TeamQuery>) -> Answer {
    let id = q
        .team_id
        .ok_or_else(|| bad_request("team_id", "team_id is required"))?;
    let snap = state.governance.snapshot();
    let g = snap
        .team(&id)
        .ok_or_else(|| not_found(format!("team '{id}' not found")))?;
    let key_spend = spend_by(&state, SpendOf::Key).await;
    let mut keys = Vec::new();
    for vk in snap
        .keys
        .iter()
        .filter(|k| k.team_id.as_deref() == Some(id.as_str()))
    {
        let meta: Option<KeyMeta> = load_meta(&state, &format!("litellm.key.{}", vk.id)).await;
        let spend = key_spend.get(&vk.id).copied().unwrap_or(0.0);
        keys.push(key_record(vk, &meta.unwrap_or_else(KeyMeta::native), spend));
    }
    Ok(Json(
        json!({"team_id": id, "team_info": team_view(&state, g).await, "keys": keys}),
    ))
}

/// `POST /team/update {team_id, ...}`.
pub async fn team_update(State(state): State<Arc<AppState>>, _m: Master, body: Body) -> Answer {
    let b: TeamBody = read_body(body).await?;
    let id = b
        .team_id
        .clone()
        .ok_or_else(|| bad_request("team_id", "team_id is required"))?;
    let g = update_group_with(&state.governance, true, &id, |cur| {
        let mut g = cur.clone();
        b.apply(&mut g).map_err(GatewayError::from)?;
        Ok(g)
    })
    .await?;
    if let Some(m) = &b.metadata {
        save_meta(&state, &team_meta(&id), m).await?;
    }
    Ok(Json(json!({"team_id": id, "data": team_view(&state, &g).await})))
}

pub async fn team_list(State(state): State<Arc<AppState>>, _m: Master) -> Answer {
    let snap = state.governance.snapshot();
    let spend = spend_by(&state, SpendOf::Team).await;
    let mut out = Vec::new();
    for g in &snap.teams {
        out.push(team_view_with(&state, g, &spend).await);
    }
    Ok(Json(Value::Array(out)))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TeamIds {
    team_ids: Vec<String>,
}

/// `POST /team/delete {"team_ids": [...]}`: every team must exist, or nothing is deleted.
pub async fn team_delete(State(state): State<Arc<AppState>>, _m: Master, body: Body) -> Answer {
    let b: TeamIds = read_body(body).await?;
    let snap = state.governance.snapshot();
    if let Some(missing) = b.team_ids.iter().find(|t| snap.team(t).is_none()) {
        return Err(not_found(format!("team '{missing}' not found")));
    }
    for t in &b.team_ids {
        remove_group(&state.governance, true, t).await?;
        save_meta(&state, &team_meta(t), &Value::Null).await?;
    }
    Ok(Json(json!({"deleted_teams": b.team_ids})))
}

async fn customer_view(state: &AppState, g: &Group) -> Value {
    let spend = spend_by(state, SpendOf::Customer)
        .await
        .get(&g.id)
        .copied()
        .unwrap_or(0.0);
    let mut out = customer_record(g, spend);
    out["currency"] = state.governance.currency().code().into();
    out
}

/// `POST /customer/new {user_id, alias?, max_budget, budget_duration, tpm_limit, rpm_limit}`.
pub async fn customer_new(State(state): State<Arc<AppState>>, _m: Master, body: Body) -> Answer {
    let b: CustomerBody = read_body(body).await?;
    let id = b
        .user_id
        .clone()
        .ok_or_else(|| bad_request("user_id", "user_id is required"))?;
    valid_id("user_id", &id)?;
    let mut g = new_group(id.clone(), id.clone(), now_ms());
    b.apply(&mut g)?;
    if state.governance.snapshot().customer(&id).is_some() {
        return Err(bad_request("user_id", format!("customer '{id}' already exists")));
    }
    insert_group(&state.governance, false, &g).await?;
    Ok(Json(customer_view(&state, &g).await))
}

#[derive(Deserialize)]
pub struct CustomerQuery {
    end_user_id: Option<String>,
}

pub async fn customer_info(
    State(state): State<Arc<AppState>>,
    _m: Master,
    Query(q): Query<CustomerQuery>,
) -> Answer {
    let id = q
        .end_user_id
        .ok_or_else(|| bad_request("end_user_id", "end_user_id is required"))?;
    let snap = state.governance.snapshot();
    let g = snap
        .customer(&id)
        .ok_or_else(|| not_found(format!("end user '{id}' not found")))?;
    Ok(Json(customer_view(&state, g).await))
}

/// `POST /customer/update {user_id, ...}`.
pub async fn customer_update(State(state): State<Arc<AppState>>, _m: Master, body: Body) -> Answer {
    let b: CustomerBody = read_body(body).await?;
    let id = b
        .user_id
        .clone()
        .ok_or_else(|| bad_request("user_id", "user_id is required"))?;
    let g = update_group_with(&state.governance, false, &id, |cur| {
        let mut g = cur.clone();
        b.apply(&mut g).map_err(GatewayError::from)?;
        Ok(g)
    })
    .await?;
    Ok(Json(customer_view(&state, &g).await))
}

pub async fn customer_list(State(state): State<Arc<AppState>>, _m: Master) -> Answer {
    let snap = state.governance.snapshot();
    let spend = spend_by(&state, SpendOf::Customer).await;
    let out: Vec<Value> = snap
        .customers
        .iter()
        .map(|g| {
            let mut out = customer_record(g, spend.get(&g.id).copied().unwrap_or(0.0));
            out["currency"] = state.governance.currency().code().into();
            out
        })
        .collect();
    Ok(Json(Value::Array(out)))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UserIds {
    user_ids: Vec<String>,
}

/// `POST /customer/delete {"user_ids": [...]}`.
pub async fn customer_delete(State(state): State<Arc<AppState>>, _m: Master, body: Body) -> Answer {
    let b: UserIds = read_body(body).await?;
    let snap = state.governance.snapshot();
    if let Some(missing) = b.user_ids.iter().find(|c| snap.customer(c).is_none()) {
        return Err(not_found(format!("end user '{missing}' not found")));
    }
    for c in &b.user_ids {
        remove_group(&state.governance, false, c).await?;
    }
    Ok(Json(json!({"deleted_customers": b.user_ids})))
}
