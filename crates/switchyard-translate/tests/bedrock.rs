//! The Bedrock Converse adapter: requests, responses, errors and ConverseStream event-stream messages.

use bytes::Bytes;
use serde_json::{json, Value};
use switchyard_translate::eventstream::{encode_message, event_message};
use switchyard_translate::{
    parse_error, translate_request, translate_response, Protocol, RequestOptions, ResponseContext,
    StreamTranslator,
};

fn ctx(include_usage: bool) -> ResponseContext {
    ResponseContext {
        created: 1_700_000_000,
        model: "bedrock/claude".into(),
        id_hint: "abc".into(),
        include_usage,
    }
}

fn to_bedrock(body: Value) -> Value {
    let out = translate_request(
        Protocol::OpenAi,
        Protocol::Bedrock,
        body.to_string().as_bytes(),
        &RequestOptions::new("anthropic.claude-3-haiku-20240307-v1:0"),
    )
    .unwrap();
    serde_json::from_slice(&out).unwrap()
}

#[test]
fn openai_request_becomes_a_converse_body() {
    let body = to_bedrock(json!({
        "model": "bedrock/claude",
        "messages": [
            {"role": "system", "content": "Be brief."},
            {"role": "user", "content": [
                {"type": "text", "text": "What is in this image and what's the weather?"},
                {"type": "image_url", "image_url": {"url": "data:image/png;base64,iVBORw0KGgo="}}
            ]},
            {"role": "assistant", "content": null, "tool_calls": [
                {"id": "call_1", "type": "function", "function": {"name": "weather", "arguments": "{\"city\":\"Berlin\"}"}}
            ]},
            {"role": "tool", "tool_call_id": "call_1", "content": "{\"temp\":21}"}
        ],
        "tools": [{"type": "function", "function": {"name": "weather", "description": "Weather",
                   "parameters": {"type": "object", "properties": {"city": {"type": "string"}}}}}],
        "tool_choice": "required",
        "max_tokens": 100, "temperature": 0.5, "top_p": 0.9, "stop": ["END"], "stream": true
    }));
    assert_eq!(
        body,
        json!({
            "system": [{"text": "Be brief."}],
            "messages": [
                {"role": "user", "content": [
                    {"text": "What is in this image and what's the weather?"},
                    {"image": {"format": "png", "source": {"bytes": "iVBORw0KGgo="}}}
                ]},
                {"role": "assistant", "content": [
                    {"toolUse": {"toolUseId": "call_1", "name": "weather", "input": {"city": "Berlin"}}}
                ]},
                {"role": "user", "content": [
                    {"toolResult": {"toolUseId": "call_1", "content": [{"json": {"temp": 21}}]}}
                ]}
            ],
            "inferenceConfig": {"maxTokens": 100, "temperature": 0.5, "topP": 0.9, "stopSequences": ["END"]},
            "toolConfig": {
                "tools": [{"toolSpec": {"name": "weather", "description": "Weather",
                    "inputSchema": {"json": {"type": "object", "properties": {"city": {"type": "string"}}}}}}],
                "toolChoice": {"any": {}}
            }
        }),
        "no model and no stream flag in the body: both are in the URL"
    );
}

#[test]
fn url_images_are_a_clear_400_naming_the_field() {
    let err = translate_request(
        Protocol::OpenAi,
        Protocol::Bedrock,
        json!({"model": "m", "messages": [{"role": "user", "content": [
            {"type": "image_url", "image_url": {"url": "https://example.com/cat.png"}}]}]})
        .to_string()
        .as_bytes(),
        &RequestOptions::new("m"),
    )
    .unwrap_err();
    assert_eq!(err.status(), 400);
    assert_eq!(err.param(), Some("messages[0].content"));
}

