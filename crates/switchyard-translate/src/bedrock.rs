//! AWS Bedrock Converse (`/model/{modelId}/converse`, `/converse-stream`) adapter.
//!
//! Requests are rendered into the Converse body (the model is in the URL, not the body), responses and
//! `ConverseStream` events are read back into the canonical form. Stream events arrive as
//! event-stream messages (see [`crate::eventstream`]); [`Decoder::message`] takes one decoded message.
//!
//! Mapping: system prompt → `system: [{text}]`; text → `{text}`; base64 images → `{image: {format,
//! source: {bytes}}}` (URL images cannot be expressed: Bedrock only takes bytes or S3, so they are a
//! 400); base64 PDFs and other documents → `{document: {format, name, source: {bytes}}}`; tool calls →
//! `{toolUse: {toolUseId, name, input}}` (ids made valid as for Anthropic); tool results →
//! `{toolResult: {toolUseId, content: [{json}|{text}], status}}`; tools → `toolConfig.tools[].toolSpec`
//! with `inputSchema.json`; `tool_choice` auto/required/named → `auto`/`any`/`tool` (`none` has no
//! Converse equivalent: the tools stay, no choice is sent); `max_tokens`, `temperature`, `top_p`,
//! `stop` → `inferenceConfig`; `top_k` → `additionalModelRequestFields.top_k`.

use serde_json::{json, Map, Value};

use crate::anthropic::tool_use_id;
use crate::canonical::{
    ChatRequest, ChatResponse, ErrorDetail, ErrorInfo, FinishReason, MediaSource, Message, Part, StreamEvent,
    ToolCall, ToolChoice, Usage,
};
use crate::eventstream::Message as EsMessage;
use crate::json::{
    answer_arguments, arguments_object, checked_arguments, count, merge_turns, parse_object, to_bytes, Obj,
};
use crate::openai::{default_type_for_status, normalize_upstream_error};
use crate::{RequestOptions, ResponseContext, TranslateError};

// ---------------------------------------------------------------------------------------------------
// Requests: canonical -> Converse

fn image_format(media_type: &str) -> Option<&'static str> {
    match media_type {
        "image/png" => Some("png"),
        "image/jpeg" | "image/jpg" => Some("jpeg"),
        "image/gif" => Some("gif"),
        "image/webp" => Some("webp"),
        _ => None,
    }
}

fn document_format(media_type: &str) -> &'static str {
    match media_type {
        "application/pdf" => "pdf",
        "text/csv" => "csv",
        "text/html" => "html",
        "text/markdown" => "md",
        "application/msword" => "doc",
        "application/vnd.openxmlformats-officedocument.wordprocessingml.document" => "docx",
        "application/vnd.ms-excel" => "xls",
        "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet" => "xlsx",
        _ => "txt",
    }
}

fn part_block(p: &Part, param: &str) -> Result<Option<Value>, TranslateError> {
    Ok(match p {
        Part::Text(t) if t.is_empty() => None,
        Part::Text(t) => Some(json!({"text": t})),
        Part::Image(MediaSource::Base64 { media_type, data }) => {
            let format = image_format(media_type).ok_or_else(|| TranslateError::Unsupported {
                param: param.to_owned(),
                message: format!("Bedrock accepts png, jpeg, gif and webp images, not '{media_type}'"),
            })?;
            Some(json!({"image": {"format": format, "source": {"bytes": data}}}))
        }
        Part::Image(MediaSource::Url(_))
        | Part::Document {
            source: MediaSource::Url(_),
            ..
        } => {
            return Err(TranslateError::Unsupported {
                param: param.to_owned(),
                message: "Bedrock only accepts inline (base64 data URL) images and documents".into(),
            })
        }
        Part::Document {
            source: MediaSource::Base64 { media_type, data },
            filename,
        } => {
            // Bedrock requires a name of letters, digits, spaces, hyphens, parentheses and brackets.
            let name: String = filename
                .as_deref()
                .unwrap_or("document")
                .chars()
                .map(|c| {
                    if c.is_ascii_alphanumeric() || " -()[]".contains(c) {
                        c
                    } else {
                        '-'
                    }
                })
                .collect();
            Some(
                json!({"document": {"format": document_format(media_type), "name": name,
                                     "source": {"bytes": data}}}),
            )
        }
    })
}

