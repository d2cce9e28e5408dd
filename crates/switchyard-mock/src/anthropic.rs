//! Anthropic Messages API: `POST /v1/messages`, `POST /v1/messages/count_tokens` and the Anthropic
//! shape of `GET /v1/models[/{id}]` (chosen by an `anthropic-version` request header).
//!
//! The behaviour of `/v1/messages` is chosen by a prefix of the requested model name, like on the
//! OpenAI routes: `fail*`, `overloaded*`, `ratelimit*`, `reset*`, `slow-<ms>*`, `cut*`, `tools2*`,
//! `tool*`, `cache*`, `maxtok*`, `drip*`, `streamerr*`; anything else echoes the last user message.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use hyper::header::{HeaderValue, RETRY_AFTER};
use hyper::{Response, StatusCode};
use serde::{Deserialize, Serialize};

use crate::body::MockBody;
use crate::completions::{echo_text, truncate_words, DRIP_CHUNKS, DRIP_INTERVAL};
use crate::frames::Frames;
use crate::handlers::{json, sse_response, to_json, truncated, Reply};
use crate::modes::mode_by_prefix;
use crate::openai::{word_count, word_pieces, Content, Message, Str, TOOL_ARGUMENTS, TOOL_NAME};
use crate::state::Shared;

// ---------------------------------------------------------------------------------------------
// Behaviour selected by the model name
// ---------------------------------------------------------------------------------------------

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Mode {
    Fail,
    Overloaded,
    RateLimit,
    Reset,
    Slow(u64),
    Cut,
    Tools2,
    Tool,
    Cache,
    MaxTok,
    Drip,
    StreamErr,
    Echo,
}

fn mode_of(model: &str) -> Mode {
    mode_by_prefix(
        model,
        &[
            ("fail", Mode::Fail),
            ("overloaded", Mode::Overloaded),
            ("ratelimit", Mode::RateLimit),
            ("reset", Mode::Reset),
            ("cut", Mode::Cut),
            ("tools2", Mode::Tools2),
            ("tool", Mode::Tool),
            ("cache", Mode::Cache),
            ("maxtok", Mode::MaxTok),
            ("drip", Mode::Drip),
            ("streamerr", Mode::StreamErr),
        ],
        Mode::Slow,
        Mode::Echo,
    )
}

// ---------------------------------------------------------------------------------------------
// Requests
// ---------------------------------------------------------------------------------------------

#[derive(Deserialize)]
struct MessagesRequest<'a> {
    #[serde(borrow)]
    model: Option<Str<'a>>,
    max_tokens: Option<serde_json::Value>,
    #[serde(borrow)]
    messages: Option<Vec<Message<'a>>>,
    /// A string or a list of text blocks.
    #[serde(borrow)]
    system: Option<Content<'a>>,
    stream: Option<bool>,
}

struct Parsed<'a> {
    model: &'a str,
    /// `None` only for `count_tokens`, which does not need it.
    max_tokens: Option<u64>,
    messages: &'a [Message<'a>],
    system: Option<&'a Content<'a>>,
    stream: bool,
}

impl MessagesRequest<'_> {
    /// Anthropic-like validation: `model`, `max_tokens` (if `need_max_tokens`) and `messages`. The
    /// error is the message of a 400 `invalid_request_error`.
    fn validate(&self, need_max_tokens: bool) -> Result<Parsed<'_>, &'static str> {
        let Some(model) = &self.model else {
            return Err("model: Field required");
        };
        let max_tokens = match &self.max_tokens {
            None if need_max_tokens => return Err("max_tokens: Field required"),
            None => None,
            Some(v) => match v.as_u64() {
                Some(0) => return Err("max_tokens: Input should be greater than or equal to 1"),
                Some(n) => Some(n),
                None => return Err("max_tokens: Input should be a valid integer"),
            },
        };
        let Some(messages) = &self.messages else {
            return Err("messages: Field required");
        };
        Ok(Parsed {
            model: &model.0,
            max_tokens,
            messages,
            system: self.system.as_ref(),
            stream: self.stream == Some(true),
        })
    }
}

