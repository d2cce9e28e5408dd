//! The response guard on a relayed stream, in the client's format: OpenAI chat chunks, legacy
//! completions chunks (`choices[].text`), Anthropic message events, Gemini `GenerateContentResponse`
//! events and Responses API events. Each choice, content block, candidate or output part has its own
//! `StreamScan`, which holds back only text that could still become a match; held text is sent when
//! that part ends. The Responses API's closing events repeat the whole text (`*.done`,
//! `response.completed`): it is scanned there too, so they carry the same redactions. A block ends
//! the stream with an error event (`guardrail_blocked`) and no part of the match.

use std::sync::Arc;

use bytes::Bytes;
use serde_json::{json, Value};
use switchyard_core::request_type::RequestType;
use switchyard_guardrails::{Findings, GuardrailSet, StreamScan};
use switchyard_runtime::state::AppState;
use switchyard_translate::Protocol;

use super::finish::ObsHandle;
use super::guard;

/// The stream formats the guard reads.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Format {
    OpenAiChat,
    Completions,
    Anthropic,
    Gemini,
    Responses,
}

pub struct StreamGuard {
    set: Arc<GuardrailSet>,
    off: Vec<bool>,
    format: Format,
    /// One scanner per choice / content block index.
    scans: Vec<(u64, StreamScan)>,
    /// Guardrail indexes already recorded.
    recorded: Vec<usize>,
    /// The Responses API's last `sequence_number` (its error event takes the next).
    sequence: u64,
    state: Arc<AppState>,
    obs: ObsHandle,
}

impl StreamGuard {
    /// The guard for a stream answered by `provider`, or `None` when no response guardrail applies.
    pub fn new(adm: &super::Admitted, provider: &str) -> Option<StreamGuard> {
        let format = match (adm.spec().request_type, adm.spec().shape) {
            (RequestType::Responses | RequestType::ResponsesStream, _) => Format::Responses,
            (RequestType::TextCompletion | RequestType::TextCompletionStream, _) => Format::Completions,
            (_, Protocol::Anthropic) => Format::Anthropic,
            (_, Protocol::Gemini) => Format::Gemini,
            (_, Protocol::OpenAi | Protocol::Bedrock) => Format::OpenAiChat,
        };
        let set = guard::guardrails(adm)?;
        let vk = guard::virtual_key_id(adm);
        let providers = [provider];
        let applicable = set.applicable(
            switchyard_guardrails::Stage::Response,
            guard::in_scope(vk.as_deref(), &providers),
        );
        if applicable.off.iter().all(|o| *o) {
            return None;
        }
        Some(StreamGuard {
            set,
            off: applicable.off,
            format,
            scans: Vec::new(),
            recorded: Vec::new(),
            sequence: 0,
            state: adm.state().clone(),
            obs: adm.obs().clone(),
        })
    }

    /// The frames to send for one client frame; `Err(frame)`: the stream is blocked, send this error
    /// event and end.
    pub fn filter(&mut self, frame: Bytes) -> Result<Vec<Bytes>, Bytes> {
        let Some(payload) = data_of(&frame) else {
            return Ok(vec![frame]);
        };
        if payload == b"[DONE]" {
            let mut out = self.flush_all()?;
            out.push(frame);
            return Ok(out);
        }
        let Ok(mut v) = serde_json::from_slice::<Value>(payload) else {
            return Ok(vec![frame]);
        };
        match self.format {
            Format::Anthropic => self.anthropic(frame, &mut v),
            Format::Gemini => self.gemini(frame, &mut v),
            Format::Responses => self.responses(frame, &mut v),
            Format::OpenAiChat | Format::Completions => self.openai(frame, &mut v),
        }
    }

    fn scan(&mut self, index: u64) -> &mut StreamScan {
        let pos = match self.scans.iter().position(|(i, _)| *i == index) {
            Some(p) => p,
            None => {
                self.scans.push((index, self.set.stream(&self.off)));
                self.scans.len() - 1
            }
        };
        &mut self.scans[pos].1
    }

    /// Pushes text (and ends the scan when `end`); `Err` when a guardrail blocked.
    fn push(&mut self, index: u64, text: &str, end: bool) -> Result<String, Bytes> {
        let set = self.set.clone();
        let scan = self.scan(index);
        let mut out = scan.push(set.rules(), text);
        if end {
            out.push_str(&scan.finish(set.rules()));
        }
        let findings = scan.findings.clone();
        if end {
            self.scans.retain(|(i, _)| *i != index);
        }
        self.record(&findings)?;
        Ok(out)
    }

