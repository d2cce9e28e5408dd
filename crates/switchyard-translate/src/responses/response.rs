//! Answers: canonical to a Responses API `response` object (JSON answers, and the `response` inside
//! the stream's `response.created` / `response.completed` events).

use serde_json::{json, Value};

use crate::canonical::{ChatResponse, FinishReason, ToolCall, Usage};
use crate::ResponseContext;

/// The ids of one answer's `response` and its output items, all from one base.
#[derive(Clone, Debug)]
pub(crate) struct Ids {
    base: String,
}

impl Ids {
    pub(crate) fn new(ctx: &ResponseContext, upstream: Option<&str>) -> Ids {
        let id = ctx.prefixed_id("resp_", upstream);
        Ids {
            base: id.trim_start_matches("resp_").to_owned(),
        }
    }

    pub(crate) fn response(&self) -> String {
        format!("resp_{}", self.base)
    }

    pub(crate) fn item(&self, prefix: &str, n: usize) -> String {
        format!("{prefix}_{}_{n}", self.base)
    }
}

/// The Responses usage object (`input_tokens` includes cached tokens).
pub(crate) fn usage_json(u: &Usage) -> Value {
    json!({
        "input_tokens": u.prompt_total(),
        "input_tokens_details": {"cached_tokens": u.cache_read, "cache_write_tokens": u.cache_write},
        "output_tokens": u.output,
        "output_tokens_details": {"reasoning_tokens": u.reasoning},
        "total_tokens": u.prompt_total() + u.output,
    })
}

/// A `response` object: `status` is `in_progress`, `completed`, `incomplete` or `failed`.
pub(crate) fn response_object(
    ids: &Ids,
    ctx: &ResponseContext,
    status: &str,
    output: Vec<Value>,
    usage: Option<&Usage>,
    finish: Option<FinishReason>,
) -> Value {
    let incomplete = match finish {
        Some(FinishReason::Length) => json!({"reason": "max_output_tokens"}),
        Some(FinishReason::ContentFilter) => json!({"reason": "content_filter"}),
        _ => Value::Null,
    };
    json!({
        "id": ids.response(),
        "object": "response",
        "created_at": ctx.created,
        "status": status,
        "background": false,
        "error": null,
        "incomplete_details": incomplete,
        "instructions": null,
        "max_output_tokens": null,
        "metadata": {},
        "model": ctx.model,
        "output": output,
        "parallel_tool_calls": true,
        "temperature": null,
        "text": {"format": {"type": "text"}},
        "tool_choice": "auto",
        "tools": [],
        "top_p": null,
        "truncation": "disabled",
        "usage": usage.map(usage_json),
    })
}

/// The status a finished answer reports.
pub(crate) fn final_status(finish: FinishReason) -> &'static str {
    match finish {
        FinishReason::Length | FinishReason::ContentFilter => "incomplete",
        FinishReason::Stop | FinishReason::ToolCalls => "completed",
    }
}

pub(crate) fn reasoning_item(id: String, text: &str) -> Value {
    json!({"type": "reasoning", "id": id, "summary": [],
           "content": [{"type": "reasoning_text", "text": text}]})
}

pub(crate) fn message_item(id: String, text: &str, status: &str) -> Value {
    json!({"type": "message", "id": id, "status": status, "role": "assistant",
           "content": [output_text(text)]})
}

pub(crate) fn output_text(text: &str) -> Value {
    json!({"type": "output_text", "text": text, "annotations": [], "logprobs": []})
}

pub(crate) fn function_call_item(id: String, call: &ToolCall, status: &str) -> Value {
    json!({"type": "function_call", "id": id, "call_id": call.id, "name": call.name,
           "arguments": call.arguments, "status": status})
}

/// A whole answer as a Responses API `response`.
pub(crate) fn render_response(resp: &ChatResponse, ctx: &ResponseContext) -> Value {
    let ids = Ids::new(ctx, resp.id.as_deref());
    let mut output = Vec::new();
    if !resp.reasoning.is_empty() {
        output.push(reasoning_item(ids.item("rs", 0), &resp.reasoning));
    }
    if !resp.content.is_empty() || resp.tool_calls.is_empty() {
        output.push(message_item(ids.item("msg", 0), &resp.content, "completed"));
    }
    for (j, c) in resp.tool_calls.iter().enumerate() {
        output.push(function_call_item(ids.item("fc", j), c, "completed"));
    }
    response_object(
        &ids,
        ctx,
        final_status(resp.finish_reason),
        output,
        resp.usage.as_ref(),
        Some(resp.finish_reason),
    )
}
