//! The OpenAI/mittwald endpoints besides chat, completions and embeddings: audio transcriptions and
//! translations (multipart), rerank (vLLM's Cohere-style shape) and the Responses API (JSON and SSE
//! with named `event:` lines). The model-name modes (`fail*`, `ratelimit*`, ...) apply as on chat.

use std::sync::Arc;

use bytes::Bytes;
use hyper::header::{HeaderValue, CONTENT_TYPE};
use hyper::{Response, StatusCode};
use serde_json::{json, Value};

use crate::body::MockBody;
use crate::handlers::{json, sse_response, Reply};
use crate::modes::common_mode_for;
use crate::openai::{flat_error, word_count, word_pieces};
use crate::state::Shared;

fn bad_request(message: &str, param: Option<&str>) -> Reply {
    json(StatusCode::BAD_REQUEST, flat_error(message, param)).into()
}

// ---------------------------------------------------------------------------------------------
// Multipart (written independently of the gateway's parser, so the two check each other)
// ---------------------------------------------------------------------------------------------

/// One part of a `multipart/form-data` body.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FormField {
    pub name: String,
    pub filename: Option<String>,
    pub content_type: Option<String>,
    pub data: Bytes,
}

impl FormField {
    pub fn text(&self) -> Option<&str> {
        std::str::from_utf8(&self.data).ok()
    }
}

/// Splits a multipart body by its boundary (from the `Content-Type` header value). `None` if the body
/// is not a complete multipart form.
pub fn parse_form(content_type: &str, body: &Bytes) -> Option<Vec<FormField>> {
    let boundary = content_type.split(';').find_map(|p| {
        let (k, v) = p.trim().split_once('=')?;
        k.eq_ignore_ascii_case("boundary")
            .then(|| v.trim_matches('"').to_owned())
    })?;
    let delim = format!("--{boundary}");
    let text_positions: Vec<usize> = find_all(body, delim.as_bytes());
    let mut fields = Vec::new();
    let mut closed = false;
    for w in text_positions.windows(2) {
        let start = w[0] + delim.len();
        let segment = &body[start..w[1]];
        // Every segment is "\r\n<headers>\r\n\r\n<data>\r\n".
        let segment = segment.strip_prefix(b"\r\n")?;
        let segment = segment.strip_suffix(b"\r\n")?;
        let split = find_all(segment, b"\r\n\r\n").into_iter().next()?;
        let head = std::str::from_utf8(&segment[..split]).ok()?;
        let data_start = start + 2 + split + 4;
        let data = body.slice(data_start..data_start + segment.len() - split - 4);
        let mut name = None;
        let mut filename = None;
        let mut content_type = None;
        for line in head.split("\r\n") {
            let (k, v) = line.split_once(':')?;
            if k.eq_ignore_ascii_case("content-disposition") {
                for p in v.split(';').skip(1) {
                    if let Some((pk, pv)) = p.trim().split_once('=') {
                        let pv = pv.trim_matches('"').to_owned();
                        match pk {
                            "name" => name = Some(pv),
                            "filename" => filename = Some(pv),
                            _ => {}
                        }
                    }
                }
            } else if k.eq_ignore_ascii_case("content-type") {
                content_type = Some(v.trim().to_owned());
            }
        }
        fields.push(FormField {
            name: name?,
            filename,
            content_type,
            data,
        });
    }
    if let Some(&last) = text_positions.last() {
        closed = body[last + delim.len()..].starts_with(b"--");
    }
    closed.then_some(fields)
}

fn find_all(haystack: &[u8], needle: &[u8]) -> Vec<usize> {
    let mut out = Vec::new();
    let mut i = 0;
    while i + needle.len() <= haystack.len() {
        if &haystack[i..i + needle.len()] == needle {
            out.push(i);
            i += needle.len();
        } else {
            i += 1;
        }
    }
    out
}

/// Duration in seconds of a PCM WAV file, from its `fmt ` byte rate and `data` size.
fn wav_seconds(data: &[u8]) -> Option<f64> {
    if data.len() < 12 || &data[..4] != b"RIFF" || &data[8..12] != b"WAVE" {
        return None;
    }
    let mut pos = 12;
    let mut byte_rate = None;
    while pos + 8 <= data.len() {
        let id = &data[pos..pos + 4];
        let size = u32::from_le_bytes(data[pos + 4..pos + 8].try_into().ok()?) as usize;
        let body = pos + 8;
        if id == b"fmt " && body + 12 <= data.len() {
            byte_rate = Some(u32::from_le_bytes(data[body + 8..body + 12].try_into().ok()?));
        } else if id == b"data" {
            let rate = byte_rate.filter(|r| *r > 0)?;
            let len = size.min(data.len() - body);
            return Some(len as f64 / f64::from(rate));
        }
        pos = body + size + (size & 1);
    }
    None
}

