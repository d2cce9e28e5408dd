//! Requests: Gemini body to canonical (the `/genai` ingress) and canonical to Gemini body (the model goes in the URL, not the body).

use std::collections::HashMap;

use serde_json::{json, Map, Value};

use super::{field, synthetic_id};
use crate::canonical::{ChatRequest, MediaSource, Message, Part, Tool, ToolCall, ToolChoice, ToolResult};
use crate::json::{
    checked_arguments, join, merge_turns, object, opt_array, opt_f64, opt_object, opt_str, opt_u32,
    parse_object, req_array, req_str, Obj,
};
use crate::{Protocol, RequestOptions, TranslateError};

/// Top-level request fields this adapter translates; everything else is kept in `extras`.
const KNOWN_FIELDS: &[&str] = &[
    "contents",
    "systemInstruction",
    "system_instruction",
    "tools",
    "toolConfig",
    "tool_config",
    "generationConfig",
    "generation_config",
    "model",
];

struct PendingCall {
    id: String,
    name: String,
    answered: bool,
}

pub(crate) fn parse_request(body: &[u8]) -> Result<ChatRequest, TranslateError> {
    let o = parse_object(body)?;
    let mut req = ChatRequest {
        model: opt_str(o.get("model"), "model")?.map(str::to_owned),
        extras_protocol: Some(Protocol::Gemini),
        include_usage: true,
        ..ChatRequest::default()
    };
    if let Some(si) = opt_object(
        field(&o, "systemInstruction", "system_instruction"),
        "systemInstruction",
    )? {
        let texts = text_parts(si, "systemInstruction")?;
        if !texts.is_empty() {
            req.system = Some(texts.join("\n"));
        }
    }
    req.messages = parse_contents(o.get("contents"))?;
    req.tools = parse_tools(o.get("tools"))?;
    if let Some(tc) = opt_object(field(&o, "toolConfig", "tool_config"), "toolConfig")? {
        if let Some(fc) = opt_object(
            field(tc, "functionCallingConfig", "function_calling_config"),
            "toolConfig.functionCallingConfig",
        )? {
            req.tool_choice = Some(parse_function_calling_config(fc)?);
        }
    }
    if let Some(g) = opt_object(
        field(&o, "generationConfig", "generation_config"),
        "generationConfig",
    )? {
        parse_generation_config(g, &mut req)?;
    }
    req.extras = o
        .into_iter()
        .filter(|(k, _)| !KNOWN_FIELDS.contains(&k.as_str()))
        .collect();
    Ok(req)
}

/// What one part of a content turn contributes.
enum ContentPart {
    /// Text or media of the turn.
    Content(Part),
    /// A function call (model turns).
    Call(ToolCall),
    /// A function response: becomes a tool message placed before the rest of its turn.
    Result(ToolResult),
    /// Nothing translatable (thoughts, thought signatures).
    Skip,
}

/// `contents`: user and model turns; function responses answer the calls of earlier model turns.
fn parse_contents(v: Option<&Value>) -> Result<Vec<Message>, TranslateError> {
    let mut messages = Vec::new();
    let mut calls: Vec<PendingCall> = Vec::new();
    for (i, c) in req_array(v, "contents")?.iter().enumerate() {
        let p = format!("contents[{i}]");
        let co = object(c, &p)?;
        let role = opt_str(co.get("role"), &join(&p, "role"))?.unwrap_or("user");
        let parts = req_array(co.get("parts"), &join(&p, "parts"))?;
        let mut content = Vec::new();
        let mut tool_calls = Vec::new();
        for (j, part) in parts.iter().enumerate() {
            let pp = format!("{p}.parts[{j}]");
            match parse_part(object(part, &pp)?, &pp, &mut calls)? {
                ContentPart::Content(part) => content.push(part),
                ContentPart::Call(call) => tool_calls.push(call),
                ContentPart::Result(result) => messages.push(Message::Tool(result)),
                ContentPart::Skip => {}
            }
        }
        match role {
            "user" => {
                if !content.is_empty() {
                    messages.push(Message::User { content });
                }
            }
            "model" => messages.push(Message::Assistant { content, tool_calls }),
            _ => {
                return Err(TranslateError::invalid(
                    join(&p, "role"),
                    "must be \"user\" or \"model\"",
                ))
            }
        }
    }
    Ok(messages)
}

