//! Anthropic Messages (`/v1/messages`) adapter.

use std::borrow::Cow;
use std::collections::{HashMap, HashSet};

use bytes::Bytes;
use serde_json::{json, Map, Value};
use switchyard_core::error_body::{default_type_for_status, normalize_upstream_error, ErrorDetail};

use crate::canonical::{
    ChatRequest, ChatResponse, ErrorInfo, FinishReason, MediaSource, Message, Part, StreamEvent, Tool,
    ToolCall, ToolChoice, ToolResult, Usage,
};
use crate::json::{
    arguments_object, checked_arguments, count, join, object, opt_array, opt_bool, opt_f64, opt_object,
    opt_str, opt_u32, parse_object, req_array, req_str, text_or_text_items, Obj,
};
use crate::{Protocol, RequestOptions, ResponseContext, TranslateError};

const KNOWN_FIELDS: &[&str] = &[
    "model",
    "max_tokens",
    "messages",
    "system",
    "stop_sequences",
    "temperature",
    "top_p",
    "top_k",
    "stream",
    "metadata",
    "tools",
    "tool_choice",
];

// ---------------------------------------------------------------------------------------------------
// Requests: Anthropic body -> canonical (the `/anthropic/v1/messages` ingress)

pub(crate) fn parse_request(body: &[u8]) -> Result<ChatRequest, TranslateError> {
    let o = parse_object(body)?;
    let mut req = ChatRequest {
        model: Some(req_str(o.get("model"), "model")?.to_owned()),
        max_tokens: opt_u32(o.get("max_tokens"), "max_tokens")?,
        extras_protocol: Some(Protocol::Anthropic),
        ..ChatRequest::default()
    };
    req.system = match o.get("system") {
        None | Some(Value::Null) => None,
        Some(Value::String(s)) => Some(s.clone()),
        Some(Value::Array(blocks)) => {
            let mut texts = Vec::new();
            for (i, b) in blocks.iter().enumerate() {
                let p = format!("system[{i}]");
                let bo = object(b, &p)?;
                if req_str(bo.get("type"), &join(&p, "type"))? != "text" {
                    return Err(TranslateError::invalid(join(&p, "type"), "must be \"text\""));
                }
                texts.push(req_str(bo.get("text"), &join(&p, "text"))?.to_owned());
            }
            Some(texts.join("\n"))
        }
        Some(_) => {
            return Err(TranslateError::invalid(
                "system",
                "must be a string or an array of text blocks",
            ))
        }
    }
    .filter(|s| !s.is_empty());

    let mut call_ids = HashSet::new();
    for (i, m) in req_array(o.get("messages"), "messages")?.iter().enumerate() {
        let p = format!("messages[{i}]");
        let mo = object(m, &p)?;
        let role = req_str(mo.get("role"), &join(&p, "role"))?;
        let cp = join(&p, "content");
        let blocks: Cow<'_, [Value]> = match mo.get("content") {
            Some(Value::String(s)) => Cow::Owned(vec![json!({"type": "text", "text": s})]),
            Some(Value::Array(a)) => Cow::Borrowed(a.as_slice()),
            None | Some(Value::Null) => return Err(TranslateError::MissingField { param: cp }),
            Some(_) => {
                return Err(TranslateError::invalid(
                    cp,
                    "must be a string or an array of content blocks",
                ))
            }
        };
        match role {
            "user" => {
                let mut parts = Vec::new();
                for (j, b) in blocks.iter().enumerate() {
                    let bp = format!("{cp}[{j}]");
                    let bo = object(b, &bp)?;
                    let type_param = join(&bp, "type");
                    match req_str(bo.get("type"), &type_param)? {
                        "text" => parts.push(Part::Text(
                            req_str(bo.get("text"), &join(&bp, "text"))?.to_owned(),
                        )),
                        "image" => {
                            parts.push(Part::Image(parse_source(bo.get("source"), &join(&bp, "source"))?))
                        }
                        "document" => parts.push(parse_document(bo, &bp)?),
                        "tool_result" => {
                            let id_param = join(&bp, "tool_use_id");
                            let id = req_str(bo.get("tool_use_id"), &id_param)?;
                            if !call_ids.contains(id) {
                                return Err(TranslateError::invalid(
                                    id_param,
                                    "does not match a tool_use block of an earlier assistant message",
                                ));
                            }
                            // Tool results go before the rest of the turn (OpenAI needs them right after
                            // the assistant message that made the calls).
                            req.messages.push(Message::Tool(ToolResult {
                                tool_call_id: id.to_owned(),
                                content: text_or_text_items(
                                    bo.get("content"),
                                    &join(&bp, "content"),
                                    "only text can be translated in tool results",
                                    "must be a string or an array of content blocks",
                                )?,
                                is_error: opt_bool(bo.get("is_error"), &join(&bp, "is_error"))?
                                    .unwrap_or(false),
                            }));
                        }
                        _ => {
                            return Err(TranslateError::unsupported(
                                type_param,
                                "unsupported user content block",
                            ))
                        }
                    }
                }
                if !parts.is_empty() {
                    req.messages.push(Message::User { content: parts });
                }
            }
            "assistant" => {
                let mut content = Vec::new();
                let mut tool_calls = Vec::new();
                for (j, b) in blocks.iter().enumerate() {
                    let bp = format!("{cp}[{j}]");
                    let bo = object(b, &bp)?;
                    let type_param = join(&bp, "type");
                    match req_str(bo.get("type"), &type_param)? {
                        "text" => content.push(Part::Text(
                            req_str(bo.get("text"), &join(&bp, "text"))?.to_owned(),
                        )),
                        "tool_use" => {
                            let input_param = join(&bp, "input");
                            let input = match bo.get("input") {
                                None | Some(Value::Null) => Value::Object(Map::new()),
                                Some(v @ Value::Object(_)) => v.clone(),
                                Some(_) => {
                                    return Err(TranslateError::invalid(input_param, "must be an object"))
                                }
                            };
                            let id = req_str(bo.get("id"), &join(&bp, "id"))?.to_owned();
                            call_ids.insert(id.clone());
                            tool_calls.push(ToolCall {
                                id,
                                name: req_str(bo.get("name"), &join(&bp, "name"))?.to_owned(),
                                arguments: input.to_string(),
                            });
                        }
                        // Thinking is only meaningful to Anthropic itself; other upstreams cannot take it.
                        "thinking" | "redacted_thinking" => {}
                        _ => {
                            return Err(TranslateError::unsupported(
                                type_param,
                                "unsupported assistant content block",
                            ))
                        }
                    }
                }
                req.messages.push(Message::Assistant { content, tool_calls });
            }
            _ => {
                return Err(TranslateError::invalid(
                    join(&p, "role"),
                    "must be \"user\" or \"assistant\"",
                ))
            }
        }
    }

    if let Some(tools) = opt_array(o.get("tools"), "tools")? {
        for (i, t) in tools.iter().enumerate() {
            let p = format!("tools[{i}]");
            let to = object(t, &p)?;
            if let Some(ty) = opt_str(to.get("type"), &join(&p, "type"))? {
                if ty != "custom" {
                    return Err(TranslateError::unsupported(
                        join(&p, "type"),
                        "server tools can only be used with Anthropic upstreams",
                    ));
                }
            }
            req.tools.push(Tool {
                name: req_str(to.get("name"), &join(&p, "name"))?.to_owned(),
                description: opt_str(to.get("description"), &join(&p, "description"))?.map(str::to_owned),
                parameters: opt_object(to.get("input_schema"), &join(&p, "input_schema"))?
                    .map(|m| Value::Object(m.clone())),
            });
        }
    }
    if let Some(tc) = opt_object(o.get("tool_choice"), "tool_choice")? {
        req.tool_choice = Some(match req_str(tc.get("type"), "tool_choice.type")? {
            "auto" => ToolChoice::Auto,
            "any" => ToolChoice::Required,
            "none" => ToolChoice::None,
            "tool" => ToolChoice::Named(req_str(tc.get("name"), "tool_choice.name")?.to_owned()),
            _ => {
                return Err(TranslateError::invalid(
                    "tool_choice.type",
                    "must be one of auto, any, tool, none",
                ))
            }
        });
        if opt_bool(
            tc.get("disable_parallel_tool_use"),
            "tool_choice.disable_parallel_tool_use",
        )? == Some(true)
        {
            req.parallel_tool_calls = Some(false);
        }
    }
    req.stop = match opt_array(o.get("stop_sequences"), "stop_sequences")? {
        None => Vec::new(),
        Some(a) => a
            .iter()
            .enumerate()
            .map(|(i, s)| {
                s.as_str().map(str::to_owned).ok_or_else(|| {
                    TranslateError::invalid(format!("stop_sequences[{i}]"), "must be a string")
                })
            })
            .collect::<Result<_, _>>()?,
    };
    req.temperature = opt_f64(o.get("temperature"), "temperature")?;
    req.top_p = opt_f64(o.get("top_p"), "top_p")?;
    req.top_k = opt_u32(o.get("top_k"), "top_k")?;
    req.stream = opt_bool(o.get("stream"), "stream")?.unwrap_or(false);
    req.include_usage = true; // Anthropic streams always carry usage
    if let Some(md) = opt_object(o.get("metadata"), "metadata")? {
        req.user = opt_str(md.get("user_id"), "metadata.user_id")?.map(str::to_owned);
    }
    req.extras = o
        .into_iter()
        .filter(|(k, _)| !KNOWN_FIELDS.contains(&k.as_str()))
        .collect();
    Ok(req)
}

