//! Property tests for streams: any answer, streamed by an upstream in any fragmentation and replayed in
//! any byte chunking, reaches the client (checked by that client's accumulation rules) with the same
//! text, the same tool calls (arguments compared as JSON) and the matching finish reason.

mod common;

use bytes::Bytes;
use proptest::prelude::*;
use serde_json::{json, Value};
use switchyard_translate::{Protocol, ResponseContext, StreamTranslator};

#[derive(Clone, Debug)]
enum Item {
    Text(String),
    Tool(String, Value),
}

fn json_object() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(|n| json!(n)),
        "[a-zäö \"\\\\{}:,]{0,10}".prop_map(Value::String),
    ];
    let value = leaf.prop_recursive(2, 6, 3, |inner| {
        prop::collection::vec(inner, 0..3).prop_map(Value::Array)
    });
    prop::collection::btree_map("[a-z]{1,5}", value, 0..4)
        .prop_map(|m| Value::Object(m.into_iter().collect()))
}

/// An answer: text and tool calls in any order (texts before tools are the common case).
fn answer() -> impl Strategy<Value = Vec<Item>> {
    prop::collection::vec(
        prop_oneof![
            "[a-zA-Z0-9äöü .,!?\n\"]{1,30}".prop_map(Item::Text),
            ("[a-z_]{1,10}", json_object()).prop_map(|(n, a)| Item::Tool(n, a)),
        ],
        0..5,
    )
}

/// Splits `s` into pieces at the given (char-boundary-adjusted) cut points.
fn split(s: &str, cuts: &[usize]) -> Vec<String> {
    let mut points: Vec<usize> = cuts
        .iter()
        .map(|c| c % (s.len() + 1))
        .filter(|&c| s.is_char_boundary(c))
        .collect();
    points.push(0);
    points.push(s.len());
    points.sort_unstable();
    points.dedup();
    points
        .windows(2)
        .map(|w| s[w[0]..w[1]].to_owned())
        .filter(|p| !p.is_empty())
        .collect()
}

fn expected(items: &[Item]) -> (String, Vec<(String, Value)>) {
    let mut text = String::new();
    let mut tools = Vec::new();
    for it in items {
        match it {
            Item::Text(t) => text.push_str(t),
            Item::Tool(n, a) => tools.push((n.clone(), a.clone())),
        }
    }
    (text, tools)
}

fn openai_upstream(items: &[Item], cuts: &[usize]) -> String {
    let mut out = String::new();
    let mut push = |v: Value| out.push_str(&format!("data: {v}\n\n"));
    let chunk = |delta: Value, finish: Value| {
        json!({"id": "chatcmpl-up", "object": "chat.completion.chunk", "created": 1, "model": "m",
               "choices": [{"index": 0, "delta": delta, "finish_reason": finish}]})
    };
    push(chunk(json!({"role": "assistant", "content": ""}), Value::Null));
    let mut tool_index = 0;
    for it in items {
        match it {
            Item::Text(t) => {
                for piece in split(t, cuts) {
                    push(chunk(json!({"content": piece}), Value::Null));
                }
            }
            Item::Tool(name, args) => {
                push(chunk(
                    json!({"tool_calls": [{"index": tool_index, "id": format!("call_{tool_index}"), "type": "function",
                                           "function": {"name": name, "arguments": ""}}]}),
                    Value::Null,
                ));
                for piece in split(&args.to_string(), cuts) {
                    push(chunk(
                        json!({"tool_calls": [{"index": tool_index, "function": {"arguments": piece}}]}),
                        Value::Null,
                    ));
                }
                tool_index += 1;
            }
        }
    }
    let finish = if tool_index > 0 { "tool_calls" } else { "stop" };
    push(chunk(json!({}), json!(finish)));
    push(
        json!({"id": "chatcmpl-up", "object": "chat.completion.chunk", "created": 1, "model": "m", "choices": [],
                "usage": {"prompt_tokens": 11, "completion_tokens": 7, "total_tokens": 18}}),
    );
    out.push_str("data: [DONE]\n\n");
    out
}

