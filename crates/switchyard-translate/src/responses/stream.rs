//! Streams: canonical events to Responses API SSE events (`response.created`, `response.in_progress`,
//! per output item `response.output_item.added` / deltas / `...done` / `response.output_item.done`,
//! then `response.completed`, `response.incomplete` or `response.failed`). Every frame has its
//! `event:` line and a `sequence_number`.

use std::collections::HashMap;

use bytes::Bytes;
use serde_json::{json, Value};

use super::response::{
    final_status, function_call_item, message_item, output_text, reasoning_item, response_object, Ids,
};
use crate::canonical::{ErrorInfo, FinishReason, StreamEvent, ToolCall, Usage};
use crate::ResponseContext;

#[derive(Debug)]
enum Open {
    Reasoning {
        index: usize,
        id: String,
        text: String,
    },
    Message {
        index: usize,
        id: String,
        text: String,
    },
    Call {
        index: usize,
        id: String,
        call: ToolCall,
    },
}

#[derive(Debug)]
pub(crate) struct Encoder {
    ids: Ids,
    ctx: ResponseContext,
    seq: u64,
    started: bool,
    /// Finished output items, in order.
    output: Vec<Value>,
    open: Option<Open>,
    /// Canonical tool index -> (output index, item id) of its call.
    calls: HashMap<usize, (usize, String)>,
    finish: Option<FinishReason>,
    usage: Option<Usage>,
}

impl Encoder {
    pub(crate) fn new(ctx: &ResponseContext) -> Encoder {
        Encoder {
            ids: Ids::new(ctx, None),
            ctx: ctx.clone(),
            seq: 0,
            started: false,
            output: Vec::new(),
            open: None,
            calls: HashMap::new(),
            finish: None,
            usage: None,
        }
    }

    fn emit(&mut self, out: &mut Vec<Bytes>, kind: &str, mut data: Value) {
        data["type"] = json!(kind);
        data["sequence_number"] = json!(self.seq);
        self.seq += 1;
        let mut buf = Vec::with_capacity(160);
        buf.extend_from_slice(b"event: ");
        buf.extend_from_slice(kind.as_bytes());
        buf.extend_from_slice(b"\ndata: ");
        serde_json::to_writer(&mut buf, &data).expect("a Value always serialises");
        buf.extend_from_slice(b"\n\n");
        out.push(Bytes::from(buf));
    }

    fn response(&self, status: &str) -> Value {
        let usage = if status == "in_progress" {
            None
        } else {
            self.usage.as_ref()
        };
        response_object(
            &self.ids,
            &self.ctx,
            status,
            self.output.clone(),
            usage,
            self.finish,
        )
    }

    fn ensure_started(&mut self, out: &mut Vec<Bytes>) {
        if !self.started {
            self.started = true;
            let r = self.response("in_progress");
            self.emit(out, "response.created", json!({"response": r}));
            self.emit(out, "response.in_progress", json!({"response": r}));
        }
    }

    /// The output index the next item gets.
    fn next_index(&self) -> usize {
        self.output.len()
    }

    fn close(&mut self, out: &mut Vec<Bytes>) {
        let Some(open) = self.open.take() else { return };
        let (index, item) = match open {
            Open::Reasoning { index, id, text } => {
                let d = json!({"item_id": id, "output_index": index, "content_index": 0, "text": text});
                self.emit(out, "response.reasoning_text.done", d);
                (index, reasoning_item(id, &text))
            }
            Open::Message { index, id, text } => {
                let d = json!({"item_id": id, "output_index": index, "content_index": 0, "text": text,
                               "logprobs": []});
                self.emit(out, "response.output_text.done", d);
                let d = json!({"item_id": id, "output_index": index, "content_index": 0,
                               "part": output_text(&text)});
                self.emit(out, "response.content_part.done", d);
                (index, message_item(id, &text, "completed"))
            }
            Open::Call { index, id, call } => {
                let d = json!({"item_id": id, "output_index": index, "name": call.name,
                               "arguments": call.arguments});
                self.emit(out, "response.function_call_arguments.done", d);
                (index, function_call_item(id, &call, "completed"))
            }
        };
        self.emit(
            out,
            "response.output_item.done",
            json!({"output_index": index, "item": item}),
        );
        self.output.push(item);
    }

    fn reasoning(&mut self, t: String, out: &mut Vec<Bytes>) {
        if !matches!(self.open, Some(Open::Reasoning { .. })) {
            self.close(out);
            let index = self.next_index();
            let id = self.ids.item("rs", index);
            let item = json!({"type": "reasoning", "id": id, "summary": []});
            self.emit(
                out,
                "response.output_item.added",
                json!({"output_index": index, "item": item}),
            );
            self.open = Some(Open::Reasoning {
                index,
                id,
                text: String::new(),
            });
        }
        if let Some(Open::Reasoning { index, id, text }) = &mut self.open {
            text.push_str(&t);
            let d = json!({"item_id": id, "output_index": *index, "content_index": 0, "delta": t});
            self.emit(out, "response.reasoning_text.delta", d);
        }
    }

