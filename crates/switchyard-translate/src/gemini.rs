//! Gemini (`generateContent` / `streamGenerateContent?alt=sse`) adapter.

use std::collections::HashMap;

use bytes::Bytes;
use serde_json::{json, Map, Value};
use switchyard_core::error_body::{default_type_for_status, normalize_upstream_error, ErrorDetail};

use crate::canonical::{
    ChatRequest, ChatResponse, ErrorInfo, FinishReason, MediaSource, Message, Part, StreamEvent, Tool,
    ToolCall, ToolChoice, ToolResult, Usage,
};
use crate::json::{
    arguments_object, checked_arguments, count, join, object, opt_array, opt_f64, opt_object, opt_str,
    opt_u32, parse_object, req_array, req_str, Obj,
};
use crate::openai::data_frame;
use crate::{Protocol, RequestOptions, ResponseContext, TranslateError};

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

/// The id given to the `n`-th function call that has none (Gemini calls historically carry no ids).
fn synthetic_id(n: usize) -> String {
    format!("call_{n}")
}

/// Reads a field by its camelCase name or, as the REST API also accepts, its snake_case name.
fn field<'a>(o: &'a Obj, camel: &str, snake: &str) -> Option<&'a Value> {
    o.get(camel).or_else(|| o.get(snake))
}

