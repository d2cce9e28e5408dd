//! OpenAI Chat Completions (`/v1/chat/completions`) adapter.

use std::collections::{HashMap, HashSet};

use bytes::Bytes;
use serde_json::{json, Map, Value};
use switchyard_core::error_body::{normalize_upstream_error, ErrorDetail};

use crate::canonical::{
    ChatRequest, ChatResponse, ErrorInfo, FinishReason, MediaSource, Message, Part, StreamEvent, Tool,
    ToolCall, ToolChoice, ToolResult, Usage,
};
use crate::json::{
    check_arguments, count, join, object, opt_array, opt_bool, opt_f64, opt_object, opt_str, opt_u32,
    parse_object, req_array, req_str, string_or_list, text_or_text_items, Obj,
};
use crate::{Protocol, RequestOptions, ResponseContext, TranslateError};

/// Top-level request fields this adapter translates; everything else is kept in `extras`.
const KNOWN_FIELDS: &[&str] = &[
    "model",
    "messages",
    "tools",
    "tool_choice",
    "parallel_tool_calls",
    "max_tokens",
    "max_completion_tokens",
    "temperature",
    "top_p",
    "top_k",
    "stop",
    "stream",
    "stream_options",
    "user",
    "safety_identifier",
    "metadata",
    "n",
];

// ---------------------------------------------------------------------------------------------------
// Requests

pub(crate) fn parse_request(body: &[u8]) -> Result<ChatRequest, TranslateError> {
    let o = parse_object(body)?;
    let mut req = ChatRequest {
        model: Some(req_str(o.get("model"), "model")?.to_owned()),
        extras_protocol: Some(Protocol::OpenAi),
        ..ChatRequest::default()
    };

    let mut system = Vec::new();
    let mut call_ids = HashSet::new();
    for (i, m) in req_array(o.get("messages"), "messages")?.iter().enumerate() {
        let p = format!("messages[{i}]");
        let mo = object(m, &p)?;
        let role = req_str(mo.get("role"), &join(&p, "role"))?;
        let content_param = join(&p, "content");
        match role {
            "system" | "developer" => {
                let text = text_content(mo.get("content"), &content_param)?;
                if !text.is_empty() {
                    system.push(text);
                }
            }
            "user" => req.messages.push(Message::User {
                content: user_parts(mo.get("content"), &content_param)?,
            }),
            "assistant" => {
                let content = assistant_parts(mo.get("content"), &content_param)?;
                let tool_calls = parse_tool_calls(mo.get("tool_calls"), &join(&p, "tool_calls"))?;
                call_ids.extend(tool_calls.iter().map(|c| c.id.clone()));
                req.messages.push(Message::Assistant { content, tool_calls });
            }
            "tool" => {
                let id_param = join(&p, "tool_call_id");
                let id = req_str(mo.get("tool_call_id"), &id_param)?;
                if !call_ids.contains(id) {
                    return Err(TranslateError::invalid(
                        id_param,
                        "does not match a tool call of an earlier assistant message",
                    ));
                }
                req.messages.push(Message::Tool(ToolResult {
                    tool_call_id: id.to_owned(),
                    content: text_content(mo.get("content"), &content_param)?,
                    is_error: false,
                }));
            }
            "function" => {
                return Err(TranslateError::unsupported(
                    join(&p, "role"),
                    "legacy function messages are not supported; use tool messages",
                ))
            }
            _ => {
                return Err(TranslateError::invalid(
                    join(&p, "role"),
                    "must be one of system, developer, user, assistant, tool",
                ))
            }
        }
    }
    if !system.is_empty() {
        req.system = Some(system.join("\n"));
    }

    if let Some(tools) = opt_array(o.get("tools"), "tools")? {
        for (i, t) in tools.iter().enumerate() {
            req.tools.push(parse_tool(t, &format!("tools[{i}]"))?);
        }
    }
    req.tool_choice = parse_tool_choice(o.get("tool_choice"))?;
    req.parallel_tool_calls = opt_bool(o.get("parallel_tool_calls"), "parallel_tool_calls")?;
    req.max_tokens = match opt_u32(o.get("max_completion_tokens"), "max_completion_tokens")? {
        Some(n) => Some(n),
        None => opt_u32(o.get("max_tokens"), "max_tokens")?,
    };
    req.temperature = opt_f64(o.get("temperature"), "temperature")?;
    req.top_p = opt_f64(o.get("top_p"), "top_p")?;
    req.top_k = opt_u32(o.get("top_k"), "top_k")?;
    req.stop = string_or_list(o.get("stop"), "stop")?;
    req.stream = opt_bool(o.get("stream"), "stream")?.unwrap_or(false);
    if let Some(so) = opt_object(o.get("stream_options"), "stream_options")? {
        req.include_usage =
            opt_bool(so.get("include_usage"), "stream_options.include_usage")?.unwrap_or(false);
    }
    req.user = match opt_str(o.get("user"), "user")? {
        Some(u) => Some(u.to_owned()),
        None => opt_str(o.get("safety_identifier"), "safety_identifier")?.map(str::to_owned),
    };
    if let Some(md) = opt_object(o.get("metadata"), "metadata")? {
        req.metadata = md.clone();
    }
    if let Some(n) = opt_u32(o.get("n"), "n")? {
        if n != 1 {
            return Err(TranslateError::unsupported("n", "only n=1 can be translated"));
        }
    }
    req.extras = o
        .into_iter()
        .filter(|(k, _)| !KNOWN_FIELDS.contains(&k.as_str()))
        .collect();
    Ok(req)
}