fn parse_part(po: &Obj, pp: &str, calls: &mut Vec<PendingCall>) -> Result<ContentPart, TranslateError> {
    Ok(if let Some(t) = opt_str(po.get("text"), &join(pp, "text"))? {
        if po.get("thought").and_then(Value::as_bool) == Some(true) {
            ContentPart::Skip
        } else {
            ContentPart::Content(Part::Text(t.to_owned()))
        }
    } else if let Some(d) = opt_object(field(po, "inlineData", "inline_data"), &join(pp, "inlineData"))? {
        let dp = join(pp, "inlineData");
        let media_type = req_str(field(d, "mimeType", "mime_type"), &join(&dp, "mimeType"))?.to_owned();
        let data = req_str(d.get("data"), &join(&dp, "data"))?.to_owned();
        ContentPart::Content(media_part(MediaSource::Base64 { media_type, data }))
    } else if let Some(f) = opt_object(field(po, "fileData", "file_data"), &join(pp, "fileData"))? {
        ContentPart::Content(file_data_part(f, &join(pp, "fileData"))?)
    } else if let Some(fc) = opt_object(
        field(po, "functionCall", "function_call"),
        &join(pp, "functionCall"),
    )? {
        ContentPart::Call(function_call(fc, &join(pp, "functionCall"), calls)?)
    } else if let Some(fr) = opt_object(
        field(po, "functionResponse", "function_response"),
        &join(pp, "functionResponse"),
    )? {
        ContentPart::Result(function_response(fr, &join(pp, "functionResponse"), calls)?)
    } else if po.contains_key("thoughtSignature") || po.contains_key("thought") {
        ContentPart::Skip // a bare thought signature part carries nothing translatable
    } else {
        return Err(TranslateError::unsupported(pp, "unsupported part"));
    })
}

/// `fileData`: a document when its MIME type says it is not an image, else an image.
fn file_data_part(f: &Obj, fp: &str) -> Result<Part, TranslateError> {
    let uri = req_str(field(f, "fileUri", "file_uri"), &join(fp, "fileUri"))?;
    let mime = opt_str(field(f, "mimeType", "mime_type"), &join(fp, "mimeType"))?;
    let src = MediaSource::Url(uri.to_owned());
    Ok(match mime {
        Some(m) if !m.starts_with("image/") => Part::Document {
            source: src,
            filename: None,
        },
        _ => Part::Image(src),
    })
}

/// A `functionCall`, remembered in `calls` (with a synthetic id when it has none).
fn function_call(fc: &Obj, fp: &str, calls: &mut Vec<PendingCall>) -> Result<ToolCall, TranslateError> {
    let name = req_str(fc.get("name"), &join(fp, "name"))?.to_owned();
    let args = match fc.get("args") {
        None | Some(Value::Null) => Value::Object(Map::new()),
        Some(v @ Value::Object(_)) => v.clone(),
        Some(_) => return Err(TranslateError::invalid(join(fp, "args"), "must be an object")),
    };
    let id = match opt_str(fc.get("id"), &join(fp, "id"))? {
        Some(id) if !id.is_empty() => id.to_owned(),
        _ => synthetic_id(calls.len()),
    };
    calls.push(PendingCall {
        id: id.clone(),
        name: name.clone(),
        answered: false,
    });
    Ok(ToolCall {
        id,
        name,
        arguments: args.to_string(),
    })
}

