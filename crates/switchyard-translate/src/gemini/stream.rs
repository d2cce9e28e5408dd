//! Streams: Gemini SSE chunks to canonical events and back.

use std::collections::HashMap;

use bytes::Bytes;
use serde_json::{json, Map, Value};

use super::response::{finish_from_gemini, finish_to_gemini, function_call_parts, response_id, usage_json};
use super::{parse_error, parse_usage, render_error, synthetic_id};
use crate::canonical::{ErrorInfo, FinishReason, StreamEvent, ToolCall, Usage};
use crate::openai::data_frame;
use crate::ResponseContext;

#[derive(Debug, Default)]
pub(crate) struct Decoder {
    started: bool,
    finished: bool,
    tools: usize,
}

impl Decoder {
    pub(crate) fn event(&mut self, data: &str, out: &mut Vec<StreamEvent>) {
        if data.trim().is_empty() {
            return;
        }
        let Ok(Value::Object(chunk)) = serde_json::from_str::<Value>(data) else {
            out.push(StreamEvent::Error(crate::openai::malformed_event()));
            return;
        };
        if chunk.contains_key("error") {
            out.push(StreamEvent::Error(parse_error(500, data.as_bytes())));
            return;
        }
        if !self.started {
            self.started = true;
            // Usage known at the start goes first, so message_start can carry the prompt tokens.
            if let Some(u) = chunk.get("usageMetadata").and_then(Value::as_object) {
                out.push(StreamEvent::Usage(parse_usage(u)));
            }
            out.push(StreamEvent::Start);
        }
        let candidate = chunk
            .get("candidates")
            .and_then(Value::as_array)
            .and_then(|c| c.first());
        let parts = candidate
            .and_then(|c| c.get("content"))
            .and_then(|c| c.get("parts"))
            .and_then(Value::as_array);
        for part in parts.into_iter().flatten() {
            if let Some(t) = part.get("text").and_then(Value::as_str) {
                if !t.is_empty() && part.get("thought").and_then(Value::as_bool) != Some(true) {
                    out.push(StreamEvent::TextDelta(t.to_owned()));
                }
            } else if let Some(fc) = part.get("functionCall") {
                let index = self.tools;
                self.tools += 1;
                let id = fc
                    .get("id")
                    .and_then(Value::as_str)
                    .filter(|s| !s.is_empty())
                    .map_or_else(|| synthetic_id(index), str::to_owned);
                let name = fc
                    .get("name")
                    .and_then(Value::as_str)
                    .unwrap_or_default()
                    .to_owned();
                out.push(StreamEvent::ToolCallStart { index, id, name });
                out.push(StreamEvent::ToolCallArgsDelta {
                    index,
                    fragment: fc
                        .get("args")
                        .filter(|a| !a.is_null())
                        .map_or_else(|| "{}".to_owned(), Value::to_string),
                });
            }
        }
        let reason = match candidate
            .and_then(|c| c.get("finishReason"))
            .and_then(Value::as_str)
        {
            Some(r) => Some(finish_from_gemini(r)),
            None if candidate.is_none()
                && chunk
                    .get("promptFeedback")
                    .and_then(|f| f.get("blockReason"))
                    .is_some() =>
            {
                Some(FinishReason::ContentFilter)
            }
            None => None,
        };
        if let Some(mut reason) = reason {
            if reason == FinishReason::Stop && self.tools > 0 {
                reason = FinishReason::ToolCalls;
            }
            self.finished = true;
            out.push(StreamEvent::Finish { reason });
        }
        if let Some(u) = chunk.get("usageMetadata").and_then(Value::as_object) {
            out.push(StreamEvent::Usage(parse_usage(u)));
        }
    }

    /// Gemini streams have no end marker: the stream is complete when a `finishReason` was seen.
    pub(crate) fn finish(&mut self, out: &mut Vec<StreamEvent>) {
        if self.finished {
            out.push(StreamEvent::Done);
        } else {
            out.push(StreamEvent::Error(crate::stream::cut_error()));
        }
    }
}

/// Writes Gemini stream chunks. Function calls are whole parts in Gemini, so argument fragments are
/// collected and each call is sent once complete.
#[derive(Debug)]
pub(crate) struct Encoder {
    response_id: String,
    model: String,
    pending: Vec<ToolCall>,
    by_index: HashMap<usize, usize>,
    finish: Option<FinishReason>,
    usage: Option<Usage>,
}

impl Encoder {
    pub(crate) fn new(ctx: &ResponseContext) -> Encoder {
        Encoder {
            response_id: response_id(ctx, None),
            model: ctx.model.clone(),
            pending: Vec::new(),
            by_index: HashMap::new(),
            finish: None,
            usage: None,
        }
    }

    fn chunk(&self, parts: Vec<Value>, finish: Option<FinishReason>) -> Bytes {
        let mut candidate = Map::new();
        candidate.insert("content".into(), json!({"role": "model", "parts": parts}));
        if let Some(r) = finish {
            candidate.insert("finishReason".into(), json!(finish_to_gemini(r)));
        }
        candidate.insert("index".into(), json!(0));
        let mut o = Map::new();
        o.insert("candidates".into(), json!([candidate]));
        if finish.is_some() {
            if let Some(u) = &self.usage {
                o.insert("usageMetadata".into(), usage_json(u));
            }
        }
        o.insert("modelVersion".into(), json!(self.model));
        o.insert("responseId".into(), json!(self.response_id));
        data_frame(&Value::Object(o))
    }

    /// Completed calls as parts; an error frame instead when arguments are not a JSON object.
    fn take_pending(&mut self) -> Result<Vec<Value>, Bytes> {
        let calls = std::mem::take(&mut self.pending);
        self.by_index.clear();
        function_call_parts(&calls)
            .map_err(|e| data_frame(&render_error(&ErrorInfo::new(502, "server_error", e.to_string()))))
    }

    /// Returns `true` when the stream had to end with an error.
    pub(crate) fn encode(&mut self, ev: StreamEvent, out: &mut Vec<Bytes>) -> bool {
        match ev {
            StreamEvent::Start | StreamEvent::Ping | StreamEvent::ReasoningDelta(_) => {}
            StreamEvent::TextDelta(t) => {
                if !self.pending.is_empty() {
                    match self.take_pending() {
                        Ok(parts) => out.push(self.chunk(parts, None)),
                        Err(frame) => {
                            out.push(frame);
                            return true;
                        }
                    }
                }
                if !t.is_empty() {
                    out.push(self.chunk(vec![json!({"text": t})], None));
                }
            }
            StreamEvent::ToolCallStart { index, id, name } => {
                self.by_index.insert(index, self.pending.len());
                self.pending.push(ToolCall {
                    id,
                    name,
                    arguments: String::new(),
                });
            }
            StreamEvent::ToolCallArgsDelta { index, fragment } => {
                if let Some(&i) = self.by_index.get(&index) {
                    self.pending[i].arguments.push_str(&fragment);
                }
            }
            StreamEvent::Finish { reason } => self.finish = Some(reason),
            StreamEvent::Usage(u) => self.usage = Some(u),
            StreamEvent::Done => {
                let mut parts = match self.take_pending() {
                    Ok(parts) => parts,
                    Err(frame) => {
                        out.push(frame);
                        return true;
                    }
                };
                if parts.is_empty() {
                    parts.push(json!({"text": ""}));
                }
                out.push(self.chunk(parts, Some(self.finish.unwrap_or(FinishReason::Stop))));
            }
            StreamEvent::Error(e) => {
                out.push(data_frame(&render_error(&e)));
                return true;
            }
        }
        false
    }
}
