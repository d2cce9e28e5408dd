//! The canonical representation every adapter reads into and writes from.
//!
//! Adapters never talk to each other: each one parses its protocol into these types and renders these
//! types back into its protocol, so supporting a new provider means writing one adapter.
//!
//! Invariants the parsers guarantee (renderers rely on them):
//! - [`ToolCall::arguments`] is the JSON text of an object, or empty (meaning `{}`), for calls that come
//!   from a request. Calls read from an upstream *response* are kept as the upstream sent them.
//! - Every [`Message::Tool`] result in a request answers a tool call made by an earlier assistant message.
//! - [`Usage::input`] counts only uncached prompt tokens; [`Usage::output`] includes reasoning tokens.

use serde::Serialize;
use serde_json::{Map, Value};

use crate::Protocol;

/// A chat request in the canonical form.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct ChatRequest {
    /// The model the client asked for (`None` for Gemini, whose model is in the URL).
    pub model: Option<String>,
    /// The system prompt: every system/developer message or system block, joined with `\n`.
    pub system: Option<String>,
    /// The conversation, in order.
    pub messages: Vec<Message>,
    /// Function tools the model may call.
    pub tools: Vec<Tool>,
    /// How the model must use the tools.
    pub tool_choice: Option<ToolChoice>,
    /// `Some(false)` when the client asked for at most one tool call per turn.
    pub parallel_tool_calls: Option<bool>,
    /// The output token limit.
    pub max_tokens: Option<u32>,
    /// Sampling temperature, as the client sent it.
    pub temperature: Option<f64>,
    /// Nucleus sampling.
    pub top_p: Option<f64>,
    /// Top-k sampling (an extension on OpenAI-compatible servers).
    pub top_k: Option<u32>,
    /// Stop sequences.
    pub stop: Vec<String>,
    /// The client wants a streamed answer.
    pub stream: bool,
    /// The client wants usage at the end of the stream.
    pub include_usage: bool,
    /// An end-user identifier.
    pub user: Option<String>,
    /// OpenAI `metadata` (string map); only forwarded to OpenAI-shaped upstreams.
    pub metadata: Map<String, Value>,
    /// Top-level fields this crate does not translate, kept as sent.
    pub extras: Map<String, Value>,
    /// The protocol `extras` came from: they are only forwarded to an upstream of the same protocol.
    pub extras_protocol: Option<Protocol>,
}

impl ChatRequest {
    /// Moves every in-conversation [`Message::System`] into the leading system prompt (joined with
    /// `\n`, in order): for upstreams that take only one system prompt (Anthropic, Gemini, Bedrock)
    /// and OpenAI-compatible ones whose chat templates refuse a system message after the first turn.
    pub fn fold_system(&mut self) {
        let mut texts: Vec<String> = self.system.take().into_iter().collect();
        self.messages.retain(|m| match m {
            Message::System(t) => {
                texts.push(t.clone());
                false
            }
            _ => true,
        });
        self.system = (!texts.is_empty()).then(|| texts.join("\n"));
    }
}

/// One conversation message.
#[derive(Clone, Debug, PartialEq)]
pub enum Message {
    /// A user turn.
    User {
        /// Text, image and document parts.
        content: Vec<Part>,
    },
    /// An assistant turn: text parts and tool calls.
    Assistant {
        /// Text parts (empty when the turn only calls tools).
        content: Vec<Part>,
        /// The tool calls made in this turn.
        tool_calls: Vec<ToolCall>,
    },
    /// The result of one tool call.
    Tool(ToolResult),
    /// A system message in the middle of the conversation (Anthropic clients such as Claude Code
    /// send them with a `mid-conversation` beta). OpenAI upstreams get it in place;
    /// [`ChatRequest::fold_system`] moves it into [`ChatRequest::system`] for every other upstream.
    System(String),
}

