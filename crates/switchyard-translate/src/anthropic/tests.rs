use serde_json::json;

use super::error::{error_type_for_status, parse_error};
use super::request::tool_use_id;
use super::response::{finish_to_stop_reason, stop_reason_to_finish};
use crate::canonical::FinishReason;

#[test]
fn stop_reason_table() {
    for (s, r) in [
        ("end_turn", FinishReason::Stop),
        ("stop_sequence", FinishReason::Stop),
        ("pause_turn", FinishReason::Stop),
        ("max_tokens", FinishReason::Length),
        ("model_context_window_exceeded", FinishReason::Length),
        ("tool_use", FinishReason::ToolCalls),
        ("refusal", FinishReason::ContentFilter),
    ] {
        assert_eq!(stop_reason_to_finish(Some(s)), r, "{s}");
    }
    assert_eq!(stop_reason_to_finish(None), FinishReason::Stop);
    assert_eq!(finish_to_stop_reason(FinishReason::Stop, None), "end_turn");
    assert_eq!(
        finish_to_stop_reason(FinishReason::Stop, Some("END")),
        "stop_sequence"
    );
    assert_eq!(finish_to_stop_reason(FinishReason::Length, None), "max_tokens");
    assert_eq!(finish_to_stop_reason(FinishReason::ToolCalls, None), "tool_use");
    assert_eq!(
        finish_to_stop_reason(FinishReason::ContentFilter, None),
        "refusal"
    );
}

#[test]
fn error_status_table() {
    for (t, upstream_status, status, openai_type) in [
        ("invalid_request_error", 400, 400, "invalid_request_error"),
        ("authentication_error", 401, 401, "authentication_error"),
        ("billing_error", 402, 402, "invalid_request_error"),
        ("permission_error", 403, 403, "permission_error"),
        ("not_found_error", 404, 404, "invalid_request_error"),
        ("request_too_large", 413, 413, "invalid_request_error"),
        ("rate_limit_error", 429, 429, "rate_limit_error"),
        ("api_error", 500, 500, "server_error"),
        ("timeout_error", 504, 504, "timeout_error"),
        ("overloaded_error", 529, 503, "server_error"),
    ] {
        let body = json!({"type": "error", "error": {"type": t, "message": "m"}}).to_string();
        let e = parse_error(upstream_status, body.as_bytes());
        assert_eq!(e.status, status, "{t}");
        assert_eq!(e.detail.error_type, openai_type, "{t}");
        assert_eq!(e.detail.code.as_deref(), Some(t));
        // and back: an Anthropic client sees the same type again
        assert_eq!(error_type_for_status(upstream_status), t);
    }
    // in-stream errors carry no HTTP status: the type decides
    let e = parse_error(
        500,
        br#"{"type":"error","error":{"type":"overloaded_error","message":"Overloaded"}}"#,
    );
    assert_eq!(e.status, 503);
    // unknown shapes fall back to the generic normaliser
    let e = parse_error(529, b"upstream exploded");
    assert_eq!((e.status, e.detail.error_type.as_str()), (503, "server_error"));
    assert_eq!(error_type_for_status(503), "overloaded_error");
    assert_eq!(error_type_for_status(422), "invalid_request_error");
    assert_eq!(error_type_for_status(502), "api_error");
}

#[test]
fn tool_ids_are_made_valid_deterministically() {
    assert_eq!(tool_use_id("toolu_01A-b"), "toolu_01A-b");
    let a = tool_use_id("call:1/x");
    assert_eq!(a, tool_use_id("call:1/x"));
    assert!(a.starts_with("call1x_"), "{a}");
    assert_ne!(tool_use_id("call:1"), tool_use_id("call/1"));
    assert!(!tool_use_id("").is_empty());
}
