//! Streams: `chat.completion.chunk` events to canonical events and back.

use std::collections::HashMap;

use bytes::Bytes;
use serde_json::{json, Map, Value};

use super::response::{completion_id, finish_from_str, finish_to_str, usage_json};
use super::{normalize_upstream_error, parse_usage, render_error};
use crate::canonical::{ErrorInfo, FinishReason, StreamEvent, Usage};
use crate::ResponseContext;

/// Reads `chat.completion.chunk` events.
#[derive(Debug, Default)]
pub(crate) struct Decoder {
    started: bool,
    finished: bool,
    /// Upstream tool-call index -> canonical index.
    tools: HashMap<u64, usize>,
}

impl Decoder {
    pub(crate) fn event(&mut self, data: &str, out: &mut Vec<StreamEvent>) {
        let data = data.trim();
        if data.is_empty() {
            return;
        }
        if data.starts_with("[DONE]") {
            out.push(StreamEvent::Done);
            return;
        }
        let Ok(Value::Object(chunk)) = serde_json::from_str::<Value>(data) else {
            out.push(StreamEvent::Error(malformed_event()));
            return;
        };
        if chunk.contains_key("error") {
            let detail = normalize_upstream_error(500, data.as_bytes());
            let status = match (detail.error_type.as_str(), detail.code.as_deref()) {
                ("rate_limit_error", _) | (_, Some("rate_limit_exceeded")) => 429,
                _ => 500,
            };
            out.push(StreamEvent::Error(ErrorInfo { status, detail }));
            return;
        }
        if !self.started {
            self.started = true;
            out.push(StreamEvent::Start);
        }
        let choices = chunk.get("choices").and_then(Value::as_array);
        for choice in choices.into_iter().flatten() {
            if choice.get("index").and_then(Value::as_u64).unwrap_or(0) != 0 {
                continue;
            }
            if let Some(delta) = choice.get("delta").and_then(Value::as_object) {
                if let Some(r) = reasoning_text(delta) {
                    out.push(StreamEvent::ReasoningDelta(r.to_owned()));
                }
                if let Some(text) = delta.get("content").and_then(Value::as_str) {
                    if !text.is_empty() {
                        out.push(StreamEvent::TextDelta(text.to_owned()));
                    }
                }
                let calls = delta.get("tool_calls").and_then(Value::as_array);
                for (pos, call) in calls.into_iter().flatten().enumerate() {
                    self.tool_delta(call, pos, out);
                }
            }
            if let Some(reason) = choice.get("finish_reason").and_then(Value::as_str) {
                self.finished = true;
                out.push(StreamEvent::Finish {
                    reason: finish_from_str(reason),
                });
            }
        }
        if let Some(u) = chunk.get("usage").and_then(Value::as_object) {
            out.push(StreamEvent::Usage(parse_usage(u)));
        }
    }

    fn tool_delta(&mut self, call: &Value, pos: usize, out: &mut Vec<StreamEvent>) {
        let upstream_index = call.get("index").and_then(Value::as_u64).unwrap_or(pos as u64);
        let function = call.get("function");
        let index = match self.tools.get(&upstream_index) {
            Some(&i) => i,
            None => {
                let index = self.tools.len();
                self.tools.insert(upstream_index, index);
                let id = call
                    .get("id")
                    .and_then(Value::as_str)
                    .filter(|s| !s.is_empty())
                    .map_or_else(|| format!("call_{index}"), str::to_owned);
                let name = function
                    .and_then(|f| f.get("name"))
                    .and_then(Value::as_str)
                    .unwrap_or_default()
                    .to_owned();
                out.push(StreamEvent::ToolCallStart { index, id, name });
                index
            }
        };
        if let Some(args) = function.and_then(|f| f.get("arguments")).and_then(Value::as_str) {
            if !args.is_empty() {
                out.push(StreamEvent::ToolCallArgsDelta {
                    index,
                    fragment: args.to_owned(),
                });
            }
        }
    }

    /// The upstream closed: a stream with a `finish_reason` but no `[DONE]` is accepted.
    pub(crate) fn finish(&mut self, out: &mut Vec<StreamEvent>) {
        if self.finished {
            out.push(StreamEvent::Done);
        } else {
            out.push(StreamEvent::Error(crate::stream::cut_error()));
        }
    }
}

