//! The Responses API as a client protocol (Codex CLI against providers that serve only chat
//! completions, or speak Anthropic): requests from the corpus, answers, and streams replayed from the
//! chat and Anthropic stream corpora into Responses SSE events, checked event by event.

use std::fs;
use std::path::Path;

use bytes::Bytes;
use serde_json::{json, Value};
use switchyard_translate::{
    translate_response_to_responses, translate_responses_request, Protocol, RequestOptions, ResponseContext,
    StreamTranslator,
};

fn ctx() -> ResponseContext {
    ResponseContext {
        created: 1_767_225_600,
        model: "client-model".into(),
        id_hint: "req123".into(),
        include_usage: true,
    }
}

fn corpus(dir: &str) -> Vec<(String, Vec<u8>)> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/corpus")
        .join(dir);
    let mut files: Vec<_> = fs::read_dir(&root).unwrap().map(|e| e.unwrap().path()).collect();
    files.sort();
    files
        .into_iter()
        .map(|p| {
            (
                p.file_stem().unwrap().to_string_lossy().into_owned(),
                fs::read(&p).unwrap(),
            )
        })
        .collect()
}

fn pretty(bytes: &[u8]) -> String {
    serde_json::to_string_pretty(&serde_json::from_slice::<Value>(bytes).unwrap()).unwrap()
}

#[test]
fn responses_requests_to_chat_and_anthropic() {
    for (stem, body) in corpus("responses_requests") {
        for (to, name) in [(Protocol::OpenAi, "openai"), (Protocol::Anthropic, "anthropic")] {
            let out = translate_responses_request(to, &body, &RequestOptions::new("upstream-model")).unwrap();
            insta::assert_snapshot!(format!("responses_requests__{stem}__to_{name}"), pretty(&out));
        }
    }
}

#[test]
fn codex_fields_are_dropped_or_mapped_never_refused() {
    let body = br#"{"model":"m","input":"hi","store":false,"include":["reasoning.encrypted_content"],
        "prompt_cache_key":"k","client_metadata":{"a":"b"},"reasoning":{"effort":"high"},
        "tools":[{"type":"web_search"},{"type":"namespace","name":"n"}],"service_tier":"auto",
        "text":{"format":{"type":"json_schema","name":"s","schema":{"type":"object"},"strict":true}}}"#;
    let out = translate_responses_request(Protocol::OpenAi, body, &RequestOptions::new("u")).unwrap();
    let v: Value = serde_json::from_slice(&out).unwrap();
    assert_eq!(v["reasoning_effort"], "high");
    assert_eq!(
        v["response_format"],
        json!({"type": "json_schema", "json_schema": {"name": "s", "schema": {"type": "object"}, "strict": true}})
    );
    for dropped in [
        "store",
        "include",
        "prompt_cache_key",
        "client_metadata",
        "tools",
        "service_tier",
        "text",
    ] {
        assert!(v.get(dropped).is_none(), "{dropped} in {v}");
    }
    assert_eq!(v["messages"], json!([{"role": "user", "content": "hi"}]));
    let e = translate_responses_request(
        Protocol::OpenAi,
        br#"{"model":"m","input":"hi","previous_response_id":"resp_1"}"#,
        &RequestOptions::new("u"),
    )
    .unwrap_err();
    assert_eq!(e.param(), Some("previous_response_id"));
}

#[test]
fn answers_become_response_objects() {
    let chat = br#"{"id":"c1","object":"chat.completion","created":1,"model":"q","choices":[{"index":0,
        "message":{"role":"assistant","content":null,"reasoning_content":"Use ls.","tool_calls":[
          {"id":"call_9","type":"function","function":{"name":"exec_command","arguments":"{\"cmd\":\"ls\"}"}}]},
        "finish_reason":"tool_calls"}],"usage":{"prompt_tokens":10,"completion_tokens":5,"total_tokens":15,
        "prompt_tokens_details":{"cached_tokens":4}}}"#;
    let out = translate_response_to_responses(Protocol::OpenAi, chat, &ctx()).unwrap();
    insta::assert_snapshot!("responses_answer__chat_tool_call", pretty(&out));
    let anthropic = br#"{"id":"msg_1","type":"message","role":"assistant","model":"c","content":[
        {"type":"text","text":"Hello."}],"stop_reason":"max_tokens","usage":{"input_tokens":3,"output_tokens":7}}"#;
    let out = translate_response_to_responses(Protocol::Anthropic, anthropic, &ctx()).unwrap();
    let v: Value = serde_json::from_slice(&out).unwrap();
    assert_eq!(v["status"], "incomplete");
    assert_eq!(v["incomplete_details"], json!({"reason": "max_output_tokens"}));
    assert_eq!(v["output"][0]["content"][0]["text"], "Hello.");
    assert_eq!(v["usage"]["total_tokens"], 10);
}

