use serde_json::json;

use super::error::{parse_error, rpc_for_status};
use super::request::{guess_mime, lowercase_types, response_text};
use super::response::{finish_from_gemini, finish_to_gemini};
use crate::canonical::FinishReason;

#[test]
fn finish_reason_table() {
    for (s, r) in [
        ("STOP", FinishReason::Stop),
        ("MAX_TOKENS", FinishReason::Length),
        ("SAFETY", FinishReason::ContentFilter),
        ("RECITATION", FinishReason::ContentFilter),
        ("BLOCKLIST", FinishReason::ContentFilter),
        ("PROHIBITED_CONTENT", FinishReason::ContentFilter),
        ("SPII", FinishReason::ContentFilter),
        ("MALFORMED_FUNCTION_CALL", FinishReason::Stop),
        ("OTHER", FinishReason::Stop),
    ] {
        assert_eq!(finish_from_gemini(s), r, "{s}");
    }
    assert_eq!(finish_to_gemini(FinishReason::Stop), "STOP");
    assert_eq!(finish_to_gemini(FinishReason::ToolCalls), "STOP");
    assert_eq!(finish_to_gemini(FinishReason::Length), "MAX_TOKENS");
    assert_eq!(finish_to_gemini(FinishReason::ContentFilter), "SAFETY");
}

#[test]
fn error_status_table() {
    for (rpc, status, openai_type) in [
        ("INVALID_ARGUMENT", 400, "invalid_request_error"),
        ("FAILED_PRECONDITION", 400, "invalid_request_error"),
        ("UNAUTHENTICATED", 401, "authentication_error"),
        ("PERMISSION_DENIED", 403, "permission_error"),
        ("NOT_FOUND", 404, "invalid_request_error"),
        ("RESOURCE_EXHAUSTED", 429, "rate_limit_error"),
        ("INTERNAL", 500, "server_error"),
        ("UNAVAILABLE", 503, "server_error"),
        ("DEADLINE_EXCEEDED", 504, "timeout_error"),
    ] {
        let body = json!({"error": {"code": status, "message": "m", "status": rpc}}).to_string();
        let e = parse_error(status, body.as_bytes());
        assert_eq!(
            (e.status, e.detail.error_type.as_str()),
            (status, openai_type),
            "{rpc}"
        );
        assert_eq!(e.detail.code.as_deref(), Some(rpc));
        if rpc != "FAILED_PRECONDITION" {
            assert_eq!(rpc_for_status(status), rpc);
        }
    }
    let e = parse_error(
        400,
        br#"[{"error":{"code":429,"message":"quota","status":"RESOURCE_EXHAUSTED"}}]"#,
    );
    assert_eq!(e.status, 429);
    let e = parse_error(502, b"<html>bad gateway</html>");
    assert_eq!(e.status, 502);
    assert_eq!(rpc_for_status(502), "UNAVAILABLE");
    assert_eq!(rpc_for_status(422), "INVALID_ARGUMENT");
}

#[test]
fn schema_types_are_lowercased() {
    let mut v = json!({"type": "OBJECT", "properties": {"type": {"type": "STRING"}, "n": {"type": "ARRAY", "items": {"type": "INTEGER"}}}});
    lowercase_types(&mut v);
    assert_eq!(
        v,
        json!({"type": "object", "properties": {"type": {"type": "string"}, "n": {"type": "array", "items": {"type": "integer"}}}})
    );
}

#[test]
fn tool_results_unwrap_their_wrapping() {
    assert_eq!(response_text(Some(&json!({"content": "sunny"}))), "sunny");
    assert_eq!(response_text(Some(&json!({"temp": 21}))), r#"{"temp":21}"#);
    assert_eq!(response_text(None), "");
}

#[test]
fn mime_guessing() {
    assert_eq!(guess_mime("https://x/y/cat.JPG?size=2"), Some("image/jpeg"));
    assert_eq!(guess_mime("https://x/doc.pdf"), Some("application/pdf"));
    assert_eq!(guess_mime("https://x/blob"), None);
}
