//! Streams: Anthropic SSE to canonical events (`Decoder`) and canonical events to Anthropic SSE (`Encoder`).

use std::collections::HashMap;

use bytes::Bytes;
use serde_json::{json, Map, Value};

use super::response::{finish_to_stop_reason, message_id, stop_reason_to_finish};
use super::{merge_usage, parse_error, render_error, tool_use_id};
use crate::canonical::{FinishReason, StreamEvent, Usage};
use crate::ResponseContext;

#[derive(Debug, Clone, Copy)]
enum Block {
    Text,
    Thinking,
    Tool { index: usize, got_args: bool },
    Other,
}

#[derive(Debug, Default)]
pub(crate) struct Decoder {
    blocks: HashMap<u64, Block>,
    next_tool: usize,
    usage: Usage,
}

impl Decoder {
    pub(crate) fn event(&mut self, name: Option<&str>, data: &str, out: &mut Vec<StreamEvent>) {
        if data.trim().is_empty() {
            if name == Some("ping") {
                out.push(StreamEvent::Ping);
            }
            return;
        }
        let Ok(Value::Object(ev)) = serde_json::from_str::<Value>(data) else {
            out.push(StreamEvent::Error(crate::openai::malformed_event()));
            return;
        };
        let kind = name
            .filter(|n| !n.is_empty())
            .or_else(|| ev.get("type").and_then(Value::as_str))
            .unwrap_or_default();
        let block_index = ev.get("index").and_then(Value::as_u64).unwrap_or(0);
        match kind {
            "message_start" => {
                if let Some(u) = ev
                    .get("message")
                    .and_then(|m| m.get("usage"))
                    .and_then(Value::as_object)
                {
                    merge_usage(&mut self.usage, u);
                    out.push(StreamEvent::Usage(self.usage));
                }
                out.push(StreamEvent::Start);
            }
            "content_block_start" => {
                let block = self.block_start(ev.get("content_block"), out);
                self.blocks.insert(block_index, block);
            }
            "content_block_delta" => self.block_delta(block_index, ev.get("delta"), out),
            "content_block_stop" => {
                if let Some(Block::Tool {
                    index,
                    got_args: false,
                }) = self.blocks.get(&block_index)
                {
                    // No fragments at all means `{}`.
                    out.push(StreamEvent::ToolCallArgsDelta {
                        index: *index,
                        fragment: "{}".to_owned(),
                    });
                }
                self.blocks.remove(&block_index);
            }
            "message_delta" => {
                if let Some(r) = ev
                    .get("delta")
                    .and_then(|d| d.get("stop_reason"))
                    .and_then(Value::as_str)
                {
                    out.push(StreamEvent::Finish {
                        reason: stop_reason_to_finish(Some(r)),
                    });
                }
                if let Some(u) = ev.get("usage").and_then(Value::as_object) {
                    merge_usage(&mut self.usage, u);
                    out.push(StreamEvent::Usage(self.usage));
                }
            }
            "message_stop" => out.push(StreamEvent::Done),
            "ping" => out.push(StreamEvent::Ping),
            "error" => out.push(StreamEvent::Error(parse_error(500, data.as_bytes()))),
            _ => {}
        }
    }

    /// A new content block: text (its initial text, if any, is a delta), a tool call (a new canonical
    /// tool index), or anything else (thinking, server tools), which is ignored.
    fn block_start(&mut self, cb: Option<&Value>, out: &mut Vec<StreamEvent>) -> Block {
        let field = |k: &str| {
            cb.and_then(|c| c.get(k))
                .and_then(Value::as_str)
                .unwrap_or_default()
        };
        match cb.and_then(|c| c.get("type")).and_then(Value::as_str) {
            Some("text") => {
                let text = field("text");
                if !text.is_empty() {
                    out.push(StreamEvent::TextDelta(text.to_owned()));
                }
                Block::Text
            }
            Some("tool_use") => {
                let index = self.next_tool;
                self.next_tool += 1;
                out.push(StreamEvent::ToolCallStart {
                    index,
                    id: field("id").to_owned(),
                    name: field("name").to_owned(),
                });
                // Streams start tool blocks with `input: {}`; a non-empty input is the whole input.
                let input = cb
                    .and_then(|c| c.get("input"))
                    .and_then(Value::as_object)
                    .filter(|i| !i.is_empty());
                if let Some(i) = input {
                    out.push(StreamEvent::ToolCallArgsDelta {
                        index,
                        fragment: Value::Object(i.clone()).to_string(),
                    });
                }
                Block::Tool {
                    index,
                    got_args: input.is_some(),
                }
            }
            Some("thinking") => {
                let text = field("thinking");
                if !text.is_empty() {
                    out.push(StreamEvent::ReasoningDelta(text.to_owned()));
                }
                Block::Thinking
            }
            _ => Block::Other, // redacted_thinking, server tools
        }
    }