/// What a Responses stream amounts to, checking the order rules clients rely on: `response.created`
/// first with sequence number 0, numbers counting up by one, deltas only for the open item, each
/// item's `...done` before the next item, and exactly one terminal event, last.
fn replay_checked(frames: &[Bytes]) -> (String, Value) {
    let mut open: Option<String> = None;
    let mut terminal: Option<(String, Value)> = None;
    for (seq, f) in frames.iter().enumerate() {
        let s = std::str::from_utf8(f).unwrap();
        let name = s
            .lines()
            .find_map(|l| l.strip_prefix("event: "))
            .expect("every frame is named");
        let data: Value =
            serde_json::from_str(s.lines().find_map(|l| l.strip_prefix("data: ")).unwrap()).unwrap();
        assert_eq!(data["type"], name);
        assert_eq!(data["sequence_number"], seq, "{s}");
        assert!(terminal.is_none(), "nothing after the terminal event: {s}");
        if seq == 0 {
            assert_eq!(name, "response.created");
        }
        match name {
            "response.output_item.added" => {
                assert!(open.is_none(), "the previous item must be done first");
                open = Some(data["item"]["id"].as_str().unwrap().to_owned());
            }
            "response.output_item.done" => {
                assert_eq!(open.take().as_deref(), data["item"]["id"].as_str());
            }
            n if n.ends_with(".delta") => assert_eq!(open.as_deref(), data["item_id"].as_str(), "{s}"),
            "response.completed" | "response.incomplete" | "response.failed" => {
                // A failed stream may leave its last item half done; a finished one may not.
                assert!(open.is_none() || name == "response.failed");
                terminal = Some((name.to_owned(), data["response"].clone()));
            }
            _ => {}
        }
    }
    terminal.expect("a terminal event")
}

fn stream(from: Protocol, sse: &[u8]) -> Vec<Bytes> {
    let mut t = StreamTranslator::to_responses(from, &ctx());
    let mut frames = Vec::new();
    for piece in sse.chunks(7) {
        frames.extend(t.push_bytes(Bytes::copy_from_slice(piece)));
    }
    frames.extend(t.finish());
    frames
}

#[test]
fn chat_streams_become_responses_events() {
    let (_, reasoning_tool) = corpus("openai_streams")
        .into_iter()
        .find(|(s, _)| s == "reasoning_then_tool")
        .unwrap();
    let frames = stream(Protocol::OpenAi, &reasoning_tool);
    let (kind, r) = replay_checked(&frames);
    assert_eq!(kind, "response.completed");
    assert_eq!(r["output"][0]["type"], "reasoning");
    assert_eq!(r["output"][0]["content"][0]["text"], "I should read the file.");
    assert_eq!(r["output"][1]["type"], "function_call");
    assert_eq!(r["output"][1]["call_id"], "chatcmpl-tool-9a");
    assert_eq!(r["output"][1]["arguments"], "{\"file_path\": \"/tmp/a.txt\"}");
    assert_eq!(r["usage"]["input_tokens"], 30);
    let all: String = frames
        .iter()
        .map(|f| String::from_utf8_lossy(f).into_owned())
        .collect();
    insta::assert_snapshot!("responses_stream__reasoning_then_tool", all);

    for (stem, sse) in corpus("openai_streams")
        .into_iter()
        .chain(corpus("anthropic_streams"))
    {
        let from = if sse.starts_with(b"event:") {
            Protocol::Anthropic
        } else {
            Protocol::OpenAi
        };
        let (kind, r) = replay_checked(&stream(from, &sse));
        if ["cut", "error", "overloaded"].iter().any(|w| stem.contains(w)) {
            assert_eq!(kind, "response.failed", "{stem}");
            assert!(r["error"]["message"].is_string());
        } else {
            assert_ne!(kind, "response.failed", "{stem}");
        }
    }
}
