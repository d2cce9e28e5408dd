//! Client-side stream accumulators that also check the ordering rules each client SDK relies on.

#![allow(dead_code)] // each test binary uses a different subset

use bytes::Bytes;
use serde_json::Value;

/// What a client reconstructs from a stream.
#[derive(Debug, Default, PartialEq)]
pub struct Accumulated {
    pub text: String,
    /// Reasoning (Anthropic thinking blocks), never part of `text`.
    pub reasoning: String,
    /// (id, name, arguments parsed as JSON)
    pub tool_calls: Vec<(String, String, Value)>,
    /// The finish reason in the client's own vocabulary.
    pub finish: Option<String>,
    /// An error frame ended the stream.
    pub error: Option<Value>,
    /// (prompt/input tokens, completion/output tokens) when the stream reported usage.
    pub usage: Option<(u64, u64)>,
}

fn frame_str(f: &Bytes) -> &str {
    let s = std::str::from_utf8(f).expect("frames are UTF-8");
    assert!(s.ends_with("\n\n"), "frame must end with a blank line: {s:?}");
    assert!(!s[..s.len() - 2].contains("\n\n"), "one event per frame: {s:?}");
    s
}

fn parse_args(args: &str) -> Value {
    if args.is_empty() {
        serde_json::json!({})
    } else {
        serde_json::from_str(args).unwrap_or_else(|e| panic!("arguments {args:?} are not JSON: {e}"))
    }
}

/// OpenAI chat.completion.chunk stream, checked like openai-python plus the spec's shape rules.
pub fn openai(frames: &[Bytes], include_usage: bool) -> Accumulated {
    let mut acc = Accumulated::default();
    let mut id_created: Option<(Value, Value)> = None;
    let mut tools: Vec<(String, String, String)> = Vec::new();
    let mut first = true;
    let mut done = false;
    for f in frames {
        let s = frame_str(f);
        assert!(!done, "nothing may follow [DONE]: {s}");
        assert!(acc.error.is_none(), "nothing may follow an error: {s}");
        if s.starts_with(':') {
            continue; // comment / keep-alive
        }
        let payload = s
            .strip_prefix("data: ")
            .expect("chat completion frames are data-only")
            .trim_end();
        if payload == "[DONE]" {
            done = true;
            continue;
        }
        let v: Value = serde_json::from_str(payload).unwrap();
        if let Some(e) = v.get("error") {
            for k in ["message", "type", "param", "code"] {
                assert!(e.get(k).is_some(), "error frames carry all four keys: {e}");
            }
            acc.error = Some(e.clone());
            continue;
        }
        assert_eq!(v["object"], "chat.completion.chunk");
        let ic = (v["id"].clone(), v["created"].clone());
        assert!(v["created"].as_i64().unwrap() > 0);
        match &id_created {
            None => id_created = Some(ic),
            Some(prev) => assert_eq!(prev, &ic, "same id and created on every chunk"),
        }
        let choices = v["choices"].as_array().unwrap();
        if choices.is_empty() {
            assert!(include_usage, "a choices:[] chunk only with include_usage");
            assert!(
                acc.finish.is_some(),
                "the usage chunk comes after the finish chunk"
            );
            acc.usage = Some(openai_usage(&v["usage"]));
            continue;
        }
        if include_usage {
            assert!(v["usage"].is_null(), "usage is null on every other chunk");
        } else {
            assert!(v.get("usage").is_none());
        }
        let c = &choices[0];
        assert_eq!(c["index"], 0);
        assert!(c.get("logprobs").is_some() && c.get("finish_reason").is_some());
        let delta = &c["delta"];
        if first {
            assert_eq!(
                delta,
                &serde_json::json!({"role": "assistant", "content": ""}),
                "first chunk"
            );
            first = false;
            continue;
        }
        assert!(acc.finish.is_none(), "no content after the finish chunk");
        if let Some(r) = c["finish_reason"].as_str() {
            assert_eq!(
                delta,
                &serde_json::json!({}),
                "the finish chunk has an empty delta"
            );
            acc.finish = Some(r.to_owned());
            continue;
        }
        if let Some(t) = delta.get("content").and_then(Value::as_str) {
            acc.text.push_str(t);
        }
        for tc in delta
            .get("tool_calls")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            openai_tool_delta(tc, &mut tools);
        }
    }
    if acc.error.is_none() {
        assert!(done, "a clean stream ends with [DONE]");
        assert!(acc.finish.is_some(), "a clean stream has a finish chunk");
    } else {
        assert!(!done, "never [DONE] after an error");
    }
    let failed = acc.error.is_some();
    acc.tool_calls = tools
        .into_iter()
        .map(|(id, n, a)| (id, n, if failed { Value::String(a) } else { parse_args(&a) }))
        .collect();
    acc
}

