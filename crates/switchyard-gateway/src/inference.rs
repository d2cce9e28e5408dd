//! Inference routes: `/v1/chat/completions`, `/v1/models` and their `/openai/v1` drop-in twins.

use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::body::Body;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, HeaderValue, Method};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use serde::Deserialize;
use serde_json::{json, Value};
use switchyard_core::json_fields::JsonObject;
use switchyard_core::routing::{RuntimeKey, RuntimeProvider, Target};
use switchyard_core::upstream_url::openai_endpoint;
use switchyard_core::WireApi;

use crate::body::read_limited;
use crate::dispatch::{
    dispatch, read_capped, timeout_override, upstream_error, AttemptRecord, DispatchOptions, Served,
    ServedBody, UpstreamRequest,
};
use crate::error::{ApiError, ErrorContext, GatewayError};
use crate::relay::SseRelay;
use crate::state::AppState;
use crate::upstream::{is_hop_by_hop, UpstreamCall};

/// Which client-facing surface a request came in on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Ingress {
    /// `/v1/*`: bare models are routed across all providers.
    Unified,
    /// `/openai/v1/*`: the OpenAI SDK drop-in; bare models prefer the `openai` provider (Bifrost's rule)
    /// and fall through to the other lanes when it does not serve them.
    OpenAi,
}

impl Ingress {
    pub fn native_provider(self) -> Option<&'static str> {
        match self {
            Ingress::Unified => None,
            Ingress::OpenAi => Some("openai"),
        }
    }
}

