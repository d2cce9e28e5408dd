//! `/api/governance/*` and `/api/config`: virtual keys, teams, customers, price overrides, spend views
//! and the client setting `enforce_auth_on_inference`. A key's value is shown once, in the answer that
//! creates it; every other view shows only its hint.

use std::sync::Arc;

use axum::body::Body;
use axum::extract::{Path, Query, State};
use axum::Json;
use serde::Deserialize;
use serde_json::{json, Value};
use switchyard_core::governance::admission::{limit_checks, nanos_to_usd};
use switchyard_core::governance::window::format_rfc3339;
use switchyard_core::governance::{
    hash_vk_value, vk_hint, Estimate, Group, GroupInput, LimitKind, VirtualKey, VirtualKeyInput, VK_PREFIX,
};
use switchyard_store::{GroupKind, PriceOverride};

use switchyard_runtime::body::{parse_json, read_limited};
use switchyard_runtime::error::{ApiError, GatewayError};
use switchyard_runtime::governance::{now_ms, Governance, CLIENT_CONFIG};
use switchyard_runtime::state::AppState;

const MAX_BODY: usize = 1024 * 1024;

type Answer = Result<Json<Value>, ApiError>;

fn not_found(what: &str, id: &str) -> GatewayError {
    GatewayError::NotFound {
        message: format!("{what} '{id}' not found"),
        code: Some("not_found"),
    }
}

fn new_value() -> String {
    format!(
        "{VK_PREFIX}{}{}",
        uuid::Uuid::new_v4().simple(),
        uuid::Uuid::new_v4().simple()
    )
}

/// Current usage of a key's own limits, read from the counters.
async fn usage_view(state: &AppState, vk: &VirtualKey) -> (Vec<Value>, Option<Value>, i64) {
    let gov = &state.governance;
    let snap = gov.snapshot();
    let now = now_ms();
    let levels = gov.levels(&snap, vk);
    let checks = limit_checks(&levels[..1], now, Estimate::default());
    let names: Vec<String> = checks.iter().map(|c| c.counter.clone()).collect();
    let values = gov
        .counters
        .read(&names)
        .await
        .unwrap_or_else(|_| vec![0; names.len()]);
    let mut budgets = Vec::new();
    let mut rate = vk
        .rate_limit
        .as_ref()
        .map(|r| serde_json::to_value(r).unwrap_or(Value::Null));
    let mut in_flight = 0;
    let mut budget_iter = vk.budgets.iter();
    for (c, v) in checks.iter().zip(values) {
        let window_start = c.duration.map(|d| {
            let anchor = vk.created_at_ms;
            let aligned = match c.kind {
                LimitKind::Budget => vk
                    .budgets
                    .iter()
                    .find(|b| Some(b.reset_duration) == c.duration)
                    .is_some_and(|b| b.calendar_aligned),
                _ => true,
            };
            d.window(now, anchor, aligned).start_ms
        });
        match c.kind {
            LimitKind::Budget => {
                if let Some(b) = budget_iter.next() {
                    budgets.push(json!({
                        "max_limit": b.max_limit,
                        "reset_duration": b.reset_duration,
                        "calendar_aligned": b.calendar_aligned,
                        "current_usage": nanos_to_usd(v),
                        "last_reset": window_start.map(format_rfc3339),
                        "resets_at": format_rfc3339(c.window_end_ms),
                    }));
                }
            }
            LimitKind::Requests => {
                if let Some(r) = rate.as_mut() {
                    r["request_current_usage"] = json!(v);
                    r["request_last_reset"] = json!(window_start.map(format_rfc3339));
                }
            }
            LimitKind::Tokens => {
                if let Some(r) = rate.as_mut() {
                    r["token_current_usage"] = json!(v);
                    r["token_last_reset"] = json!(window_start.map(format_rfc3339));
                }
            }
            LimitKind::Concurrency => in_flight = v,
            LimitKind::Reserved => {
                // Follows its budget: what calls in flight hold of `current_usage`.
                if let Some(last) = budgets.last_mut() {
                    last["reserved_by_calls_in_flight"] = json!(nanos_to_usd(v));
                }
            }
        }
    }
    (budgets, rate, in_flight)
}

