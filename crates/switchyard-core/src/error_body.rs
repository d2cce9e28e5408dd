//! The error body every client sees, and normalisation of upstream error bodies into it.
//!
//! Clients get Bifrost's superset of the OpenAI shape: `{"is_bifrost_error", "status_code",
//! "error": {"message","type","param","code"}, "extra_fields"}` with all four OpenAI keys always present
//! (`null` when unknown). Upstreams answer in many shapes (mittwald's `{"error":"Unauthorized"}`,
//! vLLM's flat `{"object":"error",...,"code":400}`, plain text); [`normalize_upstream_error`] reads them all.

use serde::Serialize;
use serde_json::Value;

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct ErrorDetail {
    pub message: String,
    #[serde(rename = "type")]
    pub error_type: String,
    pub param: Option<String>,
    pub code: Option<String>,
}

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

/// Reads whatever an upstream sent with a non-2xx status into the OpenAI error shape.
pub fn normalize_upstream_error(status: u16, body: &[u8]) -> ErrorDetail {
    let fallback_type = default_type_for_status(status);
    let parsed: Option<Value> = serde_json::from_slice(body).ok();
    let mut detail = match parsed {
        Some(Value::Object(obj)) => {
            let source = match obj.get("error") {
                Some(Value::Object(inner)) => Some(inner),
                // mittwald dedicated: {"error": "Unauthorized"}
                Some(Value::String(s)) => {
                    return finish(ErrorDetail {
                        message: s.clone(),
                        error_type: fallback_type.to_owned(),
                        param: None,
                        code: None,
                    })
                }
                _ => None,
            };
            // vLLM flat errors and {"message": ...} / {"detail": ...} bodies carry the fields at top level.
            let fields = source.unwrap_or(&obj);
            let message = text(fields.get("message"))
                .or_else(|| text(fields.get("detail")))
                .or_else(|| text(obj.get("message")))
                .unwrap_or_else(|| format!("upstream returned HTTP {status}"));
            ErrorDetail {
                message,
                error_type: text(fields.get("type")).unwrap_or_else(|| fallback_type.to_owned()),
                param: text(fields.get("param")),
                code: match fields.get("code") {
                    Some(Value::String(s)) => Some(s.clone()),
                    _ => None, // integer codes (vLLM) violate the OpenAI spec
                },
            }
        }
        _ => {
            let text = String::from_utf8_lossy(body);
            let text = text.trim();
            let message = if text.is_empty() {
                format!("upstream returned HTTP {status} with an empty body")
            } else {
                truncate(text, 500)
            };
            ErrorDetail {
                message,
                error_type: fallback_type.to_owned(),
                param: None,
                code: None,
            }
        }
    };
    if detail.error_type.is_empty() {
        detail.error_type = fallback_type.to_owned();
    }
    finish(detail)
}

fn finish(mut d: ErrorDetail) -> ErrorDetail {
    if d.code.is_none() && d.message.contains("maximum context length") {
        d.code = Some("context_length_exceeded".to_owned());
    }
    d
}

fn text(v: Option<&Value>) -> Option<String> {
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

/// Replaces every occurrence of `secret` in `message` (upstreams sometimes echo the key they rejected).
pub fn scrub_secret(message: &str, secret: &str) -> String {
    if secret.len() < 4 || !message.contains(secret) {
        return message.to_owned();
    }
    message.replace(secret, &crate::secret::redact(secret))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn norm(status: u16, body: &str) -> String {
        serde_json::to_string(&normalize_upstream_error(status, body.as_bytes())).unwrap()
    }

    #[test]
    fn upstream_shapes() {
        insta::assert_snapshot!(norm(401, r#"{"error": "Unauthorized"}"#), @r#"{"message":"Unauthorized","type":"authentication_error","param":null,"code":null}"#);
        insta::assert_snapshot!(
            norm(400, r#"{"object":"error","message":"This model's maximum context length is 4096 tokens","type":"invalid_request_error","param":"messages","code":400}"#),
            @r#"{"message":"This model's maximum context length is 4096 tokens","type":"invalid_request_error","param":"messages","code":"context_length_exceeded"}"#
        );
        insta::assert_snapshot!(
            norm(429, r#"{"error":{"message":"Rate limit reached","type":"requests","code":"rate_limit_exceeded"}}"#),
            @r#"{"message":"Rate limit reached","type":"requests","param":null,"code":"rate_limit_exceeded"}"#
        );
        insta::assert_snapshot!(norm(502, "<html>Bad Gateway</html>"), @r#"{"message":"<html>Bad Gateway</html>","type":"server_error","param":null,"code":null}"#);
        insta::assert_snapshot!(norm(503, ""), @r#"{"message":"upstream returned HTTP 503 with an empty body","type":"server_error","param":null,"code":null}"#);
        insta::assert_snapshot!(norm(422, r#"{"detail":"Field required"}"#), @r#"{"message":"Field required","type":"invalid_request_error","param":null,"code":null}"#);
    }

    #[test]
    fn long_text_bodies_are_truncated() {
        let body = "x".repeat(2000);
        assert!(
            normalize_upstream_error(500, body.as_bytes())
                .message
                .chars()
                .count()
                <= 501
        );
    }

    #[test]
    fn echoed_keys_are_scrubbed() {
        let m = scrub_secret(
            "Incorrect API key provided: sk-live-abcdefghijkl",
            "sk-live-abcdefghijkl",
        );
        assert!(!m.contains("sk-live-abcdefghijkl"), "{m}");
    }
}