/// Content that must be text: a string or an array of text parts (joined with `\n`).
fn text_content(v: Option<&Value>, param: &str) -> Result<String, TranslateError> {
    text_or_text_items(
        v,
        param,
        "only text parts are allowed here",
        "must be a string or an array of content parts",
    )
}

fn user_parts(v: Option<&Value>, param: &str) -> Result<Vec<Part>, TranslateError> {
    let parts = match v {
        None | Some(Value::Null) => return Ok(Vec::new()),
        Some(Value::String(s)) => return Ok(vec![Part::Text(s.clone())]),
        Some(Value::Array(parts)) => parts,
        Some(_) => {
            return Err(TranslateError::invalid(
                param,
                "must be a string or an array of content parts",
            ))
        }
    };
    let mut out = Vec::with_capacity(parts.len());
    for (j, part) in parts.iter().enumerate() {
        let pp = format!("{param}[{j}]");
        let po = object(part, &pp)?;
        let type_param = join(&pp, "type");
        match req_str(po.get("type"), &type_param)? {
            "text" => out.push(Part::Text(
                req_str(po.get("text"), &join(&pp, "text"))?.to_owned(),
            )),
            "image_url" => {
                let ip = join(&pp, "image_url");
                let url = match po.get("image_url") {
                    Some(Value::String(s)) => s.as_str(),
                    other => req_str(
                        opt_object(other, &ip)?.and_then(|io| io.get("url")),
                        &join(&ip, "url"),
                    )?,
                };
                let source = MediaSource::from_url(url).ok_or_else(|| {
                    TranslateError::invalid(join(&ip, "url"), "must be an http(s) URL or a base64 data URL")
                })?;
                out.push(Part::Image(source));
            }
            "file" => {
                let fp = join(&pp, "file");
                let fo = opt_object(po.get("file"), &fp)?
                    .ok_or_else(|| TranslateError::MissingField { param: fp.clone() })?;
                let data_param = join(&fp, "file_data");
                let Some(data) = opt_str(fo.get("file_data"), &data_param)? else {
                    return Err(TranslateError::unsupported(
                        join(&fp, "file_id"),
                        "uploaded file ids cannot be translated; send file_data",
                    ));
                };
                let source = match MediaSource::from_url(data) {
                    Some(s @ MediaSource::Base64 { .. }) => s,
                    _ => return Err(TranslateError::invalid(data_param, "must be a base64 data URL")),
                };
                let filename = opt_str(fo.get("filename"), &join(&fp, "filename"))?.map(str::to_owned);
                out.push(Part::Document { source, filename });
            }
            "input_audio" => {
                return Err(TranslateError::unsupported(
                    type_param,
                    "audio input cannot be translated",
                ))
            }
            _ => {
                return Err(TranslateError::unsupported(
                    type_param,
                    "unknown content part type",
                ))
            }
        }
    }
    Ok(out)
}

fn assistant_parts(v: Option<&Value>, param: &str) -> Result<Vec<Part>, TranslateError> {
    match v {
        None | Some(Value::Null) => Ok(Vec::new()),
        Some(Value::String(s)) => Ok(vec![Part::Text(s.clone())]),
        Some(Value::Array(parts)) => {
            let mut out = Vec::new();
            for (j, part) in parts.iter().enumerate() {
                let pp = format!("{param}[{j}]");
                let po = object(part, &pp)?;
                match req_str(po.get("type"), &join(&pp, "type"))? {
                    "text" => out.push(Part::Text(
                        req_str(po.get("text"), &join(&pp, "text"))?.to_owned(),
                    )),
                    "refusal" => {} // a refusal is not something to send back to the model
                    _ => {
                        return Err(TranslateError::unsupported(
                            join(&pp, "type"),
                            "assistant content parts must be text or refusal",
                        ))
                    }
                }
            }
            Ok(out)
        }
        Some(_) => Err(TranslateError::invalid(
            param,
            "must be a string, an array of content parts or null",
        )),
    }
}