#[test]
fn converse_response_becomes_openai_and_anthropic() {
    let converse = json!({
        "output": {"message": {"role": "assistant", "content": [
            {"text": "Let me check."},
            {"toolUse": {"toolUseId": "tooluse_x1", "name": "weather", "input": {"city": "Berlin"}}}
        ]}},
        "stopReason": "tool_use",
        "usage": {"inputTokens": 12, "outputTokens": 7, "totalTokens": 19},
        "metrics": {"latencyMs": 100}
    })
    .to_string();
    let openai: Value = serde_json::from_slice(
        &translate_response(
            Protocol::Bedrock,
            Protocol::OpenAi,
            converse.as_bytes(),
            &ctx(false),
        )
        .unwrap(),
    )
    .unwrap();
    assert_eq!(openai["id"], "chatcmpl-abc");
    assert_eq!(openai["model"], "bedrock/claude");
    assert_eq!(openai["choices"][0]["finish_reason"], "tool_calls");
    assert_eq!(openai["choices"][0]["message"]["content"], "Let me check.");
    let call = &openai["choices"][0]["message"]["tool_calls"][0];
    assert_eq!(call["id"], "tooluse_x1");
    assert_eq!(call["function"]["name"], "weather");
    assert_eq!(
        serde_json::from_str::<Value>(call["function"]["arguments"].as_str().unwrap()).unwrap(),
        json!({"city": "Berlin"})
    );
    assert_eq!(openai["usage"]["prompt_tokens"], 12);
    assert_eq!(openai["usage"]["completion_tokens"], 7);

    let anthropic: Value = serde_json::from_slice(
        &translate_response(
            Protocol::Bedrock,
            Protocol::Anthropic,
            converse.as_bytes(),
            &ctx(false),
        )
        .unwrap(),
    )
    .unwrap();
    assert_eq!(anthropic["stop_reason"], "tool_use");
    assert_eq!(anthropic["content"][1]["type"], "tool_use");
    assert_eq!(anthropic["content"][1]["input"], json!({"city": "Berlin"}));
    assert_eq!(anthropic["usage"]["input_tokens"], 12);
}

#[test]
fn bedrock_errors_keep_status_message_and_type() {
    let e = parse_error(
        Protocol::Bedrock,
        429,
        br#"{"message":"Too many requests, please wait before trying again."}"#,
    );
    assert_eq!(e.status, 429);
    assert_eq!(e.detail.error_type, "rate_limit_error");
    assert_eq!(
        e.detail.message,
        "Too many requests, please wait before trying again."
    );
    let e = parse_error(
        Protocol::Bedrock,
        400,
        br#"{"__type":"com.amazon#ValidationException","Message":"bad"}"#,
    );
    assert_eq!((e.status, e.detail.message.as_str()), (400, "bad"));
    assert_eq!(e.detail.code.as_deref(), Some("ValidationException"));
}

/// A ConverseStream answer: text, then a tool call whose input arrives in two pieces, then stop and
/// usage, as Bedrock frames it.
fn converse_stream() -> Vec<u8> {
    let mut s = Vec::new();
    for (t, p) in [
        ("messageStart", json!({"role": "assistant"})),
        (
            "contentBlockDelta",
            json!({"contentBlockIndex": 0, "delta": {"text": "Hel"}}),
        ),
        (
            "contentBlockDelta",
            json!({"contentBlockIndex": 0, "delta": {"text": "lo"}}),
        ),
        ("contentBlockStop", json!({"contentBlockIndex": 0})),
        (
            "contentBlockStart",
            json!({"contentBlockIndex": 1, "start": {"toolUse": {"toolUseId": "tooluse_1", "name": "weather"}}}),
        ),
        (
            "contentBlockDelta",
            json!({"contentBlockIndex": 1, "delta": {"toolUse": {"input": "{\"city\":"}}}),
        ),
        (
            "contentBlockDelta",
            json!({"contentBlockIndex": 1, "delta": {"toolUse": {"input": "\"Berlin\"}"}}}),
        ),
        ("contentBlockStop", json!({"contentBlockIndex": 1})),
        ("messageStop", json!({"stopReason": "tool_use"})),
        (
            "metadata",
            json!({"usage": {"inputTokens": 10, "outputTokens": 5, "totalTokens": 15}, "metrics": {"latencyMs": 9}}),
        ),
    ] {
        s.extend_from_slice(&event_message(t, p.to_string().as_bytes()));
    }
    s
}

