//! Responses: Anthropic `message` answers to canonical and back, with usage and stop reasons.

use serde_json::{json, Value};

use super::tool_use_id;
use crate::canonical::{ChatResponse, FinishReason, ToolCall, Usage};
use crate::json::{answer_arguments, count, parse_object, req_array, Obj};
use crate::{ResponseContext, TranslateError};

pub(crate) fn parse_response(body: &[u8]) -> Result<ChatResponse, TranslateError> {
    let o = parse_object(body).map_err(TranslateError::into_upstream)?;
    let content = req_array(o.get("content"), "content").map_err(TranslateError::into_upstream)?;
    let mut text = String::new();
    let mut reasoning = String::new();
    let mut tool_calls = Vec::new();
    for (i, b) in content.iter().enumerate() {
        match b.get("type").and_then(Value::as_str) {
            Some("text") => text.push_str(b.get("text").and_then(Value::as_str).unwrap_or_default()),
            Some("thinking") => {
                reasoning.push_str(b.get("thinking").and_then(Value::as_str).unwrap_or_default());
            }
            Some("tool_use") => tool_calls.push(ToolCall {
                id: b.get("id").and_then(Value::as_str).unwrap_or_default().to_owned(),
                name: b
                    .get("name")
                    .and_then(Value::as_str)
                    .ok_or_else(|| TranslateError::upstream(format!("content[{i}].name"), "is missing"))?
                    .to_owned(),
                arguments: b
                    .get("input")
                    .filter(|v| !v.is_null())
                    .map_or_else(|| "{}".to_owned(), Value::to_string),
            }),
            _ => {} // thinking, server tool blocks: not expressible in a chat completion
        }
    }
    Ok(ChatResponse {
        id: o.get("id").and_then(Value::as_str).map(str::to_owned),
        model: o.get("model").and_then(Value::as_str).map(str::to_owned),
        content: text,
        reasoning,
        tool_calls,
        finish_reason: stop_reason_to_finish(o.get("stop_reason").and_then(Value::as_str)),
        stop_sequence: o.get("stop_sequence").and_then(Value::as_str).map(str::to_owned),
        usage: o.get("usage").and_then(Value::as_object).map(|u| {
            let mut usage = Usage::default();
            merge_usage(&mut usage, u);
            usage
        }),
    })
}

/// Copies the counts present in an Anthropic `usage` object into `usage`.
pub(crate) fn merge_usage(usage: &mut Usage, u: &Obj) {
    if u.get("input_tokens").is_some_and(|v| !v.is_null()) {
        usage.input = count(u.get("input_tokens"));
    }
    if u.get("output_tokens").is_some_and(|v| !v.is_null()) {
        usage.output = count(u.get("output_tokens"));
    }
    if u.get("cache_read_input_tokens").is_some_and(|v| !v.is_null()) {
        usage.cache_read = count(u.get("cache_read_input_tokens"));
    }
    if u.get("cache_creation_input_tokens").is_some_and(|v| !v.is_null()) {
        usage.cache_write = count(u.get("cache_creation_input_tokens"));
    }
}

/// Canonical reason for an Anthropic `stop_reason` (`null` and unknown values read as `stop`).
pub(crate) fn stop_reason_to_finish(r: Option<&str>) -> FinishReason {
    match r {
        Some("max_tokens" | "model_context_window_exceeded") => FinishReason::Length,
        Some("tool_use") => FinishReason::ToolCalls,
        Some("refusal") => FinishReason::ContentFilter,
        // end_turn, stop_sequence, pause_turn, null, unknown
        _ => FinishReason::Stop,
    }
}

/// Anthropic `stop_reason` for a canonical reason; `stop_sequence` when the matched string is known.
pub(crate) fn finish_to_stop_reason(r: FinishReason, stop_sequence: Option<&str>) -> &'static str {
    match r {
        FinishReason::Stop if stop_sequence.is_some() => "stop_sequence",
        FinishReason::Stop => "end_turn",
        FinishReason::Length => "max_tokens",
        FinishReason::ToolCalls => "tool_use",
        FinishReason::ContentFilter => "refusal",
    }
}

pub(super) fn message_id(ctx: &ResponseContext, upstream: Option<&str>) -> String {
    ctx.prefixed_id("msg_", upstream)
}

fn usage_json(u: &Usage) -> Value {
    json!({
        "input_tokens": u.input,
        "output_tokens": u.output,
        "cache_creation_input_tokens": u.cache_write,
        "cache_read_input_tokens": u.cache_read,
    })
}

pub(crate) fn render_response(resp: &ChatResponse, ctx: &ResponseContext) -> Result<Value, TranslateError> {
    let mut content = Vec::new();
    if !resp.reasoning.is_empty() {
        // No signature: the reasoning did not come from Anthropic, and is dropped when sent back.
        content.push(json!({"type": "thinking", "thinking": resp.reasoning, "signature": ""}));
    }
    if !resp.content.is_empty() {
        content.push(json!({"type": "text", "text": resp.content}));
    }
    for (j, c) in resp.tool_calls.iter().enumerate() {
        let input = answer_arguments(j, &c.arguments)?;
        content.push(json!({"type": "tool_use", "id": tool_use_id(&c.id), "name": c.name, "input": input}));
    }
    Ok(json!({
        "id": message_id(ctx, resp.id.as_deref()),
        "type": "message",
        "role": "assistant",
        "model": ctx.model,
        "content": content,
        "stop_reason": finish_to_stop_reason(resp.finish_reason, resp.stop_sequence.as_deref()),
        "stop_sequence": resp.stop_sequence.as_deref().filter(|_| resp.finish_reason == FinishReason::Stop),
        "usage": usage_json(&resp.usage.unwrap_or_default()),
    }))
}