// ---------------------------------------------------------------------------------------------------
// Requests: Gemini body -> canonical (the /genai ingress)

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

    let mut calls: Vec<PendingCall> = Vec::new();
    for (i, c) in req_array(o.get("contents"), "contents")?.iter().enumerate() {
        let p = format!("contents[{i}]");
        let co = object(c, &p)?;
        let role = opt_str(co.get("role"), &join(&p, "role"))?.unwrap_or("user");
        let parts = req_array(co.get("parts"), &join(&p, "parts"))?;
        let mut content = Vec::new();
        let mut tool_calls = Vec::new();
        for (j, part) in parts.iter().enumerate() {
            let pp = format!("{p}.parts[{j}]");
            let po = object(part, &pp)?;
            if let Some(t) = opt_str(po.get("text"), &join(&pp, "text"))? {
                if po.get("thought").and_then(Value::as_bool) != Some(true) {
                    content.push(Part::Text(t.to_owned()));
                }
            } else if let Some(d) =
                opt_object(field(po, "inlineData", "inline_data"), &join(&pp, "inlineData"))?
            {
                let dp = join(&pp, "inlineData");
                let media_type =
                    req_str(field(d, "mimeType", "mime_type"), &join(&dp, "mimeType"))?.to_owned();
                let data = req_str(d.get("data"), &join(&dp, "data"))?.to_owned();
                content.push(media_part(MediaSource::Base64 { media_type, data }));
            } else if let Some(f) = opt_object(field(po, "fileData", "file_data"), &join(&pp, "fileData"))? {
                let fp = join(&pp, "fileData");
                let uri = req_str(field(f, "fileUri", "file_uri"), &join(&fp, "fileUri"))?;
                let mime = opt_str(field(f, "mimeType", "mime_type"), &join(&fp, "mimeType"))?;
                let src = MediaSource::Url(uri.to_owned());
                content.push(match mime {
                    Some(m) if !m.starts_with("image/") => Part::Document {
                        source: src,
                        filename: None,
                    },
                    _ => Part::Image(src),
                });
            } else if let Some(fc) = opt_object(
                field(po, "functionCall", "function_call"),
                &join(&pp, "functionCall"),
            )? {
                let fp = join(&pp, "functionCall");
                let name = req_str(fc.get("name"), &join(&fp, "name"))?.to_owned();
                let args = match fc.get("args") {
                    None | Some(Value::Null) => Value::Object(Map::new()),
                    Some(v @ Value::Object(_)) => v.clone(),
                    Some(_) => return Err(TranslateError::invalid(join(&fp, "args"), "must be an object")),
                };
                let id = match opt_str(fc.get("id"), &join(&fp, "id"))? {
                    Some(id) if !id.is_empty() => id.to_owned(),
                    _ => synthetic_id(calls.len()),
                };
                calls.push(PendingCall {
                    id: id.clone(),
                    name: name.clone(),
                    answered: false,
                });
                tool_calls.push(ToolCall {
                    id,
                    name,
                    arguments: args.to_string(),
                });
            } else if let Some(fr) = opt_object(
                field(po, "functionResponse", "function_response"),
                &join(&pp, "functionResponse"),
            )? {
                let fp = join(&pp, "functionResponse");
                let name = req_str(fr.get("name"), &join(&fp, "name"))?;
                let given_id = opt_str(fr.get("id"), &join(&fp, "id"))?.filter(|s| !s.is_empty());
                // Match by id when there is one, else the earliest unanswered call of that function.
                let call = calls
                    .iter_mut()
                    .find(|c| !c.answered && given_id.map_or(c.name == name, |id| c.id == id))
                    .ok_or_else(|| {
                        TranslateError::invalid(
                            join(&fp, "name"),
                            "does not answer a functionCall of an earlier model turn",
                        )
                    })?;
                call.answered = true;
                req.messages.push(Message::Tool(ToolResult {
                    tool_call_id: call.id.clone(),
                    content: response_text(fr.get("response")),
                    is_error: false,
                }));
            } else if po.contains_key("thoughtSignature") || po.contains_key("thought") {
                // a bare thought signature part carries nothing translatable
            } else {
                return Err(TranslateError::unsupported(pp, "unsupported part"));
            }
        }
        match role {
            "user" => {
                if !content.is_empty() {
                    req.messages.push(Message::User { content });
                }
            }
            "model" => req.messages.push(Message::Assistant { content, tool_calls }),
            _ => {
                return Err(TranslateError::invalid(
                    join(&p, "role"),
                    "must be \"user\" or \"model\"",
                ))
            }
        }
    }

    if let Some(tools) = opt_array(o.get("tools"), "tools")? {
        for (i, t) in tools.iter().enumerate() {
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
                let fo = object(d, &fp)?;
                let parameters = match opt_object(
                    field(fo, "parametersJsonSchema", "parameters_json_schema"),
                    &join(&fp, "parametersJsonSchema"),
                )? {
                    Some(s) => Some(Value::Object(s.clone())),
                    None => opt_object(fo.get("parameters"), &join(&fp, "parameters"))?.map(|s| {
                        let mut v = Value::Object(s.clone());
                        lowercase_types(&mut v);
                        v
                    }),
                };
                req.tools.push(Tool {
                    name: req_str(fo.get("name"), &join(&fp, "name"))?.to_owned(),
                    description: opt_str(fo.get("description"), &join(&fp, "description"))?
                        .map(str::to_owned),
                    parameters,
                });
            }
        }
    }
    if let Some(tc) = opt_object(field(&o, "toolConfig", "tool_config"), "toolConfig")? {
        if let Some(fc) = opt_object(
            field(tc, "functionCallingConfig", "function_calling_config"),
            "toolConfig.functionCallingConfig",
        )? {
            let allowed = opt_array(
                field(fc, "allowedFunctionNames", "allowed_function_names"),
                "toolConfig.functionCallingConfig.allowedFunctionNames",
            )?;
            let only = match allowed.map(Vec::as_slice) {
                Some([Value::String(name)]) => Some(name.clone()),
                _ => None,
            };
            req.tool_choice = match opt_str(fc.get("mode"), "toolConfig.functionCallingConfig.mode")? {
                None | Some("AUTO" | "MODE_UNSPECIFIED") => Some(ToolChoice::Auto),
                Some("NONE") => Some(ToolChoice::None),
                Some("ANY" | "VALIDATED") => Some(only.map_or(ToolChoice::Required, ToolChoice::Named)),
                Some(_) => {
                    return Err(TranslateError::invalid(
                        "toolConfig.functionCallingConfig.mode",
                        "must be one of AUTO, ANY, NONE",
                    ))
                }
            };
        }
    }
    if let Some(g) = opt_object(
        field(&o, "generationConfig", "generation_config"),
        "generationConfig",
    )? {
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
    }
    req.extras = o
        .into_iter()
        .filter(|(k, _)| !KNOWN_FIELDS.contains(&k.as_str()))
        .collect();
    Ok(req)
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
fn response_text(v: Option<&Value>) -> String {
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
fn lowercase_types(v: &mut Value) {
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

// ---------------------------------------------------------------------------------------------------
// Requests: canonical -> Gemini body (the model goes in the URL, not the body)

pub(crate) fn render_request(req: &ChatRequest, _opts: &RequestOptions) -> Value {
    let mut names: HashMap<&str, &str> = HashMap::new();
    let mut turns: Vec<(&'static str, Vec<Value>)> = Vec::new();
    for m in &req.messages {
        let (role, parts) = match m {
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
        };
        if parts.is_empty() {
            continue;
        }
        match turns.last_mut() {
            Some((last, existing)) if *last == role => existing.extend(parts),
            _ => turns.push((role, parts)),
        }
    }
    let contents: Vec<Value> = turns
        .into_iter()
        .map(|(role, mut parts)| {
            parts.sort_by_key(|p| p.get("functionResponse").is_none());
            json!({"role": role, "parts": parts})
        })
        .collect();

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
fn guess_mime(url: &str) -> Option<&'static str> {
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

// ---------------------------------------------------------------------------------------------------
// Responses

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

fn parse_usage(u: &Obj) -> Usage {
    let prompt = count(u.get("promptTokenCount"));
    let cached = count(u.get("cachedContentTokenCount")).min(prompt);
    let thoughts = count(u.get("thoughtsTokenCount"));
    Usage {
        input: prompt - cached,
        output: count(u.get("candidatesTokenCount")) + thoughts,
        cache_read: cached,
        cache_write: 0,
        reasoning: thoughts,
    }
}

fn usage_json(u: &Usage) -> Value {
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

fn response_id(ctx: &ResponseContext, upstream: Option<&str>) -> String {
    if !ctx.id_hint.is_empty() {
        ctx.id_hint.clone()
    } else {
        upstream.map_or_else(|| ctx.created.to_string(), str::to_owned)
    }
}

fn function_call_parts(calls: &[ToolCall]) -> Result<Vec<Value>, TranslateError> {
    calls
        .iter()
        .enumerate()
        .map(|(j, c)| {
            let args = arguments_object(&c.arguments).ok_or_else(|| {
                TranslateError::upstream(
                    format!("tool_calls[{j}].function.arguments"),
                    "the upstream's tool call arguments are not a JSON object",
                )
            })?;
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

// ---------------------------------------------------------------------------------------------------
// Errors

/// HTTP status for a Google RPC status name.
pub(crate) fn status_for_rpc(s: &str) -> Option<u16> {
    Some(match s {
        "INVALID_ARGUMENT" | "FAILED_PRECONDITION" | "OUT_OF_RANGE" => 400,
        "UNAUTHENTICATED" => 401,
        "PERMISSION_DENIED" => 403,
        "NOT_FOUND" => 404,
        "ALREADY_EXISTS" | "ABORTED" => 409,
        "RESOURCE_EXHAUSTED" => 429,
        "CANCELLED" => 499,
        "INTERNAL" | "UNKNOWN" | "DATA_LOSS" => 500,
        "UNIMPLEMENTED" => 501,
        "UNAVAILABLE" => 503,
        "DEADLINE_EXCEEDED" => 504,
        _ => return None,
    })
}

/// Google RPC status name for an HTTP status.
pub(crate) fn rpc_for_status(status: u16) -> &'static str {
    match status {
        401 => "UNAUTHENTICATED",
        403 => "PERMISSION_DENIED",
        404 => "NOT_FOUND",
        409 => "ABORTED",
        429 => "RESOURCE_EXHAUSTED",
        499 => "CANCELLED",
        501 => "UNIMPLEMENTED",
        502 | 503 | 529 => "UNAVAILABLE",
        504 => "DEADLINE_EXCEEDED",
        400..=499 => "INVALID_ARGUMENT",
        _ => "INTERNAL",
    }
}

pub(crate) fn parse_error(status: u16, body: &[u8]) -> ErrorInfo {
    let parsed: Option<Value> = serde_json::from_slice(body).ok();
    // Without alt=sse, errors can come wrapped in the response array.
    let parsed = match parsed {
        Some(Value::Array(mut items)) if !items.is_empty() => Some(items.swap_remove(0)),
        other => other,
    };
    let inner = parsed
        .as_ref()
        .and_then(|v| v.get("error"))
        .and_then(Value::as_object);
    let Some(inner) = inner.filter(|e| e.get("message").and_then(Value::as_str).is_some()) else {
        return ErrorInfo {
            status,
            detail: normalize_upstream_error(status, body),
        };
    };
    let rpc = inner.get("status").and_then(Value::as_str);
    let status = rpc
        .and_then(status_for_rpc)
        .or_else(|| {
            inner
                .get("code")
                .and_then(Value::as_u64)
                .and_then(|c| u16::try_from(c).ok())
        })
        .filter(|s| (400..=599).contains(s))
        .unwrap_or(status);
    let mut detail = ErrorDetail {
        message: inner
            .get("message")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_owned(),
        error_type: default_type_for_status(status).to_owned(),
        param: None,
        code: rpc.map(str::to_owned),
    };
    if detail.message.contains("exceeds the maximum number of tokens") {
        detail.code = Some("context_length_exceeded".to_owned());
    }
    ErrorInfo { status, detail }
}

pub(crate) fn render_error(e: &ErrorInfo) -> Value {
    json!({"error": {"code": e.status, "message": e.detail.message, "status": rpc_for_status(e.status)}})
}

// ---------------------------------------------------------------------------------------------------
// Streams

#[derive(Debug, Default)]
pub(crate) struct Decoder {
    started: bool,
    finished: bool,
    tools: usize,
}

impl Decoder {
    pub(crate) fn event(&mut self, data: &str, out: &mut Vec<StreamEvent>) {
        if data.trim().is_empty() {
            return;
        }
        let Ok(Value::Object(chunk)) = serde_json::from_str::<Value>(data) else {
            out.push(StreamEvent::Error(crate::openai::malformed_event()));
            return;
        };
        if chunk.contains_key("error") {
            out.push(StreamEvent::Error(parse_error(500, data.as_bytes())));
            return;
        }
        if !self.started {
            self.started = true;
            // Usage known at the start goes first, so message_start can carry the prompt tokens.
            if let Some(u) = chunk.get("usageMetadata").and_then(Value::as_object) {
                out.push(StreamEvent::Usage(parse_usage(u)));
            }
            out.push(StreamEvent::Start);
        }
        let candidate = chunk
            .get("candidates")
            .and_then(Value::as_array)
            .and_then(|c| c.first());
        let parts = candidate
            .and_then(|c| c.get("content"))
            .and_then(|c| c.get("parts"))
            .and_then(Value::as_array);
        for part in parts.into_iter().flatten() {
            if let Some(t) = part.get("text").and_then(Value::as_str) {
                if !t.is_empty() && part.get("thought").and_then(Value::as_bool) != Some(true) {
                    out.push(StreamEvent::TextDelta(t.to_owned()));
                }
            } else if let Some(fc) = part.get("functionCall") {
                let index = self.tools;
                self.tools += 1;
                let id = fc
                    .get("id")
                    .and_then(Value::as_str)
                    .filter(|s| !s.is_empty())
                    .map_or_else(|| synthetic_id(index), str::to_owned);
                let name = fc
                    .get("name")
                    .and_then(Value::as_str)
                    .unwrap_or_default()
                    .to_owned();
                out.push(StreamEvent::ToolCallStart { index, id, name });
                out.push(StreamEvent::ToolCallArgsDelta {
                    index,
                    fragment: fc
                        .get("args")
                        .filter(|a| !a.is_null())
                        .map_or_else(|| "{}".to_owned(), Value::to_string),
                });
            }
        }
        let reason = match candidate
            .and_then(|c| c.get("finishReason"))
            .and_then(Value::as_str)
        {
            Some(r) => Some(finish_from_gemini(r)),
            None if candidate.is_none()
                && chunk
                    .get("promptFeedback")
                    .and_then(|f| f.get("blockReason"))
                    .is_some() =>
            {
                Some(FinishReason::ContentFilter)
            }
            None => None,
        };
        if let Some(mut reason) = reason {
            if reason == FinishReason::Stop && self.tools > 0 {
                reason = FinishReason::ToolCalls;
            }
            self.finished = true;
            out.push(StreamEvent::Finish { reason });
        }
        if let Some(u) = chunk.get("usageMetadata").and_then(Value::as_object) {
            out.push(StreamEvent::Usage(parse_usage(u)));
        }
    }

    /// Gemini streams have no end marker: the stream is complete when a `finishReason` was seen.
    pub(crate) fn finish(&mut self, out: &mut Vec<StreamEvent>) {
        if self.finished {
            out.push(StreamEvent::Done);
        } else {
            out.push(StreamEvent::Error(crate::stream::cut_error()));
        }
    }
}

/// Writes Gemini stream chunks. Function calls are whole parts in Gemini, so argument fragments are
/// collected and each call is sent once complete.
#[derive(Debug)]
pub(crate) struct Encoder {
    response_id: String,
    model: String,
    pending: Vec<ToolCall>,
    by_index: HashMap<usize, usize>,
    finish: Option<FinishReason>,
    usage: Option<Usage>,
}

impl Encoder {
    pub(crate) fn new(ctx: &ResponseContext) -> Encoder {
        Encoder {
            response_id: response_id(ctx, None),
            model: ctx.model.clone(),
            pending: Vec::new(),
            by_index: HashMap::new(),
            finish: None,
            usage: None,
        }
    }

    fn chunk(&self, parts: Vec<Value>, finish: Option<FinishReason>) -> Bytes {
        let mut candidate = Map::new();
        candidate.insert("content".into(), json!({"role": "model", "parts": parts}));
        if let Some(r) = finish {
            candidate.insert("finishReason".into(), json!(finish_to_gemini(r)));
        }
        candidate.insert("index".into(), json!(0));
        let mut o = Map::new();
        o.insert("candidates".into(), json!([candidate]));
        if finish.is_some() {
            if let Some(u) = &self.usage {
                o.insert("usageMetadata".into(), usage_json(u));
            }
        }
        o.insert("modelVersion".into(), json!(self.model));
        o.insert("responseId".into(), json!(self.response_id));
        data_frame(&Value::Object(o))
    }

    /// Completed calls as parts; an error frame instead when arguments are not a JSON object.
    fn take_pending(&mut self) -> Result<Vec<Value>, Bytes> {
        let calls = std::mem::take(&mut self.pending);
        self.by_index.clear();
        function_call_parts(&calls)
            .map_err(|e| data_frame(&render_error(&ErrorInfo::new(502, "server_error", e.to_string()))))
    }

    /// Returns `true` when the stream had to end with an error.
    pub(crate) fn encode(&mut self, ev: StreamEvent, out: &mut Vec<Bytes>) -> bool {
        match ev {
            StreamEvent::Start | StreamEvent::Ping => {}
            StreamEvent::TextDelta(t) => {
                if !self.pending.is_empty() {
                    match self.take_pending() {
                        Ok(parts) => out.push(self.chunk(parts, None)),
                        Err(frame) => {
                            out.push(frame);
                            return true;
                        }
                    }
                }
                if !t.is_empty() {
                    out.push(self.chunk(vec![json!({"text": t})], None));
                }
            }
            StreamEvent::ToolCallStart { index, id, name } => {
                self.by_index.insert(index, self.pending.len());
                self.pending.push(ToolCall {
                    id,
                    name,
                    arguments: String::new(),
                });
            }
            StreamEvent::ToolCallArgsDelta { index, fragment } => {
                if let Some(&i) = self.by_index.get(&index) {
                    self.pending[i].arguments.push_str(&fragment);
                }
            }
            StreamEvent::Finish { reason } => self.finish = Some(reason),
            StreamEvent::Usage(u) => self.usage = Some(u),
            StreamEvent::Done => {
                let mut parts = match self.take_pending() {
                    Ok(parts) => parts,
                    Err(frame) => {
                        out.push(frame);
                        return true;
                    }
                };
                if parts.is_empty() {
                    parts.push(json!({"text": ""}));
                }
                out.push(self.chunk(parts, Some(self.finish.unwrap_or(FinishReason::Stop))));
            }
            StreamEvent::Error(e) => {
                out.push(data_frame(&render_error(&e)));
                return true;
            }
        }
        false
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finish_reason_table() {
        for (s, r) in [
            ("STOP", FinishReason::Stop),
            ("MAX_TOKENS", FinishReason::Length),
            ("SAFETY", FinishReason::ContentFilter),
            ("RECITATION", FinishReason::ContentFilter),
            ("BLOCKLIST", FinishReason::ContentFilter),
            ("PROHIBITED_CONTENT", FinishReason::ContentFilter),
            ("SPII", FinishReason::ContentFilter),
            ("MALFORMED_FUNCTION_CALL", FinishReason::Stop),
            ("OTHER", FinishReason::Stop),
        ] {
            assert_eq!(finish_from_gemini(s), r, "{s}");
        }
        assert_eq!(finish_to_gemini(FinishReason::Stop), "STOP");
        assert_eq!(finish_to_gemini(FinishReason::ToolCalls), "STOP");
        assert_eq!(finish_to_gemini(FinishReason::Length), "MAX_TOKENS");
        assert_eq!(finish_to_gemini(FinishReason::ContentFilter), "SAFETY");
    }

    #[test]
    fn error_status_table() {
        for (rpc, status, openai_type) in [
            ("INVALID_ARGUMENT", 400, "invalid_request_error"),
            ("FAILED_PRECONDITION", 400, "invalid_request_error"),
            ("UNAUTHENTICATED", 401, "authentication_error"),
            ("PERMISSION_DENIED", 403, "permission_error"),
            ("NOT_FOUND", 404, "invalid_request_error"),
            ("RESOURCE_EXHAUSTED", 429, "rate_limit_error"),
            ("INTERNAL", 500, "server_error"),
            ("UNAVAILABLE", 503, "server_error"),
            ("DEADLINE_EXCEEDED", 504, "timeout_error"),
        ] {
            let body = json!({"error": {"code": status, "message": "m", "status": rpc}}).to_string();
            let e = parse_error(status, body.as_bytes());
            assert_eq!(
                (e.status, e.detail.error_type.as_str()),
                (status, openai_type),
                "{rpc}"
            );
            assert_eq!(e.detail.code.as_deref(), Some(rpc));
            if rpc != "FAILED_PRECONDITION" {
                assert_eq!(rpc_for_status(status), rpc);
            }
        }
        let e = parse_error(
            400,
            br#"[{"error":{"code":429,"message":"quota","status":"RESOURCE_EXHAUSTED"}}]"#,
        );
        assert_eq!(e.status, 429);
        let e = parse_error(502, b"<html>bad gateway</html>");
        assert_eq!(e.status, 502);
        assert_eq!(rpc_for_status(502), "UNAVAILABLE");
        assert_eq!(rpc_for_status(422), "INVALID_ARGUMENT");
    }

    #[test]
    fn schema_types_are_lowercased() {
        let mut v = json!({"type": "OBJECT", "properties": {"type": {"type": "STRING"}, "n": {"type": "ARRAY", "items": {"type": "INTEGER"}}}});
        lowercase_types(&mut v);
        assert_eq!(
            v,
            json!({"type": "object", "properties": {"type": {"type": "string"}, "n": {"type": "array", "items": {"type": "integer"}}}})
        );
    }

    #[test]
    fn tool_results_unwrap_their_wrapping() {
        assert_eq!(response_text(Some(&json!({"content": "sunny"}))), "sunny");
        assert_eq!(response_text(Some(&json!({"temp": 21}))), r#"{"temp":21}"#);
        assert_eq!(response_text(None), "");
    }

    #[test]
    fn mime_guessing() {
        assert_eq!(guess_mime("https://x/y/cat.JPG?size=2"), Some("image/jpeg"));
        assert_eq!(guess_mime("https://x/doc.pdf"), Some("application/pdf"));
        assert_eq!(guess_mime("https://x/blob"), None);
    }
}
