//! Protocol translation between OpenAI Chat Completions, Anthropic Messages and Gemini
//! `generateContent`: request bodies, response bodies, error bodies and SSE streams.
//!
//! Every adapter reads its protocol into one [`canonical`] representation and renders it back, so a
//! new provider is one adapter. The public API is bytes in, bytes out: the gateway never sees the
//! canonical types unless it wants to.
//!
//! This crate performs no I/O at all: no sockets, files, clocks or randomness. Timestamps (`created`)
//! and ids come from the caller through [`ResponseContext`].
//!
//! # Entry points
//!
//! | What | Function |
//! |---|---|
//! | route a request without translating it | [`request_info`] |
//! | request body, client protocol → upstream protocol | [`translate_request`] ([`openai_request_to_anthropic`]) |
//! | response body, upstream protocol → client protocol | [`translate_response`] ([`anthropic_response_to_openai`]) |
//! | upstream error body → client error body and status | [`translate_error`], or [`parse_error`] + [`render_error`] |
//! | SSE stream, upstream → client | [`StreamTranslator`] |
//! | token usage of an answer or a stream (accounting), any protocol | [`usage::usage_from_json`], [`usage::UsageTap`] |
//!
//! # Mapping decisions
//!
//! Where the protocols disagree, this crate decides as follows.
//!
//! ## Requests
//!
//! | Concept | OpenAI | Anthropic | Gemini |
//! |---|---|---|---|
//! | system prompt | every `system`/`developer` message, wherever it stands, joined with `\n` | top-level `system` string (blocks joined with `\n` when read) | `systemInstruction.parts[].text` |
//! | system messages inside the conversation | written in place (read: joined into the system prompt); folded into the leading one with [`RequestOptions::fold_system`] | a `system` turn in `messages` (Claude Code's mid-conversation betas) is kept in place as [`canonical::Message::System`]; folded into `system` when written | folded into `systemInstruction` |
//! | roles | `user`, `assistant`, `tool` | `user`, `assistant`; consecutive same-role turns are merged; tool results are `tool_result` blocks placed first in a user turn | `user`, `model`; same merging; tool results are `functionResponse` parts placed first |
//! | empty text | kept | empty text blocks and turns left empty are dropped (Anthropic rejects them) | same as Anthropic |
//! | images | `image_url` (data URL or remote URL) | `image` with a `base64` or `url` source | `inlineData` or `fileData` (MIME type guessed from the URL's extension) |
//! | documents | `file` with `file_data` (data URL); `file_id` is rejected | `document` block | `inlineData` / `fileData` with a non-image MIME type |
//! | audio (`input_audio`) | rejected with 400 | — | — |
//! | tool call ids | kept | ids outside `[a-zA-Z0-9_-]+` are rewritten deterministically (valid characters plus an FNV hash), in calls and results alike | not sent; read back as `call_<n>` (n counts calls in the request/response); a `functionResponse` answers the earliest unanswered call of that name |
//! | tool arguments | JSON text; must be an object (or empty, meaning `{}`), else 400 | `input` object | `args` object |
//! | tool result content | text (content parts joined with `\n`) | `content` string; text blocks joined with `\n`, other blocks rejected; `is_error` kept only between Anthropic shapes | `response` object: a JSON-object result is sent as is, any other text as `{"content": text}` (and unwrapped again when read) |
//! | tool schema | `parameters` | `input_schema`, default `{"type":"object","properties":{}}` | `parametersJsonSchema` (full JSON Schema); a Gemini `parameters` schema is read with its upper-case types lowered |
//! | tool_choice | `auto` / `none` / `required` / named | `auto` / `none` / `any` / `tool`; only sent with tools | `AUTO` / `NONE` / `ANY` / `ANY` + `allowedFunctionNames: [name]` (several allowed names read as `required`) |
//! | `parallel_tool_calls: false` | kept | `tool_choice.disable_parallel_tool_use: true` (not with `none`) | dropped |
//! | max tokens | `max_completion_tokens`, else `max_tokens`; written as `max_tokens` (the most widely accepted) | `max_tokens`, required: [`DEFAULT_MAX_TOKENS`] (4096) when the client gave none, unless [`RequestOptions::default_max_tokens`] says otherwise | `generationConfig.maxOutputTokens` |
//! | temperature | passed | clamped to [0, 1] | passed |
//! | stop | string or list | `stop_sequences`; whitespace-only entries dropped (Anthropic rejects them) | `generationConfig.stopSequences` |
//! | `n` | anything but 1 is rejected with 400 | — | `candidateCount` ≠ 1 is rejected |
//! | user | `user`, else `safety_identifier` | `metadata.user_id` | dropped |
//! | streaming usage | `stream_options.include_usage: true` is always sent to OpenAI upstreams when streaming (accounting needs it) | always present | always present |
//! | anything else (`response_format`, `reasoning_effort`, `seed`, penalties, `thinking`, `safetySettings`, ...) | kept aside in `extras` and forwarded only to an upstream of the same protocol; ignored otherwise | same | same; untranslated `generationConfig` fields (`thinkingConfig`, `responseSchema`, ...) are dropped |
//!
//!
//! A Gemini upstream body carries neither the model nor the stream flag: the caller puts them in the URL
//! (`models/{model}:generateContent` or `:streamGenerateContent?alt=sse`), using [`request_info`] or
//! its own routing. Likewise a Gemini client's stream flag comes from its URL: pass it in
//! [`RequestOptions::stream`].
//!
//! ## Responses
//!
//! | Canonical | OpenAI | Anthropic | Gemini |
//! |---|---|---|---|
//! | `Stop` | `stop` | `end_turn`, `stop_sequence`, `pause_turn`, `null` (written: `end_turn`, or `stop_sequence` when the upstream named the matched string) | `STOP`, `OTHER`, `MALFORMED_FUNCTION_CALL`, anything unknown (written: `STOP`) |
//! | `Length` | `length` | `max_tokens`, `model_context_window_exceeded` | `MAX_TOKENS` |
//! | `ToolCalls` | `tool_calls`, `function_call` | `tool_use` | `STOP` with `functionCall` parts |
//! | `ContentFilter` | `content_filter` | `refusal` | `SAFETY`, `RECITATION`, `BLOCKLIST`, `PROHIBITED_CONTENT`, `SPII`, image safety reasons; a blocked prompt (`promptFeedback.blockReason`, no candidates) |
//!
//! | Usage (canonical) | OpenAI | Anthropic | Gemini |
//! |---|---|---|---|
//! | `input` (uncached) | `prompt_tokens − cached_tokens` | `input_tokens` | `promptTokenCount − cachedContentTokenCount` |
//! | `cache_read` | `prompt_tokens_details.cached_tokens` | `cache_read_input_tokens` | `cachedContentTokenCount` |
//! | `cache_write` | (counted in `prompt_tokens`) | `cache_creation_input_tokens` | — |
//! | `output` (reasoning included) | `completion_tokens` | `output_tokens` | `candidatesTokenCount + thoughtsTokenCount` |
//! | `reasoning` | `completion_tokens_details.reasoning_tokens` | — | `thoughtsTokenCount` |
//!
//! OpenAI's `prompt_tokens` is written as `input + cache_read + cache_write`. Reasoning (vLLM's `reasoning_content` /
//! `reasoning`, Anthropic thinking blocks) is never answer text: Anthropic clients get it as a
//! `thinking` block with an empty `signature` (dropped again when the client sends it back), other
//! clients do not get it. Response ids are the caller's [`ResponseContext::id_hint`] with the
//! protocol's prefix (`chatcmpl-`, `msg_`); without a hint the upstream's id is used. Tool-call
//! arguments that are not a JSON object cannot be given to Anthropic or Gemini clients: that response
//! is a [`TranslateError::Upstream`] (502).
//!
//! ## Errors
//!
//! | Anthropic `error.type` | status to OpenAI clients | OpenAI `type` |
//! |---|---|---|
//! | `invalid_request_error` | 400 | `invalid_request_error` |
//! | `authentication_error` | 401 | `authentication_error` |
//! | `billing_error` | 402 | `invalid_request_error` |
//! | `permission_error` | 403 | `permission_error` |
//! | `not_found_error` | 404 | `invalid_request_error` |
//! | `request_too_large` | 413 | `invalid_request_error` |
//! | `rate_limit_error` | 429 | `rate_limit_error` |
//! | `api_error` | 500 | `server_error` |
//! | `timeout_error` | 504 | `timeout_error` |
//! | `overloaded_error` | **503** (529 is unknown to OpenAI clients) | `server_error` |
//!
//! The OpenAI `code` is the upstream's own error type (`overloaded_error`, `RESOURCE_EXHAUSTED`, ...).
//! Gemini RPC statuses map to their HTTP statuses (`INVALID_ARGUMENT`/`FAILED_PRECONDITION` 400,
//! `UNAUTHENTICATED` 401, `PERMISSION_DENIED` 403, `NOT_FOUND` 404, `RESOURCE_EXHAUSTED` 429,
//! `INTERNAL` 500, `UNAVAILABLE` 503, `DEADLINE_EXCEEDED` 504). Towards Anthropic clients a status
//! becomes the type of the table above (503 → `overloaded_error`, other 5xx → `api_error`), towards
//! Gemini clients the RPC status (502/503 → `UNAVAILABLE`). Bodies of unknown shape go through
//! [`normalize_upstream_error`], the OpenAI adapter's reader, which knows every OpenAI-compatible
//! variant seen (mittwald's string error, vLLM's flat form, `detail` bodies, HTML, empty).
//!
//! ## Streams
//!
//! - OpenAI clients get a first chunk `delta: {"role":"assistant","content":""}`, the same `id` and
//!   `created` on every chunk, tool calls as `index`/`id`/`type`/`function{name, arguments:""}` then
//!   `index` + `arguments` pieces, a final `delta: {}` chunk with `finish_reason` (`stop` if the upstream
//!   never said), then with `include_usage` a `choices: []` usage chunk (`"usage": null` on all earlier
//!   chunks; omitted when the upstream reported no usage), then `data: [DONE]`.
//! - Anthropic clients get `message_start`, then per block `content_block_start` / deltas /
//!   `content_block_stop` (a tool call opens a new block; text after a tool call opens a new text
//!   block), then `message_delta` (stop reason, cumulative usage including input and cache counts) and
//!   `message_stop`, every frame with its `event:` line. Input tokens in `message_start` are 0 when the
//!   upstream (OpenAI) only reports usage at the end.
//! - Gemini clients get one `data:` chunk per text delta; function calls are sent whole (Gemini has no
//!   argument fragments) once complete; the last chunk carries `finishReason` and `usageMetadata`.
//! - Anthropic upstreams: tool indices count tool blocks only (not content blocks); a tool block with no
//!   `input_json_delta` means `{}`; thinking and signature deltas are dropped; `ping` is forwarded as a
//!   keep-alive (`: ping` comment to OpenAI clients).
//! - Errors: an upstream error event, a stream that ends before its protocol's end (see
//!   [`StreamTranslator`]), or [`StreamTranslator::fail`] produce the client protocol's error frame
//!   (`data: {"error":…}`, `event: error`) and never its clean terminator.
#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod canonical;
mod error;
mod json;
mod stream;
pub mod usage;

