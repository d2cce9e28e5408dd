//! The MCP gateway's HTTP side: `/mcp` (MCP streamable HTTP: POST JSON-RPC, GET an event stream) and
//! `POST /v1/mcp/tool/execute` (an OpenAI tool call in, a `tool` message out). The caller is found by
//! the pipeline's own identify step ([`pipeline::identify`]); what the caller may see and call is
//! `switchyard_core::mcp::may_call`; the calls are `switchyard_mcp`'s.
//!
//! These routes are not in [`super::table`]: they reach no model provider, so the table's checks
//! (a provider-restricted key → 403, a request-log row) do not apply; `tests/mcp_routes.rs` checks
//! their 401, their per-call records and their metrics instead.

use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use axum::extract::{Request, State};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::{Extension, Json, Router};
use http::{header, StatusCode};
use serde_json::{json, Value};
use switchyard_core::mcp::McpCaller;
use switchyard_mcp::server::{self, Caller, ToolError};
use switchyard_mcp::{CallError, Hub};
use switchyard_runtime::error::{ApiError, GatewayError};
use switchyard_runtime::state::AppState;

use crate::ingress::Ingress;
use crate::pipeline::{identify, Incoming, RouteSpec};

type S = State<Arc<AppState>>;
type H = Extension<Arc<Hub>>;

/// `/mcp` and `/v1/mcp/tool/execute`, to merge into the server's router (which provides the hub as
/// an extension).
pub fn router() -> Router<Arc<AppState>> {
    Router::new()
        .route("/mcp", post(mcp_post).get(mcp_get).delete(mcp_delete))
        .route("/v1/mcp/tool/execute", post(tool_execute))
}

const SPEC: RouteSpec = RouteSpec::on(Ingress::Unified);

fn caller(incoming: &Incoming) -> Caller<'_> {
    let vk = incoming.virtual_key();
    Caller {
        access: vk.map_or(McpCaller::Anonymous, |k| McpCaller::Key(&k.mcp_configs)),
        key_id: vk.map(|k| k.id.as_str()),
    }
}

fn rpc_error(status: StatusCode, code: i64, message: &str) -> Response {
    let body = json!({"jsonrpc": "2.0", "id": null, "error": {"code": code, "message": message}});
    (status, Json(body)).into_response()
}

async fn mcp_post(State(state): S, Extension(hub): H, req: Request) -> Response {
    let incoming = match identify(&state, SPEC, req).await {
        Ok(i) => i,
        Err(e) => return e.into_response(),
    };
    let msg: Value = match serde_json::from_slice(incoming.body()) {
        Ok(v) => v,
        Err(e) => return rpc_error(StatusCode::BAD_REQUEST, -32700, &format!("parse error: {e}")),
    };
    let caller = caller(&incoming);
    let answer = match &msg {
        Value::Array(batch) => {
            let mut out = Vec::new();
            for m in batch {
                out.extend(server::handle(&hub, caller, m).await);
            }
            (!out.is_empty()).then_some(Value::Array(out))
        }
        m => server::handle(&hub, caller, m).await,
    };
    match answer {
        Some(a) => Json(a).into_response(),
        None => StatusCode::ACCEPTED.into_response(),
    }
}

/// The server-to-client event stream. The gateway sends no requests or notifications of its own, so
/// the stream carries only keep-alive comments; it ends when the client goes.
async fn mcp_get(State(state): S, req: Request) -> Response {
    if let Err(e) = identify(&state, SPEC, req).await {
        return e.into_response();
    }
    let ticks = futures_util::stream::unfold((), |()| async {
        tokio::time::sleep(Duration::from_secs(15)).await;
        Some((
            Ok::<_, std::convert::Infallible>(bytes::Bytes::from_static(b": keep-alive\n\n")),
            (),
        ))
    });
    let first = futures_util::stream::once(async { Ok(bytes::Bytes::from_static(b": stream open\n\n")) });
    let stream = futures_util::StreamExt::chain(first, ticks);
    Response::builder()
        .header(header::CONTENT_TYPE, "text/event-stream")
        .header(header::CACHE_CONTROL, "no-cache")
        .body(Body::from_stream(stream))
        .unwrap_or_else(|_| StatusCode::INTERNAL_SERVER_ERROR.into_response())
}

/// No sessions are kept, so there is none to end.
async fn mcp_delete() -> Response {
    rpc_error(
        StatusCode::METHOD_NOT_ALLOWED,
        -32600,
        "this server keeps no sessions",
    )
}

