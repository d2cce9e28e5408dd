//! Spend: `/spend/logs`, `/global/spend/report`, `/global/spend/reset`, and the `spend` every LiteLLM
//! view shows. Spend is read from the request log (the same rows `/api/governance/spend` sums) since
//! the last `/global/spend/reset`; budgets are enforced by the governance counters, which the reset
//! zeroes. Logs are kept.

use std::collections::HashMap;
use std::sync::Arc;

use axum::extract::{Query, State};
use axum::Json;
use serde::Deserialize;
use serde_json::{json, Value};
use switchyard_core::governance::admission::limit_checks;
use switchyard_core::governance::window::{format_rfc3339, parse_rfc3339};
use switchyard_core::governance::{Estimate, Group, Level, LevelLimits, LimitKind};
use switchyard_logs::{LogFilter, LogQuery, SpendGroup, MAX_LIMIT};

use super::{bad_request, load_meta, save_meta, Answer, Master};
use switchyard_runtime::error::{ApiError, GatewayError};
use switchyard_runtime::governance::now_ms;
use switchyard_runtime::state::AppState;

const RESET_SETTING: &str = "litellm.spend_reset_at";
const DAY_MS: i64 = 86_400_000;

#[derive(Clone, Copy)]
pub(crate) enum SpendOf {
    Key,
    Team,
    Customer,
}

#[derive(Default, serde::Deserialize, serde::Serialize)]
struct ResetMark {
    at_ms: i64,
}

/// USD spent per key, team or customer id since the last spend reset (empty when logging is off).
pub(crate) async fn spend_by(state: &AppState, of: SpendOf) -> HashMap<String, f64> {
    let Some(logs) = &state.log_store else {
        return HashMap::new();
    };
    let since: Option<ResetMark> = load_meta(state, RESET_SETTING).await;
    let group = match of {
        SpendOf::Key => SpendGroup::VirtualKey,
        SpendOf::Team => SpendGroup::Team,
        SpendOf::Customer => SpendGroup::Customer,
    };
    let from = since.map_or(0, |m| m.at_ms);
    match logs.spend(from, now_ms() + 1, group, None).await {
        Ok(rows) => rows
            .into_iter()
            .filter_map(|r| Some((r.group?, r.cost_usd)))
            .collect(),
        Err(_) => HashMap::new(),
    }
}

fn no_logs() -> ApiError {
    GatewayError::NotImplemented("spend views need the request log, which is switched off".into()).into()
}

/// `YYYY-MM-DD` (or RFC 3339) as unix ms.
fn parse_day(field: &str, raw: &str) -> Result<i64, GatewayError> {
    parse_rfc3339(raw)
        .or_else(|| parse_rfc3339(&format!("{raw}T00:00:00Z")))
        .ok_or_else(|| super::bad_param(field, format!("'{raw}' is not a date such as 2026-01-31")))
}

#[derive(Deserialize)]
pub struct LogsQuery {
    api_key: Option<String>,
    start_date: Option<String>,
    end_date: Option<String>,
}

/// `GET /spend/logs[?api_key=<key or token>&start_date&end_date]`: one row per call, newest first
/// (at most 1000).
pub async fn logs(State(state): State<Arc<AppState>>, _m: Master, Query(q): Query<LogsQuery>) -> Answer {
    let logs = state.log_store.as_ref().ok_or_else(no_logs)?;
    let snap = state.governance.snapshot();
    let mut filter = LogFilter::default();
    if let Some(k) = &q.api_key {
        let hash = switchyard_core::governance::hash_vk_value(k);
        let vk = snap
            .by_value_hash(&hash)
            .or_else(|| snap.by_value_hash(k))
            .ok_or_else(|| super::not_found("api_key: key not found"))?;
        filter.virtual_key_ids = vec![vk.id.clone()];
    }
    filter.start_ms = q
        .start_date
        .as_deref()
        .map(|d| parse_day("start_date", d))
        .transpose()?;
    filter.end_ms = q
        .end_date
        .as_deref()
        .map(|d| parse_day("end_date", d).map(|e| e + DAY_MS - 1))
        .transpose()?;
    let page = logs
        .query(&LogQuery {
            filter,
            limit: MAX_LIMIT,
            ..LogQuery::default()
        })
        .await
        .map_err(|e| GatewayError::Unavailable(e.to_string()))?;
    let token_of: HashMap<&str, &str> = snap
        .keys
        .iter()
        .map(|k| (k.id.as_str(), k.value_hash.as_str()))
        .collect();
    let currency = state.governance.currency().code();
    let rows: Vec<Value> = page
        .logs
        .iter()
        .map(|r| {
            let (input, output) = (r.input_tokens.unwrap_or(0), r.output_tokens.unwrap_or(0));
            json!({
                "request_id": r.id,
                "call_type": r.request_type,
                "api_key": r.virtual_key_id.as_deref().and_then(|id| token_of.get(id)),
                "spend": r.cost_usd.unwrap_or(0.0),
                "cost_known": r.cost_known,
                "currency": currency,
                "model": r.model.as_deref().unwrap_or(&r.model_requested),
                "model_group": r.model_requested,
                "custom_llm_provider": r.provider,
                "prompt_tokens": input,
                "completion_tokens": output,
                "total_tokens": input + output,
                "startTime": format_rfc3339(r.timestamp_ms),
                "endTime": format_rfc3339(r.timestamp_ms + r.latency_ms as i64),
                "user": r.customer_id,
                "team_id": r.team_id,
                "status": if r.status < 400 { "success" } else { "failure" },
            })
        })
        .collect();
    Ok(Json(Value::Array(rows)))
}