    /// A delta of the block at `block_index`: text, or a fragment of a tool call's arguments.
    fn block_delta(&mut self, block_index: u64, delta: Option<&Value>, out: &mut Vec<StreamEvent>) {
        let text = |k: &str| {
            delta
                .and_then(|d| d.get(k))
                .and_then(Value::as_str)
                .unwrap_or_default()
        };
        match (
            self.blocks.get_mut(&block_index),
            delta.and_then(|d| d.get("type")).and_then(Value::as_str),
        ) {
            (Some(Block::Text), Some("text_delta")) if !text("text").is_empty() => {
                out.push(StreamEvent::TextDelta(text("text").to_owned()));
            }
            (Some(Block::Thinking), Some("thinking_delta")) if !text("thinking").is_empty() => {
                out.push(StreamEvent::ReasoningDelta(text("thinking").to_owned()));
            }
            (Some(Block::Tool { index, got_args }), Some("input_json_delta")) => {
                let fragment = text("partial_json");
                if !fragment.is_empty() {
                    *got_args = true;
                    out.push(StreamEvent::ToolCallArgsDelta {
                        index: *index,
                        fragment: fragment.to_owned(),
                    });
                }
            }
            _ => {} // signature_delta, citations_delta
        }
    }

    /// The upstream closed without `message_stop`.
    pub(crate) fn finish(&mut self, out: &mut Vec<StreamEvent>) {
        out.push(StreamEvent::Error(crate::stream::cut_error()));
    }
}

// Streams: canonical events -> Anthropic SSE

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Open {
    Text(usize),
    Thinking(usize),
    Tool(usize),
}

#[derive(Debug)]
pub(crate) struct Encoder {
    id: String,
    model: String,
    started: bool,
    open: Option<Open>,
    next_block: usize,
    /// Canonical tool index -> content block index.
    tool_blocks: HashMap<usize, usize>,
    finish: Option<FinishReason>,
    usage: Option<Usage>,
}

fn frame(name: &str, v: &Value) -> Bytes {
    let mut buf = Vec::with_capacity(128);
    buf.extend_from_slice(b"event: ");
    buf.extend_from_slice(name.as_bytes());
    buf.extend_from_slice(b"\ndata: ");
    serde_json::to_writer(&mut buf, v).expect("a Value always serialises");
    buf.extend_from_slice(b"\n\n");
    Bytes::from(buf)
}

impl Encoder {
    pub(crate) fn new(ctx: &ResponseContext) -> Encoder {
        Encoder {
            id: message_id(ctx, None),
            model: ctx.model.clone(),
            started: false,
            open: None,
            next_block: 0,
            tool_blocks: HashMap::new(),
            finish: None,
            usage: None,
        }
    }

    fn ensure_started(&mut self, out: &mut Vec<Bytes>) {
        if self.started {
            return;
        }
        self.started = true;
        let u = self.usage.unwrap_or_default();
        out.push(frame(
            "message_start",
            &json!({"type": "message_start", "message": {
                "id": self.id, "type": "message", "role": "assistant", "model": self.model,
                "content": [], "stop_reason": null, "stop_sequence": null,
                "usage": {"input_tokens": u.input, "output_tokens": 0,
                          "cache_creation_input_tokens": u.cache_write, "cache_read_input_tokens": u.cache_read},
            }}),
        ));
    }

    fn close_block(&mut self, out: &mut Vec<Bytes>) {
        if let Some(Open::Text(i) | Open::Thinking(i) | Open::Tool(i)) = self.open.take() {
            out.push(frame(
                "content_block_stop",
                &json!({"type": "content_block_stop", "index": i}),
            ));
        }
    }