/// The tool call's `function.name`, its parsed `arguments` and its `id`.
fn read_tool_call(body: &[u8]) -> Result<(String, Value, Value), GatewayError> {
    let bad = |param: &str, message: &str| GatewayError::BadRequest {
        message: message.to_owned(),
        param: Some(param.to_owned()),
    };
    let call: Value =
        serde_json::from_slice(body).map_err(|e| bad("(body)", &format!("invalid JSON: {e}")))?;
    let name = call
        .pointer("/function/name")
        .and_then(Value::as_str)
        .ok_or_else(|| {
            bad(
                "function.name",
                "function.name is required: the tool to call, as <client>-<tool>",
            )
        })?;
    let arguments = match call.pointer("/function/arguments") {
        None | Some(Value::Null) => json!({}),
        Some(Value::String(s)) if s.trim().is_empty() => json!({}),
        Some(Value::String(s)) => serde_json::from_str::<Value>(s)
            .ok()
            .filter(Value::is_object)
            .ok_or_else(|| {
                bad(
                    "function.arguments",
                    "function.arguments must be a JSON object encoded as a string",
                )
            })?,
        Some(v) if v.is_object() => v.clone(),
        Some(_) => {
            return Err(bad(
                "function.arguments",
                "function.arguments must be a JSON object encoded as a string",
            ))
        }
    };
    Ok((
        name.to_owned(),
        arguments,
        call.get("id").cloned().unwrap_or(Value::Null),
    ))
}

/// A tool result as the text of a `tool` message: its text parts joined; without any, the structured
/// content (or the whole content) as JSON.
fn result_text(result: &Value) -> String {
    let parts: Vec<&str> = result
        .get("content")
        .and_then(Value::as_array)
        .map(|c| {
            c.iter()
                .filter_map(|p| p.get("text").and_then(Value::as_str))
                .collect()
        })
        .unwrap_or_default();
    if !parts.is_empty() {
        return parts.join("\n");
    }
    result
        .get("structuredContent")
        .or_else(|| result.get("content"))
        .map(Value::to_string)
        .unwrap_or_default()
}

fn call_error(e: ToolError) -> GatewayError {
    match e {
        ToolError::Refused {
            message,
            blocked: true,
            ..
        } => GatewayError::Forbidden {
            message,
            code: "mcp_tool_blocked",
        },
        ToolError::Refused { message, .. } => GatewayError::NotFound {
            message,
            code: Some("mcp_tool_not_found"),
        },
        ToolError::Call(CallError::Timeout { server, after, .. }) => GatewayError::UpstreamTimeout {
            provider: format!("mcp:{server}"),
            timeout_secs: after.as_secs().max(1),
        },
        ToolError::Call(e @ CallError::Unavailable { .. }) => GatewayError::Unavailable(e.to_string()),
        ToolError::Call(CallError::Rpc { server, message, .. }) => GatewayError::UpstreamUnreachable {
            provider: format!("mcp:{server}"),
            reason: message,
        },
    }
}

async fn tool_execute(State(state): S, Extension(hub): H, req: Request) -> Result<Response, ApiError> {
    let incoming = identify(&state, SPEC, req).await?;
    let (name, arguments, id) = read_tool_call(incoming.body()).map_err(|e| incoming.reject(e))?;
    let result = server::call_tool(&hub, caller(&incoming), &name, arguments)
        .await
        .map_err(|e| incoming.reject(call_error(e)))?;
    Ok(Json(json!({"role": "tool", "content": result_text(&result), "tool_call_id": id})).into_response())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tool_calls_are_read_with_the_field_named() {
        let (n, a, id) = read_tool_call(
            br#"{"id":"c1","type":"function","function":{"name":"fs-read","arguments":"{\"p\":1}"}}"#,
        )
        .unwrap();
        assert_eq!((n.as_str(), a, id), ("fs-read", json!({"p": 1}), json!("c1")));
        for (body, param) in [
            (&br#"{"function":{}}"#[..], "function.name"),
            (
                br#"{"function":{"name":"a-b","arguments":"[1]"}}"#,
                "function.arguments",
            ),
            (
                br#"{"function":{"name":"a-b","arguments":"{"}}"#,
                "function.arguments",
            ),
            (br"nope", "(body)"),
        ] {
            match read_tool_call(body) {
                Err(GatewayError::BadRequest { param: Some(p), .. }) => assert_eq!(p, param),
                other => panic!("{other:?}"),
            }
        }
    }

    #[test]
    fn results_become_tool_message_text() {
        let r = json!({"content": [{"type": "text", "text": "a"}, {"type": "text", "text": "b"}]});
        assert_eq!(result_text(&r), "a\nb");
        let r = json!({"content": [], "structuredContent": {"x": 1}});
        assert_eq!(result_text(&r), r#"{"x":1}"#);
    }
}
