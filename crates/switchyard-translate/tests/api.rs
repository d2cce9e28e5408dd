//! The public API around the corpus: error bodies, request info, stream edge cases.

use bytes::Bytes;
use serde_json::{json, Value};
use switchyard_translate::{
    parse_error, render_error, request_info, translate_error, translate_request, ErrorInfo, Protocol,
    RequestInfo, RequestOptions, ResponseContext, StreamTranslator, TranslateError,
};

fn ctx(include_usage: bool) -> ResponseContext {
    ResponseContext {
        created: 1_767_225_600,
        model: "client-model".into(),
        id_hint: "req1".into(),
        include_usage,
    }
}

fn body(e: &switchyard_translate::TranslatedError) -> Value {
    serde_json::from_slice(&e.body).unwrap()
}

fn text(frames: &[Bytes]) -> Vec<String> {
    frames
        .iter()
        .map(|f| String::from_utf8(f.to_vec()).unwrap())
        .collect()
}

fn data(frame: &str) -> Value {
    let line = frame.lines().find_map(|l| l.strip_prefix("data: ")).unwrap();
    serde_json::from_str(line).unwrap()
}

#[test]
fn anthropic_errors_for_openai_clients() {
    let e = translate_error(
        Protocol::Anthropic,
        Protocol::OpenAi,
        529,
        br#"{"type":"error","error":{"type":"overloaded_error","message":"Overloaded"},"request_id":"req_1"}"#,
    );
    assert_eq!(e.status, 503);
    assert_eq!(
        body(&e),
        json!({"error": {"message": "Overloaded", "type": "server_error", "param": null, "code": "overloaded_error"}})
    );
    let e = translate_error(
        Protocol::Anthropic,
        Protocol::OpenAi,
        400,
        br#"{"type":"error","error":{"type":"invalid_request_error","message":"max_tokens: Field required"}}"#,
    );
    assert_eq!(e.status, 400);
    assert_eq!(body(&e)["error"]["type"], "invalid_request_error");
}

#[test]
fn gemini_errors_for_openai_clients() {
    let e = translate_error(
        Protocol::Gemini,
        Protocol::OpenAi,
        429,
        br#"{"error":{"code":429,"message":"Resource has been exhausted (e.g. check quota).","status":"RESOURCE_EXHAUSTED"}}"#,
    );
    assert_eq!(e.status, 429);
    assert_eq!(
        body(&e),
        json!({"error": {"message": "Resource has been exhausted (e.g. check quota).", "type": "rate_limit_error",
                         "param": null, "code": "RESOURCE_EXHAUSTED"}})
    );
}

