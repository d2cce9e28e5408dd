//! Responses: OpenAI `chat.completion` answers to canonical and back, with usage and finish reasons.

use serde_json::{json, Map, Value};

use super::request::{assistant_parts, tool_call_json};
use crate::canonical::{ChatResponse, FinishReason, Part, ToolCall, Usage};
use crate::json::{
    count, join, lenient, object, opt_array, opt_object, opt_str, parse_object, req_array, req_str, Count,
    Lenient, Obj,
};
use crate::{ResponseContext, TranslateError};

pub(crate) fn parse_response(body: &[u8]) -> Result<ChatResponse, TranslateError> {
    parse_response_inner(body).map_err(TranslateError::into_upstream)
}

fn parse_response_inner(body: &[u8]) -> Result<ChatResponse, TranslateError> {
    let o = parse_object(body)?;
    let choices = req_array(o.get("choices"), "choices")?;
    let choice = choices
        .first()
        .ok_or_else(|| TranslateError::invalid("choices", "is empty"))?;
    let co = object(choice, "choices[0]")?;
    let mo =
        opt_object(co.get("message"), "choices[0].message")?.ok_or_else(|| TranslateError::MissingField {
            param: "choices[0].message".into(),
        })?;
    let content = match mo.get("content") {
        Some(Value::Array(_)) => assistant_parts(mo.get("content"), "choices[0].message.content")?
            .into_iter()
            .filter_map(|p| match p {
                Part::Text(t) => Some(t),
                _ => None,
            })
            .collect(),
        other => opt_str(other, "choices[0].message.content")?
            .unwrap_or("")
            .to_owned(),
    };
    let mut tool_calls = Vec::new();
    if let Some(calls) = opt_array(mo.get("tool_calls"), "choices[0].message.tool_calls")? {
        for (j, c) in calls.iter().enumerate() {
            let cp = format!("choices[0].message.tool_calls[{j}]");
            let co = object(c, &cp)?;
            let fo = opt_object(co.get("function"), &join(&cp, "function"))?.ok_or_else(|| {
                TranslateError::MissingField {
                    param: join(&cp, "function"),
                }
            })?;
            tool_calls.push(ToolCall {
                id: opt_str(co.get("id"), &join(&cp, "id"))?
                    .map(str::to_owned)
                    .unwrap_or_else(|| format!("call_{j}")),
                name: req_str(fo.get("name"), &join(&cp, "function.name"))?.to_owned(),
                arguments: match fo.get("arguments") {
                    Some(Value::String(s)) => s.clone(),
                    None | Some(Value::Null) => String::new(),
                    Some(v) => v.to_string(),
                },
            });
        }
    }
    let finish_reason = match opt_str(co.get("finish_reason"), "choices[0].finish_reason")? {
        Some(r) => finish_from_str(r),
        None if !tool_calls.is_empty() => FinishReason::ToolCalls,
        None => FinishReason::Stop,
    };
    Ok(ChatResponse {
        id: o.get("id").and_then(Value::as_str).map(str::to_owned),
        model: o.get("model").and_then(Value::as_str).map(str::to_owned),
        content,
        reasoning: super::stream::reasoning_text(mo).unwrap_or_default().to_owned(),
        tool_calls,
        finish_reason,
        // vLLM names the stop string that matched in a non-standard `stop_reason`.
        stop_sequence: co.get("stop_reason").and_then(Value::as_str).map(str::to_owned),
        usage: o.get("usage").and_then(Value::as_object).map(parse_usage),
    })
}

pub(crate) fn parse_usage(u: &Obj) -> Usage {
    let detail = |object: &str, field: &str| count(u.get(object).and_then(|d| d.get(field)));
    Usage::from_cached_prompt(
        count(u.get("prompt_tokens")),
        detail("prompt_tokens_details", "cached_tokens"),
        count(u.get("completion_tokens")),
        detail("completion_tokens_details", "reasoning_tokens"),
    )
}

/// OpenAI's usage object as its fields, read without building a map (answers and usage chunks are
/// metered on every request). Counts read as [`count`] reads them.
#[derive(serde::Deserialize)]
struct UsageFields {
    #[serde(default)]
    prompt_tokens: Count,
    #[serde(default)]
    completion_tokens: Count,
    #[serde(default)]
    prompt_tokens_details: Detail,
    #[serde(default)]
    completion_tokens_details: Detail,
}