mod anthropic;
mod bedrock;
pub mod eventstream;
mod gemini;
mod openai;
mod responses;

pub use canonical::{ErrorDetail, ErrorInfo, Usage};
pub use error::TranslateError;
pub use openai::{default_type_for_status, normalize_upstream_error};
pub use stream::{parse_sse_event, SseEvent, StreamTranslator};

use switchyard_core::json_fields::{JsonBodyError, JsonObject};

use crate::canonical::{ChatRequest, ChatResponse};

/// The `max_tokens` sent to Anthropic when the client gave none. Anthropic requires the field; 4096 is
/// within every current Claude model's output limit and long enough for ordinary chat answers.
pub const DEFAULT_MAX_TOKENS: u32 = 4096;

/// A wire protocol, as spoken by a client (ingress) or an upstream.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Protocol {
    /// OpenAI Chat Completions (and every OpenAI-compatible server).
    OpenAi,
    /// Anthropic Messages.
    Anthropic,
    /// Gemini `generateContent` (Google AI Studio / Vertex).
    Gemini,
    /// AWS Bedrock Converse / ConverseStream (streams are binary event-stream messages, not SSE).
    Bedrock,
}

/// How to build the upstream request.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RequestOptions {
    /// The model name to put in the upstream body (ignored for Gemini, whose model is in the URL).
    pub upstream_model: String,
    /// Overrides the body's streaming flag: Gemini clients say it in the URL
    /// (`:streamGenerateContent`), not in the body.
    pub stream: Option<bool>,
    /// `max_tokens` for Anthropic upstreams when the client gave none.
    pub default_max_tokens: u32,
    /// OpenAI upstreams: fold system messages that stand in the middle of the conversation into the
    /// leading one (for chat templates that refuse a later system message, e.g. Mistral's). Other
    /// upstreams always get one system prompt.
    pub fold_system: bool,
}