fn data_lines(frames: &[Bytes]) -> Vec<String> {
    frames
        .iter()
        .map(|f| String::from_utf8(f.to_vec()).unwrap())
        .collect()
}

#[test]
fn converse_stream_to_openai_chunks_in_any_chunking() {
    let stream = converse_stream();
    for chunk in [1, 7, 64, stream.len()] {
        let mut t = StreamTranslator::new(Protocol::Bedrock, Protocol::OpenAi, &ctx(true));
        let mut frames = Vec::new();
        for piece in stream.chunks(chunk) {
            frames.extend(t.push_bytes(Bytes::copy_from_slice(piece)));
        }
        frames.extend(t.finish());
        let text = data_lines(&frames).join("");
        let chunks: Vec<Value> = text
            .split("\n\n")
            .filter_map(|e| e.strip_prefix("data: "))
            .filter(|d| *d != "[DONE]")
            .map(|d| serde_json::from_str(d).unwrap())
            .collect();
        let content: String = chunks
            .iter()
            .filter_map(|c| c["choices"][0]["delta"]["content"].as_str())
            .collect();
        assert_eq!(content, "Hello", "chunk size {chunk}");
        let args: String = chunks
            .iter()
            .filter_map(|c| c["choices"][0]["delta"]["tool_calls"][0]["function"]["arguments"].as_str())
            .collect();
        assert_eq!(args, "{\"city\":\"Berlin\"}");
        assert!(chunks
            .iter()
            .any(|c| c["choices"][0]["delta"]["tool_calls"][0]["id"] == "tooluse_1"));
        assert!(chunks
            .iter()
            .any(|c| c["choices"][0]["finish_reason"] == "tool_calls"));
        let usage = chunks.iter().find(|c| c["usage"].is_object()).unwrap();
        assert_eq!(usage["usage"]["prompt_tokens"], 10);
        assert_eq!(usage["usage"]["completion_tokens"], 5);
        assert!(text.ends_with("data: [DONE]\n\n"), "clean end: {text}");
    }
}