/// A `functionResponse`: answers the call with its id when it has one, else the earliest unanswered
/// call of that function.
fn function_response(fr: &Obj, fp: &str, calls: &mut [PendingCall]) -> Result<ToolResult, TranslateError> {
    let name = req_str(fr.get("name"), &join(fp, "name"))?;
    let given_id = opt_str(fr.get("id"), &join(fp, "id"))?.filter(|s| !s.is_empty());
    let call = calls
        .iter_mut()
        .find(|c| !c.answered && given_id.map_or(c.name == name, |id| c.id == id))
        .ok_or_else(|| {
            TranslateError::invalid(
                join(fp, "name"),
                "does not answer a functionCall of an earlier model turn",
            )
        })?;
    call.answered = true;
    Ok(ToolResult {
        tool_call_id: call.id.clone(),
        content: response_text(fr.get("response")),
        is_error: false,
    })
}

/// `tools`: only `functionDeclarations` can be translated.
fn parse_tools(v: Option<&Value>) -> Result<Vec<Tool>, TranslateError> {
    let mut out = Vec::new();
    for (i, t) in opt_array(v, "tools")?.into_iter().flatten().enumerate() {
        let p = format!("tools[{i}]");
        let to = object(t, &p)?;
        for key in to.keys() {
            if key != "functionDeclarations" && key != "function_declarations" {
                return Err(TranslateError::unsupported(
                    join(&p, key),
                    "only functionDeclarations can be translated",
                ));
            }
        }
        let dp = join(&p, "functionDeclarations");
        let decls = opt_array(field(to, "functionDeclarations", "function_declarations"), &dp)?;
        for (j, d) in decls.into_iter().flatten().enumerate() {
            let fp = format!("{dp}[{j}]");
            out.push(function_declaration(object(d, &fp)?, &fp)?);
        }
    }
    Ok(out)
}

/// A function declaration; a Gemini `parameters` schema is read with its upper-case types lowered.
fn function_declaration(fo: &Obj, fp: &str) -> Result<Tool, TranslateError> {
    let parameters = match opt_object(
        field(fo, "parametersJsonSchema", "parameters_json_schema"),
        &join(fp, "parametersJsonSchema"),
    )? {
        Some(s) => Some(Value::Object(s.clone())),
        None => opt_object(fo.get("parameters"), &join(fp, "parameters"))?.map(|s| {
            let mut v = Value::Object(s.clone());
            lowercase_types(&mut v);
            v
        }),
    };
    Ok(Tool {
        name: req_str(fo.get("name"), &join(fp, "name"))?.to_owned(),
        description: opt_str(fo.get("description"), &join(fp, "description"))?.map(str::to_owned),
        parameters,
    })
}

/// `toolConfig.functionCallingConfig`: the mode, and one allowed function name as a named choice.
fn parse_function_calling_config(fc: &Obj) -> Result<ToolChoice, TranslateError> {
    let allowed = opt_array(
        field(fc, "allowedFunctionNames", "allowed_function_names"),
        "toolConfig.functionCallingConfig.allowedFunctionNames",
    )?;
    let only = match allowed.map(Vec::as_slice) {
        Some([Value::String(name)]) => Some(name.clone()),
        _ => None,
    };
    match opt_str(fc.get("mode"), "toolConfig.functionCallingConfig.mode")? {
        None | Some("AUTO" | "MODE_UNSPECIFIED") => Ok(ToolChoice::Auto),
        Some("NONE") => Ok(ToolChoice::None),
        Some("ANY" | "VALIDATED") => Ok(only.map_or(ToolChoice::Required, ToolChoice::Named)),
        Some(_) => Err(TranslateError::invalid(
            "toolConfig.functionCallingConfig.mode",
            "must be one of AUTO, ANY, NONE",
        )),
    }
}

