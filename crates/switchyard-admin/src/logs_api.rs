//! `GET /api/logs` (Bifrost's filters, pagination, sort), `GET /api/logs/{id}`, `GET /api/logs/stats`,
//! `GET /api/logs/histogram` and `GET /metrics`. Handlers parse the query and call the log store;
//! nothing here runs on the request path of inference calls.

use std::sync::Arc;

use axum::extract::{Path, RawQuery, State};
use axum::http::{header, HeaderValue};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::json;
use switchyard_logs::{HistogramQuery, LogFilter, LogQuery, LogStore};

use switchyard_runtime::error::{ApiError, GatewayError};
use switchyard_runtime::runtime_state::health::Scope;
use switchyard_runtime::state::AppState;

fn pairs(raw: Option<String>) -> Vec<(String, String)> {
    let raw = raw.unwrap_or_default();
    form_urlencoded_pairs(&raw)
}

/// Decodes `a=1&b=x%2Cy` (percent-escapes and `+`); a tiny parser so no extra crate is needed.
fn form_urlencoded_pairs(raw: &str) -> Vec<(String, String)> {
    fn hex(b: u8) -> Option<u8> {
        (b as char).to_digit(16).map(|d| d as u8)
    }
    fn decode(s: &str) -> String {
        let bytes = s.as_bytes();
        let mut out = Vec::with_capacity(bytes.len());
        let mut i = 0;
        while i < bytes.len() {
            match bytes[i] {
                b'+' => out.push(b' '),
                b'%' => {
                    match (
                        bytes.get(i + 1).copied().and_then(hex),
                        bytes.get(i + 2).copied().and_then(hex),
                    ) {
                        (Some(h), Some(l)) => {
                            out.push(h * 16 + l);
                            i += 2;
                        }
                        _ => out.push(b'%'),
                    }
                }
                b => out.push(b),
            }
            i += 1;
        }
        String::from_utf8_lossy(&out).into_owned()
    }
    raw.split('&')
        .filter(|p| !p.is_empty())
        .map(|p| match p.split_once('=') {
            Some((k, v)) => (decode(k), decode(v)),
            None => (decode(p), String::new()),
        })
        .collect()
}

fn store(state: &AppState) -> Result<Arc<dyn LogStore>, GatewayError> {
    state.log_store.clone().ok_or_else(|| GatewayError::NotFound {
        message: "request logging is off (start with request logs enabled to use /api/logs)".into(),
        code: Some("logs_disabled"),
    })
}

fn bad_param(e: switchyard_logs::QueryParamError) -> GatewayError {
    GatewayError::BadRequest {
        message: format!("{}: {}", e.param, e.message),
        param: Some(e.param),
    }
}

fn store_failed(e: impl std::fmt::Display) -> GatewayError {
    GatewayError::Unavailable(format!("log store: {e}"))
}

pub async fn list(State(state): State<Arc<AppState>>, RawQuery(q): RawQuery) -> Result<Response, ApiError> {
    let store = store(&state)?;
    let query = LogQuery::from_query_pairs(&pairs(q)).map_err(bad_param)?;
    let page = store.query(&query).await.map_err(store_failed)?;
    Ok(Json(page).into_response())
}

pub async fn get(State(state): State<Arc<AppState>>, Path(id): Path<String>) -> Result<Response, ApiError> {
    let store = store(&state)?;
    match store.get(&id).await.map_err(store_failed)? {
        Some(record) => Ok(Json(record).into_response()),
        None => Err(GatewayError::NotFound {
            message: format!("log '{id}' not found"),
            code: Some("log_not_found"),
        }
        .into()),
    }
}

pub async fn stats(State(state): State<Arc<AppState>>, RawQuery(q): RawQuery) -> Result<Response, ApiError> {
    let store = store(&state)?;
    let filter = LogFilter::from_query_pairs(&pairs(q)).map_err(bad_param)?;
    let stats = store.stats(&filter).await.map_err(store_failed)?;
    let dropped = state.logs.as_ref().map_or(0, |w| w.dropped());
    Ok(Json(json!({"stats": stats, "dropped_records": dropped})).into_response())
}

pub async fn histogram(
    State(state): State<Arc<AppState>>,
    RawQuery(q): RawQuery,
) -> Result<Response, ApiError> {
    let store = store(&state)?;
    let hq = HistogramQuery::from_query_pairs(&pairs(q)).map_err(bad_param)?;
    let buckets = store
        .histogram(&hq.filter, hq.bucket_seconds, hq.group_by)
        .await
        .map_err(store_failed)?;
    Ok(Json(json!({"bucket_seconds": hq.bucket_seconds, "buckets": buckets})).into_response())
}

pub async fn metrics(
    State(state): State<Arc<AppState>>,
    axum::Extension(hub): axum::Extension<Arc<switchyard_mcp::Hub>>,
) -> Response {
    let snapshot = state.config.snapshot();
    let now_keys = snapshot.providers.iter().flat_map(|p| {
        let health = &state.health;
        let breaker = p.config.circuit_breaker;
        p.keys.iter().map(move |k| {
            let up = k.usable() && health.is_available(Scope::Key(&k.config.id), &breaker);
            (p.config.name.to_string(), k.config.name.clone(), up)
        })
    });
    let dropped = state.logs.as_ref().map_or(0, |w| w.dropped());
    let text = with_mcp(state.metrics.render(now_keys, dropped), &hub.metrics.render());
    let mut resp = text.into_response();
    resp.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/openmetrics-text; version=1.0.0; charset=utf-8"),
    );
    resp
}

/// The MCP tool-call families, inserted before OpenMetrics' closing `# EOF`.
fn with_mcp(text: String, mcp: &str) -> String {
    if mcp.is_empty() {
        return text;
    }
    match text.rfind("# EOF") {
        Some(at) => format!("{}{mcp}\n{}", &text[..at], &text[at..]),
        None => format!("{text}{mcp}\n"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn query_strings_decode() {
        assert_eq!(
            form_urlencoded_pairs("providers=a%2Cb&content_search=hello+world&x"),
            vec![
                ("providers".to_owned(), "a,b".to_owned()),
                ("content_search".to_owned(), "hello world".to_owned()),
                ("x".to_owned(), String::new())
            ]
        );
        assert_eq!(
            form_urlencoded_pairs("a=%zz%4"),
            vec![("a".to_owned(), "%zz%4".to_owned())]
        );
    }
}
