use serde_json::json;

use super::error::normalize_upstream_error;
use super::request::{parse_request, render_request};
use super::response::{finish_from_str, finish_to_str, parse_usage, parse_usage_json, usage_json};
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

/// A JSON value of the kinds a usage field may hold in the wild, as text.
fn any_value() -> impl proptest::strategy::Strategy<Value = String> {
    use proptest::prelude::*;
    let leaf = prop_oneof![
        any::<u64>().prop_map(|n| n.to_string()),
        (0u64..1000).prop_map(|n| n.to_string()),
        any::<i64>().prop_map(|n| n.to_string()),
        any::<f64>()
            .prop_filter("finite", |x| x.is_finite())
            .prop_map(|x| format!("{x:?}")),
        Just("5.0".to_owned()),
        Just("1e3".to_owned()),
        Just("184467440737095516160".to_owned()),
        Just("null".to_owned()),
        Just("true".to_owned()),
        Just("\"12\"".to_owned()),
    ];
    leaf.prop_recursive(2, 12, 4, |inner| {
        prop_oneof![
            proptest::collection::vec(inner.clone(), 0..3).prop_map(|v| format!("[{}]", v.join(","))),
            proptest::collection::vec((usage_key(), inner), 0..4).prop_map(|kv| object_text(&kv)),
        ]
    })
}

fn usage_key() -> impl proptest::strategy::Strategy<Value = &'static str> {
    proptest::sample::select(vec![
        "prompt_tokens",
        "completion_tokens",
        "total_tokens",
        "prompt_tokens_details",
        "completion_tokens_details",
        "cached_tokens",
        "reasoning_tokens",
    ])
}

fn object_text(fields: &[(&str, String)]) -> String {
    let body: Vec<String> = fields.iter().map(|(k, v)| format!("\"{k}\": {v}")).collect();
    format!("{{{}}}", body.join(", "))
}

proptest::proptest! {
    /// The field-by-field reader and the map reader agree on any usage object: odd types, nested
    /// details of any kind, fields named twice, unknown fields.
    #[test]
    fn usage_read_field_by_field_agrees_with_the_map_reader(
        fields in proptest::collection::vec((usage_key(), any_value()), 0..7)
    ) {
        let text = object_text(&fields);
        let by_map = serde_json::from_str::<crate::json::Obj>(&text).ok().map(|u| parse_usage(&u));
        proptest::prop_assert_eq!(parse_usage_json(text.as_bytes()), by_map, "{}", text);
    }
}

#[test]
fn usage_of_something_other_than_an_object_is_none() {
    for raw in ["[1, 2, 3, 4]", "5", "null", "\"usage\"", ""] {
        assert_eq!(parse_usage_json(raw.as_bytes()), None, "{raw}");
    }
    let u = parse_usage_json(
        br#"{"prompt_tokens": 10, "completion_tokens": 4,
             "prompt_tokens_details": {"cached_tokens": 3}, "completion_tokens_details": null}"#,
    )
    .unwrap();
    assert_eq!((u.input, u.cache_read, u.output), (7, 3, 4));
}