#[derive(Deserialize)]
pub struct ReportQuery {
    start_date: Option<String>,
    end_date: Option<String>,
    group_by: Option<String>,
}

/// `GET /global/spend/report?start_date&end_date&group_by=api_key|team|customer`.
pub async fn report(State(state): State<Arc<AppState>>, _m: Master, Query(q): Query<ReportQuery>) -> Answer {
    let logs = state.log_store.as_ref().ok_or_else(no_logs)?;
    let (group, field) = match q.group_by.as_deref().unwrap_or("team") {
        "api_key" => (SpendGroup::VirtualKey, "api_key"),
        "team" => (SpendGroup::Team, "team_id"),
        "customer" | "end_user" => (SpendGroup::Customer, "customer"),
        other => {
            return Err(bad_request(
                "group_by",
                format!("group_by '{other}' is not one of api_key, team, customer"),
            ))
        }
    };
    let now = now_ms();
    let end = match &q.end_date {
        Some(d) => parse_day("end_date", d)? + DAY_MS,
        None => now + 1,
    };
    let start = match &q.start_date {
        Some(d) => parse_day("start_date", d)?,
        None => end - 30 * DAY_MS,
    };
    let rows = logs
        .spend(start, end, group, None)
        .await
        .map_err(|e| GatewayError::Unavailable(e.to_string()))?;
    let snap = state.governance.snapshot();
    let out: Vec<Value> = rows
        .iter()
        .filter(|r| r.group.is_some())
        .map(|r| {
            let id = r.group.as_deref().unwrap_or_default();
            let mut row = json!({
                "total_cost": r.cost_usd,
                "total_input_tokens": r.input_tokens,
                "total_output_tokens": r.output_tokens,
                "requests": r.requests,
                "unknown_cost_requests": r.unknown_cost_requests,
                "currency": state.governance.currency().code(),
            });
            match group {
                SpendGroup::VirtualKey => {
                    let vk = snap.key(id);
                    row["api_key"] = json!(vk.map(|k| k.value_hash.clone()));
                    row["key_alias"] = json!(vk.map(|k| k.name.clone()));
                }
                _ => row[field] = json!(id),
            }
            row
        })
        .collect();
    Ok(Json(Value::Array(out)))
}

fn group_level(level: Level, g: &Group) -> LevelLimits<'_> {
    LevelLimits {
        level,
        id: &g.id,
        name: &g.name,
        budgets: &g.budgets,
        rate_limit: g.rate_limit.as_ref(),
        max_concurrent: None,
        anchor_ms: g.created_at_ms,
    }
}

/// `POST /global/spend/reset` (master key only): every key's, team's and customer's budget usage goes
/// back to 0 and the `spend` views count from now; the request log is kept.
pub async fn reset(State(state): State<Arc<AppState>>, _m: Master) -> Answer {
    let gov = &state.governance;
    let snap = gov.snapshot();
    let now = now_ms();
    let mut levels: Vec<LevelLimits<'_>> = Vec::new();
    for vk in &snap.keys {
        levels.push(LevelLimits {
            level: Level::VirtualKey,
            id: &vk.id,
            name: &vk.name,
            budgets: &vk.budgets,
            rate_limit: None,
            max_concurrent: None,
            anchor_ms: vk.created_at_ms,
        });
    }
    levels.extend(snap.teams.iter().map(|t| group_level(Level::Team, t)));
    levels.extend(snap.customers.iter().map(|c| group_level(Level::Customer, c)));
    let names: Vec<String> = limit_checks(&levels, now, Estimate::default())
        .into_iter()
        .filter(|c| c.kind == LimitKind::Budget)
        .map(|c| c.counter)
        .collect();
    let unavailable = |e: String| ApiError::from(GatewayError::Unavailable(e));
    let values = gov
        .counters
        .read(&names)
        .await
        .map_err(|e| unavailable(e.to_string()))?;
    let deltas: Vec<(String, i64)> = names.into_iter().zip(values).map(|(n, v)| (n, -v)).collect();
    gov.counters
        .apply(&deltas)
        .await
        .map_err(|e| unavailable(e.to_string()))?;
    save_meta(&state, RESET_SETTING, &json!(ResetMark { at_ms: now })).await?;
    Ok(Json(
        json!({"message": "Spend for all API Keys and Teams reset successfully", "status": "success"}),
    ))
}