/// vLLM's reasoning text: `reasoning_content`, or `reasoning` in newer versions (non-empty only).
pub(crate) fn reasoning_text(o: &Map<String, Value>) -> Option<&str> {
    ["reasoning_content", "reasoning"]
        .iter()
        .find_map(|k| o.get(*k).and_then(Value::as_str))
        .filter(|r| !r.is_empty())
}

pub(crate) fn malformed_event() -> ErrorInfo {
    ErrorInfo::new(
        502,
        "server_error",
        "upstream sent a stream event that is not valid JSON",
    )
}

/// Writes `chat.completion.chunk` frames.
#[derive(Debug)]
pub(crate) struct Encoder {
    id: String,
    created: i64,
    model: String,
    include_usage: bool,
    started: bool,
    finish_sent: bool,
    usage: Option<Usage>,
}

impl Encoder {
    pub(crate) fn new(ctx: &ResponseContext) -> Encoder {
        Encoder {
            id: completion_id(ctx, None),
            created: ctx.created,
            model: ctx.model.clone(),
            include_usage: ctx.include_usage,
            started: false,
            finish_sent: false,
            usage: None,
        }
    }

    fn chunk(&self, choices: Value, usage: Option<Value>) -> Bytes {
        let mut o = Map::new();
        o.insert("id".into(), json!(self.id));
        o.insert("object".into(), json!("chat.completion.chunk"));
        o.insert("created".into(), json!(self.created));
        o.insert("model".into(), json!(self.model));
        o.insert("choices".into(), choices);
        if self.include_usage {
            o.insert("usage".into(), usage.unwrap_or(Value::Null));
        }
        data_frame(&Value::Object(o))
    }

    fn delta(&self, delta: Value, finish: Option<FinishReason>) -> Bytes {
        self.chunk(
            json!([{
                "index": 0,
                "delta": delta,
                "logprobs": null,
                "finish_reason": finish.map(finish_to_str),
            }]),
            None,
        )
    }

    fn ensure_started(&mut self, out: &mut Vec<Bytes>) {
        if !self.started {
            self.started = true;
            out.push(self.delta(json!({"role": "assistant", "content": ""}), None));
        }
    }

    pub(crate) fn encode(&mut self, ev: StreamEvent, out: &mut Vec<Bytes>) {
        match ev {
            StreamEvent::Start => self.ensure_started(out),
            StreamEvent::TextDelta(t) => {
                self.ensure_started(out);
                if !t.is_empty() {
                    out.push(self.delta(json!({"content": t}), None));
                }
            }
            StreamEvent::ToolCallStart { index, id, name } => {
                self.ensure_started(out);
                out.push(self.delta(
                    json!({"tool_calls": [{
                        "index": index,
                        "id": id,
                        "type": "function",
                        "function": {"name": name, "arguments": ""},
                    }]}),
                    None,
                ));
            }
            StreamEvent::ToolCallArgsDelta { index, fragment } => {
                self.ensure_started(out);
                if !fragment.is_empty() {
                    out.push(self.delta(
                        json!({"tool_calls": [{"index": index, "function": {"arguments": fragment}}]}),
                        None,
                    ));
                }
            }
            StreamEvent::Finish { reason } => {
                self.ensure_started(out);
                if !self.finish_sent {
                    self.finish_sent = true;
                    out.push(self.delta(json!({}), Some(reason)));
                }
            }
            StreamEvent::Usage(u) => self.usage = Some(u),
            StreamEvent::Ping => out.push(Bytes::from_static(b": ping\n\n")),
            // Reasoning is not answer text; OpenAI clients do not get it.
            StreamEvent::ReasoningDelta(_) => {}
            StreamEvent::Done => {
                self.ensure_started(out);
                if !self.finish_sent {
                    self.finish_sent = true;
                    out.push(self.delta(json!({}), Some(FinishReason::Stop)));
                }
                if self.include_usage {
                    if let Some(u) = &self.usage {
                        out.push(self.chunk(json!([]), Some(usage_json(u))));
                    }
                }
                out.push(Bytes::from_static(b"data: [DONE]\n\n"));
            }
            StreamEvent::Error(e) => out.push(data_frame(&render_error(&e))),
        }
    }
}

pub(crate) fn data_frame(v: &Value) -> Bytes {
    let mut buf = Vec::with_capacity(128);
    buf.extend_from_slice(b"data: ");
    serde_json::to_writer(&mut buf, v).expect("a Value always serialises");
    buf.extend_from_slice(b"\n\n");
    Bytes::from(buf)
}