fn parse_source(v: Option<&Value>, p: &str) -> Result<MediaSource, TranslateError> {
    let so = opt_object(v, p)?.ok_or_else(|| TranslateError::MissingField { param: p.to_owned() })?;
    match req_str(so.get("type"), &join(p, "type"))? {
        "base64" => Ok(MediaSource::Base64 {
            media_type: req_str(so.get("media_type"), &join(p, "media_type"))?.to_owned(),
            data: req_str(so.get("data"), &join(p, "data"))?.to_owned(),
        }),
        "url" => Ok(MediaSource::Url(
            req_str(so.get("url"), &join(p, "url"))?.to_owned(),
        )),
        _ => Err(TranslateError::unsupported(
            join(p, "type"),
            "only base64 and url sources can be translated",
        )),
    }
}

fn parse_document(bo: &Obj, bp: &str) -> Result<Part, TranslateError> {
    let sp = join(bp, "source");
    let filename = opt_str(bo.get("title"), &join(bp, "title"))?.map(str::to_owned);
    let so = opt_object(bo.get("source"), &sp)?
        .ok_or_else(|| TranslateError::MissingField { param: sp.clone() })?;
    if so.get("type").and_then(Value::as_str) == Some("text") {
        return Ok(Part::Text(
            req_str(so.get("data"), &join(&sp, "data"))?.to_owned(),
        ));
    }
    Ok(Part::Document {
        source: parse_source(bo.get("source"), &sp)?,
        filename,
    })
}