    /// Records newly matched guardrails; `Err` with the error event when one blocked.
    fn record(&mut self, findings: &Findings) -> Result<(), Bytes> {
        for (g, action) in &findings.matched {
            if !self.recorded.contains(g) {
                self.recorded.push(*g);
                let name = &self.set.guardrails[*g].name;
                let decision = guard::action_name(*action);
                self.state.metrics.guardrail(name, decision);
                self.obs.update(|d| d.guardrails.push((name.clone(), decision)));
            }
        }
        match findings.blocked_by {
            Some(g) => Err(self.block_frame(g)),
            None => Ok(()),
        }
    }

    fn openai(&mut self, frame: Bytes, v: &mut Value) -> Result<Vec<Bytes>, Bytes> {
        let Some(choices) = v.get_mut("choices").and_then(Value::as_array_mut) else {
            return Ok(vec![frame]);
        };
        let mut changed = false;
        let text_at = match self.format {
            Format::Completions => "/text",
            _ => "/delta/content",
        };
        for c in choices.iter_mut() {
            let index = c.get("index").and_then(Value::as_u64).unwrap_or(0);
            let end = c.get("finish_reason").is_some_and(|f| !f.is_null());
            let content = c.pointer(text_at).and_then(Value::as_str).map(str::to_owned);
            if content.is_none() && !end {
                continue;
            }
            let out = self.push(index, content.as_deref().unwrap_or(""), end)?;
            if content.is_some() || !out.is_empty() {
                if self.format == Format::Completions {
                    c["text"] = Value::String(out);
                    changed = true;
                } else if let Some(delta) = c.get_mut("delta").and_then(Value::as_object_mut) {
                    delta.insert("content".into(), Value::String(out));
                    changed = true;
                }
            }
        }
        Ok(vec![if changed { sse(None, v) } else { frame }])
    }

    fn anthropic(&mut self, frame: Bytes, v: &mut Value) -> Result<Vec<Bytes>, Bytes> {
        let index = v.get("index").and_then(Value::as_u64).unwrap_or(0);
        match v.get("type").and_then(Value::as_str) {
            Some("content_block_delta") => {
                let Some(text) = v
                    .pointer("/delta/text")
                    .and_then(Value::as_str)
                    .map(str::to_owned)
                else {
                    return Ok(vec![frame]);
                };
                let out = self.push(index, &text, false)?;
                v["delta"]["text"] = Value::String(out);
                Ok(vec![sse(Some("content_block_delta"), v)])
            }
            Some("content_block_stop") if self.scans.iter().any(|(i, _)| *i == index) => {
                let rest = self.push(index, "", true)?;
                let mut out = Vec::new();
                if !rest.is_empty() {
                    let delta = json!({"type": "content_block_delta", "index": index,
                        "delta": {"type": "text_delta", "text": rest}});
                    out.push(sse(Some("content_block_delta"), &delta));
                }
                out.push(frame);
                Ok(out)
            }
            _ => Ok(vec![frame]),
        }
    }

    /// Gemini: each candidate's text parts; held text goes out with the candidate's `finishReason`.
    fn gemini(&mut self, frame: Bytes, v: &mut Value) -> Result<Vec<Bytes>, Bytes> {
        let Some(candidates) = v.get_mut("candidates").and_then(Value::as_array_mut) else {
            return Ok(vec![frame]);
        };
        let mut changed = false;
        for c in candidates.iter_mut() {
            let index = c.get("index").and_then(Value::as_u64).unwrap_or(0);
            let end = c.get("finishReason").is_some_and(|f| !f.is_null());
            let mut parts: Vec<&mut Value> = c
                .pointer_mut("/content/parts")
                .and_then(Value::as_array_mut)
                .map(|ps| {
                    ps.iter_mut()
                        .filter(|p| p.get("text").is_some_and(Value::is_string))
                        .collect()
                })
                .unwrap_or_default();
            let n = parts.len();
            for (i, p) in parts.iter_mut().enumerate() {
                let text = p["text"].as_str().unwrap_or_default().to_owned();
                p["text"] = Value::String(self.push(index, &text, end && i + 1 == n)?);
                changed = true;
            }
            if n == 0 && end && self.scans.iter().any(|(i, _)| *i == index) {
                let rest = self.push(index, "", true)?;
                if !rest.is_empty() {
                    c["content"] = json!({"role": "model", "parts": [{"text": rest}]});
                    changed = true;
                }
            }
        }
        Ok(vec![if changed { sse(None, v) } else { frame }])
    }

