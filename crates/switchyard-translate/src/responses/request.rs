//! Requests: a Responses API body (`POST /v1/responses`, as Codex CLI sends it) to canonical.

use serde_json::{json, Map, Value};

use crate::canonical::{ChatRequest, MediaSource, Message, Part, Tool, ToolCall, ToolChoice, ToolResult};
use crate::json::{
    join, object, opt_array, opt_bool, opt_f64, opt_object, opt_str, opt_u32, parse_object, req_str,
};
use crate::{Protocol, TranslateError};

/// Everything else at the top level (`store`, `include`, `prompt_cache_key`, `client_metadata`,
/// `service_tier`, `truncation`, ...: server-side state and caching hints) is dropped without an error.
pub(crate) fn parse_request(body: &[u8]) -> Result<ChatRequest, TranslateError> {
    let o = parse_object(body)?;
    if o.get("previous_response_id").is_some_and(|v| !v.is_null()) {
        return Err(TranslateError::unsupported(
            "previous_response_id",
            "this provider serves chat completions, which keep no server-side state: send the whole conversation in `input`",
        ));
    }
    let mut req = ChatRequest {
        model: Some(req_str(o.get("model"), "model")?.to_owned()),
        // `reasoning_effort` / `response_format` below are chat-completions fields.
        extras_protocol: Some(Protocol::OpenAi),
        ..ChatRequest::default()
    };
    let mut system = Vec::new();
    if let Some(i) = opt_str(o.get("instructions"), "instructions")? {
        if !i.is_empty() {
            system.push(i.to_owned());
        }
    }
    match o.get("input") {
        None | Some(Value::Null) => {}
        Some(Value::String(s)) => req.messages.push(Message::User {
            content: vec![Part::Text(s.clone())],
        }),
        Some(Value::Array(items)) => {
            for (i, item) in items.iter().enumerate() {
                input_item(item, &format!("input[{i}]"), &mut system, &mut req.messages)?;
            }
        }
        Some(_) => return Err(TranslateError::invalid("input", "must be a string or an array")),
    }
    req.system = (!system.is_empty()).then(|| system.join("\n"));
    req.tools = parse_tools(o.get("tools"))?;
    req.tool_choice = parse_tool_choice(o.get("tool_choice"))?;
    req.parallel_tool_calls = opt_bool(o.get("parallel_tool_calls"), "parallel_tool_calls")?;
    req.max_tokens = opt_u32(o.get("max_output_tokens"), "max_output_tokens")?;
    req.temperature = opt_f64(o.get("temperature"), "temperature")?;
    req.top_p = opt_f64(o.get("top_p"), "top_p")?;
    req.stream = opt_bool(o.get("stream"), "stream")?.unwrap_or(false);
    req.include_usage = true;
    req.user = match opt_str(o.get("safety_identifier"), "safety_identifier")? {
        Some(u) => Some(u.to_owned()),
        None => opt_str(o.get("user"), "user")?.map(str::to_owned),
    };
    if let Some(md) = opt_object(o.get("metadata"), "metadata")? {
        req.metadata = md.clone();
    }
    req.extras = extras(&o)?;
    Ok(req)
}

/// The chat-completions fields Responses fields map to: `reasoning.effort` → `reasoning_effort`,
/// `text.format` → `response_format`.
fn extras(o: &Map<String, Value>) -> Result<Map<String, Value>, TranslateError> {
    let mut extras = Map::new();
    if let Some(r) = opt_object(o.get("reasoning"), "reasoning")? {
        if let Some(effort) = opt_str(r.get("effort"), "reasoning.effort")? {
            extras.insert("reasoning_effort".into(), json!(effort));
        }
    }
    let format = opt_object(o.get("text"), "text")?.and_then(|t| t.get("format"));
    if let Some(f) = opt_object(format, "text.format")? {
        match opt_str(f.get("type"), "text.format.type")? {
            Some("json_schema") => {
                let mut schema = f.clone();
                schema.remove("type");
                extras.insert(
                    "response_format".into(),
                    json!({"type": "json_schema", "json_schema": schema}),
                );
            }
            Some("json_object") => {
                extras.insert("response_format".into(), json!({"type": "json_object"}));
            }
            _ => {}
        }
    }
    Ok(extras)
}

/// One `input` item: a message (`type` may be left out), a function call or its output. Reasoning
/// items and items of hosted tools are dropped: a chat completions upstream cannot take them.
fn input_item(
    item: &Value,
    p: &str,
    system: &mut Vec<String>,
    messages: &mut Vec<Message>,
) -> Result<(), TranslateError> {
    let io = object(item, p)?;
    match opt_str(io.get("type"), &join(p, "type"))?.unwrap_or("message") {
        "message" => message_item(io, p, system, messages),
        "function_call" => {
            let call = ToolCall {
                id: req_str(io.get("call_id"), &join(p, "call_id"))?.to_owned(),
                name: req_str(io.get("name"), &join(p, "name"))?.to_owned(),
                arguments: opt_str(io.get("arguments"), &join(p, "arguments"))?
                    .unwrap_or_default()
                    .to_owned(),
            };
            crate::json::check_arguments(&call.arguments, &join(p, "arguments"))?;
            // Consecutive calls are one assistant turn (parallel calls).
            match messages.last_mut() {
                Some(Message::Assistant { tool_calls, .. }) => tool_calls.push(call),
                _ => messages.push(Message::Assistant {
                    content: Vec::new(),
                    tool_calls: vec![call],
                }),
            }
            Ok(())
        }
        "function_call_output" => {
            let id = req_str(io.get("call_id"), &join(p, "call_id"))?;
            let answered = messages.iter().any(|m| match m {
                Message::Assistant { tool_calls, .. } => tool_calls.iter().any(|c| c.id == id),
                _ => false,
            });
            if !answered {
                return Err(TranslateError::invalid(
                    join(p, "call_id"),
                    "does not match a function_call earlier in input",
                ));
            }
            messages.push(Message::Tool(ToolResult {
                tool_call_id: id.to_owned(),
                content: output_text(io.get("output"), &join(p, "output"))?,
                is_error: false,
            }));
            Ok(())
        }
        // reasoning, web_search_call, local_shell_call, custom tool calls, ...
        _ => Ok(()),
    }
}