pub(crate) fn render_request(req: &ChatRequest, opts: &RequestOptions) -> Result<Value, TranslateError> {
    let turns = req
        .messages
        .iter()
        .enumerate()
        .map(|(i, m)| message_blocks(m, &format!("messages[{i}].content")))
        .collect::<Result<Vec<_>, _>>()?;
    // Bedrock rejects empty content, like Anthropic.
    let messages: Vec<Value> = merge_turns(turns, |b| b.get("toolResult").is_some())
        .into_iter()
        .map(|(role, blocks)| json!({"role": role, "content": blocks}))
        .collect();

    let mut o = Map::new();
    o.insert("messages".into(), Value::Array(messages));
    if let Some(s) = &req.system {
        o.insert("system".into(), json!([{"text": s}]));
    }
    if let Some(inference) = inference_config(req) {
        o.insert("inferenceConfig".into(), inference);
    }
    if let Some(k) = req.top_k {
        o.insert("additionalModelRequestFields".into(), json!({"top_k": k}));
    }
    if !req.tools.is_empty() {
        o.insert("toolConfig".into(), tool_config(req));
    }
    // The model and the stream flag are in the URL (`/model/{id}/converse[-stream]`).
    let _ = opts;
    Ok(Value::Object(o))
}

/// One canonical message as a Converse role and its content blocks.
fn message_blocks(m: &Message, param: &str) -> Result<(&'static str, Vec<Value>), TranslateError> {
    Ok(match m {
        Message::User { content } => {
            let mut blocks = Vec::new();
            for p in content {
                blocks.extend(part_block(p, param)?);
            }
            ("user", blocks)
        }
        Message::Assistant { content, tool_calls } => {
            let mut blocks = Vec::new();
            for p in content {
                blocks.extend(part_block(p, param)?);
            }
            blocks.extend(tool_calls.iter().map(|c| {
                json!({"toolUse": {"toolUseId": tool_use_id(&c.id), "name": c.name,
                                   "input": checked_arguments(&c.arguments)}})
            }));
            ("assistant", blocks)
        }
        Message::Tool(r) => {
            let content = match arguments_object(&r.content) {
                Some(obj) => json!([{"json": obj}]),
                None => json!([{"text": r.content}]),
            };
            let mut tr = json!({"toolUseId": tool_use_id(&r.tool_call_id), "content": content});
            if r.is_error {
                tr["status"] = json!("error");
            }
            ("user", vec![json!({"toolResult": tr})])
        }
        // Folded into `system` before rendering (`ChatRequest::fold_system`); empty turns are dropped.
        Message::System(_) => ("user", Vec::new()),
    })
}

/// `inferenceConfig`, when any of its settings is given.
fn inference_config(req: &ChatRequest) -> Option<Value> {
    let mut inference = Map::new();
    if let Some(m) = req.max_tokens {
        inference.insert("maxTokens".into(), json!(m));
    }
    if let Some(t) = req.temperature {
        inference.insert("temperature".into(), json!(t.clamp(0.0, 1.0)));
    }
    if let Some(t) = req.top_p {
        inference.insert("topP".into(), json!(t));
    }
    let stops: Vec<&String> = req.stop.iter().filter(|s| !s.is_empty()).collect();
    if !stops.is_empty() {
        inference.insert("stopSequences".into(), json!(stops));
    }
    (!inference.is_empty()).then_some(Value::Object(inference))
}