// ---------------------------------------------------------------------------------------------
// Audio
// ---------------------------------------------------------------------------------------------

/// `POST /v1/audio/transcriptions` and `/v1/audio/translations`, like mittwald's Whisper: `json`
/// (default), `verbose_json` and `text`; `srt`/`vtt` are refused with 400. `stream=true` answers with
/// OpenAI's `transcript.text.delta` events and a final `transcript.text.done` (no `[DONE]`).
pub(crate) async fn audio(
    shared: &Arc<Shared>,
    translate: bool,
    content_type: Option<&str>,
    body: &Bytes,
) -> Reply {
    let Some(fields) = content_type.and_then(|ct| parse_form(ct, body)) else {
        return bad_request("Expected a complete multipart/form-data body", None);
    };
    let field = |name: &str| fields.iter().find(|f| f.name == name);
    let Some(model) = field("model").and_then(FormField::text) else {
        return bad_request("Field required: model", Some("model"));
    };
    let Some(file) = field("file").filter(|f| f.filename.is_some()) else {
        return bad_request("Field required: file", Some("file"));
    };
    if let Some(reply) = common_mode_for(model).await {
        return reply;
    }
    let language = if translate {
        "english".to_owned()
    } else {
        field("language")
            .and_then(FormField::text)
            .unwrap_or("de")
            .to_owned()
    };
    let format = field("response_format")
        .and_then(FormField::text)
        .unwrap_or("json");
    let seconds = wav_seconds(&file.data).unwrap_or(1.0);
    let verb = if translate { "translation" } else { "transcript" };
    let text = format!(
        "mock {verb} of {} ({} bytes, {language})",
        file.filename.as_deref().unwrap_or(""),
        file.data.len()
    );
    if field("stream").and_then(FormField::text) == Some("true") {
        let mut frames: Vec<Bytes> = word_pieces(&text)
            .iter()
            .map(|piece| {
                let ev = json!({"type": "transcript.text.delta", "delta": piece, "logprobs": null});
                Bytes::from(format!("data: {ev}\n\n"))
            })
            .collect();
        let done = json!({"type": "transcript.text.done", "text": text, "logprobs": null,
                          "usage": {"type": "tokens", "input_tokens": 10, "output_tokens": word_count(&text),
                                    "total_tokens": 10 + word_count(&text)}});
        frames.push(Bytes::from(format!("data: {done}\n\n")));
        return sse_response(MockBody::events(frames, shared)).into();
    }
    match format {
        "json" => json(
            StatusCode::OK,
            json!({"text": text, "usage": {"type": "duration", "seconds": seconds.ceil() as u64}})
                .to_string(),
        )
        .into(),
        "verbose_json" => json(
            StatusCode::OK,
            json!({
                "task": if translate { "translate" } else { "transcribe" },
                "language": language,
                "duration": seconds,
                "text": text,
                "segments": [{"id": 0, "seek": 0, "start": 0.0, "end": seconds, "text": text,
                               "tokens": [1, 2, 3], "temperature": 0.0, "avg_logprob": -0.1,
                               "compression_ratio": 1.0, "no_speech_prob": 0.01}],
                "usage": {"type": "duration", "seconds": seconds.ceil() as u64}
            })
            .to_string(),
        )
        .into(),
        "text" => {
            let mut resp = Response::new(MockBody::full(text));
            resp.headers_mut().insert(
                CONTENT_TYPE,
                HeaderValue::from_static("text/plain; charset=utf-8"),
            );
            resp.into()
        }
        other => bad_request(
            &format!("response_format '{other}' is not supported"),
            Some("response_format"),
        ),
    }
}

// ---------------------------------------------------------------------------------------------
// Rerank
// ---------------------------------------------------------------------------------------------