fn openai_usage(u: &Value) -> (u64, u64) {
    (
        u["prompt_tokens"].as_u64().unwrap(),
        u["completion_tokens"].as_u64().unwrap(),
    )
}

/// One `tool_calls` entry of a delta: a new call (id, name, empty arguments) or the next fragment of
/// an open one's arguments.
fn openai_tool_delta(tc: &Value, tools: &mut Vec<(String, String, String)>) {
    let index = tc["index"].as_u64().unwrap() as usize;
    if index == tools.len() {
        assert_eq!(tc["type"], "function");
        assert_eq!(
            tc["function"]["arguments"], "",
            "the first fragment has empty arguments"
        );
        tools.push((
            tc["id"].as_str().unwrap().to_owned(),
            tc["function"]["name"].as_str().unwrap().to_owned(),
            String::new(),
        ));
    } else {
        assert!(index < tools.len(), "tool indices count up from 0");
        assert!(tc.get("id").is_none() && tc["function"].get("name").is_none());
        tools[index]
            .2
            .push_str(tc["function"]["arguments"].as_str().unwrap());
    }
}

/// Anthropic SSE, checked with the rules of the anthropic SDK's message accumulator.
pub fn anthropic(frames: &[Bytes]) -> Accumulated {
    let mut acc = Accumulated::default();
    let mut blocks: Vec<(Kind, String, String, String)> = Vec::new(); // kind, id, name, text/json
    let mut open: Option<usize> = None;
    let mut started = false;
    let mut stopped = false;
    let mut delta_seen = false;
    let mut input_tokens = 0;
    for f in frames {
        let s = frame_str(f);
        assert!(!stopped, "nothing may follow message_stop");
        assert!(acc.error.is_none(), "nothing may follow an error");
        let mut lines = s.lines();
        let event = lines
            .next()
            .and_then(|l| l.strip_prefix("event: "))
            .unwrap_or_else(|| panic!("every frame needs an event: line: {s:?}"));
        let v: Value = serde_json::from_str(lines.next().unwrap().strip_prefix("data: ").unwrap()).unwrap();
        assert_eq!(v["type"], event, "the data repeats the event type");
        if event == "error" {
            assert!(v["error"]["type"].is_string() && v["error"]["message"].is_string());
            acc.error = Some(v);
            continue;
        }
        if event != "message_start" {
            assert!(started, "message_start comes first, got {event}");
        }
        match event {
            "message_start" => {
                assert!(!started);
                started = true;
                input_tokens = anthropic_message_start(&v["message"]);
            }
            "content_block_start" => {
                assert!(!delta_seen, "no block after message_delta");
                assert!(open.is_none(), "the previous block must be stopped first");
                let index = v["index"].as_u64().unwrap() as usize;
                assert_eq!(index, blocks.len(), "block indices count up from 0");
                blocks.push(anthropic_block(&v["content_block"]));
                open = Some(index);
            }
            "content_block_delta" => {
                let index = v["index"].as_u64().unwrap() as usize;
                assert_eq!(open, Some(index), "deltas go to the open block");
                let d = &v["delta"];
                match (&blocks[index].0, d["type"].as_str().unwrap()) {
                    (Kind::Text, "text_delta") => blocks[index].3.push_str(d["text"].as_str().unwrap()),
                    (Kind::Thinking, "thinking_delta") => {
                        blocks[index].3.push_str(d["thinking"].as_str().unwrap())
                    }
                    (Kind::Tool, "input_json_delta") => {
                        blocks[index].3.push_str(d["partial_json"].as_str().unwrap())
                    }
                    (_, t) => panic!("delta {t} does not fit block {index}"),
                }
            }
            "content_block_stop" => {
                let index = v["index"].as_u64().unwrap() as usize;
                assert_eq!(open, Some(index), "stop closes the open block");
                open = None;
            }
            "message_delta" => {
                assert!(open.is_none(), "message_delta after the last content_block_stop");
                assert!(!delta_seen);
                delta_seen = true;
                acc.finish = v["delta"]["stop_reason"].as_str().map(str::to_owned);
                acc.usage = Some(anthropic_usage(&v["usage"], input_tokens));
            }
            "message_stop" => {
                assert!(delta_seen, "message_delta before message_stop");
                stopped = true;
            }
            "ping" => {}
            other => panic!("unexpected event {other}"),
        }
    }
    if acc.error.is_none() {
        assert!(stopped, "a clean stream ends with message_stop");
    }
    for (kind, id, name, content) in blocks {
        match kind {
            Kind::Text => acc.text.push_str(&content),
            Kind::Thinking => acc.reasoning.push_str(&content),
            Kind::Tool if acc.error.is_some() => acc.tool_calls.push((id, name, Value::String(content))),
            Kind::Tool => acc.tool_calls.push((id, name, parse_args(&content))),
        }
    }
    acc
}