#[test]
fn converse_stream_to_anthropic_events() {
    let mut t = StreamTranslator::new(Protocol::Bedrock, Protocol::Anthropic, &ctx(true));
    let mut frames = t.push_bytes(Bytes::from(converse_stream()));
    frames.extend(t.finish());
    let text = data_lines(&frames).join("");
    let names: Vec<&str> = text.lines().filter_map(|l| l.strip_prefix("event: ")).collect();
    assert_eq!(names.first(), Some(&"message_start"));
    assert_eq!(names.last(), Some(&"message_stop"));
    assert!(text.contains(r#""stop_reason":"tool_use""#), "{text}");
    assert!(text.contains(r#""partial_json":"\"Berlin\"}""#), "{text}");
    assert!(text.contains(r#""output_tokens":5"#), "{text}");
}

#[test]
fn a_cut_or_corrupt_stream_ends_with_an_error_never_done() {
    let stream = converse_stream();
    // Cut in the middle of a message.
    let mut t = StreamTranslator::new(Protocol::Bedrock, Protocol::OpenAi, &ctx(false));
    let mut frames = t.push_bytes(Bytes::copy_from_slice(&stream[..stream.len() / 2]));
    frames.extend(t.finish());
    let text = data_lines(&frames).join("");
    assert!(!text.contains("[DONE]"));
    assert!(text.contains("upstream_stream_cut"), "{text}");

    // A flipped byte: CRC mismatch.
    let mut bad = stream.clone();
    bad[40] ^= 0xff;
    let mut t = StreamTranslator::new(Protocol::Bedrock, Protocol::OpenAi, &ctx(false));
    let mut frames = t.push_bytes(Bytes::from(bad));
    frames.extend(t.finish());
    let text = data_lines(&frames).join("");
    assert!(!text.contains("[DONE]"));
    assert!(text.contains("CRC mismatch"), "{text}");
}

#[test]
fn an_in_stream_exception_is_an_error_in_the_clients_protocol() {
    let mut s = event_message("messageStart", br#"{"role":"assistant"}"#).to_vec();
    s.extend_from_slice(&encode_message(
        &[
            (":exception-type", "throttlingException"),
            (":content-type", "application/json"),
            (":message-type", "exception"),
        ],
        br#"{"message":"Too many tokens, please wait before trying again."}"#,
    ));
    let mut t = StreamTranslator::new(Protocol::Bedrock, Protocol::Anthropic, &ctx(false));
    let frames = t.push_bytes(Bytes::from(s));
    let text = data_lines(&frames).join("");
    assert!(text.contains("event: error"), "{text}");
    assert!(text.contains("rate_limit_error"), "{text}");
    assert!(text.contains("Too many tokens"), "{text}");
    assert!(t.is_over());
}

mod eventstream_props {
    use proptest::prelude::*;
    use switchyard_translate::eventstream::{encode_message, EventStreamDecoder, HeaderValue};

    proptest! {
        /// Whatever the chunking, encoded messages come back whole, in order, with their headers and
        /// payloads.
        #[test]
        fn any_chunking_round_trips(
            messages in prop::collection::vec(
                (prop::collection::vec(("[:a-z-]{1,20}", "[ -~]{0,40}"), 0..4),
                 prop::collection::vec(any::<u8>(), 0..300)),
                1..6),
            cuts in prop::collection::vec(1usize..64, 1..40),
        ) {
            let mut stream = Vec::new();
            for (headers, payload) in &messages {
                let h: Vec<(&str, &str)> = headers.iter().map(|(n, v)| (n.as_str(), v.as_str())).collect();
                stream.extend_from_slice(&encode_message(&h, payload));
            }
            let mut d = EventStreamDecoder::new();
            let mut got = Vec::new();
            let mut pos = 0;
            for c in cuts.iter().cycle() {
                if pos >= stream.len() {
                    break;
                }
                let end = (pos + c).min(stream.len());
                got.extend(d.push(&stream[pos..end]).unwrap());
                pos = end;
            }
            prop_assert_eq!(got.len(), messages.len());
            for (m, (headers, payload)) in got.iter().zip(&messages) {
                prop_assert_eq!(&m.payload[..], &payload[..]);
                for (n, v) in headers {
                    prop_assert!(m
                        .headers
                        .iter()
                        .any(|(hn, hv)| hn == n && *hv == HeaderValue::String(v.clone())));
                }
            }
            prop_assert_eq!(d.buffered(), 0);
        }

        /// Arbitrary bytes never panic the decoder: they are an error or an incomplete message.
        #[test]
        fn garbage_never_panics(bytes in prop::collection::vec(any::<u8>(), 0..512)) {
            let _ = EventStreamDecoder::new().push(&bytes);
        }

        /// Flipping any single bit of a message is detected (prelude or message CRC, or a length
        /// that is then never completed), never decoded as a different message.
        #[test]
        fn a_flipped_bit_is_never_a_valid_message(bit in 0usize..(8 * 60)) {
            let raw = encode_message(&[(":event-type", "messageStop")], br#"{"stopReason":"end_turn"}"#).to_vec();
            let bit = bit % (raw.len() * 8);
            let mut bad = raw.clone();
            bad[bit / 8] ^= 1 << (bit % 8);
            if let Ok(msgs) = EventStreamDecoder::new().push(&bad) {
                prop_assert!(msgs.is_empty(), "a corrupted message decoded");
            }
        }
    }
}
