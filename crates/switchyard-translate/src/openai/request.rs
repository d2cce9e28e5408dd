//! Requests: OpenAI body to canonical (the `/v1/chat/completions` ingress) and back (an OpenAI-compatible upstream).

use std::collections::HashSet;

use serde_json::{json, Map, Value};

use crate::canonical::{ChatRequest, MediaSource, Message, Part, Tool, ToolCall, ToolChoice, ToolResult};
use crate::json::{
    check_arguments, join, object, opt_array, opt_bool, opt_f64, opt_object, opt_str, opt_u32, parse_object,
    req_array, req_str, string_or_list, text_or_text_items,
};
use crate::{Protocol, RequestOptions, TranslateError};

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

pub(super) fn assistant_parts(v: Option<&Value>, param: &str) -> Result<Vec<Part>, TranslateError> {
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

    o.insert("messages".into(), Value::Array(render_messages(req)));
    if !req.tools.is_empty() {
        o.insert(
            "tools".into(),
            Value::Array(req.tools.iter().map(tool_json).collect()),
        );
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

/// The system prompt as the first message, then the conversation.
fn render_messages(req: &ChatRequest) -> Vec<Value> {
    let mut messages = Vec::with_capacity(req.messages.len() + 1);
    if let Some(system) = &req.system {
        messages.push(json!({"role": "system", "content": system}));
    }
    messages.extend(req.messages.iter().map(|m| match m {
        Message::User { content } => json!({"role": "user", "content": user_content_json(content)}),
        Message::Assistant { content, tool_calls } => assistant_json(content, tool_calls),
        Message::Tool(r) => {
            json!({"role": "tool", "tool_call_id": r.tool_call_id, "content": r.content})
        }
        Message::System(text) => json!({"role": "system", "content": text}),
    }));
    messages
}

/// An assistant message: its non-empty texts (one as a string, several as text parts, none as
/// `null`) and its tool calls.
fn assistant_json(content: &[Part], tool_calls: &[ToolCall]) -> Value {
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

fn tool_json(t: &Tool) -> Value {
    let mut f = Map::new();
    f.insert("name".into(), json!(t.name));
    if let Some(d) = &t.description {
        f.insert("description".into(), json!(d));
    }
    if let Some(p) = &t.parameters {
        f.insert("parameters".into(), p.clone());
    }
    json!({"type": "function", "function": f})
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

pub(super) fn tool_call_json(c: &ToolCall) -> Value {
    json!({"id": c.id, "type": "function", "function": {"name": c.name, "arguments": c.arguments}})
}