pub async fn chat_completions_unified(
    state: State<Arc<AppState>>,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, ApiError> {
    chat_completions(state, Ingress::Unified, headers, body).await
}

pub async fn chat_completions_openai(
    state: State<Arc<AppState>>,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, ApiError> {
    chat_completions(state, Ingress::OpenAi, headers, body).await
}

async fn chat_completions(
    State(state): State<Arc<AppState>>,
    route: Ingress,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, ApiError> {
    let started = Instant::now();
    let bytes = read_limited(body, state.max_body_bytes).await?;
    let mut obj = JsonObject::parse(&bytes).map_err(GatewayError::from)?;
    let requested = obj
        .get_str("model")?
        .ok_or_else(|| bad_field("model is required", "model"))?
        .into_owned();
    match obj.get_raw("messages") {
        Some(raw) if raw.starts_with('[') => {}
        Some(_) => return Err(bad_field("messages must be an array", "messages").into()),
        None => return Err(bad_field("messages is required", "messages").into()),
    }
    let stream = obj.get_bool("stream")?.unwrap_or(false);
    let request_fallbacks: Vec<String> = match obj.get_raw("fallbacks") {
        None | Some("null") => Vec::new(),
        Some(raw) => serde_json::from_str(raw).map_err(|_| {
            bad_field(
                "fallbacks must be an array of \"provider/model\" strings",
                "fallbacks",
            )
        })?,
    };
    // Gateway-only fields never reach the upstream (OpenAI rejects unknown arguments).
    obj.remove("fallbacks");
    let timeout_override = timeout_override(&headers)?;
    let mut ctx = ErrorContext {
        model_requested: Some(requested.clone()),
        request_type: Some("chat_completion"),
        ..ErrorContext::default()
    };

    let snapshot = state.config.snapshot();
    let mut rng = fastrand::Rng::new();
    let plan = snapshot
        .plan(&requested, route.native_provider(), &request_fallbacks, &mut rng)
        .map_err(|e| ApiError {
            error: e.into(),
            context: ctx.clone(),
        })?;
    let mut upstream_request = OpenAiChat {
        body: obj,
        client_headers: &headers,
        stream,
    };
    let opts = DispatchOptions {
        stream,
        timeout_override,
    };
    let served = match dispatch(&state, &plan, &mut upstream_request, &opts).await {
        Ok(s) => s,
        Err(f) => {
            ctx.provider = f.provider;
            ctx.attempts = f.trail;
            ctx.gateway_retried = true;
            return Err(ApiError {
                error: f.error,
                context: ctx,
            });
        }
    };

    let mut out_headers = HeaderMap::with_capacity(served.parts.headers.len() + 6);
    for (name, value) in &served.parts.headers {
        if !is_hop_by_hop(name) {
            out_headers.append(name, value.clone());
        }
    }
    routing_headers(&mut out_headers, &served);

    match served.body {
        ServedBody::Stream(start) => {
            out_headers.insert(http::header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
            let relay = SseRelay::new(start, served.provider, Some(served.permit));
            let mut resp = Response::new(Body::from_stream(relay));
            *resp.status_mut() = served.parts.status;
            *resp.headers_mut() = out_headers;
            Ok(resp)
        }
        ServedBody::Json(body) => {
            drop(served.permit);
            let extra = json!({
                "request_type": "chat_completion",
                "provider": served.provider,
                "model_requested": requested,
                "resolved_model_used": served.model,
                "latency": started.elapsed().as_millis() as u64,
                "fallback_index": served.fallback_index,
                "attempts": served.trail,
            });
            let body = append_extra_fields(body, &extra);
            let mut resp = Response::new(Body::from(body));
            *resp.status_mut() = served.parts.status;
            *resp.headers_mut() = out_headers;
            Ok(resp)
        }
    }
}

fn bad_field(message: &str, field: &str) -> GatewayError {
    GatewayError::BadRequest {
        message: message.to_owned(),
        param: Some(field.to_owned()),
    }
}

/// Which provider and key served, after how many attempts, and the trail: visible to every caller,
/// streams included (they carry no `extra_fields`).
fn routing_headers(h: &mut HeaderMap, served: &Served) {
    let mut set = |name: &'static str, value: String| {
        if let Ok(v) = HeaderValue::from_str(&value) {
            h.insert(name, v);
        }
    };
    set("x-switchyard-provider", served.provider.clone());
    set("x-switchyard-model", served.model.clone());
    set("x-switchyard-key", served.key_name.clone());
    set(
        "x-switchyard-attempts",
        served
            .trail
            .iter()
            .filter(|a| a.key.is_some())
            .count()
            .to_string(),
    );
    set("x-switchyard-fallback-index", served.fallback_index.to_string());
    set(
        "x-switchyard-trail",
        served
            .trail
            .iter()
            .map(AttemptRecord::compact)
            .collect::<Vec<_>>()
            .join(", "),
    );
}

/// The OpenAI-to-OpenAI pass-through: the client's body with only `model` rewritten per target.
struct OpenAiChat<'a> {
    body: JsonObject<'a>,
    client_headers: &'a HeaderMap,
    stream: bool,
}

impl UpstreamRequest for OpenAiChat<'_> {
    fn request_type(&self) -> &'static str {
        if self.stream {
            "chat_completion_stream"
        } else {
            "chat_completion"
        }
    }

    fn supports(&self, wire: WireApi) -> bool {
        wire == WireApi::OpenAi
    }

    fn build(&mut self, target: &Target<'_>, key: &RuntimeKey) -> Result<http::Request<Body>, GatewayError> {
        self.body.set_str("model", target.model);
        let call = UpstreamCall {
            provider: target.provider,
            key: Some(key),
            method: Method::POST,
            url: openai_endpoint(&target.provider.base_url, "/chat/completions"),
            accept_sse: self.stream,
            client_headers: self.client_headers,
        };
        call.build(Body::from(self.body.to_vec()))
    }
}

/// Adds Bifrost's `extra_fields` block to a JSON object answer by splicing it in before the closing
/// brace; the upstream's bytes are otherwise left untouched. Anything that is not a JSON object (or
/// already has `extra_fields`) is returned as is.
fn append_extra_fields(body: Bytes, extra: &Value) -> Bytes {
    let trimmed_end = body.iter().rposition(|b| !b.is_ascii_whitespace());
    let Some(close) = trimmed_end.filter(|&i| body[i] == b'}') else {
        return body;
    };
    if body.iter().find(|b| !b.is_ascii_whitespace()) != Some(&b'{') {
        return body;
    }
    if memchr::memmem::find(&body, b"\"extra_fields\"").is_some() {
        return body;
    }
    let before = body[..close].iter().rposition(|b| !b.is_ascii_whitespace());
    let empty_object = before.is_some_and(|i| body[i] == b'{');
    let mut out = Vec::with_capacity(body.len() + 160);
    out.extend_from_slice(&body[..close]);
    if !empty_object {
        out.push(b',');
    }
    out.extend_from_slice(b"\"extra_fields\":");
    serde_json::to_writer(&mut out, extra).expect("writing to a Vec cannot fail");
    out.extend_from_slice(&body[close..]);
    Bytes::from(out)
}

#[derive(Debug, Deserialize)]
pub struct ModelsQuery {
    provider: Option<String>,
}