fn parse_tool_calls(v: Option<&Value>, param: &str) -> Result<Vec<ToolCall>, TranslateError> {
    let Some(calls) = opt_array(v, param)? else {
        return Ok(Vec::new());
    };
    let mut out = Vec::with_capacity(calls.len());
    for (j, c) in calls.iter().enumerate() {
        let cp = format!("{param}[{j}]");
        let co = object(c, &cp)?;
        if let Some(t) = opt_str(co.get("type"), &join(&cp, "type"))? {
            if t != "function" {
                return Err(TranslateError::unsupported(
                    join(&cp, "type"),
                    "only function tool calls are supported",
                ));
            }
        }
        let fp = join(&cp, "function");
        let fo = opt_object(co.get("function"), &fp)?
            .ok_or_else(|| TranslateError::MissingField { param: fp.clone() })?;
        let args_param = join(&fp, "arguments");
        let arguments = match fo.get("arguments") {
            None | Some(Value::Null) => String::new(),
            Some(Value::String(s)) => s.clone(),
            Some(v @ Value::Object(_)) => v.to_string(),
            Some(_) => return Err(TranslateError::invalid(args_param, "must be a JSON string")),
        };
        check_arguments(&arguments, &args_param)?;
        out.push(ToolCall {
            id: req_str(co.get("id"), &join(&cp, "id"))?.to_owned(),
            name: req_str(fo.get("name"), &join(&fp, "name"))?.to_owned(),
            arguments,
        });
    }
    Ok(out)
}

fn parse_tool(v: &Value, p: &str) -> Result<Tool, TranslateError> {
    let to = object(v, p)?;
    let t = opt_str(to.get("type"), &join(p, "type"))?.unwrap_or("function");
    if t != "function" {
        return Err(TranslateError::unsupported(
            join(p, "type"),
            "only function tools are supported",
        ));
    }
    let fp = join(p, "function");
    let fo = opt_object(to.get("function"), &fp)?
        .ok_or_else(|| TranslateError::MissingField { param: fp.clone() })?;
    Ok(Tool {
        name: req_str(fo.get("name"), &join(&fp, "name"))?.to_owned(),
        description: opt_str(fo.get("description"), &join(&fp, "description"))?.map(str::to_owned),
        parameters: opt_object(fo.get("parameters"), &join(&fp, "parameters"))?
            .map(|m| Value::Object(m.clone())),
    })
}

fn parse_tool_choice(v: Option<&Value>) -> Result<Option<ToolChoice>, TranslateError> {
    let invalid = || {
        TranslateError::invalid(
            "tool_choice",
            "must be \"auto\", \"none\", \"required\" or {\"type\":\"function\",\"function\":{\"name\"}}",
        )
    };
    match v {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => match s.as_str() {
            "auto" => Ok(Some(ToolChoice::Auto)),
            "none" => Ok(Some(ToolChoice::None)),
            "required" => Ok(Some(ToolChoice::Required)),
            _ => Err(invalid()),
        },
        Some(Value::Object(o)) => {
            if o.get("type").and_then(Value::as_str) != Some("function") {
                return Err(invalid());
            }
            let fo = opt_object(o.get("function"), "tool_choice.function")?.ok_or_else(invalid)?;
            Ok(Some(ToolChoice::Named(
                req_str(fo.get("name"), "tool_choice.function.name")?.to_owned(),
            )))
        }
        Some(_) => Err(invalid()),
    }
}

