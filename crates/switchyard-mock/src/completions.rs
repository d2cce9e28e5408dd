//! The OpenAI endpoints: chat completions, legacy completions and embeddings, JSON or streamed.

use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use base64::Engine as _;
use bytes::Bytes;
use hyper::StatusCode;
use serde::Serialize;

use crate::body::MockBody;
use crate::frames::Frames;
use crate::handlers::{bad_request, json, sse_response, to_json, truncated, Reply};
use crate::modes::{checked_mode, common_mode, mode_of, Mode};
use crate::openai::*;
use crate::state::Shared;

pub(crate) async fn chat(shared: &Arc<Shared>, body: &Bytes) -> Reply {
    let req: ChatRequest = match serde_json::from_slice(body) {
        Ok(r) => r,
        Err(e) => return bad_request(&format!("Invalid request body: {e}"), None),
    };
    let Some(model) = req.model else {
        return bad_request("Field required: model", Some("model"));
    };
    // mittwald serves a retired id with its replacement, and the answer names the replacement.
    let answered = match model.0.strip_prefix("retired-") {
        Some(rest) => format!("successor-of-{rest}"),
        None => model.0.to_string(),
    };
    let model = answered.as_str();
    let Some(messages) = req.messages else {
        return bad_request("Field required: messages", Some("messages"));
    };
    let (stream, mode) = match checked_mode(model, req.stream, req.stream_options.is_some()).await {
        Ok(v) => v,
        Err(reply) => return reply,
    };

    // `nousage*` models never report usage, whatever the client asks (some self-hosted servers).
    let include_usage =
        req.stream_options.and_then(|o| o.include_usage) == Some(true) && !model.starts_with("nousage");
    // `*reason*` models always think, like gpt-oss and Qwen3 on vLLM with a reasoning parser.
    let thinking = model.contains("reason")
        || req
            .chat_template_kwargs
            .and_then(|k| k.enable_thinking)
            .is_some_and(|v| v == serde_json::Value::Bool(true));
    // An agent loop: once the conversation ends with a tool result, `tool*` answers in text (the
    // echo of that result), as a model does after its tool call was answered.
    let role_of = |m: &Message<'_>| m.role.as_ref().map(|r| r.0.to_string());
    let answered_tool = messages.last().and_then(role_of).as_deref() == Some("tool");
    let mode = if mode == Mode::Tool && answered_tool {
        Mode::Echo
    } else {
        mode
    };
    let reasoning = thinking.then_some("thinking");
    let prompt_tokens = messages
        .iter()
        .filter_map(|m| m.content.as_ref())
        .map(Content::word_count)
        .sum::<u64>()
        .max(1);
    let user_text = messages
        .iter()
        .rev()
        .find(|m| m.role.as_ref().is_some_and(|r| r.0 == "user" || r.0 == "tool"))
        .and_then(|m| m.content.as_ref())
        .map(Content::text);
    let answer = ChatAnswer {
        id: format!("chatcmpl-mock-{}", shared.next_id()),
        created: unix_now(),
        model,
        reasoning,
        prompt_tokens,
        content: echo_text(user_text.as_deref().unwrap_or("")),
        tool: tool_for(model),
        limit: req.max_completion_tokens.or(req.max_tokens),
    };
    if stream {
        answer.stream(shared, mode, include_usage)
    } else {
        answer.json(mode)
    }
}

/// What a chat answer is made of, whether sent as JSON or streamed.
struct ChatAnswer<'a> {
    id: String,
    created: u64,
    model: &'a str,
    /// `reasoning_content` to send (when the client enabled thinking).
    reasoning: Option<&'static str>,
    prompt_tokens: u64,
    /// The call `tool*` models make.
    tool: MockTool,
    /// The echo, before truncation to `limit` words.
    content: String,
    limit: Option<u64>,
}

fn text_delta(content: &str) -> Delta<'_> {
    Delta {
        content: Some(content),
        ..Delta::default()
    }
}