impl RequestOptions {
    /// Options for `upstream_model` with the defaults ([`DEFAULT_MAX_TOKENS`], no stream override).
    pub fn new(upstream_model: impl Into<String>) -> RequestOptions {
        RequestOptions {
            upstream_model: upstream_model.into(),
            stream: None,
            default_max_tokens: DEFAULT_MAX_TOKENS,
            fold_system: false,
        }
    }
}

/// What the caller knows about the answer it is translating.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ResponseContext {
    /// Unix seconds to report as `created` (never 0).
    pub created: i64,
    /// The model name to report to the client (usually the name it asked for).
    pub model: String,
    /// The id to report, without protocol prefix (`chatcmpl-` / `msg_` are added). Empty: use the
    /// upstream's id.
    pub id_hint: String,
    /// OpenAI clients only: append the usage chunk to streams (`stream_options.include_usage`).
    pub include_usage: bool,
}

impl ResponseContext {
    /// The id to report with the protocol's `prefix`: the caller's hint, else the upstream's id, else
    /// `created`; the prefix is not doubled.
    pub(crate) fn prefixed_id(&self, prefix: &str, upstream: Option<&str>) -> String {
        let base = if !self.id_hint.is_empty() {
            self.id_hint.clone()
        } else if let Some(u) = upstream.filter(|u| !u.is_empty()) {
            u.to_owned()
        } else {
            self.created.to_string()
        };
        if base.starts_with(prefix) {
            base
        } else {
            format!("{prefix}{base}")
        }
    }
}