fn anthropic_upstream(items: &[Item], cuts: &[usize]) -> String {
    let mut out = String::new();
    let mut push = |v: Value| out.push_str(&format!("event: {}\ndata: {v}\n\n", v["type"].as_str().unwrap()));
    push(
        json!({"type": "message_start", "message": {"id": "msg_up", "type": "message", "role": "assistant",
                "content": [], "model": "claude", "usage": {"input_tokens": 11, "output_tokens": 1}}}),
    );
    let mut tools = 0;
    for (index, it) in items.iter().enumerate() {
        match it {
            Item::Text(t) => {
                push(
                    json!({"type": "content_block_start", "index": index, "content_block": {"type": "text", "text": ""}}),
                );
                for piece in split(t, cuts) {
                    push(json!({"type": "content_block_delta", "index": index,
                                "delta": {"type": "text_delta", "text": piece}}));
                }
            }
            Item::Tool(name, args) => {
                tools += 1;
                push(json!({"type": "content_block_start", "index": index,
                            "content_block": {"type": "tool_use", "id": format!("toolu_{index}"), "name": name, "input": {}}}));
                let text = args.to_string();
                // Anthropic sends nothing at all for empty input
                if text != "{}" {
                    for piece in split(&text, cuts) {
                        push(json!({"type": "content_block_delta", "index": index,
                                    "delta": {"type": "input_json_delta", "partial_json": piece}}));
                    }
                }
            }
        }
        push(json!({"type": "content_block_stop", "index": index}));
    }
    let reason = if tools > 0 { "tool_use" } else { "end_turn" };
    push(
        json!({"type": "message_delta", "delta": {"stop_reason": reason, "stop_sequence": null},
                "usage": {"output_tokens": 7}}),
    );
    push(json!({"type": "message_stop"}));
    out
}

fn gemini_upstream(items: &[Item], cuts: &[usize]) -> String {
    let mut parts: Vec<Vec<Value>> = Vec::new();
    for it in items {
        match it {
            Item::Text(t) => parts.extend(split(t, cuts).into_iter().map(|p| vec![json!({"text": p})])),
            // parallel calls arrive together in one chunk
            Item::Tool(name, args) => match parts.last_mut() {
                Some(last) if last.iter().all(|p| p.get("functionCall").is_some()) => {
                    last.push(json!({"functionCall": {"name": name, "args": args}}))
                }
                _ => parts.push(vec![json!({"functionCall": {"name": name, "args": args}})]),
            },
        }
    }
    if parts.is_empty() {
        parts.push(vec![json!({"text": ""})]);
    }
    let n = parts.len();
    let mut out = String::new();
    for (i, p) in parts.into_iter().enumerate() {
        let mut c = json!({"candidates": [{"content": {"role": "model", "parts": p}, "index": 0}],
                           "usageMetadata": {"promptTokenCount": 11, "totalTokenCount": 11},
                           "modelVersion": "gemini", "responseId": "g"});
        if i + 1 == n {
            c["candidates"][0]["finishReason"] = json!("STOP");
            c["usageMetadata"] = json!({"promptTokenCount": 11, "candidatesTokenCount": 5,
                                        "thoughtsTokenCount": 2, "totalTokenCount": 18});
        }
        out.push_str(&format!("data: {c}\r\n\r\n"));
    }
    out
}

fn replay(from: Protocol, to: Protocol, body: &str, chunk: usize) -> Vec<Bytes> {
    let ctx = ResponseContext {
        created: 1_767_225_600,
        model: "client".into(),
        id_hint: "r1".into(),
        include_usage: true,
    };
    let mut t = StreamTranslator::new(from, to, &ctx);
    let mut frames = Vec::new();
    for piece in body.as_bytes().chunks(chunk) {
        frames.extend(t.push_bytes(Bytes::copy_from_slice(piece)));
    }
    frames.extend(t.finish());
    frames
}

