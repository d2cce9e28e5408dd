use serde_json::json;

use super::error::normalize_upstream_error;
use super::request::{parse_request, render_request};
use super::response::{finish_from_str, finish_to_str, parse_usage, usage_json};
use crate::canonical::{FinishReason, Usage};
use crate::{RequestOptions, TranslateError};

#[test]
fn finish_reason_table() {
    for (s, r) in [
        ("stop", FinishReason::Stop),
        ("length", FinishReason::Length),
        ("tool_calls", FinishReason::ToolCalls),
        ("content_filter", FinishReason::ContentFilter),
    ] {
        assert_eq!(finish_from_str(s), r);
        assert_eq!(finish_to_str(r), s);
    }
    assert_eq!(finish_from_str("function_call"), FinishReason::ToolCalls);
    assert_eq!(finish_from_str("something_new"), FinishReason::Stop);
}

#[test]
fn usage_splits_cached_tokens() {
    let u = parse_usage(
        json!({"prompt_tokens": 100, "completion_tokens": 7, "prompt_tokens_details": {"cached_tokens": 60},
               "completion_tokens_details": {"reasoning_tokens": 3}})
        .as_object()
        .unwrap(),
    );
    assert_eq!(
        u,
        Usage {
            input: 40,
            output: 7,
            cache_read: 60,
            cache_write: 0,
            reasoning: 3
        }
    );
    assert_eq!(usage_json(&u)["prompt_tokens"], 100);
    assert_eq!(usage_json(&u)["total_tokens"], 107);
}

#[test]
fn errors_name_the_field() {
    let e = parse_request(br#"{"model":"m","messages":[{"role":"user","content":"hi"},{"role":"assistant","tool_calls":[{"id":"c","type":"function","function":{"name":"f","arguments":"{oops"}}]}]}"#).unwrap_err();
    assert_eq!(e.param(), Some("messages[1].tool_calls[0].function.arguments"));
    let e = parse_request(br#"{"model":"m","messages":[{"role":"tool","tool_call_id":"x","content":"r"}]}"#)
        .unwrap_err();
    assert_eq!(e.param(), Some("messages[0].tool_call_id"));
    let e = parse_request(br#"{"messages":[]}"#).unwrap_err();
    assert_eq!(
        e,
        TranslateError::MissingField {
            param: "model".into()
        }
    );
    let e = parse_request(br#"{"model":"m","messages":[],"n":2}"#).unwrap_err();
    assert_eq!(e.param(), Some("n"));
    let e = parse_request(
        br#"{"model":"m","messages":[{"role":"user","content":[{"type":"input_audio","input_audio":{}}]}]}"#,
    )
    .unwrap_err();
    assert_eq!(e.param(), Some("messages[0].content[0].type"));
    assert_eq!(e.status(), 400);
}

#[test]
fn extras_are_kept_and_forwarded_to_openai_only() {
    let req = parse_request(
        br#"{"model":"m","messages":[],"chat_template_kwargs":{"enable_thinking":false},"seed":3}"#,
    )
    .unwrap();
    assert_eq!(req.extras.len(), 2);
    let out = render_request(&req, &RequestOptions::new("up"));
    assert_eq!(out["seed"], 3);
    assert_eq!(out["model"], "up");
}

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