    /// The Responses API: `response.output_text.delta` per (output, content) index; at its
    /// `response.output_text.done` the held text goes out as one more delta, and the whole texts the
    /// closing events repeat are scanned (redacted the same way, or blocked).
    fn responses(&mut self, frame: Bytes, v: &mut Value) -> Result<Vec<Bytes>, Bytes> {
        let kind = v
            .get("type")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_owned();
        if let Some(n) = v.get("sequence_number").and_then(Value::as_u64) {
            self.sequence = n;
        }
        let index = v.get("output_index").and_then(Value::as_u64).unwrap_or(0) << 16
            | v.get("content_index").and_then(Value::as_u64).unwrap_or(0);
        match kind.as_str() {
            "response.output_text.delta" => {
                let Some(text) = v.get("delta").and_then(Value::as_str).map(str::to_owned) else {
                    return Ok(vec![frame]);
                };
                v["delta"] = Value::String(self.push(index, &text, false)?);
                Ok(vec![sse(Some(&kind), v)])
            }
            "response.output_text.done"
            | "response.content_part.done"
            | "response.output_item.done"
            | "response.completed"
            | "response.incomplete" => {
                let mut out = Vec::new();
                if kind == "response.output_text.done" && self.scans.iter().any(|(i, _)| *i == index) {
                    let rest = self.push(index, "", true)?;
                    if !rest.is_empty() {
                        let mut delta = v.clone();
                        if let Some(o) = delta.as_object_mut() {
                            o.remove("text");
                            o.insert("type".into(), json!("response.output_text.delta"));
                            o.insert("delta".into(), Value::String(rest));
                        }
                        out.push(sse(Some("response.output_text.delta"), &delta));
                    }
                }
                let mut texts = Vec::new();
                text_fields(v, &mut texts);
                let findings = self.set.scan_texts(&self.off, texts);
                self.record(&findings)?;
                out.push(sse(Some(&kind), v));
                Ok(out)
            }
            _ => Ok(vec![frame]),
        }
    }

    /// Everything still held, at the end of the stream (OpenAI: a chunk per choice before `[DONE]`).
    fn flush_all(&mut self) -> Result<Vec<Bytes>, Bytes> {
        let indexes: Vec<u64> = self.scans.iter().map(|(i, _)| *i).collect();
        let mut out = Vec::new();
        for index in indexes {
            let rest = self.push(index, "", true)?;
            if !rest.is_empty() {
                let chunk = match self.format {
                    Format::Completions => json!({"object": "text_completion",
                        "choices": [{"index": index, "text": rest, "finish_reason": null}]}),
                    _ => json!({"object": "chat.completion.chunk",
                        "choices": [{"index": index, "delta": {"content": rest}, "finish_reason": null}]}),
                };
                out.push(sse(None, &chunk));
            }
        }
        Ok(out)
    }

    fn block_frame(&self, g: usize) -> Bytes {
        let message = guard::blocked(
            &self.set.guardrails[g],
            switchyard_guardrails::webhook::InputType::Response,
            None,
        )
        .to_string();
        self.obs.update(|d| d.stream_error = Some(message.clone()));
        match self.format {
            Format::Anthropic => sse(
                Some("error"),
                &json!({"type": "error", "error": {"type": "invalid_request_error",
                    "code": "guardrail_blocked", "message": message}}),
            ),
            // Google's error shape; the code is in `details` (its `code` is the HTTP status).
            Format::Gemini => sse(
                None,
                &json!({"error": {"code": 400, "message": message, "status": "INVALID_ARGUMENT",
                    "details": [{"reason": "guardrail_blocked", "domain": "switchyard"}]}}),
            ),
            Format::Responses => sse(
                Some("error"),
                &json!({"type": "error", "code": "guardrail_blocked", "message": message,
                    "param": null, "sequence_number": self.sequence + 1}),
            ),
            _ => sse(
                None,
                &json!({"error": {"message": message, "type": "invalid_request_error",
                    "param": null, "code": "guardrail_blocked"}}),
            ),
        }
    }
}

/// Every answer text of a closing Responses event (`text` of output text parts, at any depth).
fn text_fields<'a>(v: &'a mut Value, out: &mut Vec<&'a mut String>) {
    match v {
        Value::Object(o) => {
            for (k, field) in o.iter_mut() {
                // The request's own instructions are not the answer.
                if k == "instructions" {
                    continue;
                }
                if let Value::String(s) = field {
                    if k == "text" {
                        out.push(s);
                    }
                } else {
                    text_fields(field, out);
                }
            }
        }
        Value::Array(items) => items.iter_mut().for_each(|i| text_fields(i, out)),
        _ => {}
    }
}

fn sse(event: Option<&str>, v: &Value) -> Bytes {
    match event {
        Some(e) => Bytes::from(format!("event: {e}\ndata: {v}\n\n")),
        None => Bytes::from(format!("data: {v}\n\n")),
    }
}

/// The `data:` payload of one SSE event.
fn data_of(frame: &[u8]) -> Option<&[u8]> {
    switchyard_core::sse::data_payload(frame)
}