async fn vk_view(state: &AppState, vk: &VirtualKey) -> Value {
    let (budgets, rate_limit, in_flight) = usage_view(state, vk).await;
    json!({
        "id": vk.id,
        "name": vk.name,
        "description": vk.description,
        "value": vk.value_hint,
        "team_id": vk.team_id,
        "customer_id": vk.customer_id,
        "provider_configs": vk.provider_configs,
        "allow_all_providers": vk.allow_all_providers,
        "mcp_configs": vk.mcp_configs,
        "budgets": budgets,
        "rate_limit": rate_limit,
        "max_concurrent_requests": vk.max_concurrent_requests,
        "in_flight_requests": in_flight,
        "is_active": vk.is_active,
        "expires_at": vk.expires_at(),
        "created_at": format_rfc3339(vk.created_at_ms),
        "currency": state.governance.currency().code(),
    })
}

fn group_view(g: &Group) -> Value {
    json!({
        "id": g.id,
        "name": g.name,
        "customer_id": g.customer_id,
        "budgets": g.budgets,
        "rate_limit": g.rate_limit,
        "created_at": format_rfc3339(g.created_at_ms),
    })
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ListQuery {
    limit: Option<usize>,
    offset: Option<usize>,
    search: Option<String>,
    team_id: Option<String>,
    customer_id: Option<String>,
    from_memory: Option<bool>,
}

pub async fn list_virtual_keys(State(state): State<Arc<AppState>>, Query(q): Query<ListQuery>) -> Answer {
    let _ = q.from_memory;
    let snap = state.governance.snapshot();
    let matching: Vec<_> = snap
        .keys
        .iter()
        .filter(|k| {
            q.search
                .as_deref()
                .is_none_or(|s| k.name.to_lowercase().contains(&s.to_lowercase()))
        })
        .filter(|k| q.team_id.as_ref().is_none_or(|t| k.team_id.as_ref() == Some(t)))
        .filter(|k| {
            q.customer_id
                .as_ref()
                .is_none_or(|c| k.customer_id.as_ref() == Some(c))
        })
        .collect();
    let offset = q.offset.unwrap_or(0);
    let limit = q.limit.unwrap_or(100).min(1000);
    let mut out = Vec::new();
    for k in matching.iter().skip(offset).take(limit) {
        out.push(vk_view(&state, k).await);
    }
    Ok(Json(json!({
        "virtual_keys": out,
        "count": out.len(),
        "total_count": matching.len(),
        "limit": limit,
        "offset": offset,
        "currency": state.governance.currency().code(),
    })))
}

fn check_refs(
    snap: &switchyard_runtime::governance::GovSnapshot,
    team: Option<&str>,
    customer: Option<&str>,
) -> Result<(), GatewayError> {
    if let Some(t) = team.filter(|t| snap.team(t).is_none()) {
        return Err(GatewayError::BadRequest {
            message: format!("team '{t}' does not exist; create it with POST /api/governance/teams"),
            param: Some("team_id".into()),
        });
    }
    if let Some(c) = customer.filter(|c| snap.customer(c).is_none()) {
        return Err(GatewayError::BadRequest {
            message: format!("customer '{c}' does not exist; create it with POST /api/governance/customers"),
            param: Some("customer_id".into()),
        });
    }
    Ok(())
}

// --- The write paths: shared by the handlers below and by `config.json` (`crate::governance_file`) ------------

/// Stores a new virtual key after checking its team/customer exist.
pub(crate) async fn insert_virtual_key(gov: &Governance, vk: &VirtualKey) -> Result<(), GatewayError> {
    let _w = gov.lock_writes().await;
    check_refs(&gov.snapshot(), vk.team_id.as_deref(), vk.customer_id.as_deref())?;
    gov.store().insert_virtual_key(vk).await?;
    gov.reload().await
}

/// Replaces stored key `id` with what `change` makes of it, under the write lock.
pub(crate) async fn update_virtual_key_with(
    gov: &Governance,
    id: &str,
    change: impl FnOnce(&VirtualKey) -> Result<VirtualKey, GatewayError>,
) -> Result<VirtualKey, GatewayError> {
    let _w = gov.lock_writes().await;
    let snap = gov.snapshot();
    let current = snap.key(id).ok_or_else(|| not_found("virtual key", id))?;
    let updated = change(current)?;
    check_refs(&snap, updated.team_id.as_deref(), updated.customer_id.as_deref())?;
    gov.store().update_virtual_key(&updated).await?;
    gov.reload().await?;
    Ok(updated)
}

pub(crate) async fn remove_virtual_key(gov: &Governance, id: &str) -> Result<(), GatewayError> {
    let _w = gov.lock_writes().await;
    gov.store().delete_virtual_key(id).await?;
    gov.reload().await
}

pub(crate) async fn insert_group(gov: &Governance, team: bool, g: &Group) -> Result<(), GatewayError> {
    let _w = gov.lock_writes().await;
    check_refs(&gov.snapshot(), None, g.customer_id.as_deref())?;
    gov.store().insert_group(kind_of(team), g).await?;
    gov.reload().await
}

pub(crate) async fn update_group_with(
    gov: &Governance,
    team: bool,
    id: &str,
    change: impl FnOnce(&Group) -> Result<Group, GatewayError>,
) -> Result<Group, GatewayError> {
    let what = if team { "team" } else { "customer" };
    let _w = gov.lock_writes().await;
    let snap = gov.snapshot();
    let current = if team { snap.team(id) } else { snap.customer(id) }.ok_or_else(|| not_found(what, id))?;
    let g = change(current)?;
    check_refs(&snap, None, g.customer_id.as_deref())?;
    gov.store().update_group(kind_of(team), &g).await?;
    gov.reload().await?;
    Ok(g)
}

pub(crate) async fn remove_group(gov: &Governance, team: bool, id: &str) -> Result<(), GatewayError> {
    let _w = gov.lock_writes().await;
    gov.store().delete_group(kind_of(team), id).await?;
    gov.reload().await
}

/// The client setting `enforce_auth_on_inference`, as `/api/config` and `config.json` set it.
pub(crate) async fn set_enforce_auth(gov: &Governance, enforce: bool) -> Result<(), GatewayError> {
    let _w = gov.lock_writes().await;
    gov.store()
        .put_setting(CLIENT_CONFIG, &json!({"enforce_auth_on_inference": enforce}))
        .await?;
    gov.reload().await
}

// --- Handlers -------------------------------------------------------------------------------------

pub async fn create_virtual_key(State(state): State<Arc<AppState>>, body: Body) -> Answer {
    let bytes = read_limited(body, MAX_BODY).await?;
    let input: VirtualKeyInput = parse_json(&bytes)?;
    let value = input.value.clone().unwrap_or_else(new_value);
    let id = input
        .id
        .clone()
        .unwrap_or_else(|| uuid::Uuid::new_v4().to_string());
    let vk = input.into_new(id, hash_vk_value(&value), vk_hint(&value), now_ms())?;
    insert_virtual_key(&state.governance, &vk).await?;
    let mut view = vk_view(&state, &vk).await;
    // The only time the value is shown.
    view["value"] = json!(value);
    Ok(Json(
        json!({"message": "virtual key created; store its value now, it is not shown again", "virtual_key": view}),
    ))
}

pub async fn get_virtual_key(State(state): State<Arc<AppState>>, Path(id): Path<String>) -> Answer {
    let snap = state.governance.snapshot();
    let vk = snap.key(&id).ok_or_else(|| not_found("virtual key", &id))?;
    Ok(Json(json!({"virtual_key": vk_view(&state, vk).await})))
}

pub async fn update_virtual_key(
    State(state): State<Arc<AppState>>,
    Path(id): Path<String>,
    body: Body,
) -> Answer {
    let bytes = read_limited(body, MAX_BODY).await?;
    let input: VirtualKeyInput = parse_json(&bytes)?;
    let reset = input.reset_budget_usage == Some(true);
    let gov = &state.governance;
    let updated = update_virtual_key_with(gov, &id, |current| Ok(input.apply_update(current)?)).await?;
    if reset {
        let snap = gov.snapshot();
        let levels = gov.levels(&snap, &updated);
        let names: Vec<String> = limit_checks(&levels[..1], now_ms(), Estimate::default())
            .into_iter()
            .filter(|c| c.kind == LimitKind::Budget)
            .map(|c| c.counter)
            .collect();
        let values = gov
            .counters
            .read(&names)
            .await
            .map_err(|e| GatewayError::Unavailable(e.to_string()))?;
        let deltas: Vec<(String, i64)> = names.into_iter().zip(values).map(|(n, v)| (n, -v)).collect();
        gov.counters
            .apply(&deltas)
            .await
            .map_err(|e| GatewayError::Unavailable(e.to_string()))?;
    }
    Ok(Json(
        json!({"message": "virtual key updated", "virtual_key": vk_view(&state, &updated).await}),
    ))
}

pub async fn delete_virtual_key(State(state): State<Arc<AppState>>, Path(id): Path<String>) -> Answer {
    remove_virtual_key(&state.governance, &id).await?;
    Ok(Json(json!({"message": "virtual key deleted"})))
}

fn kind_of(team: bool) -> GroupKind {
    if team {
        GroupKind::Team
    } else {
        GroupKind::Customer
    }
}

async fn list_groups(state: &AppState, team: bool) -> Answer {
    let snap = state.governance.snapshot();
    let list = if team { &snap.teams } else { &snap.customers };
    let views: Vec<Value> = list.iter().map(group_view).collect();
    let key = if team { "teams" } else { "customers" };
    let currency = state.governance.currency().code();
    Ok(Json(
        json!({key: views, "count": views.len(), "currency": currency}),
    ))
}

async fn create_group(state: &AppState, team: bool, body: Body) -> Answer {
    let bytes = read_limited(body, MAX_BODY).await?;
    let input: GroupInput = parse_json(&bytes)?;
    let id = input
        .id
        .clone()
        .unwrap_or_else(|| uuid::Uuid::new_v4().to_string());
    let g = input.into_new(id, now_ms(), team)?;
    insert_group(&state.governance, team, &g).await?;
    let key = if team { "team" } else { "customer" };
    Ok(Json(
        json!({"message": format!("{key} created"), key: group_view(&g)}),
    ))
}

async fn get_group(state: &AppState, team: bool, id: &str) -> Answer {
    let snap = state.governance.snapshot();
    let key = if team { "team" } else { "customer" };
    let g = if team { snap.team(id) } else { snap.customer(id) }.ok_or_else(|| not_found(key, id))?;
    Ok(Json(json!({key: group_view(g)})))
}

async fn update_group(state: &AppState, team: bool, id: &str, body: Body) -> Answer {
    let bytes = read_limited(body, MAX_BODY).await?;
    let input: GroupInput = parse_json(&bytes)?;
    let key = if team { "team" } else { "customer" };
    let g = update_group_with(&state.governance, team, id, |current| {
        Ok(input.apply_update(current, team)?)
    })
    .await?;
    Ok(Json(
        json!({"message": format!("{key} updated"), key: group_view(&g)}),
    ))
}

async fn delete_group(state: &AppState, team: bool, id: &str) -> Answer {
    remove_group(&state.governance, team, id).await?;
    Ok(Json(json!({"message": "deleted"})))
}

pub async fn list_teams(State(s): State<Arc<AppState>>) -> Answer {
    list_groups(&s, true).await
}
pub async fn create_team(State(s): State<Arc<AppState>>, body: Body) -> Answer {
    create_group(&s, true, body).await
}
pub async fn get_team(State(s): State<Arc<AppState>>, Path(id): Path<String>) -> Answer {
    get_group(&s, true, &id).await
}
pub async fn update_team(State(s): State<Arc<AppState>>, Path(id): Path<String>, body: Body) -> Answer {
    update_group(&s, true, &id, body).await
}
pub async fn delete_team(State(s): State<Arc<AppState>>, Path(id): Path<String>) -> Answer {
    delete_group(&s, true, &id).await
}
pub async fn list_customers(State(s): State<Arc<AppState>>) -> Answer {
    list_groups(&s, false).await
}
pub async fn create_customer(State(s): State<Arc<AppState>>, body: Body) -> Answer {
    create_group(&s, false, body).await
}
pub async fn get_customer(State(s): State<Arc<AppState>>, Path(id): Path<String>) -> Answer {
    get_group(&s, false, &id).await
}
pub async fn update_customer(State(s): State<Arc<AppState>>, Path(id): Path<String>, body: Body) -> Answer {
    update_group(&s, false, &id, body).await
}
pub async fn delete_customer(State(s): State<Arc<AppState>>, Path(id): Path<String>) -> Answer {
    delete_group(&s, false, &id).await
}

pub async fn list_price_overrides(State(state): State<Arc<AppState>>) -> Answer {
    let snap = state.governance.snapshot();
    Ok(Json(json!({
        "pricing_overrides": snap.price_overrides,
        "currency": state.governance.currency().code(),
    })))
}

/// Creates or replaces a (validated) price, then reloads the snapshot.
pub(crate) async fn put_price(gov: &Governance, p: &PriceOverride) -> Result<(), GatewayError> {
    let _w = gov.lock_writes().await;
    gov.store().put_price_override(p).await?;
    gov.reload().await
}

pub(crate) async fn remove_price(gov: &Governance, provider: &str, model: &str) -> Result<(), GatewayError> {
    let _w = gov.lock_writes().await;
    gov.store().delete_price_override(provider, model).await?;
    gov.reload().await
}

/// `POST /api/governance/pricing-overrides`: creates or replaces the price of one provider's model.
pub async fn put_price_override(State(state): State<Arc<AppState>>, body: Body) -> Answer {
    let bytes = read_limited(body, MAX_BODY).await?;
    let p: PriceOverride = parse_json(&bytes)?;
    p.validate().map_err(GatewayError::Validation)?;
    put_price(&state.governance, &p).await?;
    Ok(Json(
        json!({"message": "price override saved", "pricing_override": p}),
    ))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PriceKey {
    provider: String,
    model: String,
}

/// `DELETE /api/governance/pricing-overrides?provider=..&model=..`
pub async fn delete_price_override(State(state): State<Arc<AppState>>, Query(k): Query<PriceKey>) -> Answer {
    remove_price(&state.governance, &k.provider, &k.model).await?;
    Ok(Json(json!({"message": "price override deleted"})))
}

/// `GET /api/config`: the client settings this gateway keeps (Bifrost's shape, the parts that exist).
pub async fn get_config(State(state): State<Arc<AppState>>) -> Answer {
    let snap = state.governance.snapshot();
    Ok(Json(json!({
        "client_config": {"enforce_auth_on_inference": snap.enforce_auth_on_inference},
        "is_db_connected": state.config.ping().await.is_ok(),
        "is_logs_connected": state.logs.is_some(),
        "counters": state.governance.counters.kind(),
        "currency": state.governance.currency().code(),
    })))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConfigBody {
    client_config: Option<ClientConfigBody>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ClientConfigBody {
    enforce_auth_on_inference: Option<bool>,
    /// Bifrost's older name for the same setting.
    enforce_governance_header: Option<bool>,
}

/// `PUT /api/config`: changes the client settings; applies to the next request, survives restarts.
pub async fn put_config(State(state): State<Arc<AppState>>, body: Body) -> Answer {
    let bytes = read_limited(body, MAX_BODY).await?;
    let b: ConfigBody = parse_json(&bytes)?;
    if let Some(c) = b.client_config {
        if let Some(enforce) = c.enforce_auth_on_inference.or(c.enforce_governance_header) {
            set_enforce_auth(&state.governance, enforce).await?;
        }
    }
    get_config(State(state)).await
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SpendQuery {
    group_by: Option<String>,
    /// RFC 3339 or unix ms; default: 30 days ago.
    from: Option<String>,
    /// RFC 3339 or unix ms; default: now.
    to: Option<String>,
    virtual_key_id: Option<String>,
}

fn parse_time(field: &str, raw: &str) -> Result<i64, GatewayError> {
    raw.parse::<i64>()
        .ok()
        .or_else(|| switchyard_core::governance::window::parse_rfc3339(raw))
        .ok_or_else(|| GatewayError::BadRequest {
            message: format!("{field}: '{raw}' is neither RFC 3339 nor unix milliseconds"),
            param: Some(field.into()),
        })
}

/// `GET /api/governance/spend?group_by=virtual_key|team|customer|provider|model|day&from=..&to=..`:
/// cost, requests and tokens from the request log. Calls with an unknown price are counted in
/// `unknown_cost_requests`, never as $0.
pub async fn spend(State(state): State<Arc<AppState>>, Query(q): Query<SpendQuery>) -> Answer {
    use switchyard_logs::SpendGroup;
    let group = match q.group_by.as_deref().unwrap_or("virtual_key") {
        "virtual_key" | "vk" => SpendGroup::VirtualKey,
        "team" => SpendGroup::Team,
        "customer" => SpendGroup::Customer,
        "provider" => SpendGroup::Provider,
        "model" => SpendGroup::Model,
        "day" => SpendGroup::Day,
        other => {
            return Err(GatewayError::BadRequest {
                message: format!(
                    "group_by '{other}' is not one of virtual_key, team, customer, provider, model, day"
                ),
                param: Some("group_by".into()),
            }
            .into())
        }
    };
    let to =
        q.to.as_deref()
            .map(|t| parse_time("to", t))
            .transpose()?
            .unwrap_or_else(|| now_ms() + 1);
    let from = q
        .from
        .as_deref()
        .map(|t| parse_time("from", t))
        .transpose()?
        .unwrap_or(to - 30 * 86_400_000);
    let Some(logs) = &state.log_store else {
        return Err(GatewayError::NotImplemented(
            "spend views need the request log, which is switched off".into(),
        )
        .into());
    };
    let rows = logs
        .spend(from, to, group, q.virtual_key_id.as_deref())
        .await
        .map_err(|e| GatewayError::Unavailable(e.to_string()))?;
    let total: f64 = rows.iter().map(|r| r.cost_usd).sum();
    let unknown: u64 = rows.iter().map(|r| r.unknown_cost_requests).sum();
    Ok(Json(json!({
        "group_by": q.group_by.as_deref().unwrap_or("virtual_key"),
        "from": format_rfc3339(from),
        "to": format_rfc3339(to),
        "total_cost_usd": total,
        "unknown_cost_requests": unknown,
        "currency": state.governance.currency().code(),
        "rows": rows,
    })))
}