/// `toolConfig`: the tool specs and the choice (Converse has no `none`: the choice is left out).
fn tool_config(req: &ChatRequest) -> Value {
    let tools: Vec<Value> = req
        .tools
        .iter()
        .map(|t| {
            let mut spec = Map::new();
            spec.insert("name".into(), json!(t.name));
            if let Some(d) = &t.description {
                spec.insert("description".into(), json!(d));
            }
            let schema = t
                .parameters
                .clone()
                .unwrap_or_else(|| json!({"type": "object", "properties": {}}));
            spec.insert("inputSchema".into(), json!({"json": schema}));
            json!({"toolSpec": spec})
        })
        .collect();
    let mut tc = json!({"tools": tools});
    match &req.tool_choice {
        Some(ToolChoice::Auto) => tc["toolChoice"] = json!({"auto": {}}),
        Some(ToolChoice::Required) => tc["toolChoice"] = json!({"any": {}}),
        Some(ToolChoice::Named(n)) => tc["toolChoice"] = json!({"tool": {"name": n}}),
        Some(ToolChoice::None) | None => {}
    }
    tc
}

// ---------------------------------------------------------------------------------------------------
// Responses: Converse -> canonical, and canonical -> Converse (for Bedrock-speaking clients)

pub(crate) fn stop_reason_to_finish(r: Option<&str>) -> FinishReason {
    match r {
        Some("max_tokens" | "model_context_window_exceeded") => FinishReason::Length,
        Some("tool_use") => FinishReason::ToolCalls,
        Some("guardrail_intervened" | "content_filtered") => FinishReason::ContentFilter,
        _ => FinishReason::Stop, // end_turn, stop_sequence, unknown
    }
}

fn finish_to_stop_reason(r: FinishReason) -> &'static str {
    match r {
        FinishReason::Stop => "end_turn",
        FinishReason::Length => "max_tokens",
        FinishReason::ToolCalls => "tool_use",
        FinishReason::ContentFilter => "content_filtered",
    }
}

fn parse_usage(u: &Obj) -> Usage {
    Usage {
        input: count(u.get("inputTokens")),
        output: count(u.get("outputTokens")),
        cache_read: count(u.get("cacheReadInputTokens")),
        cache_write: count(u.get("cacheWriteInputTokens")),
        reasoning: 0,
    }
}

pub(crate) fn parse_response(body: &[u8]) -> Result<ChatResponse, TranslateError> {
    let o = parse_object(body).map_err(TranslateError::into_upstream)?;
    let content = o
        .get("output")
        .and_then(|v| v.get("message"))
        .and_then(|m| m.get("content"))
        .and_then(Value::as_array)
        .ok_or_else(|| TranslateError::upstream("output.message.content", "is missing"))?;
    let mut text = String::new();
    let mut tool_calls = Vec::new();
    for (i, b) in content.iter().enumerate() {
        if let Some(t) = b.get("text").and_then(Value::as_str) {
            text.push_str(t);
        } else if let Some(tu) = b.get("toolUse") {
            tool_calls.push(ToolCall {
                id: tu
                    .get("toolUseId")
                    .and_then(Value::as_str)
                    .unwrap_or_default()
                    .to_owned(),
                name: tu
                    .get("name")
                    .and_then(Value::as_str)
                    .ok_or_else(|| {
                        TranslateError::upstream(
                            format!("output.message.content[{i}].toolUse.name"),
                            "is missing",
                        )
                    })?
                    .to_owned(),
                arguments: tu
                    .get("input")
                    .filter(|v| !v.is_null())
                    .map_or_else(|| "{}".to_owned(), Value::to_string),
            });
        } // reasoningContent, citations, images: not expressible in a chat completion
    }
    Ok(ChatResponse {
        reasoning: String::new(),
        id: None,
        model: None,
        content: text,
        tool_calls,
        finish_reason: stop_reason_to_finish(o.get("stopReason").and_then(Value::as_str)),
        stop_sequence: None,
        usage: o.get("usage").and_then(Value::as_object).map(parse_usage),
    })
}

fn usage_json(u: &Usage) -> Value {
    let input = u.prompt_total();
    json!({"inputTokens": input, "outputTokens": u.output, "totalTokens": input + u.output,
           "cacheReadInputTokens": u.cache_read, "cacheWriteInputTokens": u.cache_write})
}