/// A content part.
#[derive(Clone, Debug, PartialEq)]
pub enum Part {
    /// Plain text.
    Text(String),
    /// An image.
    Image(MediaSource),
    /// A document such as a PDF.
    Document {
        /// Where the document is.
        source: MediaSource,
        /// The file name the client gave, if any.
        filename: Option<String>,
    },
}

/// Where an image or document comes from.
#[derive(Clone, Debug, PartialEq)]
pub enum MediaSource {
    /// A URL the provider fetches itself.
    Url(String),
    /// Inline base64 data.
    Base64 {
        /// The MIME type, e.g. `image/png`.
        media_type: String,
        /// The base64 payload, without a `data:` prefix.
        data: String,
    },
}

impl MediaSource {
    /// Reads an OpenAI-style URL: `data:<mime>;base64,<data>` becomes [`MediaSource::Base64`], anything
    /// else [`MediaSource::Url`]. `None` for a `data:` URL that is not base64.
    pub fn from_url(url: &str) -> Option<MediaSource> {
        let Some(rest) = url.strip_prefix("data:") else {
            return Some(MediaSource::Url(url.to_owned()));
        };
        let (header, data) = rest.split_once(',')?;
        let media_type = header.strip_suffix(";base64")?;
        Some(MediaSource::Base64 {
            media_type: if media_type.is_empty() {
                "application/octet-stream".to_owned()
            } else {
                media_type.to_owned()
            },
            data: data.to_owned(),
        })
    }

    /// The OpenAI-style URL form (a `data:` URL for inline data).
    pub fn to_url(&self) -> String {
        match self {
            MediaSource::Url(u) => u.clone(),
            MediaSource::Base64 { media_type, data } => format!("data:{media_type};base64,{data}"),
        }
    }
}

/// A tool call made by the assistant.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ToolCall {
    /// The call id that the tool result refers to.
    pub id: String,
    /// The function name.
    pub name: String,
    /// The arguments as JSON text (an object, or empty for `{}`).
    pub arguments: String,
}

/// The result of a tool call, sent back by the client.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ToolResult {
    /// The id of the call this answers.
    pub tool_call_id: String,
    /// The result, flattened to text.
    pub content: String,
    /// Anthropic's `is_error` flag (other protocols have no such field).
    pub is_error: bool,
}

/// A function tool.
#[derive(Clone, Debug, PartialEq)]
pub struct Tool {
    /// The function name.
    pub name: String,
    /// What the function does.
    pub description: Option<String>,
    /// The JSON schema of the arguments.
    pub parameters: Option<Value>,
}

/// How the model must use the tools.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ToolChoice {
    /// The model decides.
    Auto,
    /// No tool calls.
    None,
    /// At least one tool call.
    Required,
    /// This function must be called.
    Named(String),
}

/// Why generation ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FinishReason {
    /// A natural end or a stop sequence.
    Stop,
    /// The token limit (or the context window) was reached.
    Length,
    /// The model called tools.
    ToolCalls,
    /// A safety system stopped or refused the answer.
    ContentFilter,
}

/// Token usage.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Usage {
    /// Prompt tokens that were neither read from nor written to a cache.
    pub input: u64,
    /// Generated tokens, reasoning included.
    pub output: u64,
    /// Prompt tokens read from the cache.
    pub cache_read: u64,
    /// Prompt tokens written to the cache (Anthropic).
    pub cache_write: u64,
    /// The part of `output` spent on reasoning.
    pub reasoning: u64,
}

impl Usage {
    /// Usage reported as a prompt total that includes the `cached` tokens read from the cache (OpenAI,
    /// Gemini, the Responses API): the cached part is split off `input` (never more than the prompt).
    pub(crate) fn from_cached_prompt(prompt: u64, cached: u64, output: u64, reasoning: u64) -> Usage {
        let cached = cached.min(prompt);
        Usage {
            input: prompt - cached,
            output,
            cache_read: cached,
            cache_write: 0,
            reasoning,
        }
    }