/// Renders a canonical request as an OpenAI chat completions body for `opts.upstream_model`.
pub(crate) fn render_request(req: &ChatRequest, opts: &RequestOptions) -> Value {
    let mut o = Map::new();
    if req.extras_protocol == Some(Protocol::OpenAi) {
        o.extend(req.extras.clone());
    }
    o.insert("model".into(), json!(opts.upstream_model));

    let mut messages = Vec::with_capacity(req.messages.len() + 1);
    if let Some(system) = &req.system {
        messages.push(json!({"role": "system", "content": system}));
    }
    for m in &req.messages {
        messages.push(match m {
            Message::User { content } => json!({"role": "user", "content": user_content_json(content)}),
            Message::Assistant { content, tool_calls } => {
                let texts: Vec<&str> = content
                    .iter()
                    .filter_map(|p| match p {
                        Part::Text(t) if !t.is_empty() => Some(t.as_str()),
                        _ => None,
                    })
                    .collect();
                let content = match texts.as_slice() {
                    [] => Value::Null,
                    [one] => json!(one),
                    many => Value::Array(many.iter().map(|t| json!({"type": "text", "text": t})).collect()),
                };
                let mut mo = Map::new();
                mo.insert("role".into(), json!("assistant"));
                mo.insert("content".into(), content);
                if !tool_calls.is_empty() {
                    mo.insert(
                        "tool_calls".into(),
                        Value::Array(tool_calls.iter().map(tool_call_json).collect()),
                    );
                }
                Value::Object(mo)
            }
            Message::Tool(r) => {
                json!({"role": "tool", "tool_call_id": r.tool_call_id, "content": r.content})
            }
        });
    }
    o.insert("messages".into(), Value::Array(messages));

    if !req.tools.is_empty() {
        let tools = req
            .tools
            .iter()
            .map(|t| {
                let mut f = Map::new();
                f.insert("name".into(), json!(t.name));
                if let Some(d) = &t.description {
                    f.insert("description".into(), json!(d));
                }
                if let Some(p) = &t.parameters {
                    f.insert("parameters".into(), p.clone());
                }
                json!({"type": "function", "function": f})
            })
            .collect();
        o.insert("tools".into(), Value::Array(tools));
    }
    if let Some(tc) = &req.tool_choice {
        o.insert(
            "tool_choice".into(),
            match tc {
                ToolChoice::Auto => json!("auto"),
                ToolChoice::None => json!("none"),
                ToolChoice::Required => json!("required"),
                ToolChoice::Named(n) => json!({"type": "function", "function": {"name": n}}),
            },
        );
    }
    if let Some(p) = req.parallel_tool_calls {
        o.insert("parallel_tool_calls".into(), json!(p));
    }
    if let Some(n) = req.max_tokens {
        o.insert("max_tokens".into(), json!(n));
    }
    if let Some(t) = req.temperature {
        o.insert("temperature".into(), json!(t));
    }
    if let Some(t) = req.top_p {
        o.insert("top_p".into(), json!(t));
    }
    if let Some(k) = req.top_k {
        o.insert("top_k".into(), json!(k));
    }
    if !req.stop.is_empty() {
        o.insert("stop".into(), json!(req.stop));
    }
    let stream = opts.stream.unwrap_or(req.stream);
    o.insert("stream".into(), json!(stream));
    if stream {
        // Always ask for usage: the gateway needs it for accounting and non-OpenAI clients get it anyway.
        o.insert("stream_options".into(), json!({"include_usage": true}));
    } else {
        o.remove("stream_options");
    }
    if let Some(u) = &req.user {
        o.insert("user".into(), json!(u));
    }
    if !req.metadata.is_empty() {
        o.insert("metadata".into(), Value::Object(req.metadata.clone()));
    }
    Value::Object(o)
}

fn user_content_json(parts: &[Part]) -> Value {
    if let [Part::Text(t)] = parts {
        return json!(t);
    }
    Value::Array(
        parts
            .iter()
            .map(|p| match p {
                Part::Text(t) => json!({"type": "text", "text": t}),
                Part::Image(src) => json!({"type": "image_url", "image_url": {"url": src.to_url()}}),
                Part::Document {
                    source: src @ MediaSource::Base64 { .. },
                    filename,
                } => {
                    let mut f = Map::new();
                    f.insert("file_data".into(), json!(src.to_url()));
                    if let Some(name) = filename {
                        f.insert("filename".into(), json!(name));
                    }
                    json!({"type": "file", "file": f})
                }
                // OpenAI file parts have no URL form; vLLM document models read image_url parts.
                Part::Document { source, .. } => {
                    json!({"type": "image_url", "image_url": {"url": source.to_url()}})
                }
            })
            .collect(),
    )
}

fn tool_call_json(c: &ToolCall) -> Value {
    json!({"id": c.id, "type": "function", "function": {"name": c.name, "arguments": c.arguments}})
}

// ---------------------------------------------------------------------------------------------------
// Responses

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
        tool_calls,
        finish_reason,
        // vLLM names the stop string that matched in a non-standard `stop_reason`.
        stop_sequence: co.get("stop_reason").and_then(Value::as_str).map(str::to_owned),
        usage: o.get("usage").and_then(Value::as_object).map(parse_usage),
    })
}