/// What the gateway needs from a request to route it, read without translating it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RequestInfo {
    /// The `model` field (`None` for Gemini, whose model is in the URL).
    pub model: Option<String>,
    /// The client wants a stream (Gemini: always `false` here; the URL says it).
    pub stream: bool,
    /// The client wants usage in the stream: OpenAI's `stream_options.include_usage`; always `true`
    /// for Anthropic and Gemini, whose streams always carry usage.
    pub include_usage: bool,
}

/// An error body ready to send, with its status.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TranslatedError {
    /// The HTTP status to answer with.
    pub status: u16,
    /// The JSON body in the client's protocol.
    pub body: Vec<u8>,
}

fn body_error(e: JsonBodyError) -> TranslateError {
    match e {
        JsonBodyError::Syntax(m) => TranslateError::InvalidJson(m),
        JsonBodyError::NotAnObject => TranslateError::NotAnObject,
        JsonBodyError::FieldType { field, expected } => {
            TranslateError::invalid(field, format!("must be {expected}"))
        }
        JsonBodyError::DuplicateField(field) => {
            TranslateError::invalid(field, "appears more than once in the request body")
        }
    }
}

/// Reads `model`, `stream` and `include_usage` from a client request body of the given protocol,
/// without decoding anything else.
pub fn request_info(protocol: Protocol, body: &[u8]) -> Result<RequestInfo, TranslateError> {
    let obj = JsonObject::parse(body).map_err(body_error)?;
    let model = obj.get_str("model").map_err(body_error)?.map(|m| m.into_owned());
    match protocol {
        Protocol::OpenAi => {
            let stream = obj.get_bool("stream").map_err(body_error)?.unwrap_or(false);
            let include_usage = match obj.get_raw("stream_options") {
                None | Some("null") => false,
                Some(raw) => {
                    let so = JsonObject::parse(raw.as_bytes())
                        .map_err(|_| TranslateError::invalid("stream_options", "must be an object"))?;
                    so.get_bool("include_usage")
                        .map_err(|_| {
                            TranslateError::invalid("stream_options.include_usage", "must be a boolean")
                        })?
                        .unwrap_or(false)
                }
            };
            Ok(RequestInfo {
                model: Some(model.ok_or(TranslateError::MissingField {
                    param: "model".into(),
                })?),
                stream,
                include_usage,
            })
        }
        Protocol::Anthropic => Ok(RequestInfo {
            model: Some(model.ok_or(TranslateError::MissingField {
                param: "model".into(),
            })?),
            stream: obj.get_bool("stream").map_err(body_error)?.unwrap_or(false),
            include_usage: true,
        }),
        Protocol::Gemini | Protocol::Bedrock => Ok(RequestInfo {
            model,
            stream: false,
            include_usage: true,
        }),
    }
}