/// A message item: system and developer messages join the system prompt while nothing else came
/// before them, and stay in place after that.
fn message_item(
    io: &Map<String, Value>,
    p: &str,
    system: &mut Vec<String>,
    messages: &mut Vec<Message>,
) -> Result<(), TranslateError> {
    let role_param = join(p, "role");
    let role = req_str(io.get("role"), &role_param)?;
    let parts = content_parts(io.get("content"), &join(p, "content"))?;
    match role {
        "user" => messages.push(Message::User { content: parts }),
        "assistant" => messages.push(Message::Assistant {
            content: parts,
            tool_calls: Vec::new(),
        }),
        "system" | "developer" => {
            let text = parts
                .iter()
                .filter_map(|p| match p {
                    Part::Text(t) => Some(t.as_str()),
                    _ => None,
                })
                .collect::<Vec<_>>()
                .join("\n");
            if !text.is_empty() {
                if messages.is_empty() {
                    system.push(text);
                } else {
                    messages.push(Message::System(text));
                }
            }
        }
        _ => {
            return Err(TranslateError::invalid(
                role_param,
                "must be one of user, assistant, system, developer",
            ))
        }
    }
    Ok(())
}

/// A message's content: a string, or `input_text` / `output_text` / `input_image` parts (refusals
/// and files without inline data are dropped).
fn content_parts(v: Option<&Value>, p: &str) -> Result<Vec<Part>, TranslateError> {
    let items = match v {
        None | Some(Value::Null) => return Ok(Vec::new()),
        Some(Value::String(s)) => return Ok(vec![Part::Text(s.clone())]),
        Some(Value::Array(items)) => items,
        Some(_) => return Err(TranslateError::invalid(p, "must be a string or an array")),
    };
    let mut parts = Vec::with_capacity(items.len());
    for (j, item) in items.iter().enumerate() {
        let ip = format!("{p}[{j}]");
        let io = object(item, &ip)?;
        match req_str(io.get("type"), &join(&ip, "type"))? {
            "input_text" | "output_text" | "text" => {
                parts.push(Part::Text(
                    req_str(io.get("text"), &join(&ip, "text"))?.to_owned(),
                ));
            }
            "input_image" => {
                let Some(url) = opt_str(io.get("image_url"), &join(&ip, "image_url"))? else {
                    return Err(TranslateError::unsupported(
                        join(&ip, "file_id"),
                        "uploaded file ids cannot be translated; send image_url",
                    ));
                };
                let source = MediaSource::from_url(url).ok_or_else(|| {
                    TranslateError::invalid(join(&ip, "image_url"), "must be a URL or a base64 data URL")
                })?;
                parts.push(Part::Image(source));
            }
            _ => {} // refusal, input_file without data, ...
        }
    }
    Ok(parts)
}

/// A function call's `output`: a string, or content parts whose text is joined with `\n`.
fn output_text(v: Option<&Value>, p: &str) -> Result<String, TranslateError> {
    Ok(content_parts(v, p)?
        .into_iter()
        .filter_map(|part| match part {
            Part::Text(t) => Some(t),
            _ => None,
        })
        .collect::<Vec<_>>()
        .join("\n"))
}

/// Function tools (`{"type":"function","name","parameters",...}`, flat, unlike chat completions').
/// Hosted and custom tools (`web_search`, `namespace`, `local_shell`, `custom`, ...) are dropped.
fn parse_tools(v: Option<&Value>) -> Result<Vec<Tool>, TranslateError> {
    let mut out = Vec::new();
    for (i, t) in opt_array(v, "tools")?.into_iter().flatten().enumerate() {
        let p = format!("tools[{i}]");
        let to = object(t, &p)?;
        if opt_str(to.get("type"), &join(&p, "type"))? != Some("function") {
            continue;
        }
        out.push(Tool {
            name: req_str(to.get("name"), &join(&p, "name"))?.to_owned(),
            description: opt_str(to.get("description"), &join(&p, "description"))?.map(str::to_owned),
            parameters: opt_object(to.get("parameters"), &join(&p, "parameters"))?
                .map(|m| Value::Object(m.clone())),
        });
    }
    Ok(out)
}

fn parse_tool_choice(v: Option<&Value>) -> Result<Option<ToolChoice>, TranslateError> {
    Ok(match v {
        None | Some(Value::Null) => None,
        Some(Value::String(s)) => match s.as_str() {
            "none" => Some(ToolChoice::None),
            "required" => Some(ToolChoice::Required),
            _ => Some(ToolChoice::Auto),
        },
        Some(Value::Object(o)) => match (o.get("type").and_then(Value::as_str), o.get("name")) {
            (Some("function"), Some(Value::String(name))) => Some(ToolChoice::Named(name.clone())),
            // Hosted-tool choices and allowed-tools lists: leave the choice to the model.
            _ => Some(ToolChoice::Auto),
        },
        Some(_) => {
            return Err(TranslateError::invalid(
                "tool_choice",
                "must be a string or an object",
            ))
        }
    })
}