impl ChatAnswer<'_> {
    /// A `chat.completion` body: the tool call (`tool*`), else the echo; `cut*` sends it truncated.
    fn json(self, mode: Mode) -> Reply {
        let (message, finish, usage, content);
        if mode == Mode::Tool {
            usage = Usage::new(self.prompt_tokens, word_count(self.tool.arguments));
            finish = "tool_calls";
            message = AssistantMessage {
                role: "assistant",
                content: None,
                refusal: (),
                reasoning_content: self.reasoning,
                tool_calls: Some([ToolCall {
                    id: TOOL_CALL_ID,
                    kind: "function",
                    function: ToolFunction {
                        name: self.tool.name,
                        arguments: self.tool.arguments,
                    },
                }]),
            };
        } else {
            (content, finish) = truncate_words(self.content.clone(), self.limit);
            usage = Usage::new(self.prompt_tokens, word_count(&content));
            message = AssistantMessage {
                role: "assistant",
                content: Some(&content),
                refusal: (),
                reasoning_content: self.reasoning,
                tool_calls: None,
            };
        }
        let body = chat_completion(&self.id, self.created, self.model, message, finish, usage);
        if mode == Mode::Cut {
            truncated(body).into()
        } else {
            json(StatusCode::OK, body).into()
        }
    }

    /// A `chat.completion.chunk` stream: role chunk, reasoning, then per mode the tool call, 100 paced
    /// ticks (`drip*`), one word and no end (`cut*`), one word and an hour of silence (`stall*`), or
    /// the echo word by word.
    fn stream(self, shared: &Arc<Shared>, mode: Mode, include_usage: bool) -> Reply {
        let mut w = StreamWriter::new(
            &self.id,
            self.created,
            self.model,
            "chat.completion.chunk",
            include_usage,
        );
        w.chat_delta(
            Delta {
                role: Some("assistant"),
                content: Some(""),
                ..Delta::default()
            },
            None,
        );
        if let Some(r) = self.reasoning {
            w.chat_delta(
                Delta {
                    reasoning_content: Some(r),
                    ..Delta::default()
                },
                None,
            );
        }
        let body = match mode {
            Mode::Tool => {
                stream_tool_call(&mut w, self.tool);
                let usage = Usage::new(self.prompt_tokens, word_count(self.tool.arguments));
                MockBody::events(w.finish(Some(usage)), shared)
            }
            Mode::Drip => {
                let first_paced = w.frames();
                for i in 1..=DRIP_CHUNKS {
                    w.chat_delta(text_delta(&format!("tick{i} ")), None);
                }
                w.chat_delta(Delta::default(), Some("stop"));
                let frames = w.finish(Some(Usage::new(self.prompt_tokens, DRIP_CHUNKS as u64)));
                let range = first_paced..first_paced + DRIP_CHUNKS;
                MockBody::paced_events(frames, shared, drip_interval(self.model), range)
            }
            Mode::Cut => {
                if let Some(first) = word_pieces(&self.content).first() {
                    w.chat_delta(text_delta(first), None);
                }
                MockBody::events(w.into_frames(), shared)
            }
            Mode::Stall => {
                // Role chunk and one word now, the rest after an hour: the stream is open but silent.
                for piece in &word_pieces(&self.content) {
                    w.chat_delta(text_delta(piece), None);
                }
                w.chat_delta(Delta::default(), Some("stop"));
                let frames = w.finish(None);
                let range = 2..frames.len();
                MockBody::paced_events(frames, shared, STALL_PAUSE, range)
            }
            _ => {
                let (content, finish) = truncate_words(self.content.clone(), self.limit);
                let pieces = word_pieces(&content);
                for piece in &pieces {
                    w.chat_delta(text_delta(piece), None);
                }
                w.chat_delta(Delta::default(), Some(finish));
                let usage = Usage::new(self.prompt_tokens, pieces.len() as u64);
                MockBody::events(w.finish(Some(usage)), shared)
            }
        };
        sse_response(body).into()
    }
}

/// The tool call as OpenAI streams it: id and name with empty arguments, then the argument pieces,
/// then the `tool_calls` finish chunk.
fn stream_tool_call(w: &mut StreamWriter<'_>, tool: MockTool) {
    w.chat_delta(
        Delta {
            tool_calls: Some([ToolCallDelta {
                index: 0,
                id: Some(TOOL_CALL_ID),
                kind: Some("function"),
                function: ToolFunctionDelta {
                    name: Some(tool.name),
                    arguments: "",
                },
            }]),
            ..Delta::default()
        },
        None,
    );
    for piece in tool.pieces {
        w.chat_delta(
            Delta {
                tool_calls: Some([ToolCallDelta {
                    index: 0,
                    id: None,
                    kind: None,
                    function: ToolFunctionDelta {
                        name: None,
                        arguments: piece,
                    },
                }]),
                ..Delta::default()
            },
            None,
        );
    }
    w.chat_delta(Delta::default(), Some("tool_calls"));
}

pub(crate) const DRIP_CHUNKS: usize = 100;
pub(crate) const STALL_PAUSE: Duration = Duration::from_secs(3600);
pub(crate) const DRIP_INTERVAL: Duration = Duration::from_millis(100);

/// A chat `drip-<ms>*` stream paces its ticks `ms` apart (the benchmark's many slow streams); plain
/// `drip*` every [`DRIP_INTERVAL`].
fn drip_interval(model: &str) -> Duration {
    model
        .strip_prefix("drip-")
        .and_then(crate::modes::slow_millis)
        .map_or(DRIP_INTERVAL, Duration::from_millis)
}