    fn open_block(&mut self, block: Value, out: &mut Vec<Bytes>) -> usize {
        self.close_block(out);
        let index = self.next_block;
        self.next_block += 1;
        out.push(frame(
            "content_block_start",
            &json!({"type": "content_block_start", "index": index, "content_block": block}),
        ));
        index
    }

    /// Reasoning from a non-Anthropic upstream as a thinking block (no signature: it is dropped when
    /// the client sends it back).
    fn thinking(&mut self, t: String, out: &mut Vec<Bytes>) {
        self.ensure_started(out);
        if t.is_empty() {
            return;
        }
        let index = match self.open {
            Some(Open::Thinking(i)) => i,
            _ => {
                let block = json!({"type": "thinking", "thinking": "", "signature": ""});
                let i = self.open_block(block, out);
                self.open = Some(Open::Thinking(i));
                i
            }
        };
        out.push(frame(
            "content_block_delta",
            &json!({"type": "content_block_delta", "index": index,
                    "delta": {"type": "thinking_delta", "thinking": t}}),
        ));
    }

    pub(crate) fn encode(&mut self, ev: StreamEvent, out: &mut Vec<Bytes>) {
        match ev {
            StreamEvent::Start => self.ensure_started(out),
            StreamEvent::TextDelta(t) => {
                self.ensure_started(out);
                if t.is_empty() {
                    return;
                }
                let index = match self.open {
                    Some(Open::Text(i)) => i,
                    _ => {
                        let i = self.open_block(json!({"type": "text", "text": ""}), out);
                        self.open = Some(Open::Text(i));
                        i
                    }
                };
                out.push(frame(
                    "content_block_delta",
                    &json!({"type": "content_block_delta", "index": index,
                            "delta": {"type": "text_delta", "text": t}}),
                ));
            }
            StreamEvent::ReasoningDelta(t) => self.thinking(t, out),
            StreamEvent::ToolCallStart { index, id, name } => {
                self.ensure_started(out);
                let block = self.open_block(
                    json!({"type": "tool_use", "id": tool_use_id(&id), "name": name, "input": {}}),
                    out,
                );
                self.open = Some(Open::Tool(block));
                self.tool_blocks.insert(index, block);
            }
            StreamEvent::ToolCallArgsDelta { index, fragment } => {
                self.ensure_started(out);
                if fragment.is_empty() {
                    return;
                }
                // Fragments of a call whose block is already closed (interleaved parallel calls, which no
                // known upstream sends) still go to that call's block: the SDK accumulates by index.
                if let Some(&block) = self.tool_blocks.get(&index) {
                    out.push(frame(
                        "content_block_delta",
                        &json!({"type": "content_block_delta", "index": block,
                                "delta": {"type": "input_json_delta", "partial_json": fragment}}),
                    ));
                }
            }
            StreamEvent::Finish { reason } => self.finish = Some(reason),
            StreamEvent::Usage(u) => self.usage = Some(u),
            StreamEvent::Ping => {
                self.ensure_started(out);
                out.push(frame("ping", &json!({"type": "ping"})));
            }
            StreamEvent::Done => {
                self.ensure_started(out);
                self.close_block(out);
                let reason = self.finish.unwrap_or(FinishReason::Stop);
                let mut usage = Map::new();
                if let Some(u) = &self.usage {
                    usage.insert("input_tokens".into(), json!(u.input));
                    usage.insert("cache_creation_input_tokens".into(), json!(u.cache_write));
                    usage.insert("cache_read_input_tokens".into(), json!(u.cache_read));
                }
                usage.insert("output_tokens".into(), json!(self.usage.map_or(0, |u| u.output)));
                out.push(frame(
                    "message_delta",
                    &json!({"type": "message_delta",
                            "delta": {"stop_reason": finish_to_stop_reason(reason, None), "stop_sequence": null},
                            "usage": usage}),
                ));
                out.push(frame("message_stop", &json!({"type": "message_stop"})));
            }
            StreamEvent::Error(e) => out.push(frame("error", &render_error(&e))),
        }
    }
}
