//! Requests: Anthropic body to canonical (the `/anthropic/v1/messages` ingress) and canonical to Anthropic body (an Anthropic upstream).

use std::borrow::Cow;
use std::collections::HashSet;

use serde_json::{json, Map, Value};

use crate::canonical::{ChatRequest, MediaSource, Message, Part, Tool, ToolCall, ToolChoice, ToolResult};
use crate::json::{
    checked_arguments, join, merge_turns, object, opt_array, opt_bool, opt_f64, opt_object, opt_str, opt_u32,
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
    // Fields are read in this order so that the first invalid one is the one reported.
    let model = Some(req_str(o.get("model"), "model")?.to_owned());
    let max_tokens = opt_u32(o.get("max_tokens"), "max_tokens")?;
    let system = parse_system(o.get("system"))?;
    let messages = parse_messages(o.get("messages"))?;
    let tools = parse_tools(o.get("tools"))?;
    let (tool_choice, parallel_tool_calls) = parse_tool_choice(o.get("tool_choice"))?;
    let mut req = ChatRequest {
        model,
        max_tokens,
        system,
        messages,
        tools,
        tool_choice,
        parallel_tool_calls,
        stop: parse_stop_sequences(o.get("stop_sequences"))?,
        temperature: opt_f64(o.get("temperature"), "temperature")?,
        top_p: opt_f64(o.get("top_p"), "top_p")?,
        top_k: opt_u32(o.get("top_k"), "top_k")?,
        stream: opt_bool(o.get("stream"), "stream")?.unwrap_or(false),
        include_usage: true, // Anthropic streams always carry usage
        extras_protocol: Some(Protocol::Anthropic),
        ..ChatRequest::default()
    };
    if let Some(md) = opt_object(o.get("metadata"), "metadata")? {
        req.user = opt_str(md.get("user_id"), "metadata.user_id")?.map(str::to_owned);
    }
    req.extras = o
        .into_iter()
        .filter(|(k, _)| !KNOWN_FIELDS.contains(&k.as_str()))
        .collect();
    Ok(req)
}

/// `system`: a string or text blocks (joined with `\n`); empty means none.
fn parse_system(v: Option<&Value>) -> Result<Option<String>, TranslateError> {
    let system = match v {
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
    };
    Ok(system.filter(|s| !s.is_empty()))
}

/// `messages`: user turns (tool results become tool messages placed first) and assistant turns.
fn parse_messages(v: Option<&Value>) -> Result<Vec<Message>, TranslateError> {
    let mut messages = Vec::new();
    let mut call_ids = HashSet::new();
    for (i, m) in req_array(v, "messages")?.iter().enumerate() {
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
            "user" => user_turn(&blocks, &cp, &call_ids, &mut messages)?,
            "assistant" => messages.push(assistant_turn(&blocks, &cp, &mut call_ids)?),
            // Claude Code sends system messages mid-conversation (the `mid-conversation` betas);
            // they stay where they are for OpenAI upstreams.
            "system" => {
                let text = system_text(&blocks, &cp)?;
                if !text.is_empty() {
                    messages.push(Message::System(text));
                }
            }
            _ => {
                return Err(TranslateError::invalid(
                    join(&p, "role"),
                    "must be \"user\", \"assistant\" or \"system\"",
                ))
            }
        }
    }
    Ok(messages)
}

/// A system message's text blocks, joined with `\n`.
fn system_text(blocks: &[Value], cp: &str) -> Result<String, TranslateError> {
    let mut texts = Vec::with_capacity(blocks.len());
    for (j, b) in blocks.iter().enumerate() {
        let bp = format!("{cp}[{j}]");
        let bo = object(b, &bp)?;
        if req_str(bo.get("type"), &join(&bp, "type"))? != "text" {
            return Err(TranslateError::unsupported(
                join(&bp, "type"),
                "system messages can only hold text blocks",
            ));
        }
        texts.push(req_str(bo.get("text"), &join(&bp, "text"))?);
    }
    Ok(texts.join("\n"))
}

/// A user turn's blocks: its tool results (each answering a call in `call_ids`) go first, as tool
/// messages, then the rest as one user message (none when nothing is left).
fn user_turn(
    blocks: &[Value],
    cp: &str,
    call_ids: &HashSet<String>,
    messages: &mut Vec<Message>,
) -> Result<(), TranslateError> {
    let mut parts = Vec::new();
    for (j, b) in blocks.iter().enumerate() {
        let bp = format!("{cp}[{j}]");
        let bo = object(b, &bp)?;
        let type_param = join(&bp, "type");
        match req_str(bo.get("type"), &type_param)? {
            "text" => parts.push(Part::Text(
                req_str(bo.get("text"), &join(&bp, "text"))?.to_owned(),
            )),
            "image" => parts.push(Part::Image(parse_source(bo.get("source"), &join(&bp, "source"))?)),
            "document" => parts.push(parse_document(bo, &bp)?),
            // Tool results go before the rest of the turn (OpenAI needs them right after the assistant
            // message that made the calls).
            "tool_result" => messages.push(Message::Tool(parse_tool_result(bo, &bp, call_ids)?)),
            _ => {
                return Err(TranslateError::unsupported(
                    type_param,
                    "unsupported user content block",
                ))
            }
        }
    }
    if !parts.is_empty() {
        messages.push(Message::User { content: parts });
    }
    Ok(())
}