impl Parsed<'_> {
    /// Whitespace words of the system prompt and of the text of all messages (at least 1).
    fn input_tokens(&self) -> u64 {
        let system = self.system.map_or(0, Content::word_count);
        let messages: u64 = self
            .messages
            .iter()
            .filter_map(|m| m.content.as_ref())
            .map(Content::word_count)
            .sum();
        (system + messages).max(1)
    }

    /// The text of the last `user` message (string content or its text blocks concatenated).
    fn last_user_text(&self) -> String {
        self.messages
            .iter()
            .rev()
            .find(|m| m.role.as_ref().is_some_and(|r| r.0 == "user"))
            .and_then(|m| m.content.as_ref())
            .map(|c| c.text().into_owned())
            .unwrap_or_default()
    }
}

/// Parses and validates a request body; the error is the message of a 400 `invalid_request_error`.
fn parse_body(body: &[u8]) -> Result<MessagesRequest<'_>, String> {
    serde_json::from_slice(body).map_err(|e| format!("Invalid request body: {e}"))
}

// ---------------------------------------------------------------------------------------------
// Responses
// ---------------------------------------------------------------------------------------------

#[derive(Serialize, Clone, Copy)]
struct Usage {
    input_tokens: u64,
    output_tokens: u64,
    cache_creation_input_tokens: u64,
    cache_read_input_tokens: u64,
}

#[derive(Serialize)]
struct MessageBody<'a> {
    id: &'a str,
    #[serde(rename = "type")]
    kind: &'static str,
    role: &'static str,
    model: &'a str,
    content: Vec<ContentBlock<'a>>,
    stop_reason: Option<&'static str>,
    stop_sequence: (),
    usage: Usage,
}

#[derive(Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
enum ContentBlock<'a> {
    Text {
        text: &'a str,
    },
    ToolUse {
        id: &'static str,
        name: &'static str,
        input: ToolInput,
    },
}

/// `{"city": ...}`, or `{}` in `content_block_start`.
#[derive(Serialize)]
struct ToolInput {
    #[serde(skip_serializing_if = "Option::is_none")]
    city: Option<&'static str>,
}

#[derive(Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
enum Event<'a> {
    MessageStart {
        message: MessageBody<'a>,
    },
    ContentBlockStart {
        index: usize,
        content_block: ContentBlock<'a>,
    },
    Ping,
    ContentBlockDelta {
        index: usize,
        delta: BlockDelta<'a>,
    },
    ContentBlockStop {
        index: usize,
    },
    MessageDelta {
        delta: StopDelta,
        usage: OutputUsage,
    },
    MessageStop,
    Error {
        error: ErrorInner<'a>,
    },
}

impl Event<'_> {
    fn name(&self) -> &'static str {
        match self {
            Event::MessageStart { .. } => "message_start",
            Event::ContentBlockStart { .. } => "content_block_start",
            Event::Ping => "ping",
            Event::ContentBlockDelta { .. } => "content_block_delta",
            Event::ContentBlockStop { .. } => "content_block_stop",
            Event::MessageDelta { .. } => "message_delta",
            Event::MessageStop => "message_stop",
            Event::Error { .. } => "error",
        }
    }
}

#[derive(Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
enum BlockDelta<'a> {
    TextDelta { text: &'a str },
    InputJsonDelta { partial_json: &'static str },
}

#[derive(Serialize)]
struct StopDelta {
    stop_reason: &'static str,
    stop_sequence: (),
}

#[derive(Serialize)]
struct OutputUsage {
    output_tokens: u64,
}

fn emit(frames: &mut Frames, event: &Event<'_>) {
    frames.event(event.name(), event);
}

// ---------------------------------------------------------------------------------------------
// Errors
// ---------------------------------------------------------------------------------------------

#[derive(Serialize)]
struct ErrorBody<'a> {
    #[serde(rename = "type")]
    kind: &'static str,
    error: ErrorInner<'a>,
}

#[derive(Serialize)]
struct ErrorInner<'a> {
    #[serde(rename = "type")]
    kind: &'a str,
    message: &'a str,
}

/// `{"type":"error","error":{"type":<kind>,"message":<message>}}` with `status`.
pub(crate) fn error(status: StatusCode, kind: &str, message: &str) -> Response<MockBody> {
    json(
        status,
        to_json(&ErrorBody {
            kind: "error",
            error: ErrorInner { kind, message },
        }),
    )
}