pub(crate) fn render_response(resp: &ChatResponse, _ctx: &ResponseContext) -> Result<Value, TranslateError> {
    let mut content = Vec::new();
    if !resp.content.is_empty() {
        content.push(json!({"text": resp.content}));
    }
    for (j, c) in resp.tool_calls.iter().enumerate() {
        let input = answer_arguments(j, &c.arguments)?;
        content.push(json!({"toolUse": {"toolUseId": tool_use_id(&c.id), "name": c.name, "input": input}}));
    }
    Ok(json!({
        "output": {"message": {"role": "assistant", "content": content}},
        "stopReason": finish_to_stop_reason(resp.finish_reason),
        "usage": usage_json(&resp.usage.unwrap_or_default()),
        "metrics": {"latencyMs": 0},
    }))
}

// ---------------------------------------------------------------------------------------------------
// Errors

/// Bedrock's error types (`x-amzn-errortype`, `__type`, or a stream's `:exception-type`) and the
/// statuses Bedrock documents for them.
pub(crate) fn status_for_exception(t: &str) -> Option<u16> {
    let t = t.rsplit('#').next().unwrap_or(t);
    let t = t.split(':').next().unwrap_or(t);
    Some(match t.to_ascii_lowercase().as_str() {
        "validationexception" => 400,
        "accessdeniedexception" | "unrecognizedclientexception" => 403,
        "resourcenotfoundexception" => 404,
        "modeltimeoutexception" => 408,
        "modelnotreadyexception" => 429,
        "throttlingexception" | "servicequotaexceededexception" => 429,
        "modelerrorexception" => 424,
        "modelstreamerrorexception" => 424,
        "internalserverexception" => 500,
        "serviceunavailableexception" => 503,
        _ => return None,
    })
}

/// Reads a Bedrock error body: `{"message": ...}` (sometimes `Message`), with the type in `__type`
/// when present. The status is the HTTP status (Bedrock's statuses are standard).
pub(crate) fn parse_error(status: u16, body: &[u8]) -> ErrorInfo {
    let parsed: Option<Value> = serde_json::from_slice(body).ok();
    let message = parsed
        .as_ref()
        .and_then(|v| v.get("message").or_else(|| v.get("Message")))
        .and_then(Value::as_str);
    let Some(message) = message else {
        return ErrorInfo {
            status,
            detail: normalize_upstream_error(status, body),
        };
    };
    let code = parsed
        .as_ref()
        .and_then(|v| v.get("__type"))
        .and_then(Value::as_str)
        .map(|t| t.rsplit('#').next().unwrap_or(t).to_owned());
    ErrorInfo {
        status,
        detail: ErrorDetail {
            message: message.to_owned(),
            error_type: default_type_for_status(status).to_owned(),
            param: None,
            code,
        },
    }
}

pub(crate) fn render_error(e: &ErrorInfo) -> Value {
    json!({"message": e.detail.message})
}

// ---------------------------------------------------------------------------------------------------
// Streams: ConverseStream event-stream messages -> canonical events

#[derive(Debug, Default)]
pub(crate) struct Decoder {
    started: bool,
    /// Content block index -> canonical tool index, for blocks that are tool calls.
    tool_blocks: Vec<(u64, usize, bool)>,
    next_tool: usize,
    stopped: bool,
    done: bool,
}

impl Decoder {
    /// One decoded event-stream message.
    pub(crate) fn message(&mut self, m: &EsMessage, out: &mut Vec<StreamEvent>) {
        let data = String::from_utf8_lossy(&m.payload);
        match m.header_str(":message-type") {
            Some("exception") | Some("error") => {
                let kind = m
                    .header_str(":exception-type")
                    .or_else(|| m.header_str(":error-code"))
                    .unwrap_or("internalServerException");
                let status = status_for_exception(kind).unwrap_or(500);
                let mut e = parse_error(status, data.as_bytes());
                e.detail.code = Some(kind.to_owned());
                if let Some(msg) = m.header_str(":error-message") {
                    e.detail.message = msg.to_owned();
                }
                out.push(StreamEvent::Error(e));
            }
            _ => self.event(m.header_str(":event-type"), &data, out),
        }
    }

