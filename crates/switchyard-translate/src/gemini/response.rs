//! Responses: Gemini `generateContent` answers to canonical and back, with usage and finish reasons.

use serde_json::{json, Map, Value};

use super::synthetic_id;
use crate::canonical::{ChatResponse, FinishReason, ToolCall, Usage};
use crate::json::{answer_arguments, count, parse_object, Obj};
use crate::{ResponseContext, TranslateError};

/// Canonical reason for a Gemini `finishReason`. `functionCall` parts turn `STOP` into `ToolCalls`
/// (done by the callers); `MALFORMED_FUNCTION_CALL`, `OTHER`, `LANGUAGE` and unknown values read as `stop`.
pub(crate) fn finish_from_gemini(r: &str) -> FinishReason {
    match r {
        "MAX_TOKENS" => FinishReason::Length,
        "SAFETY"
        | "RECITATION"
        | "BLOCKLIST"
        | "PROHIBITED_CONTENT"
        | "SPII"
        | "IMAGE_SAFETY"
        | "IMAGE_PROHIBITED_CONTENT"
        | "IMAGE_RECITATION" => FinishReason::ContentFilter,
        _ => FinishReason::Stop,
    }
}

pub(crate) fn finish_to_gemini(r: FinishReason) -> &'static str {
    match r {
        FinishReason::Stop | FinishReason::ToolCalls => "STOP",
        FinishReason::Length => "MAX_TOKENS",
        FinishReason::ContentFilter => "SAFETY",
    }
}

pub(crate) fn parse_usage(u: &Obj) -> Usage {
    let thoughts = count(u.get("thoughtsTokenCount"));
    Usage::from_cached_prompt(
        count(u.get("promptTokenCount")),
        count(u.get("cachedContentTokenCount")),
        count(u.get("candidatesTokenCount")) + thoughts,
        thoughts,
    )
}

pub(super) fn usage_json(u: &Usage) -> Value {
    let mut o = Map::new();
    o.insert("promptTokenCount".into(), json!(u.prompt_total()));
    o.insert(
        "candidatesTokenCount".into(),
        json!(u.output.saturating_sub(u.reasoning)),
    );
    o.insert("totalTokenCount".into(), json!(u.prompt_total() + u.output));
    if u.reasoning > 0 {
        o.insert("thoughtsTokenCount".into(), json!(u.reasoning));
    }
    if u.cache_read > 0 {
        o.insert("cachedContentTokenCount".into(), json!(u.cache_read));
    }
    Value::Object(o)
}

pub(crate) fn parse_response(body: &[u8]) -> Result<ChatResponse, TranslateError> {
    let o = parse_object(body).map_err(TranslateError::into_upstream)?;
    let mut resp = ChatResponse {
        reasoning: String::new(),
        id: o.get("responseId").and_then(Value::as_str).map(str::to_owned),
        model: o.get("modelVersion").and_then(Value::as_str).map(str::to_owned),
        content: String::new(),
        tool_calls: Vec::new(),
        finish_reason: FinishReason::Stop,
        stop_sequence: None,
        usage: o.get("usageMetadata").and_then(Value::as_object).map(parse_usage),
    };
    let candidate = o
        .get("candidates")
        .and_then(Value::as_array)
        .and_then(|c| c.first());
    let Some(candidate) = candidate else {
        if o.get("promptFeedback")
            .and_then(|f| f.get("blockReason"))
            .is_some()
        {
            resp.finish_reason = FinishReason::ContentFilter;
            return Ok(resp);
        }
        return Err(TranslateError::upstream("candidates", "is missing or empty"));
    };
    let parts = candidate
        .get("content")
        .and_then(|c| c.get("parts"))
        .and_then(Value::as_array);
    for (j, part) in parts.into_iter().flatten().enumerate() {
        if let Some(t) = part.get("text").and_then(Value::as_str) {
            if part.get("thought").and_then(Value::as_bool) != Some(true) {
                resp.content.push_str(t);
            }
        } else if let Some(fc) = part.get("functionCall") {
            let index = resp.tool_calls.len();
            resp.tool_calls.push(ToolCall {
                id: fc
                    .get("id")
                    .and_then(Value::as_str)
                    .filter(|s| !s.is_empty())
                    .map_or_else(|| synthetic_id(index), str::to_owned),
                name: fc
                    .get("name")
                    .and_then(Value::as_str)
                    .ok_or_else(|| {
                        TranslateError::upstream(
                            format!("candidates[0].content.parts[{j}].functionCall.name"),
                            "is missing",
                        )
                    })?
                    .to_owned(),
                arguments: fc
                    .get("args")
                    .filter(|a| !a.is_null())
                    .map_or_else(|| "{}".to_owned(), Value::to_string),
            });
        }
    }
    resp.finish_reason = match candidate.get("finishReason").and_then(Value::as_str) {
        Some(r) => finish_from_gemini(r),
        None => FinishReason::Stop,
    };
    if resp.finish_reason == FinishReason::Stop && !resp.tool_calls.is_empty() {
        resp.finish_reason = FinishReason::ToolCalls;
    }
    Ok(resp)
}

pub(super) fn response_id(ctx: &ResponseContext, upstream: Option<&str>) -> String {
    if !ctx.id_hint.is_empty() {
        ctx.id_hint.clone()
    } else {
        upstream.map_or_else(|| ctx.created.to_string(), str::to_owned)
    }
}

pub(super) fn function_call_parts(calls: &[ToolCall]) -> Result<Vec<Value>, TranslateError> {
    calls
        .iter()
        .enumerate()
        .map(|(j, c)| {
            let args = answer_arguments(j, &c.arguments)?;
            Ok(json!({"functionCall": {"name": c.name, "args": args}}))
        })
        .collect()
}

pub(crate) fn render_response(resp: &ChatResponse, ctx: &ResponseContext) -> Result<Value, TranslateError> {
    let mut parts = Vec::new();
    if !resp.content.is_empty() {
        parts.push(json!({"text": resp.content}));
    }
    parts.extend(function_call_parts(&resp.tool_calls)?);
    if parts.is_empty() {
        parts.push(json!({"text": ""}));
    }
    let mut o = Map::new();
    o.insert(
        "candidates".into(),
        json!([{
            "content": {"role": "model", "parts": parts},
            "finishReason": finish_to_gemini(resp.finish_reason),
            "index": 0,
        }]),
    );
    if let Some(u) = &resp.usage {
        o.insert("usageMetadata".into(), usage_json(u));
    }
    o.insert("modelVersion".into(), json!(ctx.model));
    o.insert("responseId".into(), json!(response_id(ctx, resp.id.as_deref())));
    Ok(Value::Object(o))
}