/// `generationConfig`: output limit, sampling, stop sequences; more than one candidate is refused.
fn parse_generation_config(g: &Obj, req: &mut ChatRequest) -> Result<(), TranslateError> {
    let gp = |k: &str| format!("generationConfig.{k}");
    req.max_tokens = opt_u32(
        field(g, "maxOutputTokens", "max_output_tokens"),
        &gp("maxOutputTokens"),
    )?;
    req.temperature = opt_f64(g.get("temperature"), &gp("temperature"))?;
    req.top_p = opt_f64(field(g, "topP", "top_p"), &gp("topP"))?;
    req.top_k = opt_u32(field(g, "topK", "top_k"), &gp("topK"))?;
    if let Some(stops) = opt_array(field(g, "stopSequences", "stop_sequences"), &gp("stopSequences"))? {
        for (i, s) in stops.iter().enumerate() {
            req.stop.push(
                s.as_str()
                    .ok_or_else(|| {
                        TranslateError::invalid(
                            format!("generationConfig.stopSequences[{i}]"),
                            "must be a string",
                        )
                    })?
                    .to_owned(),
            );
        }
    }
    if let Some(n) = opt_u32(
        field(g, "candidateCount", "candidate_count"),
        &gp("candidateCount"),
    )? {
        if n != 1 {
            return Err(TranslateError::unsupported(
                gp("candidateCount"),
                "only 1 candidate can be translated",
            ));
        }
    }
    Ok(())
}

fn media_part(src: MediaSource) -> Part {
    match &src {
        MediaSource::Base64 { media_type, .. } if !media_type.starts_with("image/") => Part::Document {
            source: src,
            filename: None,
        },
        _ => Part::Image(src),
    }
}

fn text_parts(content: &Obj, p: &str) -> Result<Vec<String>, TranslateError> {
    let parts = req_array(content.get("parts"), &join(p, "parts"))?;
    let mut out = Vec::new();
    for (i, part) in parts.iter().enumerate() {
        let pp = format!("{p}.parts[{i}]");
        let text = req_str(object(part, &pp)?.get("text"), &join(&pp, "text"))?;
        out.push(text.to_owned());
    }
    Ok(out)
}

/// A `functionResponse.response` as tool-result text: `{"content": "<text>"}` (the wrapping used when
/// rendering) unwraps to the text; any other object is its JSON text.
pub(super) fn response_text(v: Option<&Value>) -> String {
    match v {
        None | Some(Value::Null) => String::new(),
        Some(Value::Object(o)) if o.len() == 1 => match o.get("content") {
            Some(Value::String(s)) => s.clone(),
            _ => Value::Object(o.clone()).to_string(),
        },
        Some(Value::String(s)) => s.clone(),
        Some(v) => v.to_string(),
    }
}

/// Gemini's OpenAPI-style schemas spell types in upper case (`"OBJECT"`); JSON Schema wants lower case.
pub(super) fn lowercase_types(v: &mut Value) {
    match v {
        Value::Object(o) => {
            for (k, child) in o.iter_mut() {
                match child {
                    Value::String(s) if k == "type" => *s = s.to_ascii_lowercase(),
                    _ => lowercase_types(child),
                }
            }
        }
        Value::Array(items) => items.iter_mut().for_each(lowercase_types),
        _ => {}
    }
}

// Requests: canonical -> Gemini body (the model goes in the URL, not the body)

/// The conversation as Gemini contents. Function responses carry the name of the call they answer
/// (Gemini matches them by name, not id).
fn render_contents(messages: &[Message]) -> Vec<Value> {
    let mut names: HashMap<&str, &str> = HashMap::new();
    let mut turns = Vec::with_capacity(messages.len());
    for m in messages {
        turns.push(match m {
            Message::User { content } => ("user", content.iter().filter_map(part_json).collect::<Vec<_>>()),
            Message::Assistant { content, tool_calls } => {
                let mut parts: Vec<Value> = content.iter().filter_map(part_json).collect();
                for c in tool_calls {
                    names.insert(&c.id, &c.name);
                    parts.push(
                        json!({"functionCall": {"name": c.name, "args": checked_arguments(&c.arguments)}}),
                    );
                }
                ("model", parts)
            }
            Message::Tool(r) => {
                let name = names.get(r.tool_call_id.as_str()).copied().unwrap_or_default();
                let response = match serde_json::from_str::<Value>(&r.content) {
                    Ok(v @ Value::Object(_)) => v,
                    _ => json!({"content": r.content}),
                };
                (
                    "user",
                    vec![json!({"functionResponse": {"name": name, "response": response}})],
                )
            }
            // Folded into `system` before rendering (`ChatRequest::fold_system`); empty turns are dropped.
            Message::System(_) => ("user", Vec::new()),
        });
    }
    merge_turns(turns, |p| p.get("functionResponse").is_some())
        .into_iter()
        .map(|(role, parts)| json!({"role": role, "parts": parts}))
        .collect()
}