fn received(acc: &common::Accumulated) -> (String, Vec<(String, Value)>) {
    (
        acc.text.clone(),
        acc.tool_calls
            .iter()
            .map(|(_, n, a)| (n.clone(), a.clone()))
            .collect(),
    )
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 128, ..ProptestConfig::default() })]

    #[test]
    fn openai_upstream_to_anthropic_and_gemini_clients(
        items in answer(),
        cuts in prop::collection::vec(0..64usize, 0..4),
        chunk in 1..200usize,
    ) {
        let body = openai_upstream(&items, &cuts);
        let (text, tools) = expected(&items);

        let acc = common::anthropic(&replay(Protocol::OpenAi, Protocol::Anthropic, &body, chunk));
        prop_assert_eq!(received(&acc), (text.clone(), tools.clone()));
        prop_assert_eq!(acc.finish.as_deref(), Some(if tools.is_empty() { "end_turn" } else { "tool_use" }));
        prop_assert_eq!(acc.usage, Some((11, 7)));
        let ids: Vec<&str> = acc.tool_calls.iter().map(|(id, _, _)| id.as_str()).collect();
        let want: Vec<String> = (0..tools.len()).map(|i| format!("call_{i}")).collect();
        prop_assert_eq!(ids, want.iter().map(String::as_str).collect::<Vec<_>>());

        let acc = common::gemini(&replay(Protocol::OpenAi, Protocol::Gemini, &body, chunk));
        prop_assert_eq!(received(&acc), (text, tools));
        prop_assert_eq!(acc.finish.as_deref(), Some("STOP"));
        prop_assert_eq!(acc.usage, Some((11, 7)));
    }

    #[test]
    fn anthropic_upstream_to_openai_client(
        items in answer(),
        cuts in prop::collection::vec(0..64usize, 0..4),
        chunk in 1..200usize,
    ) {
        let body = anthropic_upstream(&items, &cuts);
        let (text, tools) = expected(&items);
        let acc = common::openai(&replay(Protocol::Anthropic, Protocol::OpenAi, &body, chunk), true);
        prop_assert_eq!(received(&acc), (text, tools.clone()));
        prop_assert_eq!(acc.finish.as_deref(), Some(if tools.is_empty() { "stop" } else { "tool_calls" }));
        prop_assert_eq!(acc.usage, Some((11, 7)));
    }

    #[test]
    fn gemini_upstream_to_openai_and_anthropic_clients(
        items in answer(),
        cuts in prop::collection::vec(0..64usize, 0..4),
        chunk in 1..200usize,
    ) {
        let body = gemini_upstream(&items, &cuts);
        let (text, tools) = expected(&items);
        let acc = common::openai(&replay(Protocol::Gemini, Protocol::OpenAi, &body, chunk), true);
        prop_assert_eq!(received(&acc), (text.clone(), tools.clone()));
        prop_assert_eq!(acc.finish.as_deref(), Some(if tools.is_empty() { "stop" } else { "tool_calls" }));
        prop_assert_eq!(acc.usage, Some((11, 7)));
        let ids: Vec<String> = acc.tool_calls.iter().map(|(id, _, _)| id.clone()).collect();
        prop_assert_eq!(ids, (0..tools.len()).map(|i| format!("call_{i}")).collect::<Vec<_>>());

        let acc = common::anthropic(&replay(Protocol::Gemini, Protocol::Anthropic, &body, chunk));
        prop_assert_eq!(received(&acc), (text, tools.clone()));
        prop_assert_eq!(acc.finish.as_deref(), Some(if tools.is_empty() { "end_turn" } else { "tool_use" }));
        prop_assert_eq!(acc.usage, Some((11, 7)));
    }

    #[test]
    fn cut_streams_always_end_in_an_error(
        items in answer(),
        cuts in prop::collection::vec(0..64usize, 0..4),
        keep in 0.0..1.0f64,
    ) {
        for (from, body) in [
            (Protocol::OpenAi, openai_upstream(&items, &cuts)),
            (Protocol::Anthropic, anthropic_upstream(&items, &cuts)),
        ] {
            // Cut before the end marker: before `[DONE]`/finish for OpenAI, before message_stop for Anthropic.
            let marker = match from {
                Protocol::OpenAi => body.rfind("\"finish_reason\":\"").unwrap(),
                _ => body.rfind("event: message_stop").unwrap(),
            };
            let cut = (marker as f64 * keep) as usize;
            let cut = (0..=cut).rev().find(|&c| body.is_char_boundary(c)).unwrap();
            for to in [Protocol::OpenAi, Protocol::Anthropic, Protocol::Gemini] {
                let frames = replay(from, to, &body[..cut], 17);
                let acc = match to {
                    Protocol::OpenAi => common::openai(&frames, true),
                    Protocol::Anthropic => common::anthropic(&frames),
                    Protocol::Gemini => common::gemini(&frames),
                    Protocol::Bedrock => unreachable!("not in the list above"),
                };
                prop_assert!(acc.error.is_some(), "{:?} -> {:?} cut at {}", from, to, cut);
            }
        }
    }
}
