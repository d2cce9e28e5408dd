//! `GET /v1/models` (and `/openai/v1/models`): the models of every configured provider the caller may
//! use, as `provider/model` ids, limited to what the provider's keys allow. Also the admin key check,
//! which asks a provider for its models with one stored key.

use std::time::{Duration, Instant};

use axum::body::Body;
use axum::http::{HeaderMap, Method};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde_json::{json, Value};
use switchyard_core::request_type::RequestType;
use switchyard_core::routing::{RuntimeKey, RuntimeProvider, Target};
use switchyard_core::upstream_url::{gemini_models_endpoint, openai_endpoint};
use switchyard_core::WireApi;

use crate::answer::{read_capped, upstream_error};
use crate::pipeline::{CallSpec, GovernedPlan, Incoming};
use switchyard_runtime::error::{ApiError, GatewayError};
use switchyard_runtime::upstream::{UpstreamCall, UpstreamClient};

#[derive(Debug, Deserialize)]
pub struct ModelsQuery {
    provider: Option<String>,
}

/// `GET /v1/models`: OpenAI-compatible, Anthropic and Gemini upstreams are asked in parallel (their
/// extra fields such as `max_model_len` are kept); explicitly listed models are included even when the
/// upstream does not list them (yet), and an unreachable upstream degrades to its keys' explicit lists.
/// A virtual key sees only the providers its `provider_configs` allow. Key aliases are listed as
/// `provider/alias` with `alias_of` naming the id the upstream is sent.
pub async fn list_models(inc: Incoming, q: ModelsQuery) -> Result<Response, ApiError> {
    let data = governed_models(inc, q.provider).await?;
    Ok(axum::Json(json!({"object": "list", "data": data})).into_response())
}

/// `GET /anthropic/v1/models` (the anthropic SDKs' `models.list()`): the same governed listing as
/// [`list_models`], in Anthropic's shape. Every id is usable as `model` on `/anthropic/v1/messages`.
/// `provider` narrows the list to one provider, as on `/v1/models`.
#[derive(Debug, Deserialize)]
pub struct AnthropicModelsQuery {
    provider: Option<String>,
    limit: Option<usize>,
    after_id: Option<String>,
    before_id: Option<String>,
}

pub async fn list_anthropic_models(inc: Incoming, q: AnthropicModelsQuery) -> Result<Response, ApiError> {
    let data: Vec<Value> = governed_models(inc, q.provider.clone())
        .await?
        .iter()
        .map(anthropic_model)
        .collect();
    Ok(axum::Json(anthropic_page(data, &q)).into_response())
}

/// One page of an Anthropic model list: `limit` (default 20, at most 1000) items after `after_id` or
/// before `before_id`, with `has_more`, `first_id` and `last_id`.
fn anthropic_page(data: Vec<Value>, q: &AnthropicModelsQuery) -> Value {
    let limit = q.limit.unwrap_or(20).clamp(1, 1000);
    let position = |id: &str| data.iter().position(|m| m["id"] == id);
    let (start, end) = match (&q.after_id, &q.before_id) {
        (Some(after), _) => {
            let start = position(after).map_or(data.len(), |i| i + 1);
            (start, (start + limit).min(data.len()))
        }
        (None, Some(before)) => {
            let end = position(before).unwrap_or(0);
            (end.saturating_sub(limit), end)
        }
        (None, None) => (0, limit.min(data.len())),
    };
    let has_more = match (&q.after_id, &q.before_id) {
        (None, Some(_)) => start > 0,
        _ => end < data.len(),
    };
    let page = data[start..end].to_vec();
    json!({
        "data": page,
        "has_more": has_more,
        "first_id": page.first().map(|m| m["id"].clone()),
        "last_id": page.last().map(|m| m["id"].clone()),
    })
}