fn parse_request(protocol: Protocol, body: &[u8]) -> Result<ChatRequest, TranslateError> {
    match protocol {
        Protocol::OpenAi => openai::parse_request(body),
        Protocol::Anthropic => anthropic::parse_request(body),
        Protocol::Gemini => gemini::parse_request(body),
        Protocol::Bedrock => bedrock::parse_request(body),
    }
}

/// Translates a client request body (`from`) into an upstream request body (`to`).
///
/// Errors are the client's (400, with [`TranslateError::param`] naming the field in the client's body).
pub fn translate_request(
    from: Protocol,
    to: Protocol,
    body: &[u8],
    opts: &RequestOptions,
) -> Result<Vec<u8>, TranslateError> {
    render_request(parse_request(from, body)?, to, opts)
}

/// Translates a Responses API request body (`POST /v1/responses`, e.g. from Codex CLI) into an upstream
/// request body of protocol `to`, for providers that do not serve the Responses API natively.
///
/// `instructions` and leading `system`/`developer` items are the system prompt (later ones stay in
/// place); `function_call` / `function_call_output` items are tool calls and results;
/// `max_output_tokens` is the output cap; `reasoning.effort` becomes `reasoning_effort` and
/// `text.format` `response_format` (OpenAI upstreams only). Fields that need server state or that
/// the upstream cannot take (`store`, `include`, `prompt_cache_key`, `client_metadata`, hosted and
/// custom tools such as `web_search` or `namespace`, reasoning items) are dropped, never refused;
/// only `previous_response_id` is refused (400), since the conversation it names is not kept.
pub fn translate_responses_request(
    to: Protocol,
    body: &[u8],
    opts: &RequestOptions,
) -> Result<Vec<u8>, TranslateError> {
    render_request(responses::parse_request(body)?, to, opts)
}

fn render_request(
    mut req: ChatRequest,
    to: Protocol,
    opts: &RequestOptions,
) -> Result<Vec<u8>, TranslateError> {
    if to != Protocol::OpenAi || opts.fold_system {
        req.fold_system();
    }
    let out = match to {
        Protocol::OpenAi => openai::render_request(&req, opts),
        Protocol::Anthropic => anthropic::render_request(&req, opts),
        Protocol::Gemini => gemini::render_request(&req, opts),
        Protocol::Bedrock => bedrock::render_request(&req, opts)?,
    };
    Ok(json::to_bytes(&out))
}

/// Shorthand for [`translate_request`] from OpenAI to Anthropic with default options.
pub fn openai_request_to_anthropic(body: &[u8], upstream_model: &str) -> Result<Vec<u8>, TranslateError> {
    translate_request(
        Protocol::OpenAi,
        Protocol::Anthropic,
        body,
        &RequestOptions::new(upstream_model),
    )
}