    /// All prompt tokens: OpenAI's `prompt_tokens`.
    pub fn prompt_total(&self) -> u64 {
        self.input + self.cache_read + self.cache_write
    }
}

/// A complete (non-streamed) answer.
#[derive(Clone, Debug, PartialEq)]
pub struct ChatResponse {
    /// The upstream's id for the answer.
    pub id: Option<String>,
    /// The model the upstream says it used.
    pub model: Option<String>,
    /// The text, all text blocks concatenated.
    pub content: String,
    /// The model's reasoning (vLLM's `reasoning_content` / `reasoning`, Anthropic's thinking blocks);
    /// empty when there is none. Never part of `content`.
    pub reasoning: String,
    /// The tool calls.
    pub tool_calls: Vec<ToolCall>,
    /// Why generation ended.
    pub finish_reason: FinishReason,
    /// The stop sequence that ended generation, when the upstream says which.
    pub stop_sequence: Option<String>,
    /// Token usage, when the upstream reported it.
    pub usage: Option<Usage>,
}

/// The OpenAI error detail (`error` in an OpenAI error body), which is also what the gateway's own
/// errors carry. Serialised with all four keys, `null` when unknown.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct ErrorDetail {
    /// Human-readable message.
    pub message: String,
    /// OpenAI's `type` (`invalid_request_error`, `rate_limit_error`, ...).
    #[serde(rename = "type")]
    pub error_type: String,
    /// The offending request field, as a JSON path.
    pub param: Option<String>,
    /// A machine-readable code (OpenAI's, or the upstream's own error type).
    pub code: Option<String>,
}

impl ErrorDetail {
    /// A detail with a message and a type, and no param or code.
    pub fn new(message: impl Into<String>, error_type: &str) -> ErrorDetail {
        ErrorDetail {
            message: message.into(),
            error_type: error_type.to_owned(),
            param: None,
            code: None,
        }
    }
}

/// An error in the canonical form: the status to report to an OpenAI-shaped client and the OpenAI
/// error detail (`type` in OpenAI's vocabulary, `code` usually the upstream's own error type).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ErrorInfo {
    /// HTTP status.
    pub status: u16,
    /// The OpenAI-shaped detail.
    pub detail: ErrorDetail,
}

impl ErrorInfo {
    /// An error with the given status, type and message and no param or code.
    pub fn new(status: u16, error_type: &str, message: impl Into<String>) -> ErrorInfo {
        ErrorInfo {
            status,
            detail: ErrorDetail::new(message, error_type),
        }
    }
}

/// One step of a streamed answer.
///
/// Order: `Start` first (any [`StreamEvent::Usage`] known at that moment comes just before it), then
/// text and tool-call events, `Finish`, `Usage` (latest wins), and `Done` when the upstream ended the
/// stream properly. `Error` ends the stream instead of `Done`.
#[derive(Clone, Debug, PartialEq)]
pub enum StreamEvent {
    /// The upstream accepted the request and started answering.
    Start,
    /// A piece of text.
    TextDelta(String),
    /// A piece of the model's reasoning (never answer text): Anthropic clients get a thinking block,
    /// other clients do not see it.
    ReasoningDelta(String),
    /// A new tool call; `index` counts tool calls from 0 in the order they start.
    ToolCallStart {
        /// The tool call index.
        index: usize,
        /// The call id.
        id: String,
        /// The function name.
        name: String,
    },
    /// A piece of a tool call's JSON arguments.
    ToolCallArgsDelta {
        /// The tool call index.
        index: usize,
        /// The next piece of the arguments text.
        fragment: String,
    },
    /// Generation ended for this reason.
    Finish {
        /// Why.
        reason: FinishReason,
    },
    /// The usage so far (cumulative; each event replaces the previous one).
    Usage(Usage),
    /// A keep-alive from the upstream.
    Ping,
    /// The upstream ended the stream properly.
    Done,
    /// The stream failed.
    Error(ErrorInfo),
}