/// An OpenAI model object as an Anthropic `ModelInfo`; an Anthropic upstream's own `display_name`
/// and `created_at` are kept, vLLM's `max_model_len` becomes `max_input_tokens`.
fn anthropic_model(m: &Value) -> Value {
    let id = m["id"].as_str().unwrap_or_default();
    let created_at = match m.get("created_at").and_then(Value::as_str) {
        Some(s) => s.to_owned(),
        None => switchyard_core::governance::window::format_rfc3339(
            m["created"].as_i64().unwrap_or(0).saturating_mul(1000),
        ),
    };
    let mut out = json!({
        "id": id,
        "type": "model",
        "display_name": m.get("display_name").and_then(Value::as_str).unwrap_or(id),
        "created_at": created_at,
        "lifecycle": "active",
    });
    if let Some(n) = m.get("max_model_len").and_then(Value::as_u64) {
        out["max_input_tokens"] = json!(n);
    }
    out
}

/// The models of every provider the caller may use, as OpenAI model objects with `provider/model`
/// ids: admitted, planned and fetched inside the pipeline.
async fn governed_models(inc: Incoming, provider: Option<String>) -> Result<Vec<Value>, ApiError> {
    let q = ModelsQuery { provider };
    if let Some(p) = &q.provider {
        if inc.config().provider(p).is_none() {
            return Err(inc.reject(GatewayError::NotFound {
                message: format!("provider '{p}' is not configured"),
                code: Some("provider_not_found"),
            }));
        }
    }
    let spec = CallSpec {
        provider: q.provider.clone(),
        ..CallSpec::new(RequestType::ListModels, inc.ingress().protocol())
    };
    let admitted = inc.admit(spec).await?;
    let wanted = q.provider.as_deref();
    let plan = admitted
        .plan_with(|config, _| {
            Ok(config
                .providers
                .iter()
                .filter(|p| wanted.is_none_or(|name| p.config.name.as_str() == name))
                .filter(|p| p.keys.iter().any(|k| k.usable()))
                .map(|provider| Target { provider, model: "*" })
                .collect())
        })
        .await;
    let plan = match plan {
        Ok(p) => p,
        // Nothing to list is an empty list, not an error.
        Err(e) if wanted.is_none() && e.error.status() == http::StatusCode::SERVICE_UNAVAILABLE => {
            return Ok(Vec::new())
        }
        Err(e) => return Err(e),
    };
    let client = &admitted.state().upstream;
    let lists = futures_util::future::join_all(
        plan.targets()
            .iter()
            .map(|t| provider_models(client, &plan, t.provider)),
    )
    .await;
    Ok(lists.into_iter().flatten().collect())
}

/// One provider's models, as far as its keys (and the caller's key restrictions) allow.
async fn provider_models(
    client: &UpstreamClient,
    plan: &GovernedPlan<'_>,
    p: &RuntimeProvider,
) -> Vec<Value> {
    let name = p.config.name.as_str();
    let usable: Vec<&RuntimeKey> = p
        .keys
        .iter()
        .filter(|k| k.usable() && plan.allows_key(name, &k.config.id))
        .collect();
    let Some(first) = usable.first() else {
        return Vec::new();
    };
    let mut out: Vec<Value> = Vec::new();
    let mut seen = std::collections::HashSet::new();
    let any_wildcard = usable.iter().any(|k| k.config.models.iter().any(|m| m == "*"));
    let listable = matches!(
        p.config.wire(),
        WireApi::OpenAi | WireApi::Anthropic | WireApi::Gemini
    );
    if listable && p.config.allows_request(RequestType::ListModels.as_str()) {
        match fetch_upstream_models(client, p, first).await {
            Ok(items) => {
                for mut item in items {
                    let Some(id) = item.get("id").and_then(Value::as_str).map(str::to_owned) else {
                        continue;
                    };
                    if !usable.iter().any(|k| k.serves(&id).is_some()) || !seen.insert(id.clone()) {
                        continue;
                    }
                    item["id"] = Value::String(format!("{name}/{id}"));
                    item["object"] = Value::String("model".into());
                    item["owned_by"] = Value::String(name.to_owned());
                    if !item.get("created").is_some_and(Value::is_i64) {
                        item["created"] = json!(0);
                    }
                    out.push(item);
                }
            }
            Err(e) => tracing::warn!(provider = name, error = %e, "listing upstream models failed"),
        }
    } else if any_wildcard {
        tracing::debug!(
            provider = name,
            "provider cannot list models here; showing explicit key models only"
        );
    }
    out.extend(alias_entries(name, &usable, &mut seen));
    for k in &usable {
        for m in &k.config.models {
            if m != "*" && k.serves(m).is_some() && seen.insert(m.clone()) {
                out.push(
                    json!({"id": format!("{name}/{m}"), "object": "model", "created": 0, "owned_by": name}),
                );
            }
        }
    }
    out
}