#[derive(PartialEq)]
enum Kind {
    Text,
    Thinking,
    Tool,
}

/// Checks the `message` of `message_start`; its input tokens.
fn anthropic_message_start(m: &Value) -> u64 {
    assert_eq!(
        (m["type"].as_str(), m["role"].as_str()),
        (Some("message"), Some("assistant"))
    );
    assert!(m["id"].as_str().unwrap().starts_with("msg_"));
    assert_eq!(m["content"], serde_json::json!([]));
    m["usage"]["input_tokens"].as_u64().unwrap()
}

/// A `content_block_start`'s block: (kind, id, name, empty content).
fn anthropic_block(b: &Value) -> (Kind, String, String, String) {
    match b["type"].as_str().unwrap() {
        "text" => (Kind::Text, String::new(), String::new(), String::new()),
        "thinking" => {
            assert_eq!(
                b["signature"],
                serde_json::json!(""),
                "thinking blocks carry a signature"
            );
            (Kind::Thinking, String::new(), String::new(), String::new())
        }
        "tool_use" => {
            assert_eq!(b["input"], serde_json::json!({}));
            let id = b["id"].as_str().unwrap();
            assert!(
                !id.is_empty()
                    && id
                        .chars()
                        .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-'),
                "tool_use ids match [a-zA-Z0-9_-]+: {id}"
            );
            (
                Kind::Tool,
                id.to_owned(),
                b["name"].as_str().unwrap().to_owned(),
                String::new(),
            )
        }
        other => panic!("unexpected block {other}"),
    }
}

/// `message_delta`'s usage: all input tokens (those of `message_start` unless repeated here, cached
/// ones included) and the output tokens.
fn anthropic_usage(u: &Value, input_tokens: u64) -> (u64, u64) {
    let input = u["input_tokens"].as_u64().unwrap_or(input_tokens)
        + u["cache_read_input_tokens"].as_u64().unwrap_or(0)
        + u["cache_creation_input_tokens"].as_u64().unwrap_or(0);
    (
        input,
        u["output_tokens"].as_u64().expect("output_tokens is required"),
    )
}

/// Gemini `alt=sse` stream: every chunk is a partial GenerateContentResponse.
pub fn gemini(frames: &[Bytes]) -> Accumulated {
    let mut acc = Accumulated::default();
    for f in frames {
        let s = frame_str(f);
        assert!(acc.error.is_none(), "nothing may follow an error");
        assert!(acc.finish.is_none(), "nothing may follow the finishReason chunk");
        let v: Value = serde_json::from_str(s.strip_prefix("data: ").unwrap().trim_end()).unwrap();
        if let Some(e) = v.get("error") {
            assert!(e["code"].is_u64() && e["status"].is_string());
            acc.error = Some(e.clone());
            continue;
        }
        let c = &v["candidates"][0];
        assert_eq!(c["content"]["role"], "model");
        for p in c["content"]["parts"].as_array().unwrap() {
            if let Some(t) = p.get("text").and_then(Value::as_str) {
                acc.text.push_str(t);
            } else if let Some(fc) = p.get("functionCall") {
                assert!(fc["args"].is_object());
                acc.tool_calls.push((
                    format!("call_{}", acc.tool_calls.len()),
                    fc["name"].as_str().unwrap().to_owned(),
                    fc["args"].clone(),
                ));
            }
        }
        if let Some(r) = c["finishReason"].as_str() {
            acc.finish = Some(r.to_owned());
            if let Some(u) = v.get("usageMetadata") {
                acc.usage = Some((
                    u["promptTokenCount"].as_u64().unwrap(),
                    u["candidatesTokenCount"].as_u64().unwrap()
                        + u["thoughtsTokenCount"].as_u64().unwrap_or(0),
                ));
            }
        }
    }
    if acc.error.is_none() {
        assert!(
            acc.finish.is_some(),
            "a clean stream ends with a finishReason chunk"
        );
    }
    acc
}
