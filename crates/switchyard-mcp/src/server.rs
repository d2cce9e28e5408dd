//! The `/mcp` server's JSON-RPC methods over the hub: `initialize`, `ping`, `tools/list` (every tool
//! the caller may call, named `<client>-<tool>` with the upstream's description and schemas) and
//! `tools/call` (allowed → the upstream's result unchanged; unknown or refused → a JSON-RPC error, and
//! no upstream sees it). The HTTP side (identity, status codes) is the proxy's `routes::mcp`.

use std::time::Instant;

use serde_json::{json, Map, Value};
use switchyard_core::mcp::{gateway_tool_name, may_call, split_tool_name, McpCaller, Refusal};

use crate::hub::{CallError, Hub};
use crate::jsonrpc::{PROTOCOL_VERSION, SUPPORTED_VERSIONS};

/// JSON-RPC error codes.
pub const INVALID_REQUEST: i64 = -32600;
pub const METHOD_NOT_FOUND: i64 = -32601;
pub const INVALID_PARAMS: i64 = -32602;

/// Who calls: their allow-list and their key id for the records.
#[derive(Clone, Copy)]
pub struct Caller<'a> {
    pub access: McpCaller<'a>,
    pub key_id: Option<&'a str>,
}

/// Every tool `caller` may see: `(gateway name, the upstream's tool with its name replaced)`.
pub fn visible_tools(hub: &Hub, caller: McpCaller<'_>) -> Vec<Value> {
    let mut out = Vec::new();
    for up in hub.upstreams() {
        for tool in up.tools().iter() {
            let Some(name) = tool.get("name").and_then(Value::as_str) else {
                continue;
            };
            if may_call(&up.config, caller, name).is_err() {
                continue;
            }
            let mut t = tool.clone();
            t["name"] = Value::String(gateway_tool_name(&up.config.name, name));
            out.push(t);
        }
    }
    out
}

/// A refused or failed call, before or instead of a tool result.
#[derive(Debug, PartialEq)]
pub enum ToolError {
    /// Unknown tool, or one the caller may not call: nothing reached an upstream.
    Refused {
        code: i64,
        message: String,
        blocked: bool,
    },
    Call(CallError),
}

/// Resolves `name` for `caller` and calls it. The refusal message does not tell an unknown tool from
/// a forbidden one beyond what the caller could list anyway.
pub async fn call_tool(
    hub: &Hub,
    caller: Caller<'_>,
    name: &str,
    arguments: Value,
) -> Result<Value, ToolError> {
    let started = Instant::now();
    let refuse = |blocked: bool, message: String| ToolError::Refused {
        code: INVALID_PARAMS,
        message,
        blocked,
    };
    let Some((client, tool)) = split_tool_name(name) else {
        return Err(refuse(
            false,
            format!("unknown tool '{name}': tools are named <client>-<tool>"),
        ));
    };
    let Some(up) = hub.by_name(client) else {
        return Err(refuse(
            false,
            format!("unknown tool '{name}': no MCP client '{client}'"),
        ));
    };
    let known = up
        .tools()
        .iter()
        .any(|t| t.get("name").and_then(Value::as_str) == Some(tool));
    match may_call(&up.config, caller.access, tool) {
        Ok(()) if known => {}
        Ok(()) => return Err(refuse(false, format!("unknown tool '{name}'"))),
        Err(why) => {
            let reason = match why {
                Refusal::Disabled => "the MCP client is disabled",
                Refusal::NotExecuted => "the MCP client does not execute it (tools_to_execute)",
                Refusal::NotForKey => "the virtual key does not allow it (mcp_configs)",
                Refusal::Unknown => "unknown",
            };
            let message = format!("tool '{name}' is not allowed: {reason}");
            hub.record(
                tool,
                client,
                caller.key_id,
                started.elapsed(),
                "blocked",
                Some(message.clone()),
            );
            return Err(refuse(true, message));
        }
    }
    hub.call(&up, tool, arguments, caller.key_id)
        .await
        .map_err(ToolError::Call)
}

fn error(id: Value, code: i64, message: &str) -> Value {
    json!({"jsonrpc": "2.0", "id": id, "error": {"code": code, "message": message}})
}

fn ok(id: Value, result: Value) -> Value {
    json!({"jsonrpc": "2.0", "id": id, "result": result})
}

/// Answers one JSON-RPC message; `None` for a notification (the HTTP side answers 202).
pub async fn handle(hub: &Hub, caller: Caller<'_>, msg: &Value) -> Option<Value> {
    let Some(obj) = msg.as_object() else {
        return Some(error(
            Value::Null,
            INVALID_REQUEST,
            "a JSON-RPC message must be an object",
        ));
    };
    let id = obj.get("id").cloned();
    let Some(method) = obj.get("method").and_then(Value::as_str) else {
        // An answer to a request we never send, or garbage.
        return id.map(|id| error(id, INVALID_REQUEST, "expected a request with a method"));
    };
    let id = id?;
    let params = obj.get("params").cloned().unwrap_or(Value::Object(Map::new()));
    Some(match method {
        "initialize" => {
            let asked = params.get("protocolVersion").and_then(Value::as_str);
            let version = asked
                .filter(|v| SUPPORTED_VERSIONS.contains(v))
                .unwrap_or(PROTOCOL_VERSION);
            ok(
                id,
                json!({
                    "protocolVersion": version,
                    "capabilities": {"tools": {"listChanged": false}},
                    "serverInfo": {"name": "switchyard", "version": env!("CARGO_PKG_VERSION")},
                }),
            )
        }
        "ping" => ok(id, json!({})),
        "tools/list" => ok(id, json!({"tools": visible_tools(hub, caller.access)})),
        "tools/call" => {
            let Some(name) = params.get("name").and_then(Value::as_str) else {
                return Some(error(id, INVALID_PARAMS, "params.name is required"));
            };
            let arguments = params.get("arguments").cloned().unwrap_or(json!({}));
            match call_tool(hub, caller, name, arguments).await {
                Ok(result) => ok(id, result),
                Err(ToolError::Refused { code, message, .. }) => error(id, code, &message),
                // A failed call is a tool result with `isError`, so a model can read what happened.
                Err(ToolError::Call(e)) => ok(
                    id,
                    json!({"content": [{"type": "text", "text": e.to_string()}], "isError": true}),
                ),
            }
        }
        _ => error(
            id,
            METHOD_NOT_FOUND,
            &format!("method '{method}' is not supported"),
        ),
    })
}
