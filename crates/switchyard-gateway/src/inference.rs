//! Inference surfaces (`Ingress`), `GET /v1/models` (and `/openai/v1/models`), and key checks. Chat in
//! every protocol lives in `chat`.

use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::body::Body;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, Method};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use serde::Deserialize;
use serde_json::{json, Value};
use switchyard_core::routing::{RuntimeKey, RuntimeProvider};
use switchyard_core::upstream_url::{gemini_models_endpoint, openai_endpoint};
use switchyard_core::WireApi;
use switchyard_translate::Protocol;

use crate::dispatch::{read_capped, upstream_error};
use crate::error::{ApiError, GatewayError};
use crate::state::AppState;
use crate::upstream::UpstreamCall;

/// Which client-facing surface a request came in on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Ingress {
    /// `/v1/*`: bare models are routed across all providers.
    Unified,
    /// `/openai/v1/*`: the OpenAI SDK drop-in; bare models prefer the `openai` provider (Bifrost's rule)
    /// and fall through to the other lanes when it does not serve them.
    OpenAi,
    /// `/anthropic/v1/*`: the Anthropic SDK drop-in; bare models prefer the `anthropic` provider.
    Anthropic,
    /// `/genai/v1beta/*`: the Gemini drop-in; bare models prefer the `gemini` provider.
    Gemini,
}

impl Ingress {
    pub fn native_provider(self) -> Option<&'static str> {
        match self {
            Ingress::Unified => None,
            Ingress::OpenAi => Some("openai"),
            Ingress::Anthropic => Some("anthropic"),
            Ingress::Gemini => Some("gemini"),
        }
    }

    /// The protocol the client speaks (and gets its errors in).
    pub fn protocol(self) -> Protocol {
        match self {
            Ingress::Unified | Ingress::OpenAi => Protocol::OpenAi,
            Ingress::Anthropic => Protocol::Anthropic,
            Ingress::Gemini => Protocol::Gemini,
        }
    }
}

/// Adds Bifrost's `extra_fields` block to a JSON object answer by splicing it in before the closing
/// brace; the upstream's bytes are otherwise left untouched. Anything that is not a JSON object (or
/// already has `extra_fields`) is returned as is.
pub fn append_extra_fields(body: Bytes, extra: &Value) -> Bytes {
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
    let listable = matches!(
        p.config.wire(),
        WireApi::OpenAi | WireApi::Anthropic | WireApi::Gemini
    );
    if listable && p.config.allows_request("list_models") {
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