#[test]
fn openai_errors_for_anthropic_and_gemini_clients() {
    let upstream = br#"{"error":{"message":"Invalid API key","type":"invalid_request_error","param":null,"code":"invalid_api_key"}}"#;
    let e = translate_error(Protocol::OpenAi, Protocol::Anthropic, 401, upstream);
    assert_eq!(e.status, 401);
    assert_eq!(
        body(&e),
        json!({"type": "error", "error": {"type": "authentication_error", "message": "Invalid API key"}})
    );
    let e = translate_error(Protocol::OpenAi, Protocol::Gemini, 401, upstream);
    assert_eq!(
        body(&e),
        json!({"error": {"code": 401, "message": "Invalid API key", "status": "UNAUTHENTICATED"}})
    );
    // mittwald's string error and vLLM's flat form go through the core normaliser
    let e = parse_error(Protocol::OpenAi, 401, br#"{"error": "Unauthorized"}"#);
    assert_eq!(
        (e.status, e.detail.error_type.as_str()),
        (401, "authentication_error")
    );
    let e = translate_error(Protocol::OpenAi, Protocol::Anthropic, 503, b"");
    assert_eq!(body(&e)["error"]["type"], "overloaded_error");
}

#[test]
fn gateway_errors_render_in_every_protocol() {
    let err = translate_request(
        Protocol::Anthropic,
        Protocol::OpenAi,
        br#"{"model":"m","max_tokens":10,"messages":[{"role":"user","content":[{"type":"tool_result","tool_use_id":"nope","content":"x"}]}]}"#,
        &RequestOptions::new("up"),
    )
    .unwrap_err();
    assert_eq!(err.param(), Some("messages[0].content[0].tool_use_id"));
    let mut info = ErrorInfo::new(err.status(), "invalid_request_error", err.to_string());
    info.detail.param = err.param().map(str::to_owned);
    let out = render_error(Protocol::Anthropic, &info);
    assert_eq!(out.status, 400);
    assert_eq!(body(&out)["error"]["type"], "invalid_request_error");
    assert_eq!(
        body(&render_error(Protocol::OpenAi, &info))["error"]["param"],
        "messages[0].content[0].tool_use_id"
    );
}

#[test]
fn request_errors_name_the_client_field() {
    let cases: &[(Protocol, &str, &str)] = &[
        (Protocol::OpenAi, r#"{"model":"m","messages":"hi"}"#, "messages"),
        (
            Protocol::OpenAi,
            r#"{"model":"m","messages":[{"role":"user","content":[{"type":"image_url","image_url":{"url":"data:image/png,raw"}}]}]}"#,
            "messages[0].content[0].image_url.url",
        ),
        (
            Protocol::OpenAi,
            r#"{"model":"m","messages":[],"tools":[{"type":"function","function":{"description":"x"}}]}"#,
            "tools[0].function.name",
        ),
        (
            Protocol::OpenAi,
            r#"{"model":"m","messages":[],"temperature":"hot"}"#,
            "temperature",
        ),
        (
            Protocol::Anthropic,
            r#"{"model":"m","max_tokens":1,"messages":[],"tools":[{"type":"web_search_20250305","name":"web_search"}]}"#,
            "tools[0].type",
        ),
        (
            Protocol::Gemini,
            r#"{"contents":[{"role":"user","parts":[{"functionResponse":{"name":"f","response":{}}}]}]}"#,
            "contents[0].parts[0].functionResponse.name",
        ),
        (
            Protocol::Gemini,
            r#"{"contents":[],"generationConfig":{"candidateCount":2}}"#,
            "generationConfig.candidateCount",
        ),
    ];
    for (from, req, param) in cases {
        let to = if *from == Protocol::OpenAi {
            Protocol::Anthropic
        } else {
            Protocol::OpenAi
        };
        let e = translate_request(*from, to, req.as_bytes(), &RequestOptions::new("up")).unwrap_err();
        assert_eq!(e.param(), Some(*param), "{req}: {e}");
        assert_eq!(e.status(), 400);
    }
    assert_eq!(
        translate_request(
            Protocol::OpenAi,
            Protocol::Anthropic,
            b"{nope",
            &RequestOptions::new("up")
        )
        .unwrap_err()
        .param(),
        None
    );
}

#[test]
fn request_info_reads_only_routing_fields() {
    assert_eq!(
        request_info(
            Protocol::OpenAi,
            br#"{"model":"anthropic/claude","messages":[],"stream":true,"stream_options":{"include_usage":true}}"#
        )
        .unwrap(),
        RequestInfo {
            model: Some("anthropic/claude".into()),
            stream: true,
            include_usage: true
        }
    );
    assert_eq!(
        request_info(Protocol::OpenAi, br#"{"model":"m","messages":[]}"#).unwrap(),
        RequestInfo {
            model: Some("m".into()),
            stream: false,
            include_usage: false
        }
    );
    assert_eq!(
        request_info(Protocol::Anthropic, br#"{"model":"claude","stream":true}"#).unwrap(),
        RequestInfo {
            model: Some("claude".into()),
            stream: true,
            include_usage: true
        }
    );
    assert_eq!(
        request_info(Protocol::Gemini, br#"{"contents":[]}"#)
            .unwrap()
            .model,
        None
    );
    assert_eq!(
        request_info(Protocol::OpenAi, br#"{"messages":[]}"#).unwrap_err(),
        TranslateError::MissingField {
            param: "model".into()
        }
    );
    assert_eq!(
        request_info(Protocol::OpenAi, br#"{"model":"m","stream":"yes"}"#)
            .unwrap_err()
            .param(),
        Some("stream")
    );
}

#[test]
fn gemini_ingress_takes_stream_from_options() {
    let mut opts = RequestOptions::new("up");
    opts.stream = Some(true);
    let out = translate_request(
        Protocol::Gemini,
        Protocol::OpenAi,
        br#"{"contents":[{"parts":[{"text":"hi"}]}]}"#,
        &opts,
    )
    .unwrap();
    let v: Value = serde_json::from_slice(&out).unwrap();
    assert_eq!(v["stream"], true);
    assert_eq!(v["stream_options"], json!({"include_usage": true}));
}

#[test]
fn anthropic_default_max_tokens_is_configurable() {
    let mut opts = RequestOptions::new("claude");
    opts.default_max_tokens = 8192;
    let out = translate_request(
        Protocol::OpenAi,
        Protocol::Anthropic,
        br#"{"model":"m","messages":[{"role":"user","content":"hi"}]}"#,
        &opts,
    )
    .unwrap();
    let v: Value = serde_json::from_slice(&out).unwrap();
    assert_eq!(v["max_tokens"], 8192);
}

#[test]
fn openai_stream_without_include_usage_has_no_usage_fields() {
    let mut t = StreamTranslator::new(Protocol::Anthropic, Protocol::OpenAi, &ctx(false));
    let mut frames = t.push_event(
        Some("message_start"),
        r#"{"type":"message_start","message":{"id":"m","usage":{"input_tokens":3,"output_tokens":1}}}"#,
    );
    frames.extend(t.push_event(
        Some("message_delta"),
        r#"{"type":"message_delta","delta":{"stop_reason":"end_turn"},"usage":{"output_tokens":2}}"#,
    ));
    frames.extend(t.push_event(Some("message_stop"), r#"{"type":"message_stop"}"#));
    let frames = text(&frames);
    assert_eq!(frames.len(), 3, "{frames:?}");
    assert!(frames.iter().all(|f| !f.contains("usage")));
    assert_eq!(frames[2], "data: [DONE]\n\n");
    // accounting still sees the usage
    assert_eq!(t.usage().map(|u| (u.input, u.output)), Some((3, 2)));
}

#[test]
fn transport_failure_mid_stream_ends_with_an_error_frame() {
    for (to, expect) in [
        (Protocol::OpenAi, "data: {\"error\""),
        (Protocol::Anthropic, "event: error\n"),
        (Protocol::Gemini, "data: {\"error\""),
    ] {
        let mut t = StreamTranslator::new(Protocol::OpenAi, to, &ctx(true));
        let frames = t.push_bytes(Bytes::from_static(
            b"data: {\"choices\":[{\"index\":0,\"delta\":{\"content\":\"Hi\"}}]}\n\n",
        ));
        assert!(!frames.is_empty());
        let tail = text(&t.fail("connection reset by peer"));
        assert_eq!(tail.len(), 1);
        assert!(tail[0].starts_with(expect), "{tail:?}");
        assert!(tail[0].contains("connection reset by peer"));
        assert!(t.is_over());
        assert!(t.finish().is_empty());
        assert!(t.push_event(None, "[DONE]").is_empty());
    }
}

#[test]
fn openai_upstream_may_omit_done_after_finish_reason() {
    let mut t = StreamTranslator::new(Protocol::OpenAi, Protocol::Anthropic, &ctx(true));
    t.push_event(
        None,
        r#"{"choices":[{"index":0,"delta":{"content":"Hi"},"finish_reason":"stop"}]}"#,
    );
    let tail = text(&t.finish());
    assert!(
        tail.last().unwrap().starts_with("event: message_stop"),
        "{tail:?}"
    );
}

#[test]
fn last_event_without_trailing_blank_line_still_counts() {
    let mut t = StreamTranslator::new(Protocol::Anthropic, Protocol::OpenAi, &ctx(false));
    let mut frames = t.push_bytes(Bytes::from_static(
        b"event: message_start\ndata: {\"type\":\"message_start\",\"message\":{}}\n\nevent: message_stop\ndata: {\"type\":\"message_stop\"}\n",
    ));
    frames.extend(t.finish());
    assert_eq!(text(&frames).last().unwrap(), "data: [DONE]\n\n");
}

#[test]
fn anthropic_tool_indices_count_tool_blocks_only() {
    let mut t = StreamTranslator::new(Protocol::Anthropic, Protocol::OpenAi, &ctx(false));
    let evs = [
        (
            "content_block_start",
            r#"{"type":"content_block_start","index":0,"content_block":{"type":"thinking","thinking":""}}"#,
        ),
        ("content_block_stop", r#"{"type":"content_block_stop","index":0}"#),
        (
            "content_block_start",
            r#"{"type":"content_block_start","index":1,"content_block":{"type":"text","text":""}}"#,
        ),
        ("content_block_stop", r#"{"type":"content_block_stop","index":1}"#),
        (
            "content_block_start",
            r#"{"type":"content_block_start","index":2,"content_block":{"type":"tool_use","id":"t1","name":"f","input":{}}}"#,
        ),
        (
            "content_block_delta",
            r#"{"type":"content_block_delta","index":2,"delta":{"type":"input_json_delta","partial_json":"{}"}}"#,
        ),
        ("content_block_stop", r#"{"type":"content_block_stop","index":2}"#),
    ];
    let mut frames = Vec::new();
    for (name, payload) in evs {
        frames.extend(t.push_event(Some(name), payload));
    }
    let tool_frames: Vec<Value> = text(&frames)
        .iter()
        .map(|f| data(f))
        .filter(|v| v["choices"][0]["delta"]["tool_calls"].is_array())
        .collect();
    assert_eq!(tool_frames.len(), 2);
    assert!(tool_frames
        .iter()
        .all(|v| v["choices"][0]["delta"]["tool_calls"][0]["index"] == 0));
}

#[test]
fn interleaved_openai_tool_fragments_reach_the_right_anthropic_block() {
    let mut t = StreamTranslator::new(Protocol::OpenAi, Protocol::Anthropic, &ctx(true));
    let chunks = [
        r#"{"choices":[{"index":0,"delta":{"tool_calls":[{"index":0,"id":"a","function":{"name":"f","arguments":"{\"x\":"}}]}}]}"#,
        r#"{"choices":[{"index":0,"delta":{"tool_calls":[{"index":1,"id":"b","function":{"name":"g","arguments":"{}"}}]}}]}"#,
        r#"{"choices":[{"index":0,"delta":{"tool_calls":[{"index":0,"function":{"arguments":"1}"}}]}}]}"#,
        r#"{"choices":[{"index":0,"delta":{},"finish_reason":"tool_calls"}]}"#,
        "[DONE]",
    ];
    let mut frames = Vec::new();
    for c in chunks {
        frames.extend(t.push_event(None, c));
    }
    let deltas: Vec<(u64, String)> = text(&frames)
        .iter()
        .map(|f| data(f))
        .filter(|v| v["type"] == "content_block_delta")
        .map(|v| {
            (
                v["index"].as_u64().unwrap(),
                v["delta"]["partial_json"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    assert_eq!(
        deltas,
        [
            (0, "{\"x\":".to_owned()),
            (1, "{}".to_owned()),
            (0, "1}".to_owned())
        ]
    );
}

#[test]
fn gemini_client_gets_an_error_for_unparsable_streamed_arguments() {
    let mut t = StreamTranslator::new(Protocol::OpenAi, Protocol::Gemini, &ctx(true));
    t.push_event(
        None,
        r#"{"choices":[{"index":0,"delta":{"tool_calls":[{"index":0,"id":"a","function":{"name":"f","arguments":"{oops"}}]}}]}"#,
    );
    t.push_event(
        None,
        r#"{"choices":[{"index":0,"delta":{},"finish_reason":"tool_calls"}]}"#,
    );
    let frames = text(&t.push_event(None, "[DONE]"));
    assert_eq!(frames.len(), 1);
    assert_eq!(data(&frames[0])["error"]["code"], 502);
    assert!(t.is_over());
}

const MID_SYSTEM: &[u8] = br#"{"model":"m","max_tokens":64,"system":"lead",
  "messages":[{"role":"user","content":"hi"},
              {"role":"system","content":[{"type":"text","text":"mid"}]},
              {"role":"assistant","content":"ok"},
              {"role":"system","content":"late"},
              {"role":"user","content":"go"}]}"#;

#[test]
fn mid_conversation_system_messages_stay_in_place_for_openai_upstreams() {
    let out = translate_request(
        Protocol::Anthropic,
        Protocol::OpenAi,
        MID_SYSTEM,
        &RequestOptions::new("u"),
    )
    .unwrap();
    let v: Value = serde_json::from_slice(&out).unwrap();
    let roles: Vec<(&str, &str)> = v["messages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| (m["role"].as_str().unwrap(), m["content"].as_str().unwrap()))
        .collect();
    assert_eq!(
        roles,
        [
            ("system", "lead"),
            ("user", "hi"),
            ("system", "mid"),
            ("assistant", "ok"),
            ("system", "late"),
            ("user", "go")
        ]
    );
}

#[test]
fn mid_conversation_system_messages_fold_for_quirky_and_non_openai_upstreams() {
    let mut opts = RequestOptions::new("u");
    opts.fold_system = true;
    let v: Value = serde_json::from_slice(
        &translate_request(Protocol::Anthropic, Protocol::OpenAi, MID_SYSTEM, &opts).unwrap(),
    )
    .unwrap();
    assert_eq!(
        v["messages"][0],
        json!({"role": "system", "content": "lead\nmid\nlate"})
    );
    assert_eq!(v["messages"].as_array().unwrap().len(), 4);
    for m in v["messages"].as_array().unwrap().iter().skip(1) {
        assert_ne!(m["role"], "system");
    }
    let g: Value = serde_json::from_slice(
        &translate_request(
            Protocol::Anthropic,
            Protocol::Gemini,
            MID_SYSTEM,
            &RequestOptions::new("u"),
        )
        .unwrap(),
    )
    .unwrap();
    assert_eq!(g["systemInstruction"]["parts"][0]["text"], "lead\nmid\nlate");
    assert_eq!(g["contents"].as_array().unwrap().len(), 3);
}

#[test]
fn a_system_message_with_images_is_refused_with_its_path() {
    let e = translate_request(
        Protocol::Anthropic,
        Protocol::OpenAi,
        br#"{"model":"m","max_tokens":8,"messages":[{"role":"system","content":[{"type":"image","source":{"type":"url","url":"u"}}]}]}"#,
        &RequestOptions::new("u"),
    )
    .unwrap_err();
    assert_eq!(e.param(), Some("messages[0].content[0].type"));
}

#[test]
fn vllm_reasoning_becomes_a_thinking_block_never_text() {
    let upstream = br#"{"id":"c","object":"chat.completion","created":1,"model":"q","choices":[{"index":0,
        "message":{"role":"assistant","content":"42","reasoning":"think hard"},"finish_reason":"stop"}],
        "usage":{"prompt_tokens":3,"completion_tokens":4,"total_tokens":7}}"#;
    let out =
        switchyard_translate::translate_response(Protocol::OpenAi, Protocol::Anthropic, upstream, &ctx(true))
            .unwrap();
    let v: Value = serde_json::from_slice(&out).unwrap();
    assert_eq!(
        v["content"],
        json!([{"type": "thinking", "thinking": "think hard", "signature": ""}, {"type": "text", "text": "42"}])
    );
    // OpenAI clients of an Anthropic upstream never get thinking as text either.
    let anth = br#"{"id":"msg_1","type":"message","role":"assistant","model":"c","content":[
        {"type":"thinking","thinking":"hidden","signature":"s"},{"type":"text","text":"shown"}],
        "stop_reason":"end_turn","usage":{"input_tokens":1,"output_tokens":2}}"#;
    let out =
        switchyard_translate::translate_response(Protocol::Anthropic, Protocol::OpenAi, anth, &ctx(false))
            .unwrap();
    let v: Value = serde_json::from_slice(&out).unwrap();
    assert_eq!(v["choices"][0]["message"]["content"], "shown");
}