fn invalid_request(message: &str) -> Reply {
    error(StatusCode::BAD_REQUEST, "invalid_request_error", message).into()
}

pub(crate) fn unauthorized() -> Response<MockBody> {
    error(
        StatusCode::UNAUTHORIZED,
        "authentication_error",
        "invalid x-api-key",
    )
}

pub(crate) fn missing_version() -> Response<MockBody> {
    error(
        StatusCode::BAD_REQUEST,
        "invalid_request_error",
        "anthropic-version: header is required",
    )
}

// ---------------------------------------------------------------------------------------------
// POST /v1/messages
// ---------------------------------------------------------------------------------------------

struct ToolSpec {
    id: &'static str,
    city: &'static str,
    /// The `input_json_delta` fragments; they concatenate to `{"city": "<city>"}`.
    pieces: [&'static str; 3],
}

const TOOLS: [ToolSpec; 2] = [
    ToolSpec {
        id: "toolu_01",
        city: "Berlin",
        pieces: [r#"{"city": "#, r#""Ber"#, r#"lin"}"#],
    },
    ToolSpec {
        id: "toolu_02",
        city: "Hamburg",
        pieces: [r#"{"city": "#, r#""Ham"#, r#"burg"}"#],
    },
];

/// The text block in front of tool calls.
const TOOL_PREAMBLE: &str = "Let me check.";

enum Block {
    Text(String),
    Tool(&'static ToolSpec),
}

impl Block {
    fn output_tokens(&self) -> u64 {
        match self {
            Block::Text(text) => word_count(text),
            Block::Tool(_) => word_count(TOOL_ARGUMENTS),
        }
    }

    fn to_content(&self) -> ContentBlock<'_> {
        match self {
            Block::Text(text) => ContentBlock::Text { text },
            Block::Tool(tool) => ContentBlock::ToolUse {
                id: tool.id,
                name: TOOL_NAME,
                input: ToolInput {
                    city: Some(tool.city),
                },
            },
        }
    }
}

pub(crate) async fn messages(shared: &Arc<Shared>, body: &Bytes) -> Reply {
    let req = match parse_body(body) {
        Ok(r) => r,
        Err(message) => return invalid_request(&message),
    };
    let req = match req.validate(true) {
        Ok(p) => p,
        Err(message) => return invalid_request(message),
    };
    let model = req.model;
    let mode = mode_of(model);
    if let Some(reply) = failure_mode(mode, req.stream).await {
        return reply;
    }

    let drip = mode == Mode::Drip && req.stream;
    let (blocks, stop_reason) = answer_blocks(mode, drip, &req);
    let cached = mode == Mode::Cache;
    let usage = Usage {
        input_tokens: req.input_tokens(),
        output_tokens: blocks.iter().map(Block::output_tokens).sum(),
        cache_creation_input_tokens: if cached { 20 } else { 0 },
        cache_read_input_tokens: if cached { 100 } else { 0 },
    };
    let id = format!("msg_mock_{}", shared.next_id());
    let message = |content, stop_reason, usage| MessageBody {
        id: &id,
        kind: "message",
        role: "assistant",
        model,
        content,
        stop_reason,
        stop_sequence: (),
        usage,
    };

    if !req.stream {
        let content = blocks.iter().map(Block::to_content).collect();
        let body = to_json(&message(content, Some(stop_reason), usage));
        return if mode == Mode::Cut {
            truncated(body).into()
        } else {
            json(StatusCode::OK, body).into()
        };
    }
    // Like Anthropic: the skeleton already counts one output token; `message_delta` has the total.
    let start = message(
        Vec::new(),
        None,
        Usage {
            output_tokens: 1,
            ..usage
        },
    );
    let mut f = Frames::new();
    emit(&mut f, &Event::MessageStart { message: start });
    let body = match stream_blocks(&mut f, mode, drip, &blocks) {
        Streamed::Cut => MockBody::events(f.into_frames(), shared),
        Streamed::Whole { paced } => {
            emit(
                &mut f,
                &Event::MessageDelta {
                    delta: StopDelta {
                        stop_reason,
                        stop_sequence: (),
                    },
                    usage: OutputUsage {
                        output_tokens: usage.output_tokens,
                    },
                },
            );
            emit(&mut f, &Event::MessageStop);
            match paced {
                Some(range) => MockBody::paced_events(f.into_frames(), shared, DRIP_INTERVAL, range),
                None => MockBody::events(f.into_frames(), shared),
            }
        }
    };
    sse_response(body).into()
}

/// The modes that answer with an error (or no answer) instead of a message; `slow-<ms>*` waits and
/// then lets the message through.
async fn failure_mode(mode: Mode, stream: bool) -> Option<Reply> {
    match mode {
        Mode::Fail => Some(
            error(
                StatusCode::INTERNAL_SERVER_ERROR,
                "api_error",
                "Internal server error",
            )
            .into(),
        ),
        Mode::Overloaded => Some(overloaded().into()),
        Mode::StreamErr if !stream => Some(overloaded().into()),
        Mode::RateLimit => {
            let mut resp = error(
                StatusCode::TOO_MANY_REQUESTS,
                "rate_limit_error",
                "This request would exceed the rate limit for your organization. Please try again later.",
            );
            resp.headers_mut()
                .insert(RETRY_AFTER, HeaderValue::from_static("1"));
            Some(resp.into())
        }
        Mode::Reset => Some(Reply::Reset),
        Mode::Slow(ms) => {
            tokio::time::sleep(Duration::from_millis(ms)).await;
            None
        }
        _ => None,
    }
}

/// The answer's content blocks and stop reason: tool calls (`tool*`, `tools2*`), 100 ticks (a
/// `drip*` stream), or the echo truncated to `max_tokens` words.
fn answer_blocks(mode: Mode, drip: bool, req: &Parsed<'_>) -> (Vec<Block>, &'static str) {
    match mode {
        Mode::Tool => (
            vec![Block::Text(TOOL_PREAMBLE.to_owned()), Block::Tool(&TOOLS[0])],
            "tool_use",
        ),
        Mode::Tools2 => (
            vec![
                Block::Text(TOOL_PREAMBLE.to_owned()),
                Block::Tool(&TOOLS[0]),
                Block::Tool(&TOOLS[1]),
            ],
            "tool_use",
        ),
        _ if drip => {
            let text: String = (1..=DRIP_CHUNKS).map(|i| format!("tick{i} ")).collect();
            (vec![Block::Text(text)], "end_turn")
        }
        _ => {
            let (text, finish) = truncate_words(echo_text(&req.last_user_text()), req.max_tokens);
            let stop = if mode == Mode::MaxTok || finish == "length" {
                "max_tokens"
            } else {
                "end_turn"
            };
            (vec![Block::Text(text)], stop)
        }
    }
}

/// How far [`stream_blocks`] got.
enum Streamed {
    /// `cut*` / `streamerr*`: the stream ends after the first text delta (and the error event).
    Cut,
    /// Every block was sent; `paced` are the frames a `drip*` stream sends slowly.
    Whole { paced: Option<std::ops::Range<usize>> },
}

/// The content blocks as `content_block_start` / deltas / `content_block_stop` (a ping after the
/// first start, like Anthropic).
fn stream_blocks(f: &mut Frames, mode: Mode, drip: bool, blocks: &[Block]) -> Streamed {
    let mut paced = None;
    for (index, block) in blocks.iter().enumerate() {
        let content_block = match block {
            Block::Text(_) => ContentBlock::Text { text: "" },
            Block::Tool(tool) => ContentBlock::ToolUse {
                id: tool.id,
                name: TOOL_NAME,
                input: ToolInput { city: None },
            },
        };
        emit(f, &Event::ContentBlockStart { index, content_block });
        if index == 0 {
            emit(f, &Event::Ping);
        }
        match block {
            Block::Text(text) => {
                let pieces = word_pieces(text);
                if matches!(mode, Mode::Cut | Mode::StreamErr) {
                    // Ends after the first delta: no content_block_stop, message_delta, message_stop.
                    if let Some(first) = pieces.first() {
                        let delta = BlockDelta::TextDelta { text: first };
                        emit(f, &Event::ContentBlockDelta { index, delta });
                    }
                    if mode == Mode::StreamErr {
                        let error = ErrorInner {
                            kind: "overloaded_error",
                            message: "Overloaded",
                        };
                        emit(f, &Event::Error { error });
                    }
                    return Streamed::Cut;
                }
                if drip {
                    paced = Some(f.len()..f.len() + pieces.len());
                }
                for text in pieces {
                    let delta = BlockDelta::TextDelta { text };
                    emit(f, &Event::ContentBlockDelta { index, delta });
                }
            }
            Block::Tool(tool) => {
                for partial_json in tool.pieces {
                    let delta = BlockDelta::InputJsonDelta { partial_json };
                    emit(f, &Event::ContentBlockDelta { index, delta });
                }
            }
        }
        emit(f, &Event::ContentBlockStop { index });
    }
    Streamed::Whole { paced }
}

fn overloaded() -> Response<MockBody> {
    error(
        StatusCode::from_u16(529).expect("529 is a valid status code"),
        "overloaded_error",
        "Overloaded",
    )
}

// ---------------------------------------------------------------------------------------------
// POST /v1/messages/count_tokens
// ---------------------------------------------------------------------------------------------

#[derive(Serialize)]
struct TokenCount {
    input_tokens: u64,
}

pub(crate) fn count_tokens(body: &Bytes) -> Reply {
    let req = match parse_body(body) {
        Ok(r) => r,
        Err(message) => return invalid_request(&message),
    };
    match req.validate(false) {
        Ok(p) => json(
            StatusCode::OK,
            to_json(&TokenCount {
                input_tokens: p.input_tokens(),
            }),
        )
        .into(),
        Err(message) => invalid_request(message),
    }
}

// ---------------------------------------------------------------------------------------------
// GET /v1/models[/{id}] with `anthropic-version`
// ---------------------------------------------------------------------------------------------

#[derive(Serialize)]
struct ModelInfo {
    #[serde(rename = "type")]
    kind: &'static str,
    id: &'static str,
    display_name: &'static str,
    created_at: &'static str,
}

#[derive(Serialize)]
struct ModelPage {
    data: &'static [ModelInfo],
    has_more: bool,
    first_id: &'static str,
    last_id: &'static str,
}

const MODELS: [ModelInfo; 2] = [
    ModelInfo {
        kind: "model",
        id: "claude-3-7-sonnet",
        display_name: "Claude 3.7 Sonnet",
        created_at: "2025-02-19T00:00:00Z",
    },
    ModelInfo {
        kind: "model",
        id: "claude-4-sonnet",
        display_name: "Claude 4 Sonnet",
        created_at: "2025-05-22T00:00:00Z",
    },
];

pub(crate) fn models() -> Response<MockBody> {
    let page = ModelPage {
        data: &MODELS,
        has_more: false,
        first_id: MODELS[0].id,
        last_id: MODELS[MODELS.len() - 1].id,
    };
    json(StatusCode::OK, to_json(&page))
}

pub(crate) fn model(id: &str) -> Response<MockBody> {
    match MODELS.iter().find(|m| m.id == id) {
        Some(m) => json(StatusCode::OK, to_json(m)),
        None => error(StatusCode::NOT_FOUND, "not_found_error", &format!("model: {id}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn modes() {
        assert_eq!(mode_of("tools2-x"), Mode::Tools2);
        assert_eq!(mode_of("tool"), Mode::Tool);
        assert_eq!(mode_of("tools"), Mode::Tool);
        assert_eq!(mode_of("cache-me"), Mode::Cache);
        assert_eq!(mode_of("cut"), Mode::Cut);
        assert_eq!(mode_of("slow-20"), Mode::Slow(20));
        assert_eq!(mode_of("overloaded"), Mode::Overloaded);
        assert_eq!(mode_of("claude-4-sonnet"), Mode::Echo);
    }

    #[test]
    fn tool_pieces_concatenate_to_the_input() {
        for tool in &TOOLS {
            let input: serde_json::Value = serde_json::from_str(&tool.pieces.concat()).unwrap();
            assert_eq!(input, serde_json::json!({"city": tool.city}));
        }
    }
}