fn parse_tool_result(bo: &Obj, bp: &str, call_ids: &HashSet<String>) -> Result<ToolResult, TranslateError> {
    let id_param = join(bp, "tool_use_id");
    let id = req_str(bo.get("tool_use_id"), &id_param)?;
    if !call_ids.contains(id) {
        return Err(TranslateError::invalid(
            id_param,
            "does not match a tool_use block of an earlier assistant message",
        ));
    }
    Ok(ToolResult {
        tool_call_id: id.to_owned(),
        content: text_or_text_items(
            bo.get("content"),
            &join(bp, "content"),
            "only text can be translated in tool results",
            "must be a string or an array of content blocks",
        )?,
        is_error: opt_bool(bo.get("is_error"), &join(bp, "is_error"))?.unwrap_or(false),
    })
}

/// An assistant turn: text and tool calls (their ids are added to `call_ids`); thinking is dropped.
fn assistant_turn(
    blocks: &[Value],
    cp: &str,
    call_ids: &mut HashSet<String>,
) -> Result<Message, TranslateError> {
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
                let call = parse_tool_use(bo, &bp)?;
                call_ids.insert(call.id.clone());
                tool_calls.push(call);
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
    Ok(Message::Assistant { content, tool_calls })
}

fn parse_tool_use(bo: &Obj, bp: &str) -> Result<ToolCall, TranslateError> {
    let input = match bo.get("input") {
        None | Some(Value::Null) => Value::Object(Map::new()),
        Some(v @ Value::Object(_)) => v.clone(),
        Some(_) => return Err(TranslateError::invalid(join(bp, "input"), "must be an object")),
    };
    Ok(ToolCall {
        id: req_str(bo.get("id"), &join(bp, "id"))?.to_owned(),
        name: req_str(bo.get("name"), &join(bp, "name"))?.to_owned(),
        arguments: input.to_string(),
    })
}

/// `tools`: custom (function) tools only; server tools cannot be translated.
fn parse_tools(v: Option<&Value>) -> Result<Vec<Tool>, TranslateError> {
    let mut out = Vec::new();
    for (i, t) in opt_array(v, "tools")?.into_iter().flatten().enumerate() {
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
        out.push(Tool {
            name: req_str(to.get("name"), &join(&p, "name"))?.to_owned(),
            description: opt_str(to.get("description"), &join(&p, "description"))?.map(str::to_owned),
            parameters: opt_object(to.get("input_schema"), &join(&p, "input_schema"))?
                .map(|m| Value::Object(m.clone())),
        });
    }
    Ok(out)
}

/// `tool_choice`, and `Some(false)` for parallel tool calls when it disables them.
fn parse_tool_choice(v: Option<&Value>) -> Result<(Option<ToolChoice>, Option<bool>), TranslateError> {
    let Some(tc) = opt_object(v, "tool_choice")? else {
        return Ok((None, None));
    };
    let choice = match req_str(tc.get("type"), "tool_choice.type")? {
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
    };
    let serial = opt_bool(
        tc.get("disable_parallel_tool_use"),
        "tool_choice.disable_parallel_tool_use",
    )? == Some(true);
    Ok((Some(choice), serial.then_some(false)))
}

fn parse_stop_sequences(v: Option<&Value>) -> Result<Vec<String>, TranslateError> {
    opt_array(v, "stop_sequences")?
        .into_iter()
        .flatten()
        .enumerate()
        .map(|(i, s)| {
            s.as_str()
                .map(str::to_owned)
                .ok_or_else(|| TranslateError::invalid(format!("stop_sequences[{i}]"), "must be a string"))
        })
        .collect()
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
    o.insert("messages".into(), Value::Array(render_messages(&req.messages)));
    if !req.tools.is_empty() {
        o.insert(
            "tools".into(),
            Value::Array(req.tools.iter().map(tool_json).collect()),
        );
        if let Some(choice) = tool_choice_json(req) {
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

/// The conversation as Anthropic turns: empty turns dropped, same-role neighbours merged, tool
/// results first in their user turn, a lone text block written as a string.
fn render_messages(messages: &[Message]) -> Vec<Value> {
    let is_result = |b: &Value| b.get("type").and_then(Value::as_str) == Some("tool_result");
    merge_turns(messages.iter().map(message_blocks), is_result)
        .into_iter()
        .map(|(role, blocks)| {
            let content = match blocks.as_slice() {
                [b] if b["type"] == "text" => b["text"].clone(),
                _ => Value::Array(blocks),
            };
            json!({"role": role, "content": content})
        })
        .collect()
}

/// One canonical message as an Anthropic role and its content blocks.
fn message_blocks(m: &Message) -> (&'static str, Vec<Value>) {
    match m {
        Message::User { content } => ("user", content.iter().filter_map(part_block).collect()),
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
        // Folded into `system` before rendering (`ChatRequest::fold_system`).
        Message::System(_) => ("user", Vec::new()),
    }
}

fn tool_json(t: &Tool) -> Value {
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
}

/// `tool_choice`, sent only when the client chose or disabled parallel calls.
fn tool_choice_json(req: &ChatRequest) -> Option<Value> {
    let mut choice = match &req.tool_choice {
        None | Some(ToolChoice::Auto) => json!({"type": "auto"}),
        Some(ToolChoice::Required) => json!({"type": "any"}),
        Some(ToolChoice::None) => json!({"type": "none"}),
        Some(ToolChoice::Named(n)) => json!({"type": "tool", "name": n}),
    };
    if req.parallel_tool_calls == Some(false) && req.tool_choice != Some(ToolChoice::None) {
        choice["disable_parallel_tool_use"] = json!(true);
    }
    (req.tool_choice.is_some() || req.parallel_tool_calls == Some(false)).then_some(choice)
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
