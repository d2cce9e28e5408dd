//! Requests: Anthropic body to canonical (the `/anthropic/v1/messages` ingress) and canonical to Anthropic body (an Anthropic upstream).

use std::borrow::Cow;
use std::collections::HashSet;

use serde_json::{json, Map, Value};

use crate::canonical::{ChatRequest, MediaSource, Message, Part, Tool, ToolCall, ToolChoice, ToolResult};
use crate::json::{
    checked_arguments, join, object, opt_array, opt_bool, opt_f64, opt_object, opt_str, opt_u32,
    parse_object, req_array, req_str, text_or_text_items, Obj,
};
use crate::{Protocol, RequestOptions, TranslateError};

/// Top-level request fields this adapter translates; everything else is kept in `extras`.
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