/// A `*_tokens_details` object's counts, read as [`parse_usage`] reads them: the last of a field named
/// twice wins, and a value that is not an object holds none.
#[derive(Default)]
struct Detail {
    cached_tokens: u64,
    reasoning_tokens: u64,
}

impl Lenient for Detail {
    fn from_map<'de, A: serde::de::MapAccess<'de>>(mut map: A) -> Result<Detail, A::Error> {
        let mut detail = Detail::default();
        while let Some(key) = map.next_key::<std::borrow::Cow<'de, str>>()? {
            match key.as_ref() {
                "cached_tokens" => detail.cached_tokens = map.next_value::<Count>()?.0,
                "reasoning_tokens" => detail.reasoning_tokens = map.next_value::<Count>()?.0,
                _ => {
                    map.next_value::<serde::de::IgnoredAny>()?;
                }
            }
        }
        Ok(detail)
    }
}

impl<'de> serde::Deserialize<'de> for Detail {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Detail, D::Error> {
        lenient(d)
    }
}

/// [`parse_usage`] of a usage object's JSON text (`None` when it is not an object), read field by
/// field; an object naming a top-level field twice goes through the map reader (the last one wins
/// there), so both always agree.
pub(crate) fn parse_usage_json(raw: &[u8]) -> Option<Usage> {
    if raw.trim_ascii_start().first() != Some(&b'{') {
        return None;
    }
    match serde_json::from_slice::<UsageFields>(raw) {
        Ok(u) => Some(Usage::from_cached_prompt(
            u.prompt_tokens.0,
            u.prompt_tokens_details.cached_tokens,
            u.completion_tokens.0,
            u.completion_tokens_details.reasoning_tokens,
        )),
        Err(_) => serde_json::from_slice::<Obj>(raw).ok().map(|u| parse_usage(&u)),
    }
}

pub(crate) fn usage_json(u: &Usage) -> Value {
    json!({
        "prompt_tokens": u.prompt_total(),
        "completion_tokens": u.output,
        "total_tokens": u.prompt_total() + u.output,
        "prompt_tokens_details": {"cached_tokens": u.cache_read},
        "completion_tokens_details": {"reasoning_tokens": u.reasoning},
    })
}

/// OpenAI `finish_reason` for a canonical reason.
pub(crate) fn finish_to_str(r: FinishReason) -> &'static str {
    match r {
        FinishReason::Stop => "stop",
        FinishReason::Length => "length",
        FinishReason::ToolCalls => "tool_calls",
        FinishReason::ContentFilter => "content_filter",
    }
}

/// Canonical reason for an OpenAI `finish_reason` (unknown values read as `stop`).
pub(crate) fn finish_from_str(r: &str) -> FinishReason {
    match r {
        "length" => FinishReason::Length,
        "tool_calls" | "function_call" => FinishReason::ToolCalls,
        "content_filter" => FinishReason::ContentFilter,
        _ => FinishReason::Stop,
    }
}

/// The `chatcmpl-…` id to report.
pub(super) fn completion_id(ctx: &ResponseContext, upstream: Option<&str>) -> String {
    ctx.prefixed_id("chatcmpl-", upstream)
}

pub(crate) fn render_response(resp: &ChatResponse, ctx: &ResponseContext) -> Value {
    let mut message = Map::new();
    message.insert("role".into(), json!("assistant"));
    message.insert(
        "content".into(),
        if resp.content.is_empty() && !resp.tool_calls.is_empty() {
            Value::Null
        } else {
            json!(resp.content)
        },
    );
    message.insert("refusal".into(), Value::Null);
    if !resp.tool_calls.is_empty() {
        message.insert(
            "tool_calls".into(),
            Value::Array(resp.tool_calls.iter().map(tool_call_json).collect()),
        );
    }
    let mut o = Map::new();
    o.insert("id".into(), json!(completion_id(ctx, resp.id.as_deref())));
    o.insert("object".into(), json!("chat.completion"));
    o.insert("created".into(), json!(ctx.created));
    o.insert("model".into(), json!(ctx.model));
    o.insert(
        "choices".into(),
        json!([{
            "index": 0,
            "message": message,
            "logprobs": null,
            "finish_reason": finish_to_str(resp.finish_reason),
        }]),
    );
    if let Some(u) = &resp.usage {
        o.insert("usage".into(), usage_json(u));
    }
    Value::Object(o)
}
