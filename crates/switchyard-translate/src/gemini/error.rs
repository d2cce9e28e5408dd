//! Errors: Gemini RPC statuses, read and rendered.

use serde_json::{json, Value};

use crate::canonical::{ErrorDetail, ErrorInfo};
use crate::openai::{default_type_for_status, normalize_upstream_error};

/// HTTP status for a Google RPC status name.
pub(crate) fn status_for_rpc(s: &str) -> Option<u16> {
    Some(match s {
        "INVALID_ARGUMENT" | "FAILED_PRECONDITION" | "OUT_OF_RANGE" => 400,
        "UNAUTHENTICATED" => 401,
        "PERMISSION_DENIED" => 403,
        "NOT_FOUND" => 404,
        "ALREADY_EXISTS" | "ABORTED" => 409,
        "RESOURCE_EXHAUSTED" => 429,
        "CANCELLED" => 499,
        "INTERNAL" | "UNKNOWN" | "DATA_LOSS" => 500,
        "UNIMPLEMENTED" => 501,
        "UNAVAILABLE" => 503,
        "DEADLINE_EXCEEDED" => 504,
        _ => return None,
    })
}

/// Google RPC status name for an HTTP status.
pub(crate) fn rpc_for_status(status: u16) -> &'static str {
    match status {
        401 => "UNAUTHENTICATED",
        403 => "PERMISSION_DENIED",
        404 => "NOT_FOUND",
        409 => "ABORTED",
        429 => "RESOURCE_EXHAUSTED",
        499 => "CANCELLED",
        501 => "UNIMPLEMENTED",
        502 | 503 | 529 => "UNAVAILABLE",
        504 => "DEADLINE_EXCEEDED",
        400..=499 => "INVALID_ARGUMENT",
        _ => "INTERNAL",
    }
}

pub(crate) fn parse_error(status: u16, body: &[u8]) -> ErrorInfo {
    let parsed: Option<Value> = serde_json::from_slice(body).ok();
    // Without alt=sse, errors can come wrapped in the response array.
    let parsed = match parsed {
        Some(Value::Array(mut items)) if !items.is_empty() => Some(items.swap_remove(0)),
        other => other,
    };
    let inner = parsed
        .as_ref()
        .and_then(|v| v.get("error"))
        .and_then(Value::as_object);
    let Some(inner) = inner.filter(|e| e.get("message").and_then(Value::as_str).is_some()) else {
        return ErrorInfo {
            status,
            detail: normalize_upstream_error(status, body),
        };
    };
    let rpc = inner.get("status").and_then(Value::as_str);
    let status = rpc
        .and_then(status_for_rpc)
        .or_else(|| {
            inner
                .get("code")
                .and_then(Value::as_u64)
                .and_then(|c| u16::try_from(c).ok())
        })
        .filter(|s| (400..=599).contains(s))
        .unwrap_or(status);
    let mut detail = ErrorDetail {
        message: inner
            .get("message")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_owned(),
        error_type: default_type_for_status(status).to_owned(),
        param: None,
        code: rpc.map(str::to_owned),
    };
    if detail.message.contains("exceeds the maximum number of tokens") {
        detail.code = Some("context_length_exceeded".to_owned());
    }
    ErrorInfo { status, detail }
}

pub(crate) fn render_error(e: &ErrorInfo) -> Value {
    json!({"error": {"code": e.status, "message": e.detail.message, "status": rpc_for_status(e.status)}})
}