/// The keys' aliases, as models of their own that say which id they stand for (`alias_of`).
fn alias_entries(
    name: &str,
    usable: &[&RuntimeKey],
    seen: &mut std::collections::HashSet<String>,
) -> Vec<Value> {
    let mut out = Vec::new();
    for k in usable {
        for (alias, target) in &k.config.aliases {
            if k.serves(alias).is_some() && seen.insert(alias.clone()) {
                out.push(
                    json!({"id": format!("{name}/{alias}"), "object": "model", "created": 0,
                                "owned_by": name, "alias_of": target}),
                );
            }
        }
    }
    out
}

/// A provider's `GET /v1/models` (Gemini's and Anthropic's too), read with `key`.
pub(crate) async fn fetch_upstream_models(
    client: &UpstreamClient,
    p: &RuntimeProvider,
    key: &RuntimeKey,
) -> Result<Vec<Value>, GatewayError> {
    let name = p.config.name.to_string();
    let headers = HeaderMap::new();
    let call = UpstreamCall {
        provider: p,
        key: Some(key),
        method: Method::GET,
        url: match p.config.wire() {
            WireApi::Gemini => gemini_models_endpoint(&p.base_url),
            _ => openai_endpoint(&p.base_url, "/models"),
        },
        accept_sse: false,
        client_headers: &headers,
        // Anthropic's `GET /v1/models` needs its version header; its items also carry `id`.
        protocol_headers: match p.config.wire() {
            WireApi::Anthropic => vec![(
                http::header::HeaderName::from_static("anthropic-version"),
                http::HeaderValue::from_static("2023-06-01"),
            )],
            _ => Vec::new(),
        },
    };
    let req = call.build(Body::empty())?;
    let timeout = Duration::from_secs(10);
    let fetch = async {
        let resp = client.send(&name, req).await?;
        let status = resp.status();
        let body = read_capped(resp.into_body(), 8 * 1024 * 1024).await;
        if !status.is_success() {
            return Err(upstream_error(status, &body, key));
        }
        let v: Value = serde_json::from_slice(&body).map_err(|e| GatewayError::UpstreamUnreachable {
            provider: name.clone(),
            reason: format!("model list is not JSON: {e}"),
        })?;
        Ok(match (v.get("data"), v.get("models")) {
            (Some(Value::Array(items)), _) => items.clone(),
            // Gemini: `{"models": [{"name": "models/gemini-2.5-pro", ...}]}`.
            (None, Some(Value::Array(items))) => items
                .iter()
                .filter_map(|m| {
                    let name = m.get("name")?.as_str()?;
                    let id = name.strip_prefix("models/").unwrap_or(name);
                    let mut item = m.clone();
                    item["id"] = Value::String(id.to_owned());
                    Some(item)
                })
                .collect(),
            _ => Vec::new(),
        })
    };
    tokio::time::timeout(timeout, fetch)
        .await
        .map_err(|_| GatewayError::UpstreamTimeout {
            provider: name.clone(),
            timeout_secs: timeout.as_secs(),
        })?
}

/// Result of probing one key against its provider, for the web UI.
pub async fn check_key(client: &UpstreamClient, p: &RuntimeProvider, key: &RuntimeKey) -> Value {
    if let Some(problem) = &key.problem {
        return json!({"ok": false, "message": problem});
    }
    if p.config.wire() != WireApi::OpenAi {
        return json!({"ok": null, "message": format!("checks for {} providers are not available yet", p.config.wire().as_str())});
    }
    let started = Instant::now();
    match fetch_upstream_models(client, p, key).await {
        Ok(models) => json!({
            "ok": true,
            "latency_ms": started.elapsed().as_millis() as u64,
            "message": format!("reachable, {} models listed", models.len()),
        }),
        Err(e) => json!({
            "ok": false,
            "latency_ms": started.elapsed().as_millis() as u64,
            "status": e.status().as_u16(),
            "message": e.to_string(),
        }),
    }
}