    fn event(&mut self, name: Option<&str>, data: &str, out: &mut Vec<StreamEvent>) {
        let Ok(Value::Object(ev)) = serde_json::from_str::<Value>(data) else {
            out.push(StreamEvent::Error(crate::openai::malformed_event()));
            return;
        };
        if !self.started && name != Some("metadata") {
            self.started = true;
            out.push(StreamEvent::Start);
        }
        let block = ev.get("contentBlockIndex").and_then(Value::as_u64).unwrap_or(0);
        match name.unwrap_or_default() {
            "messageStart" => {}
            "contentBlockStart" => {
                if let Some(tu) = ev.get("start").and_then(|s| s.get("toolUse")) {
                    let index = self.next_tool;
                    self.next_tool += 1;
                    self.tool_blocks.push((block, index, false));
                    let field = |k: &str| tu.get(k).and_then(Value::as_str).unwrap_or_default().to_owned();
                    out.push(StreamEvent::ToolCallStart {
                        index,
                        id: field("toolUseId"),
                        name: field("name"),
                    });
                }
            }
            "contentBlockDelta" => {
                let delta = ev.get("delta");
                if let Some(t) = delta.and_then(|d| d.get("text")).and_then(Value::as_str) {
                    if !t.is_empty() {
                        out.push(StreamEvent::TextDelta(t.to_owned()));
                    }
                } else if let Some(input) = delta
                    .and_then(|d| d.get("toolUse"))
                    .and_then(|t| t.get("input"))
                    .and_then(Value::as_str)
                {
                    if let Some(entry) = self.tool_blocks.iter_mut().find(|(b, _, _)| *b == block) {
                        if !input.is_empty() {
                            entry.2 = true;
                            out.push(StreamEvent::ToolCallArgsDelta {
                                index: entry.1,
                                fragment: input.to_owned(),
                            });
                        }
                    }
                } // reasoningContent deltas are dropped, as for Anthropic thinking
            }
            "contentBlockStop" => {
                if let Some(pos) = self.tool_blocks.iter().position(|(b, _, _)| *b == block) {
                    let (_, index, got_args) = self.tool_blocks.remove(pos);
                    if !got_args {
                        out.push(StreamEvent::ToolCallArgsDelta {
                            index,
                            fragment: "{}".to_owned(),
                        });
                    }
                }
            }
            "messageStop" => {
                self.stopped = true;
                out.push(StreamEvent::Finish {
                    reason: stop_reason_to_finish(ev.get("stopReason").and_then(Value::as_str)),
                });
            }
            "metadata" => {
                if let Some(u) = ev.get("usage").and_then(Value::as_object) {
                    out.push(StreamEvent::Usage(parse_usage(u)));
                }
                // `metadata` follows `messageStop` and is the last event of a Converse stream.
                if self.stopped {
                    self.done = true;
                    out.push(StreamEvent::Done);
                }
            }
            _ => {}
        }
    }

    /// The upstream closed: complete if `messageStop` was seen (`metadata` is optional), cut otherwise.
    pub(crate) fn finish(&mut self, out: &mut Vec<StreamEvent>) {
        if self.done {
            return;
        }
        if self.stopped {
            out.push(StreamEvent::Done);
        } else {
            out.push(StreamEvent::Error(crate::stream::cut_error()));
        }
    }
}

// ---------------------------------------------------------------------------------------------------
// Streams: canonical events -> ConverseStream event-stream messages (for Bedrock-speaking clients)

#[derive(Debug, Default)]
pub(crate) struct Encoder {
    started: bool,
    /// The content block currently open: (block index, is a tool block).
    open: Option<(usize, bool)>,
    next_block: usize,
    tool_blocks: Vec<(usize, usize)>,
    finish: Option<FinishReason>,
    usage: Option<Usage>,
}

fn ev(name: &str, v: &Value) -> bytes::Bytes {
    crate::eventstream::event_message(name, &to_bytes(v))
}

impl Encoder {
    fn ensure_started(&mut self, out: &mut Vec<bytes::Bytes>) {
        if !self.started {
            self.started = true;
            out.push(ev("messageStart", &json!({"role": "assistant"})));
        }
    }