pub(crate) fn parse_usage(u: &Obj) -> Usage {
    let prompt = count(u.get("prompt_tokens"));
    let cached = count(
        u.get("prompt_tokens_details")
            .and_then(|d| d.get("cached_tokens")),
    );
    let cached = cached.min(prompt);
    Usage {
        input: prompt - cached,
        output: count(u.get("completion_tokens")),
        cache_read: cached,
        cache_write: 0,
        reasoning: count(
            u.get("completion_tokens_details")
                .and_then(|d| d.get("reasoning_tokens")),
        ),
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
fn completion_id(ctx: &ResponseContext, upstream: Option<&str>) -> String {
    let base = if !ctx.id_hint.is_empty() {
        ctx.id_hint.clone()
    } else if let Some(u) = upstream.filter(|u| !u.is_empty()) {
        u.to_owned()
    } else {
        ctx.created.to_string()
    };
    if base.starts_with("chatcmpl-") {
        base
    } else {
        format!("chatcmpl-{base}")
    }
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

// ---------------------------------------------------------------------------------------------------
// Errors

pub(crate) fn parse_error(status: u16, body: &[u8]) -> ErrorInfo {
    ErrorInfo {
        status,
        detail: normalize_upstream_error(status, body),
    }
}

pub(crate) fn render_error(e: &ErrorInfo) -> Value {
    json!({"error": detail_json(&e.detail)})
}

fn detail_json(d: &ErrorDetail) -> Value {
    json!({"message": d.message, "type": d.error_type, "param": d.param, "code": d.code})
}

// ---------------------------------------------------------------------------------------------------
// Streams

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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finish_reason_table() {
        for (s, r) in [
            ("stop", FinishReason::Stop),
            ("length", FinishReason::Length),
            ("tool_calls", FinishReason::ToolCalls),
            ("content_filter", FinishReason::ContentFilter),
        ] {
            assert_eq!(finish_from_str(s), r);
            assert_eq!(finish_to_str(r), s);
        }
        assert_eq!(finish_from_str("function_call"), FinishReason::ToolCalls);
        assert_eq!(finish_from_str("something_new"), FinishReason::Stop);
    }

    #[test]
    fn usage_splits_cached_tokens() {
        let u = parse_usage(
            json!({"prompt_tokens": 100, "completion_tokens": 7, "prompt_tokens_details": {"cached_tokens": 60},
                   "completion_tokens_details": {"reasoning_tokens": 3}})
            .as_object()
            .unwrap(),
        );
        assert_eq!(
            u,
            Usage {
                input: 40,
                output: 7,
                cache_read: 60,
                cache_write: 0,
                reasoning: 3
            }
        );
        assert_eq!(usage_json(&u)["prompt_tokens"], 100);
        assert_eq!(usage_json(&u)["total_tokens"], 107);
    }

    #[test]
    fn errors_name_the_field() {
        let e = parse_request(br#"{"model":"m","messages":[{"role":"user","content":"hi"},{"role":"assistant","tool_calls":[{"id":"c","type":"function","function":{"name":"f","arguments":"{oops"}}]}]}"#).unwrap_err();
        assert_eq!(e.param(), Some("messages[1].tool_calls[0].function.arguments"));
        let e =
            parse_request(br#"{"model":"m","messages":[{"role":"tool","tool_call_id":"x","content":"r"}]}"#)
                .unwrap_err();
        assert_eq!(e.param(), Some("messages[0].tool_call_id"));
        let e = parse_request(br#"{"messages":[]}"#).unwrap_err();
        assert_eq!(
            e,
            TranslateError::MissingField {
                param: "model".into()
            }
        );
        let e = parse_request(br#"{"model":"m","messages":[],"n":2}"#).unwrap_err();
        assert_eq!(e.param(), Some("n"));
        let e = parse_request(
            br#"{"model":"m","messages":[{"role":"user","content":[{"type":"input_audio","input_audio":{}}]}]}"#,
        )
        .unwrap_err();
        assert_eq!(e.param(), Some("messages[0].content[0].type"));
        assert_eq!(e.status(), 400);
    }

    #[test]
    fn extras_are_kept_and_forwarded_to_openai_only() {
        let req = parse_request(
            br#"{"model":"m","messages":[],"chat_template_kwargs":{"enable_thinking":false},"seed":3}"#,
        )
        .unwrap();
        assert_eq!(req.extras.len(), 2);
        let out = render_request(&req, &RequestOptions::new("up"));
        assert_eq!(out["seed"], 3);
        assert_eq!(out["model"], "up");
    }
}