pub(crate) fn render_request(req: &ChatRequest, _opts: &RequestOptions) -> Value {
    let contents = render_contents(&req.messages);
    let mut o = Map::new();
    if req.extras_protocol == Some(Protocol::Gemini) {
        o.extend(req.extras.clone());
    }
    o.insert("contents".into(), Value::Array(contents));
    if let Some(s) = &req.system {
        o.insert("systemInstruction".into(), json!({"parts": [{"text": s}]}));
    }
    if !req.tools.is_empty() {
        let decls: Vec<Value> = req
            .tools
            .iter()
            .map(|t| {
                let mut d = Map::new();
                d.insert("name".into(), json!(t.name));
                if let Some(desc) = &t.description {
                    d.insert("description".into(), json!(desc));
                }
                if let Some(p) = &t.parameters {
                    // The full-JSON-Schema field: `parameters` rejects additionalProperties, $ref, ...
                    d.insert("parametersJsonSchema".into(), p.clone());
                }
                Value::Object(d)
            })
            .collect();
        o.insert("tools".into(), json!([{"functionDeclarations": decls}]));
        if let Some(tc) = &req.tool_choice {
            let config = match tc {
                ToolChoice::Auto => json!({"mode": "AUTO"}),
                ToolChoice::None => json!({"mode": "NONE"}),
                ToolChoice::Required => json!({"mode": "ANY"}),
                ToolChoice::Named(n) => json!({"mode": "ANY", "allowedFunctionNames": [n]}),
            };
            o.insert("toolConfig".into(), json!({"functionCallingConfig": config}));
        }
    }
    let mut g = Map::new();
    if let Some(n) = req.max_tokens {
        g.insert("maxOutputTokens".into(), json!(n));
    }
    if let Some(t) = req.temperature {
        g.insert("temperature".into(), json!(t));
    }
    if let Some(t) = req.top_p {
        g.insert("topP".into(), json!(t));
    }
    if let Some(k) = req.top_k {
        g.insert("topK".into(), json!(k));
    }
    if !req.stop.is_empty() {
        g.insert("stopSequences".into(), json!(req.stop));
    }
    if !g.is_empty() {
        o.insert("generationConfig".into(), Value::Object(g));
    }
    Value::Object(o)
}

fn part_json(p: &Part) -> Option<Value> {
    let src = match p {
        Part::Text(t) if t.is_empty() => return None,
        Part::Text(t) => return Some(json!({"text": t})),
        Part::Image(src) | Part::Document { source: src, .. } => src,
    };
    Some(match src {
        MediaSource::Base64 { media_type, data } => {
            json!({"inlineData": {"mimeType": media_type, "data": data}})
        }
        MediaSource::Url(u) => {
            let mut f = Map::new();
            if let Some(m) = guess_mime(u) {
                f.insert("mimeType".into(), json!(m));
            }
            f.insert("fileUri".into(), json!(u));
            json!({ "fileData": f })
        }
    })
}

/// Gemini wants a MIME type with `fileData`; guess it from the URL's extension.
pub(super) fn guess_mime(url: &str) -> Option<&'static str> {
    let path = url.split(['?', '#']).next().unwrap_or(url).to_ascii_lowercase();
    let ext = path.rsplit_once('.').map(|(_, e)| e)?;
    Some(match ext {
        "png" => "image/png",
        "jpg" | "jpeg" => "image/jpeg",
        "gif" => "image/gif",
        "webp" => "image/webp",
        "heic" => "image/heic",
        "pdf" => "application/pdf",
        _ => return None,
    })
}