/// Translates an upstream's (`from`) successful response body into the client's protocol (`to`).
///
/// Errors are the upstream's ([`TranslateError::Upstream`], 502).
pub fn translate_response(
    from: Protocol,
    to: Protocol,
    body: &[u8],
    ctx: &ResponseContext,
) -> Result<Vec<u8>, TranslateError> {
    translate_response_named(from, to, body, ctx).map(|(out, _)| out)
}

/// [`translate_response`], and the model the upstream's answer names (never empty), read in the same
/// pass over the answer.
pub fn translate_response_named(
    from: Protocol,
    to: Protocol,
    body: &[u8],
    ctx: &ResponseContext,
) -> Result<(Vec<u8>, Option<String>), TranslateError> {
    let resp = parse_response(from, body)?;
    let out = match to {
        Protocol::OpenAi => openai::render_response(&resp, ctx),
        Protocol::Anthropic => anthropic::render_response(&resp, ctx)?,
        Protocol::Gemini => gemini::render_response(&resp, ctx)?,
        Protocol::Bedrock => bedrock::render_response(&resp, ctx)?,
    };
    Ok((json::to_bytes(&out), resp.model.filter(|m| !m.is_empty())))
}

fn parse_response(from: Protocol, body: &[u8]) -> Result<ChatResponse, TranslateError> {
    match from {
        Protocol::OpenAi => openai::parse_response(body),
        Protocol::Anthropic => anthropic::parse_response(body),
        Protocol::Gemini => gemini::parse_response(body),
        Protocol::Bedrock => bedrock::parse_response(body),
    }
}

/// Translates an upstream's (`from`) successful answer into a Responses API `response` object
/// (`output`: a `reasoning` item, the `message` with its `output_text`, one `function_call` item per
/// tool call; `status` `incomplete` when the output cap or a content filter ended it).
pub fn translate_response_to_responses(
    from: Protocol,
    body: &[u8],
    ctx: &ResponseContext,
) -> Result<Vec<u8>, TranslateError> {
    let resp = parse_response(from, body)?;
    Ok(json::to_bytes(&responses::render_response(&resp, ctx)))
}

/// Shorthand for [`translate_response`] from Anthropic to OpenAI.
pub fn anthropic_response_to_openai(body: &[u8], ctx: &ResponseContext) -> Result<Vec<u8>, TranslateError> {
    translate_response(Protocol::Anthropic, Protocol::OpenAi, body, ctx)
}

/// The status a Bedrock error type (`x-amzn-errortype` header, a stream's `:exception-type`) stands
/// for, when Bedrock documents one.
pub fn bedrock_exception_status(error_type: &str) -> Option<u16> {
    bedrock::status_for_exception(error_type)
}

/// Reads an upstream's error answer (HTTP `status`, `body`) into the canonical error: the status to
/// report to OpenAI-shaped clients and the OpenAI error detail.
pub fn parse_error(from: Protocol, status: u16, body: &[u8]) -> ErrorInfo {
    match from {
        Protocol::OpenAi => openai::parse_error(status, body),
        Protocol::Anthropic => anthropic::parse_error(status, body),
        Protocol::Gemini => gemini::parse_error(status, body),
        Protocol::Bedrock => bedrock::parse_error(status, body),
    }
}

/// Renders an error for a client of protocol `to` (e.g. the gateway's own 400 on the Anthropic
/// ingress). OpenAI bodies are the plain `{"error":{message,type,param,code}}` shape.
pub fn render_error(to: Protocol, error: &ErrorInfo) -> TranslatedError {
    let body = match to {
        Protocol::OpenAi => openai::render_error(error),
        Protocol::Anthropic => anthropic::render_error(error),
        Protocol::Gemini => gemini::render_error(error),
        Protocol::Bedrock => bedrock::render_error(error),
    };
    TranslatedError {
        status: error.status,
        body: json::to_bytes(&body),
    }
}

/// [`parse_error`] then [`render_error`].
pub fn translate_error(from: Protocol, to: Protocol, status: u16, body: &[u8]) -> TranslatedError {
    render_error(to, &parse_error(from, status, body))
}