fn chat_completion(
    id: &str,
    created: u64,
    model: &str,
    message: AssistantMessage<'_>,
    finish_reason: &'static str,
    usage: Usage,
) -> Vec<u8> {
    to_json(&ChatCompletion {
        id,
        object: "chat.completion",
        created,
        model,
        choices: [ChatChoice {
            index: 0,
            message,
            logprobs: (),
            finish_reason,
        }],
        usage: (!model.starts_with("nousage")).then_some(usage),
        system_fingerprint: (),
    })
}

// ---------------------------------------------------------------------------------------------
// Legacy completions
// ---------------------------------------------------------------------------------------------

pub(crate) async fn completions(shared: &Arc<Shared>, body: &Bytes) -> Reply {
    let req: CompletionRequest = match serde_json::from_slice(body) {
        Ok(r) => r,
        Err(e) => return bad_request(&format!("Invalid request body: {e}"), None),
    };
    let Some(model) = req.model else {
        return bad_request("Field required: model", Some("model"));
    };
    let model = &*model.0;
    let Some(prompt) = req.prompt else {
        return bad_request("Field required: prompt", Some("prompt"));
    };
    let (stream, mode) = match checked_mode(model, req.stream, req.stream_options.is_some()).await {
        Ok(v) => v,
        Err(reply) => return reply,
    };

    let include_usage = req.stream_options.and_then(|o| o.include_usage) == Some(true);
    let prompts = prompt.as_slice();
    let prompt_tokens = prompts.iter().map(|p| word_count(p)).sum::<u64>().max(1);
    let content = echo_text(&prompts.join("\n"));
    let id = format!("cmpl-mock-{}", shared.next_id());
    let created = unix_now();

    if !stream {
        let (content, finish) = truncate_words(content, req.max_tokens);
        let usage = Usage::new(prompt_tokens, word_count(&content));
        let body = to_json(&TextCompletion {
            id: &id,
            object: "text_completion",
            created,
            model,
            choices: [TextChoice {
                index: 0,
                text: &content,
                logprobs: (),
                finish_reason: Some(finish),
            }],
            usage,
            system_fingerprint: (),
        });
        return if mode == Mode::Cut {
            truncated(body).into()
        } else {
            json(StatusCode::OK, body).into()
        };
    }

    let mut w = StreamWriter::new(&id, created, model, "text_completion", include_usage);
    match mode {
        Mode::Drip => {
            for i in 1..=DRIP_CHUNKS {
                w.text(&format!("tick{i} "), None);
            }
            w.text("", Some("stop"));
            let frames = w.finish(Some(Usage::new(prompt_tokens, DRIP_CHUNKS as u64)));
            sse_response(MockBody::paced_events(
                frames,
                shared,
                DRIP_INTERVAL,
                0..DRIP_CHUNKS,
            ))
            .into()
        }
        Mode::Cut => {
            if let Some(first) = word_pieces(&content).first() {
                w.text(first, None);
            }
            sse_response(MockBody::events(w.into_frames(), shared)).into()
        }
        _ => {
            let (content, finish) = truncate_words(content, req.max_tokens);
            let pieces = word_pieces(&content);
            for piece in &pieces {
                w.text(piece, None);
            }
            w.text("", Some(finish));
            let usage = Usage::new(prompt_tokens, pieces.len() as u64);
            sse_response(MockBody::events(w.finish(Some(usage)), shared)).into()
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Embeddings
// ---------------------------------------------------------------------------------------------

pub(crate) async fn embeddings(body: &Bytes) -> Reply {
    let req: EmbeddingsRequest = match serde_json::from_slice(body) {
        Ok(r) => r,
        Err(e) => return bad_request(&format!("Invalid request body: {e}"), None),
    };
    let Some(model) = req.model else {
        return bad_request("Field required: model", Some("model"));
    };
    let model = &*model.0;
    let Some(input) = req.input else {
        return bad_request("Field required: input", Some("input"));
    };
    let base64 = match req.encoding_format.as_ref().map(|f| &*f.0) {
        None | Some("float") => false,
        Some("base64") => true,
        Some(_) => {
            return bad_request(
                "encoding_format must be 'float' or 'base64'",
                Some("encoding_format"),
            );
        }
    };
    if let Some(reply) = common_mode(mode_of(model)).await {
        return reply;
    }
    // `floatonly*` models behave like an upstream that ignores `encoding_format`.
    let base64 = base64 && !model.starts_with("floatonly");

    let inputs = input.as_slice();
    let tokens = inputs.iter().map(|t| word_count(t)).sum::<u64>().max(1);
    let data = inputs
        .iter()
        .enumerate()
        .map(|(index, text)| {
            let v = embedding_of(text);
            let embedding = if model.starts_with("bow") {
                EmbeddingVector::Bag(crate::openai::bag_of_words(text))
            } else if base64 {
                let mut raw = [0u8; EMBEDDING_DIM * 4];
                for (dst, x) in raw.chunks_exact_mut(4).zip(v) {
                    dst.copy_from_slice(&x.to_le_bytes());
                }
                EmbeddingVector::Base64(base64::engine::general_purpose::STANDARD.encode(raw))
            } else {
                EmbeddingVector::Floats(v)
            };
            EmbeddingItem {
                object: "embedding",
                index,
                embedding,
            }
        })
        .collect();
    let list = EmbeddingList {
        object: "list",
        model,
        data,
        usage: EmbeddingUsage {
            prompt_tokens: tokens,
            total_tokens: tokens,
        },
    };
    json(StatusCode::OK, to_json(&list)).into()
}

/// Writes an OpenAI `data:`-only stream; every event is its own body frame.
struct StreamWriter<'a> {
    id: &'a str,
    created: u64,
    model: &'a str,
    object: &'static str,
    include_usage: bool,
    frames: Frames,
}

impl<'a> StreamWriter<'a> {
    fn new(id: &'a str, created: u64, model: &'a str, object: &'static str, include_usage: bool) -> Self {
        StreamWriter {
            id,
            created,
            model,
            object,
            include_usage,
            frames: Frames::new(),
        }
    }

    fn frames(&self) -> usize {
        self.frames.len()
    }

    fn event<T: Serialize>(&mut self, value: &T) {
        self.frames.data(value);
    }

    fn chunk<C: Serialize>(&mut self, choice: C) {
        let chunk = Chunk {
            id: self.id,
            object: self.object,
            created: self.created,
            model: self.model,
            choices: std::slice::from_ref(&choice),
            usage: self.include_usage.then_some(None),
        };
        self.event(&chunk);
    }

    fn chat_delta(&mut self, delta: Delta<'_>, finish_reason: Option<&'static str>) {
        self.chunk(ChunkChoice {
            index: 0,
            delta,
            logprobs: (),
            finish_reason,
        });
    }

    fn text(&mut self, text: &str, finish_reason: Option<&'static str>) {
        self.chunk(TextChoice {
            index: 0,
            text,
            logprobs: (),
            finish_reason,
        });
    }

    /// Adds the usage chunk (if requested) and `[DONE]`, returns the frames.
    fn finish(mut self, usage: Option<Usage>) -> Vec<Bytes> {
        if let (true, Some(usage)) = (self.include_usage, usage) {
            let chunk: Chunk<'_, ()> = Chunk {
                id: self.id,
                object: self.object,
                created: self.created,
                model: self.model,
                choices: &[],
                usage: Some(Some(usage)),
            };
            self.event(&chunk);
        }
        self.frames.raw(b"data: [DONE]\n\n");
        self.into_frames()
    }

    fn into_frames(self) -> Vec<Bytes> {
        self.frames.into_frames()
    }
}

pub(crate) fn echo_text(user_text: &str) -> String {
    let mut s = String::with_capacity(6 + user_text.len());
    s.push_str("echo: ");
    s.push_str(user_text);
    s
}

/// Cuts `content` down to `limit` words if it has more; returns the finish reason.
pub(crate) fn truncate_words(mut content: String, limit: Option<u64>) -> (String, &'static str) {
    let Some(limit) = limit else {
        return (content, "stop");
    };
    let pieces = word_pieces(&content);
    if limit >= pieces.len() as u64 {
        return (content, "stop");
    }
    let end: usize = pieces[..limit as usize].iter().map(|p| p.len()).sum();
    let keep = content[..end].trim_end().len();
    content.truncate(keep);
    (content, "length")
}

fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn drip_pace_from_the_model_name() {
        assert_eq!(drip_interval("drip-20"), Duration::from_millis(20));
        assert_eq!(drip_interval("drip"), DRIP_INTERVAL);
        assert_eq!(drip_interval("drip-x"), DRIP_INTERVAL);
    }

    #[test]
    fn truncation() {
        assert_eq!(
            truncate_words("echo: a b c".into(), Some(2)),
            ("echo: a".into(), "length")
        );
        assert_eq!(
            truncate_words("echo: a b c".into(), Some(4)),
            ("echo: a b c".into(), "stop")
        );
        assert_eq!(truncate_words("echo: a".into(), None), ("echo: a".into(), "stop"));
        assert_eq!(truncate_words("echo: a".into(), Some(0)), ("".into(), "length"));
    }
}