    fn text(&mut self, t: String, out: &mut Vec<Bytes>) {
        if !matches!(self.open, Some(Open::Message { .. })) {
            self.close(out);
            let index = self.next_index();
            let id = self.ids.item("msg", index);
            let item = json!({"type": "message", "id": id, "status": "in_progress", "role": "assistant",
                              "content": []});
            self.emit(
                out,
                "response.output_item.added",
                json!({"output_index": index, "item": item}),
            );
            let part = json!({"item_id": id, "output_index": index, "content_index": 0,
                              "part": output_text("")});
            self.emit(out, "response.content_part.added", part);
            self.open = Some(Open::Message {
                index,
                id,
                text: String::new(),
            });
        }
        if let Some(Open::Message { index, id, text }) = &mut self.open {
            text.push_str(&t);
            let d = json!({"item_id": id, "output_index": *index, "content_index": 0, "delta": t,
                           "logprobs": []});
            self.emit(out, "response.output_text.delta", d);
        }
    }

    fn call_start(&mut self, tool: usize, call: ToolCall, out: &mut Vec<Bytes>) {
        self.close(out);
        let index = self.next_index();
        let id = self.ids.item("fc", index);
        let item = function_call_item(id.clone(), &call, "in_progress");
        self.emit(
            out,
            "response.output_item.added",
            json!({"output_index": index, "item": item}),
        );
        self.calls.insert(tool, (index, id.clone()));
        self.open = Some(Open::Call { index, id, call });
    }

    fn call_args(&mut self, tool: usize, fragment: String, out: &mut Vec<Bytes>) {
        let Some((index, id)) = self.calls.get(&tool).cloned() else {
            return;
        };
        match &mut self.open {
            Some(Open::Call {
                index: open, call, ..
            }) if *open == index => call.arguments.push_str(&fragment),
            // A call whose item is already done (interleaved calls): its item still gets the text.
            _ => {
                if let Some(Value::String(args)) =
                    self.output.get_mut(index).and_then(|i| i.get_mut("arguments"))
                {
                    args.push_str(&fragment);
                }
            }
        }
        let d = json!({"item_id": id, "output_index": index, "delta": fragment});
        self.emit(out, "response.function_call_arguments.delta", d);
    }

    fn fail(&mut self, e: &ErrorInfo, out: &mut Vec<Bytes>) {
        self.ensure_started(out);
        let mut r = self.response("failed");
        let code = e
            .detail
            .code
            .clone()
            .unwrap_or_else(|| e.detail.error_type.clone());
        r["error"] = json!({"code": code, "message": e.detail.message});
        self.emit(out, "response.failed", json!({"response": r}));
    }

    pub(crate) fn encode(&mut self, ev: StreamEvent, out: &mut Vec<Bytes>) {
        match ev {
            StreamEvent::Start => self.ensure_started(out),
            StreamEvent::ReasoningDelta(t) | StreamEvent::TextDelta(t) if t.is_empty() => {
                self.ensure_started(out)
            }
            StreamEvent::ReasoningDelta(t) => {
                self.ensure_started(out);
                self.reasoning(t, out);
            }
            StreamEvent::TextDelta(t) => {
                self.ensure_started(out);
                self.text(t, out);
            }
            StreamEvent::ToolCallStart { index, id, name } => {
                self.ensure_started(out);
                let call = ToolCall {
                    id,
                    name,
                    arguments: String::new(),
                };
                self.call_start(index, call, out);
            }
            StreamEvent::ToolCallArgsDelta { index, fragment } => {
                self.ensure_started(out);
                if !fragment.is_empty() {
                    self.call_args(index, fragment, out);
                }
            }
            StreamEvent::Finish { reason } => self.finish = Some(reason),
            StreamEvent::Usage(u) => self.usage = Some(u),
            StreamEvent::Ping => {}
            StreamEvent::Done => {
                self.ensure_started(out);
                self.close(out);
                let finish = *self.finish.get_or_insert(FinishReason::Stop);
                let status = final_status(finish);
                let kind = if status == "completed" {
                    "response.completed"
                } else {
                    "response.incomplete"
                };
                let r = self.response(status);
                self.emit(out, kind, json!({"response": r}));
            }
            StreamEvent::Error(e) => self.fail(&e, out),
        }
    }
}
