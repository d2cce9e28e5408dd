//! Errors: Anthropic error types and statuses, read and rendered.

use serde_json::{json, Value};

use crate::canonical::{ErrorDetail, ErrorInfo};
use crate::openai::{default_type_for_status, normalize_upstream_error};

/// The HTTP status Anthropic uses for an error type.
pub(crate) fn status_for_error_type(t: &str) -> Option<u16> {
    Some(match t {
        "invalid_request_error" => 400,
        "authentication_error" => 401,
        "billing_error" => 402,
        "permission_error" => 403,
        "not_found_error" => 404,
        "request_too_large" => 413,
        "rate_limit_error" => 429,
        "api_error" => 500,
        "timeout_error" => 504,
        "overloaded_error" => 529,
        _ => return None,
    })
}

/// The Anthropic error type for a status (for errors going to Anthropic-shaped clients).
pub(crate) fn error_type_for_status(status: u16) -> &'static str {
    match status {
        401 => "authentication_error",
        402 => "billing_error",
        403 => "permission_error",
        404 => "not_found_error",
        413 => "request_too_large",
        429 => "rate_limit_error",
        503 | 529 => "overloaded_error",
        504 => "timeout_error",
        400..=499 => "invalid_request_error",
        _ => "api_error",
    }
}

/// The status to report to OpenAI-shaped clients: Anthropic's 529 is not a status the SDKs know.
pub(crate) fn client_status(status: u16) -> u16 {
    if status == 529 {
        503
    } else {
        status
    }
}

/// Reads an Anthropic error body. The status comes from the error type when Anthropic documents one
/// (it is what Anthropic would have sent), else from the HTTP status; 529 becomes 503.
pub(crate) fn parse_error(status: u16, body: &[u8]) -> ErrorInfo {
    let parsed: Option<Value> = serde_json::from_slice(body).ok();
    let inner = parsed
        .as_ref()
        .and_then(|v| v.get("error"))
        .and_then(Value::as_object);
    let (Some(t), Some(message)) = (
        inner.and_then(|e| e.get("type")).and_then(Value::as_str),
        inner.and_then(|e| e.get("message")).and_then(Value::as_str),
    ) else {
        return ErrorInfo {
            status: client_status(status),
            detail: normalize_upstream_error(client_status(status), body),
        };
    };
    let status = client_status(status_for_error_type(t).unwrap_or(status));
    let error_type = match t {
        "invalid_request_error"
        | "authentication_error"
        | "permission_error"
        | "rate_limit_error"
        | "timeout_error" => t,
        _ => default_type_for_status(status),
    };
    ErrorInfo {
        status,
        detail: ErrorDetail {
            message: message.to_owned(),
            error_type: error_type.to_owned(),
            param: None,
            code: Some(t.to_owned()),
        },
    }
}

pub(crate) fn render_error(e: &ErrorInfo) -> Value {
    json!({"type": "error", "error": {"type": error_type_for_status(e.status), "message": e.detail.message}})
}