// ---------------------------------------------------------------------------------------------------
// Requests: canonical -> Anthropic body (an Anthropic upstream)

/// Anthropic validates tool-use ids against `[a-zA-Z0-9_-]+`. Other ids are rewritten deterministically
/// (valid characters kept, plus a hash of the original), so a call and its result still match.
pub(crate) fn tool_use_id(id: &str) -> Cow<'_, str> {
    let valid = |c: char| c.is_ascii_alphanumeric() || c == '_' || c == '-';
    if !id.is_empty() && id.chars().all(valid) {
        return Cow::Borrowed(id);
    }
    let kept: String = id.chars().filter(|&c| valid(c)).collect();
    // FNV-1a: stable across runs and platforms.
    let hash = id.bytes().fold(0xcbf2_9ce4_8422_2325_u64, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    });
    Cow::Owned(format!("{kept}_{hash:016x}"))
}

fn source_json(src: &MediaSource) -> Value {
    match src {
        MediaSource::Url(u) => json!({"type": "url", "url": u}),
        MediaSource::Base64 { media_type, data } => {
            json!({"type": "base64", "media_type": media_type, "data": data})
        }
    }
}

pub(crate) fn render_request(req: &ChatRequest, opts: &RequestOptions) -> Value {
    let mut turns: Vec<(&'static str, Vec<Value>)> = Vec::new();
    for m in &req.messages {
        let (role, blocks) = match m {
            Message::User { content } => ("user", content.iter().filter_map(part_block).collect::<Vec<_>>()),
            Message::Assistant { content, tool_calls } => {
                let mut blocks: Vec<Value> = content.iter().filter_map(part_block).collect();
                blocks.extend(tool_calls.iter().map(|c| {
                    json!({"type": "tool_use", "id": tool_use_id(&c.id), "name": c.name,
                           "input": checked_arguments(&c.arguments)})
                }));
                ("assistant", blocks)
            }
            Message::Tool(r) => {
                let mut b = Map::new();
                b.insert("type".into(), json!("tool_result"));
                b.insert("tool_use_id".into(), json!(tool_use_id(&r.tool_call_id)));
                if !r.content.is_empty() {
                    b.insert("content".into(), json!(r.content));
                }
                if r.is_error {
                    b.insert("is_error".into(), json!(true));
                }
                ("user", vec![Value::Object(b)])
            }
        };
        if blocks.is_empty() {
            continue; // Anthropic rejects empty turns; dropping one may merge its neighbours below
        }
        match turns.last_mut() {
            Some((last, existing)) if *last == role => existing.extend(blocks),
            _ => turns.push((role, blocks)),
        }
    }
    let messages: Vec<Value> = turns
        .into_iter()
        .map(|(role, mut blocks)| {
            // tool_result blocks must open the user turn that answers the tool calls
            blocks.sort_by_key(|b| b.get("type").and_then(Value::as_str) != Some("tool_result"));
            let content = match blocks.as_slice() {
                [b] if b["type"] == "text" => b["text"].clone(),
                _ => Value::Array(blocks),
            };
            json!({"role": role, "content": content})
        })
        .collect();

    let mut o = Map::new();
    if req.extras_protocol == Some(Protocol::Anthropic) {
        o.extend(req.extras.clone());
    }
    o.insert("model".into(), json!(opts.upstream_model));
    o.insert(
        "max_tokens".into(),
        json!(req.max_tokens.unwrap_or(opts.default_max_tokens)),
    );
    if let Some(s) = &req.system {
        o.insert("system".into(), json!(s));
    }
    o.insert("messages".into(), Value::Array(messages));
    if !req.tools.is_empty() {
        let tools = req
            .tools
            .iter()
            .map(|t| {
                let mut to = Map::new();
                to.insert("name".into(), json!(t.name));
                if let Some(d) = &t.description {
                    to.insert("description".into(), json!(d));
                }
                to.insert(
                    "input_schema".into(),
                    t.parameters
                        .clone()
                        .unwrap_or_else(|| json!({"type": "object", "properties": {}})),
                );
                Value::Object(to)
            })
            .collect();
        o.insert("tools".into(), Value::Array(tools));
        let mut choice = match &req.tool_choice {
            None | Some(ToolChoice::Auto) => json!({"type": "auto"}),
            Some(ToolChoice::Required) => json!({"type": "any"}),
            Some(ToolChoice::None) => json!({"type": "none"}),
            Some(ToolChoice::Named(n)) => json!({"type": "tool", "name": n}),
        };
        if req.parallel_tool_calls == Some(false) && req.tool_choice != Some(ToolChoice::None) {
            choice["disable_parallel_tool_use"] = json!(true);
        }
        if req.tool_choice.is_some() || req.parallel_tool_calls == Some(false) {
            o.insert("tool_choice".into(), choice);
        }
    }
    let stops: Vec<&String> = req.stop.iter().filter(|s| !s.trim().is_empty()).collect();
    if !stops.is_empty() {
        o.insert("stop_sequences".into(), json!(stops));
    }
    if let Some(t) = req.temperature {
        o.insert("temperature".into(), json!(t.clamp(0.0, 1.0)));
    }
    if let Some(t) = req.top_p {
        o.insert("top_p".into(), json!(t));
    }
    if let Some(k) = req.top_k {
        o.insert("top_k".into(), json!(k));
    }
    if let Some(u) = &req.user {
        o.insert("metadata".into(), json!({"user_id": u}));
    }
    if opts.stream.unwrap_or(req.stream) {
        o.insert("stream".into(), json!(true));
    }
    Value::Object(o)
}

fn part_block(p: &Part) -> Option<Value> {
    match p {
        // Anthropic rejects empty and whitespace-only text blocks
        Part::Text(t) if t.trim().is_empty() => None,
        Part::Text(t) => Some(json!({"type": "text", "text": t})),
        Part::Image(src) => Some(json!({"type": "image", "source": source_json(src)})),
        Part::Document { source, filename } => {
            let mut b = Map::new();
            b.insert("type".into(), json!("document"));
            b.insert("source".into(), source_json(source));
            if let Some(f) = filename {
                b.insert("title".into(), json!(f));
            }
            Some(Value::Object(b))
        }
    }
}

// ---------------------------------------------------------------------------------------------------
// Responses

pub(crate) fn parse_response(body: &[u8]) -> Result<ChatResponse, TranslateError> {
    let o = parse_object(body).map_err(TranslateError::into_upstream)?;
    let content = req_array(o.get("content"), "content").map_err(TranslateError::into_upstream)?;
    let mut text = String::new();
    let mut tool_calls = Vec::new();
    for (i, b) in content.iter().enumerate() {
        match b.get("type").and_then(Value::as_str) {
            Some("text") => text.push_str(b.get("text").and_then(Value::as_str).unwrap_or_default()),
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
fn merge_usage(usage: &mut Usage, u: &Obj) {
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

fn message_id(ctx: &ResponseContext, upstream: Option<&str>) -> String {
    let base = if !ctx.id_hint.is_empty() {
        ctx.id_hint.clone()
    } else if let Some(u) = upstream.filter(|u| !u.is_empty()) {
        u.to_owned()
    } else {
        ctx.created.to_string()
    };
    if base.starts_with("msg_") {
        base
    } else {
        format!("msg_{base}")
    }
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
    if !resp.content.is_empty() {
        content.push(json!({"type": "text", "text": resp.content}));
    }
    for (j, c) in resp.tool_calls.iter().enumerate() {
        let input = arguments_object(&c.arguments).ok_or_else(|| {
            TranslateError::upstream(
                format!("tool_calls[{j}].function.arguments"),
                "the upstream's tool call arguments are not a JSON object",
            )
        })?;
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

// ---------------------------------------------------------------------------------------------------
// Errors

/// The HTTP status Anthropic uses for an error type.
pub(crate) fn status_for_error_type(t: &str) -> Option<u16> {
    Some(match t {
        "invalid_request_error" => 400,
        "authentication_error" => 401,
        "billing_error" => 402,
        "permission_error" => 403,
        "not_found_error" => 404,
        "request_too_large" => 413,
        "rate_limit_error" => 429,
        "api_error" => 500,
        "timeout_error" => 504,
        "overloaded_error" => 529,
        _ => return None,
    })
}

/// The Anthropic error type for a status (for errors going to Anthropic-shaped clients).
pub(crate) fn error_type_for_status(status: u16) -> &'static str {
    match status {
        401 => "authentication_error",
        402 => "billing_error",
        403 => "permission_error",
        404 => "not_found_error",
        413 => "request_too_large",
        429 => "rate_limit_error",
        503 | 529 => "overloaded_error",
        504 => "timeout_error",
        400..=499 => "invalid_request_error",
        _ => "api_error",
    }
}

/// The status to report to OpenAI-shaped clients: Anthropic's 529 is not a status the SDKs know.
pub(crate) fn client_status(status: u16) -> u16 {
    if status == 529 {
        503
    } else {
        status
    }
}

/// Reads an Anthropic error body. The status comes from the error type when Anthropic documents one
/// (it is what Anthropic would have sent), else from the HTTP status; 529 becomes 503.
pub(crate) fn parse_error(status: u16, body: &[u8]) -> ErrorInfo {
    let parsed: Option<Value> = serde_json::from_slice(body).ok();
    let inner = parsed
        .as_ref()
        .and_then(|v| v.get("error"))
        .and_then(Value::as_object);
    let (Some(t), Some(message)) = (
        inner.and_then(|e| e.get("type")).and_then(Value::as_str),
        inner.and_then(|e| e.get("message")).and_then(Value::as_str),
    ) else {
        return ErrorInfo {
            status: client_status(status),
            detail: normalize_upstream_error(client_status(status), body),
        };
    };
    let status = client_status(status_for_error_type(t).unwrap_or(status));
    let error_type = match t {
        "invalid_request_error"
        | "authentication_error"
        | "permission_error"
        | "rate_limit_error"
        | "timeout_error" => t,
        _ => default_type_for_status(status),
    };
    ErrorInfo {
        status,
        detail: ErrorDetail {
            message: message.to_owned(),
            error_type: error_type.to_owned(),
            param: None,
            code: Some(t.to_owned()),
        },
    }
}

pub(crate) fn render_error(e: &ErrorInfo) -> Value {
    json!({"type": "error", "error": {"type": error_type_for_status(e.status), "message": e.detail.message}})
}

// ---------------------------------------------------------------------------------------------------
// Streams: Anthropic SSE -> canonical events

#[derive(Debug, Clone, Copy)]
enum Block {
    Text,
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
                let cb = ev.get("content_block");
                let block = match cb.and_then(|c| c.get("type")).and_then(Value::as_str) {
                    Some("text") => {
                        let text = cb
                            .and_then(|c| c.get("text"))
                            .and_then(Value::as_str)
                            .unwrap_or_default();
                        if !text.is_empty() {
                            out.push(StreamEvent::TextDelta(text.to_owned()));
                        }
                        Block::Text
                    }
                    Some("tool_use") => {
                        let index = self.next_tool;
                        self.next_tool += 1;
                        let field = |k: &str| {
                            cb.and_then(|c| c.get(k))
                                .and_then(Value::as_str)
                                .unwrap_or_default()
                                .to_owned()
                        };
                        out.push(StreamEvent::ToolCallStart {
                            index,
                            id: field("id"),
                            name: field("name"),
                        });
                        // Streams start tool blocks with `input: {}`; a non-empty input is the whole input.
                        let input = cb.and_then(|c| c.get("input")).and_then(Value::as_object);
                        let got_args = input.is_some_and(|i| !i.is_empty());
                        if let Some(i) = input.filter(|i| !i.is_empty()) {
                            out.push(StreamEvent::ToolCallArgsDelta {
                                index,
                                fragment: Value::Object(i.clone()).to_string(),
                            });
                        }
                        Block::Tool { index, got_args }
                    }
                    _ => Block::Other, // thinking, redacted_thinking, server tools
                };
                self.blocks.insert(block_index, block);
            }
            "content_block_delta" => {
                let delta = ev.get("delta");
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
                    _ => {} // thinking_delta, signature_delta, citations_delta
                }
            }
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

    /// The upstream closed without `message_stop`.
    pub(crate) fn finish(&mut self, out: &mut Vec<StreamEvent>) {
        out.push(StreamEvent::Error(crate::stream::cut_error()));
    }
}

// ---------------------------------------------------------------------------------------------------
// Streams: canonical events -> Anthropic SSE

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Open {
    Text(usize),
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
        if let Some(Open::Text(i) | Open::Tool(i)) = self.open.take() {
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stop_reason_table() {
        for (s, r) in [
            ("end_turn", FinishReason::Stop),
            ("stop_sequence", FinishReason::Stop),
            ("pause_turn", FinishReason::Stop),
            ("max_tokens", FinishReason::Length),
            ("model_context_window_exceeded", FinishReason::Length),
            ("tool_use", FinishReason::ToolCalls),
            ("refusal", FinishReason::ContentFilter),
        ] {
            assert_eq!(stop_reason_to_finish(Some(s)), r, "{s}");
        }
        assert_eq!(stop_reason_to_finish(None), FinishReason::Stop);
        assert_eq!(finish_to_stop_reason(FinishReason::Stop, None), "end_turn");
        assert_eq!(
            finish_to_stop_reason(FinishReason::Stop, Some("END")),
            "stop_sequence"
        );
        assert_eq!(finish_to_stop_reason(FinishReason::Length, None), "max_tokens");
        assert_eq!(finish_to_stop_reason(FinishReason::ToolCalls, None), "tool_use");
        assert_eq!(
            finish_to_stop_reason(FinishReason::ContentFilter, None),
            "refusal"
        );
    }

    #[test]
    fn error_status_table() {
        for (t, upstream_status, status, openai_type) in [
            ("invalid_request_error", 400, 400, "invalid_request_error"),
            ("authentication_error", 401, 401, "authentication_error"),
            ("billing_error", 402, 402, "invalid_request_error"),
            ("permission_error", 403, 403, "permission_error"),
            ("not_found_error", 404, 404, "invalid_request_error"),
            ("request_too_large", 413, 413, "invalid_request_error"),
            ("rate_limit_error", 429, 429, "rate_limit_error"),
            ("api_error", 500, 500, "server_error"),
            ("timeout_error", 504, 504, "timeout_error"),
            ("overloaded_error", 529, 503, "server_error"),
        ] {
            let body = json!({"type": "error", "error": {"type": t, "message": "m"}}).to_string();
            let e = parse_error(upstream_status, body.as_bytes());
            assert_eq!(e.status, status, "{t}");
            assert_eq!(e.detail.error_type, openai_type, "{t}");
            assert_eq!(e.detail.code.as_deref(), Some(t));
            // and back: an Anthropic client sees the same type again
            assert_eq!(error_type_for_status(upstream_status), t);
        }
        // in-stream errors carry no HTTP status: the type decides
        let e = parse_error(
            500,
            br#"{"type":"error","error":{"type":"overloaded_error","message":"Overloaded"}}"#,
        );
        assert_eq!(e.status, 503);
        // unknown shapes fall back to the generic normaliser
        let e = parse_error(529, b"upstream exploded");
        assert_eq!((e.status, e.detail.error_type.as_str()), (503, "server_error"));
        assert_eq!(error_type_for_status(503), "overloaded_error");
        assert_eq!(error_type_for_status(422), "invalid_request_error");
        assert_eq!(error_type_for_status(502), "api_error");
    }

    #[test]
    fn tool_ids_are_made_valid_deterministically() {
        assert_eq!(tool_use_id("toolu_01A-b"), "toolu_01A-b");
        let a = tool_use_id("call:1/x");
        assert_eq!(a, tool_use_id("call:1/x"));
        assert!(a.starts_with("call1x_"), "{a}");
        assert_ne!(tool_use_id("call:1"), tool_use_id("call/1"));
        assert!(!tool_use_id("").is_empty());
    }
}