/// `POST /v1/rerank` in vLLM's shape. The score of a document is the share of the query's words it
/// contains (deterministic), results sorted by score.
pub(crate) async fn rerank(shared: &Arc<Shared>, body: &Bytes) -> Reply {
    let Ok(req) = serde_json::from_slice::<Value>(body) else {
        return bad_request("Invalid request body", None);
    };
    let Some(model) = req["model"].as_str() else {
        return bad_request("Field required: model", Some("model"));
    };
    let Some(query) = req["query"].as_str() else {
        return bad_request("Field required: query", Some("query"));
    };
    let Some(documents) = req["documents"].as_array() else {
        return bad_request("Field required: documents", Some("documents"));
    };
    if let Some(reply) = common_mode_for(model).await {
        return reply;
    }
    let query_words: Vec<String> = query.split_whitespace().map(str::to_lowercase).collect();
    let mut results: Vec<(usize, f64, &str)> = documents
        .iter()
        .enumerate()
        .map(|(i, d)| {
            let text = d.as_str().or_else(|| d["text"].as_str()).unwrap_or("");
            let words: Vec<String> = text.split_whitespace().map(str::to_lowercase).collect();
            let hits = query_words.iter().filter(|w| words.contains(w)).count();
            let score = hits as f64 / query_words.len().max(1) as f64;
            (i, score, text)
        })
        .collect();
    results.sort_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0)));
    if let Some(n) = req["top_n"].as_u64() {
        results.truncate(n as usize);
    }
    let return_documents = req["return_documents"].as_bool().unwrap_or(true);
    let tokens: u64 = documents
        .iter()
        .map(|d| word_count(d.as_str().unwrap_or("")) + word_count(query))
        .sum();
    let results: Vec<Value> = results
        .into_iter()
        .map(|(index, score, text)| {
            let mut r = json!({"index": index, "relevance_score": score});
            if return_documents {
                r["document"] = json!({"text": text});
            }
            r
        })
        .collect();
    let answer = json!({
        "id": format!("rerank-mock-{}", shared.next_id()),
        "model": model,
        "usage": {"total_tokens": tokens},
        "results": results,
    });
    json(StatusCode::OK, answer.to_string()).into()
}

// ---------------------------------------------------------------------------------------------
// Responses API
// ---------------------------------------------------------------------------------------------

/// The text the mock answers a Responses request with: `echo: ` and the input string, or the last
/// user message's text of an input list.
fn responses_input_text(input: &Value) -> String {
    match input {
        Value::String(s) => s.clone(),
        Value::Array(items) => items
            .iter()
            .rev()
            .find(|i| i["role"] == "user")
            .map(|i| match &i["content"] {
                Value::String(s) => s.clone(),
                Value::Array(parts) => parts
                    .iter()
                    .filter_map(|p| p["text"].as_str())
                    .collect::<Vec<_>>()
                    .join(" "),
                _ => String::new(),
            })
            .unwrap_or_default(),
        _ => String::new(),
    }
}

/// The model of a Responses request that mittwald would take: `model` and `input` given, no
/// `previous_response_id` (its experimental Responses API is stateless).
/// The error is the 400's message and param.
fn responses_model(req: &Value) -> Result<&str, (&'static str, &'static str)> {
    let Some(model) = req["model"].as_str() else {
        return Err(("Field required: model", "model"));
    };
    if req.get("input").is_none() {
        return Err(("Field required: input", "input"));
    }
    if req.get("previous_response_id").is_some_and(|v| !v.is_null()) {
        return Err(("previous_response_id is not supported", "previous_response_id"));
    }
    Ok(model)
}

