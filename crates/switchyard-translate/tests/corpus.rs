//! Snapshot tests over the corpus in `tests/corpus/`: every input file is translated into every target
//! that makes sense for it and the result is snapshotted (`tests/snapshots/`).
//!
//! Layout: `<protocol>_requests/*.json` (client bodies), `<protocol>_responses/*.json` (upstream bodies),
//! `<protocol>_streams/*.sse` (upstream SSE bodies, replayed in small chunks).

mod common;

use std::path::Path;

use bytes::Bytes;
use switchyard_translate::{
    translate_request, translate_response, Protocol, RequestOptions, ResponseContext, StreamTranslator,
};

fn corpus(dir: &str) -> Vec<(String, Vec<u8>)> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/corpus")
        .join(dir);
    let mut files: Vec<_> = std::fs::read_dir(&path)
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
        .map(|e| e.unwrap().path())
        .collect();
    files.sort();
    assert!(!files.is_empty(), "empty corpus dir {dir}");
    files
        .into_iter()
        .map(|p| {
            let stem = p.file_stem().unwrap().to_string_lossy().into_owned();
            (stem, std::fs::read(&p).unwrap())
        })
        .collect()
}

fn name(p: Protocol) -> &'static str {
    match p {
        Protocol::OpenAi => "openai",
        Protocol::Anthropic => "anthropic",
        Protocol::Gemini => "gemini",
        Protocol::Bedrock => "bedrock",
    }
}

fn pretty(bytes: &[u8]) -> String {
    let v: serde_json::Value = serde_json::from_slice(bytes).expect("translation output is JSON");
    serde_json::to_string_pretty(&v).unwrap()
}

fn ctx() -> ResponseContext {
    ResponseContext {
        created: 1_767_225_600,
        model: "client-model".into(),
        id_hint: "req123".into(),
        include_usage: true,
    }
}

fn requests(from: Protocol, dir: &str, targets: &[Protocol]) {
    for (stem, body) in corpus(dir) {
        for &to in targets {
            let out = match translate_request(from, to, &body, &RequestOptions::new("upstream-model")) {
                Ok(bytes) => pretty(&bytes),
                Err(e) => format!("ERROR {} param={:?}: {e}", e.status(), e.param()),
            };
            insta::assert_snapshot!(format!("{dir}__{stem}__to_{}", name(to)), out);
        }
    }
}

fn responses(from: Protocol, dir: &str, targets: &[Protocol]) {
    for (stem, body) in corpus(dir) {
        for &to in targets {
            let out = match translate_response(from, to, &body, &ctx()) {
                Ok(bytes) => pretty(&bytes),
                Err(e) => format!("ERROR {} param={:?}: {e}", e.status(), e.param()),
            };
            insta::assert_snapshot!(format!("{dir}__{stem}__to_{}", name(to)), out);
        }
    }
}

/// Replays an SSE body in 23-byte chunks (so events are split and coalesced) and renders the frames.
fn replay(from: Protocol, to: Protocol, body: &[u8]) -> String {
    let mut t = StreamTranslator::new(from, to, &ctx());
    let mut frames = Vec::new();
    for chunk in body.chunks(23) {
        frames.extend(t.push_bytes(Bytes::copy_from_slice(chunk)));
    }
    let tail = t.finish();
    assert!(t.is_over());
    assert!(
        t.finish().is_empty() && t.fail("late").is_empty(),
        "an ended stream stays ended"
    );
    let all: Vec<Bytes> = frames.iter().chain(&tail).cloned().collect();
    match to {
        Protocol::OpenAi => common::openai(&all, true),
        Protocol::Anthropic => common::anthropic(&all),
        Protocol::Gemini => common::gemini(&all),
        Protocol::Bedrock => unreachable!("the corpus has no Bedrock clients"),
    };
    let mut out = String::new();
    for f in frames {
        out.push_str(&check_frame(&f));
    }
    out.push_str("----- finish() -----\n");
    for f in tail {
        out.push_str(&check_frame(&f));
    }
    out
}

/// Every frame is exactly one SSE event whose data line (if JSON) parses.
fn check_frame(f: &Bytes) -> String {
    let s = std::str::from_utf8(f).expect("frames are UTF-8");
    assert!(
        s.ends_with("\n\n") && !s[..s.len() - 2].contains("\n\n"),
        "one event per frame: {s:?}"
    );
    for line in s.lines() {
        if let Some(data) = line.strip_prefix("data: ") {
            if data != "[DONE]" {
                serde_json::from_str::<serde_json::Value>(data).expect("data is JSON");
            }
        }
    }
    s.to_owned()
}

fn streams(from: Protocol, dir: &str, targets: &[Protocol]) {
    for (stem, body) in corpus(dir) {
        for &to in targets {
            insta::assert_snapshot!(format!("{dir}__{stem}__to_{}", name(to)), replay(from, to, &body));
        }
    }
}

#[test]
fn openai_requests() {
    requests(
        Protocol::OpenAi,
        "openai_requests",
        &[Protocol::Anthropic, Protocol::Gemini],
    );
}

#[test]
fn anthropic_requests() {
    requests(Protocol::Anthropic, "anthropic_requests", &[Protocol::OpenAi]);
}

#[test]
fn gemini_requests() {
    requests(Protocol::Gemini, "gemini_requests", &[Protocol::OpenAi]);
}

#[test]
fn anthropic_responses() {
    responses(Protocol::Anthropic, "anthropic_responses", &[Protocol::OpenAi]);
}

#[test]
fn openai_responses() {
    responses(
        Protocol::OpenAi,
        "openai_responses",
        &[Protocol::Anthropic, Protocol::Gemini],
    );
}

#[test]
fn gemini_responses() {
    responses(Protocol::Gemini, "gemini_responses", &[Protocol::OpenAi]);
}

#[test]
fn anthropic_streams() {
    streams(Protocol::Anthropic, "anthropic_streams", &[Protocol::OpenAi]);
}

#[test]
fn openai_streams() {
    streams(
        Protocol::OpenAi,
        "openai_streams",
        &[Protocol::Anthropic, Protocol::Gemini],
    );
}

#[test]
fn gemini_streams() {
    streams(
        Protocol::Gemini,
        "gemini_streams",
        &[Protocol::OpenAi, Protocol::Anthropic],
    );
}