    fn close(&mut self, out: &mut Vec<bytes::Bytes>) {
        if let Some((i, _)) = self.open.take() {
            out.push(ev("contentBlockStop", &json!({"contentBlockIndex": i})));
        }
    }

    pub(crate) fn encode(&mut self, e: StreamEvent, out: &mut Vec<bytes::Bytes>) {
        match e {
            StreamEvent::Start => self.ensure_started(out),
            StreamEvent::TextDelta(t) => {
                self.ensure_started(out);
                let i = match self.open {
                    Some((i, false)) => i,
                    _ => {
                        self.close(out);
                        let i = self.next_block;
                        self.next_block += 1;
                        self.open = Some((i, false));
                        i
                    }
                };
                out.push(ev(
                    "contentBlockDelta",
                    &json!({"contentBlockIndex": i, "delta": {"text": t}}),
                ));
            }
            StreamEvent::ToolCallStart { index, id, name } => {
                self.ensure_started(out);
                self.close(out);
                let i = self.next_block;
                self.next_block += 1;
                self.open = Some((i, true));
                self.tool_blocks.push((index, i));
                out.push(ev(
                    "contentBlockStart",
                    &json!({"contentBlockIndex": i, "start": {"toolUse": {"toolUseId": tool_use_id(&id), "name": name}}}),
                ));
            }
            StreamEvent::ToolCallArgsDelta { index, fragment } => {
                if let Some((_, i)) = self.tool_blocks.iter().find(|(t, _)| *t == index) {
                    out.push(ev(
                        "contentBlockDelta",
                        &json!({"contentBlockIndex": i, "delta": {"toolUse": {"input": fragment}}}),
                    ));
                }
            }
            StreamEvent::Finish { reason } => self.finish = Some(reason),
            StreamEvent::Usage(u) => self.usage = Some(u),
            StreamEvent::Ping | StreamEvent::ReasoningDelta(_) => {}
            StreamEvent::Done => {
                self.ensure_started(out);
                self.close(out);
                let reason = finish_to_stop_reason(self.finish.unwrap_or(FinishReason::Stop));
                out.push(ev("messageStop", &json!({"stopReason": reason})));
                out.push(ev(
                    "metadata",
                    &json!({"usage": usage_json(&self.usage.unwrap_or_default()), "metrics": {"latencyMs": 0}}),
                ));
            }
            StreamEvent::Error(e) => {
                let kind = match e.status {
                    400 => "validationException",
                    429 => "throttlingException",
                    503 => "serviceUnavailableException",
                    _ => "internalServerException",
                };
                out.push(crate::eventstream::encode_message(
                    &[
                        (":exception-type", kind),
                        (":content-type", "application/json"),
                        (":message-type", "exception"),
                    ],
                    &to_bytes(&render_error(&e)),
                ));
            }
        }
    }
}

/// A Bedrock-speaking client's request cannot be read yet: there is no Bedrock ingress.
pub(crate) fn parse_request(_body: &[u8]) -> Result<ChatRequest, TranslateError> {
    Err(TranslateError::Unsupported {
        param: "body".into(),
        message: "reading Bedrock Converse requests is not supported yet".into(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exception_statuses() {
        assert_eq!(status_for_exception("throttlingException"), Some(429));
        assert_eq!(status_for_exception("ThrottlingException"), Some(429));
        assert_eq!(
            status_for_exception("ValidationException:http://internal.amazon.com/coral/com.amazon.bedrock/"),
            Some(400)
        );
        assert_eq!(
            status_for_exception("com.amazon.coral.service#AccessDeniedException"),
            Some(403)
        );
        assert_eq!(status_for_exception("somethingNew"), None);
    }

    #[test]
    fn stop_reasons() {
        assert_eq!(stop_reason_to_finish(Some("tool_use")), FinishReason::ToolCalls);
        assert_eq!(stop_reason_to_finish(Some("max_tokens")), FinishReason::Length);
        assert_eq!(
            stop_reason_to_finish(Some("guardrail_intervened")),
            FinishReason::ContentFilter
        );
        assert_eq!(stop_reason_to_finish(Some("end_turn")), FinishReason::Stop);
    }
}
