//! `POST /v1/audio/speech` like mittwald's `Qwen3-TTS`: the answer is always `audio/mpeg` (whatever
//! `response_format` asks), `voice` is required, and `aac` or a missing/invalid parameter is an HTTP
//! 500 rather than a 400. The audio is deterministic ([`speech_audio`]) and sent in several chunks.
//! `cut*` models send the first chunk and then abort the connection, `stall*` models send it and then
//! nothing more with the connection open; the other model-name modes
//! (`fail*`, `ratelimit*`, ...) apply as on chat.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use hyper::header::{HeaderValue, CONTENT_LENGTH, CONTENT_TYPE};
use hyper::{Response, StatusCode};
use serde_json::Value;

use crate::body::MockBody;
use crate::handlers::{json, Reply};
use crate::modes::{common_mode_for, mode_of, Mode};
use crate::state::Shared;

/// The chunks the mock's audio is sent in.
const CHUNKS: usize = 3;

/// The exact bytes the mock answers for `input` spoken by `voice`: an ID3 tag, then MP3 frame-sync
/// bytes and the text, so tests can compare what a client received byte for byte (binary included).
/// The chunks are the audio cut in [`CHUNKS`] near-equal parts.
pub fn speech_audio(input: &str, voice: &str) -> Vec<u8> {
    let mut out = b"ID3\x04\x00\x00\x00\x00\x00\x00".to_vec();
    for (i, word) in format!("voice={voice} input={input}").split(' ').enumerate() {
        out.extend_from_slice(&[0xFF, 0xFB, 0x90, (i % 256) as u8]);
        out.extend_from_slice(word.as_bytes());
    }
    out.extend_from_slice(&[0x00; 16]);
    out
}

/// mittwald's answer to a bad speech request: a 500 with a plain error object.
fn server_error(message: &str) -> Reply {
    let body = serde_json::json!({"error": {"message": message, "type": "InternalServerError", "code": 500}});
    json(StatusCode::INTERNAL_SERVER_ERROR, body.to_string()).into()
}

pub(crate) async fn speech(shared: &Arc<Shared>, body: &Bytes) -> Reply {
    let Ok(req) = serde_json::from_slice::<Value>(body) else {
        return server_error("Invalid JSON body");
    };
    let (Some(model), Some(input)) = (req["model"].as_str(), req["input"].as_str()) else {
        return server_error("model and input are required");
    };
    let Some(voice) = req["voice"].as_str() else {
        return server_error("voice is required");
    };
    if req["response_format"].as_str() == Some("aac") {
        return server_error("response_format aac is not supported");
    }
    // `cut*` is not one of the common failures: it answers, then breaks off (below).
    if let Some(reply) = common_mode_for(model).await {
        return reply;
    }
    let mode = mode_of(model);
    let audio = speech_audio(input, voice);
    let size = audio.len().div_ceil(CHUNKS);
    let chunks: Vec<Bytes> = audio.chunks(size).map(Bytes::copy_from_slice).collect();
    let body = if mode == Mode::Cut {
        MockBody::Truncated {
            data: Some(chunks[0].clone()),
            paused: false,
        }
    } else if mode == Mode::Stall {
        // The first chunk, then silence for an hour with the connection open.
        MockBody::paced_events(chunks, shared, Duration::from_secs(3600), 1..CHUNKS)
    } else {
        MockBody::events(chunks, shared)
    };
    let mut resp = Response::new(body);
    let headers = resp.headers_mut();
    headers.insert(CONTENT_TYPE, HeaderValue::from_static("audio/mpeg"));
    if mode == Mode::Cut {
        headers.insert(CONTENT_LENGTH, HeaderValue::from(audio.len()));
    }
    resp.into()
}

#[cfg(test)]
mod tests {
    use super::speech_audio;

    #[test]
    fn audio_is_deterministic_and_binary() {
        let a = speech_audio("Hallo Welt", "Vivian");
        assert_eq!(a, speech_audio("Hallo Welt", "Vivian"));
        assert_ne!(a, speech_audio("Hallo Welt", "Ryan"));
        assert!(a.starts_with(b"ID3"));
        assert!(a.contains(&0xFF));
    }
}