/// `GET /v1/models`: the models of every configured provider, as `provider/model` ids, limited to what
/// the provider's keys allow. OpenAI-compatible upstreams are asked in parallel (their extra fields such
/// as `max_model_len` are kept); explicitly listed models are included even when the upstream does not
/// list them (yet), and an unreachable upstream degrades to its keys' explicit lists.
pub async fn list_models(
    State(state): State<Arc<AppState>>,
    Query(q): Query<ModelsQuery>,
) -> Result<Response, ApiError> {
    let snapshot = state.config.snapshot();
    if let Some(p) = &q.provider {
        if snapshot.provider(p).is_none() {
            return Err(GatewayError::NotFound {
                message: format!("provider '{p}' is not configured"),
                code: Some("provider_not_found"),
            }
            .into());
        }
    }
    let providers: Vec<&RuntimeProvider> = snapshot
        .providers
        .iter()
        .filter(|p| {
            q.provider
                .as_deref()
                .is_none_or(|name| p.config.name.as_str() == name)
        })
        .filter(|p| p.keys.iter().any(|k| k.usable()))
        .collect();
    let lists = futures_util::future::join_all(providers.iter().map(|p| provider_models(&state, p))).await;
    let data: Vec<Value> = lists.into_iter().flatten().collect();
    Ok(axum::Json(json!({"object": "list", "data": data})).into_response())
}

async fn provider_models(state: &AppState, p: &RuntimeProvider) -> Vec<Value> {
    let name = p.config.name.as_str();
    let usable: Vec<&RuntimeKey> = p.keys.iter().filter(|k| k.usable()).collect();
    let mut out: Vec<Value> = Vec::new();
    let mut seen = std::collections::HashSet::new();
    let any_wildcard = usable.iter().any(|k| k.config.models.iter().any(|m| m == "*"));
    if p.config.wire() == WireApi::OpenAi && p.config.allows_request("list_models") {
        match fetch_upstream_models(state, p, usable[0]).await {
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

async fn fetch_upstream_models(
    state: &AppState,
    p: &RuntimeProvider,
    key: &RuntimeKey,
) -> Result<Vec<Value>, GatewayError> {
    let name = p.config.name.to_string();
    let headers = HeaderMap::new();
    let call = UpstreamCall {
        provider: p,
        key: Some(key),
        method: Method::GET,
        url: openai_endpoint(&p.base_url, "/models"),
        accept_sse: false,
        client_headers: &headers,
    };
    let req = call.build(Body::empty())?;
    let timeout = Duration::from_secs(10);
    let fetch = async {
        let resp = state.upstream.send(&name, req).await?;
        let status = resp.status();
        let body = read_capped(resp.into_body(), 8 * 1024 * 1024).await;
        if !status.is_success() {
            return Err(upstream_error(status, &body, key));
        }
        let v: Value = serde_json::from_slice(&body).map_err(|e| GatewayError::UpstreamUnreachable {
            provider: name.clone(),
            reason: format!("model list is not JSON: {e}"),
        })?;
        Ok(match v.get("data") {
            Some(Value::Array(items)) => items.clone(),
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

/// Result of probing one key against its provider, for the status page.
pub async fn check_key(state: &AppState, p: &RuntimeProvider, key: &RuntimeKey) -> Value {
    if let Some(problem) = &key.problem {
        return json!({"ok": false, "message": problem});
    }
    if p.config.wire() != WireApi::OpenAi {
        return json!({"ok": null, "message": format!("checks for {} providers are not available yet", p.config.wire().as_str())});
    }
    let started = Instant::now();
    match fetch_upstream_models(state, p, key).await {
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn extra_fields_are_spliced_into_objects_only() {
        let extra = json!({"provider": "p"});
        let out = append_extra_fields(Bytes::from_static(b"{\"id\":\"x\"}\n"), &extra);
        assert_eq!(
            &out[..],
            b"{\"id\":\"x\",\"extra_fields\":{\"provider\":\"p\"}}\n"
        );
        let out = append_extra_fields(Bytes::from_static(b" { } "), &extra);
        assert_eq!(&out[..], b" { \"extra_fields\":{\"provider\":\"p\"}} ");
        let out = append_extra_fields(Bytes::from_static(b"[1]"), &extra);
        assert_eq!(&out[..], b"[1]");
        let v: Value = serde_json::from_slice(&append_extra_fields(
            Bytes::from_static(b"{\"a\":{\"b\":1}}"),
            &extra,
        ))
        .unwrap();
        assert_eq!(v["extra_fields"]["provider"], "p");
    }
}
