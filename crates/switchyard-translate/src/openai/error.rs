//! Errors: every OpenAI-compatible error shape read into the OpenAI detail, and rendered back.

use serde_json::{json, Value};

use crate::canonical::{ErrorDetail, ErrorInfo};
use crate::json::Obj;

/// The OpenAI `error.type` for a status when the upstream did not give one.
pub fn default_type_for_status(status: u16) -> &'static str {
    match status {
        401 => "authentication_error",
        403 => "permission_error",
        408 | 504 => "timeout_error",
        429 => "rate_limit_error",
        400..=499 => "invalid_request_error",
        _ => "server_error",
    }
}

/// Reads an OpenAI-compatible error answer: the status is kept as is.
pub(crate) fn parse_error(status: u16, body: &[u8]) -> ErrorInfo {
    ErrorInfo {
        status,
        detail: normalize_upstream_error(status, body),
    }
}

/// Reads whatever an upstream sent with a non-2xx status into the OpenAI error detail: OpenAI's
/// `{"error": {...}}`, mittwald's `{"error": "Unauthorized"}`, vLLM's flat `{"object": "error",
/// "message", "code": 400}`, `{"message"}` / `{"detail"}` bodies, plain text or HTML (truncated),
/// and empty bodies. The other adapters fall back to it for bodies not in their own shape.
pub fn normalize_upstream_error(status: u16, body: &[u8]) -> ErrorDetail {
    let fallback_type = default_type_for_status(status);
    let mut detail = match serde_json::from_slice::<Value>(body) {
        Ok(Value::Object(obj)) => json_error_detail(status, &obj),
        _ => text_error_detail(status, body),
    };
    if detail.error_type.is_empty() {
        fallback_type.clone_into(&mut detail.error_type);
    }
    if detail.code.is_none() && detail.message.contains("maximum context length") {
        detail.code = Some("context_length_exceeded".to_owned());
    }
    detail
}

/// An error body that is a JSON object.
fn json_error_detail(status: u16, obj: &Obj) -> ErrorDetail {
    let fallback_type = default_type_for_status(status);
    let fields = match obj.get("error") {
        Some(Value::Object(inner)) => inner,
        // mittwald dedicated: {"error": "Unauthorized"}
        Some(Value::String(s)) => return ErrorDetail::new(s.clone(), fallback_type),
        // vLLM flat errors and {"message": ...} / {"detail": ...} bodies carry the fields at top level.
        _ => obj,
    };
    let message = scalar_text(fields.get("message"))
        .or_else(|| scalar_text(fields.get("detail")))
        .or_else(|| scalar_text(obj.get("message")))
        .unwrap_or_else(|| format!("upstream returned HTTP {status}"));
    ErrorDetail {
        message,
        error_type: scalar_text(fields.get("type")).unwrap_or_else(|| fallback_type.to_owned()),
        param: scalar_text(fields.get("param")),
        code: match fields.get("code") {
            Some(Value::String(s)) => Some(s.clone()),
            _ => None, // integer codes (vLLM) violate the OpenAI spec
        },
    }
}

/// An error body that is not a JSON object: its text, truncated, or a note that it was empty.
fn text_error_detail(status: u16, body: &[u8]) -> ErrorDetail {
    let text = String::from_utf8_lossy(body);
    let text = text.trim();
    let message = if text.is_empty() {
        format!("upstream returned HTTP {status} with an empty body")
    } else {
        truncate(text, 500)
    };
    ErrorDetail::new(message, default_type_for_status(status))
}

fn scalar_text(v: Option<&Value>) -> Option<String> {
    match v {
        Some(Value::String(s)) => Some(s.clone()),
        Some(Value::Number(n)) => Some(n.to_string()),
        _ => None,
    }
}

fn truncate(s: &str, max_chars: usize) -> String {
    match s.char_indices().nth(max_chars) {
        Some((i, _)) => format!("{}…", &s[..i]),
        None => s.to_owned(),
    }
}

pub(crate) fn render_error(e: &ErrorInfo) -> Value {
    json!({"error": detail_json(&e.detail)})
}

fn detail_json(d: &ErrorDetail) -> Value {
    json!({"message": d.message, "type": d.error_type, "param": d.param, "code": d.code})
}