/// `POST /v1/responses`: a `response` object, or with `stream: true` the named events OpenAI sends
/// (`response.created` ... `response.completed`, no `[DONE]`). `cut*` models stop before the end.
pub(crate) async fn responses(shared: &Arc<Shared>, body: &Bytes) -> Reply {
    let Ok(req) = serde_json::from_slice::<Value>(body) else {
        return bad_request("Invalid request body", None);
    };
    let model = match responses_model(&req) {
        Ok(model) => model,
        Err((message, param)) => return bad_request(message, Some(param)),
    };
    if let Some(reply) = common_mode_for(model).await {
        return reply;
    }
    let text = format!("echo: {}", responses_input_text(&req["input"]));
    let n = shared.next_id();
    let id = format!("resp_mock{n}");
    let msg_id = format!("msg_mock{n}");
    let input_tokens = word_count(&responses_input_text(&req["input"])).max(1);
    let output_tokens = word_count(&text);
    let created = 1_767_225_600u64;
    let message = json!({"type": "message", "id": msg_id, "status": "completed", "role": "assistant",
                         "content": [{"type": "output_text", "text": text, "annotations": []}]});
    let usage = json!({"input_tokens": input_tokens, "output_tokens": output_tokens,
                       "total_tokens": input_tokens + output_tokens,
                       "input_tokens_details": {"cached_tokens": 0, "cache_write_tokens": 0},
                       "output_tokens_details": {"reasoning_tokens": 0}});
    let response = |status: &str, output: Value, usage: Value| {
        json!({"id": id, "object": "response", "created_at": created, "status": status,
               "model": model, "output": output, "usage": usage,
               "parallel_tool_calls": true, "tool_choice": "auto", "tools": [],
               "instructions": req.get("instructions").cloned().unwrap_or(Value::Null)})
    };
    if req["stream"] != true {
        return json(
            StatusCode::OK,
            response("completed", json!([message]), usage).to_string(),
        )
        .into();
    }
    let mut frames: Vec<Bytes> = Vec::new();
    let mut seq = 0u64;
    let mut event = |name: &str, mut data: Value| {
        data["type"] = json!(name);
        data["sequence_number"] = json!(seq);
        seq += 1;
        frames.push(Bytes::from(format!("event: {name}\ndata: {data}\n\n")));
    };
    event(
        "response.created",
        json!({"response": response("in_progress", json!([]), Value::Null)}),
    );
    event(
        "response.in_progress",
        json!({"response": response("in_progress", json!([]), Value::Null)}),
    );
    event(
        "response.output_item.added",
        json!({"output_index": 0, "item": {"type": "message", "id": msg_id, "status": "in_progress",
                                           "role": "assistant", "content": []}}),
    );
    event(
        "response.content_part.added",
        json!({"item_id": msg_id, "output_index": 0, "content_index": 0,
               "part": {"type": "output_text", "text": "", "annotations": []}}),
    );
    let pieces = word_pieces(&text);
    let cut = model.starts_with("cut");
    for piece in &pieces {
        event(
            "response.output_text.delta",
            json!({"item_id": msg_id, "output_index": 0, "content_index": 0, "delta": piece,
                   "logprobs": []}),
        );
        if cut {
            break;
        }
    }
    if !cut {
        event(
            "response.output_text.done",
            json!({"item_id": msg_id, "output_index": 0, "content_index": 0, "text": text,
                   "logprobs": []}),
        );
        event(
            "response.content_part.done",
            json!({"item_id": msg_id, "output_index": 0, "content_index": 0,
                   "part": {"type": "output_text", "text": text, "annotations": []}}),
        );
        event(
            "response.output_item.done",
            json!({"output_index": 0, "item": message}),
        );
        event(
            "response.completed",
            json!({"response": response("completed", json!([message]), usage)}),
        );
    }
    sse_response(MockBody::events(frames, shared)).into()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_a_form_with_the_model_after_the_file() {
        let body = Bytes::from_static(
            b"--XX\r\nContent-Disposition: form-data; name=\"file\"; filename=\"a.wav\"\r\nContent-Type: audio/wav\r\n\r\nRIFF\r\n--X\r\n--XX\r\nContent-Disposition: form-data; name=\"model\"\r\n\r\nwhisper\r\n--XX--\r\n",
        );
        let fields = parse_form("multipart/form-data; boundary=XX", &body).unwrap();
        assert_eq!(fields.len(), 2);
        assert_eq!(fields[0].filename.as_deref(), Some("a.wav"));
        assert_eq!(&fields[0].data[..], b"RIFF\r\n--X");
        assert_eq!(fields[1].text(), Some("whisper"));
        let cut = body.slice(..body.len() - 8);
        assert_eq!(parse_form("multipart/form-data; boundary=XX", &cut), None);
    }

    #[test]
    fn wav_duration() {
        let mut wav = b"RIFF\0\0\0\0WAVEfmt \x10\0\0\0".to_vec();
        // PCM, mono, 8000 Hz, byte rate 16000, block align 2, 16 bits
        wav.extend_from_slice(&[1, 0, 1, 0, 0x40, 0x1f, 0, 0, 0x80, 0x3e, 0, 0, 2, 0, 16, 0]);
        wav.extend_from_slice(b"data");
        wav.extend_from_slice(&32000u32.to_le_bytes());
        wav.extend(std::iter::repeat_n(0u8, 32000));
        assert_eq!(wav_seconds(&wav), Some(2.0));
        assert_eq!(wav_seconds(b"not a wav"), None);
    }
}
