//! Gemini (Google AI Studio "generativelanguage") API:
//! `POST /v1beta/models/{model}:generateContent` and `POST /v1beta/models/{model}:streamGenerateContent`
//! (`?alt=sse` streams `data: <GenerateContentResponse>` events; without it the body is one JSON array
//! whose elements are sent incrementally, as Google does).
//!
//! The behaviour is chosen by a prefix of the model name in the path: `fail*`, `unavail*`,
//! `ratelimit*`, `reset*`, `slow-<ms>*`, `cut*`, `tools2*`, `tool*`, `maxtok*`, `drip*`; anything
//! else echoes the text of the last user content.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use hyper::header::{HeaderValue, CONTENT_TYPE};
use hyper::{Response, StatusCode};
use serde::{Deserialize, Serialize};

use crate::body::MockBody;
use crate::completions::{echo_text, truncate_words, DRIP_CHUNKS, DRIP_INTERVAL};
use crate::frames::Frames;
use crate::handlers::{json, sse_response, to_json, truncated, Reply};
use crate::modes::mode_by_prefix;
use crate::openai::{word_count, word_pieces, Str, TOOL_ARGUMENTS, TOOL_NAME};
use crate::state::Shared;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Mode {
    Fail,
    Unavail,
    RateLimit,
    Reset,
    Slow(u64),
    Cut,
    Tools2,
    Tool,
    MaxTok,
    Drip,
    Echo,
}

fn mode_of(model: &str) -> Mode {
    mode_by_prefix(
        model,
        &[
            ("fail", Mode::Fail),
            ("unavail", Mode::Unavail),
            ("ratelimit", Mode::RateLimit),
            ("reset", Mode::Reset),
            ("cut", Mode::Cut),
            ("tools2", Mode::Tools2),
            ("tool", Mode::Tool),
            ("maxtok", Mode::MaxTok),
            ("drip", Mode::Drip),
        ],
        Mode::Slow,
        Mode::Echo,
    )
}

// ---------------------------------------------------------------------------------------------
// Requests (proto3 JSON: camelCase, snake_case accepted too)
// ---------------------------------------------------------------------------------------------

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct GenerateRequest<'a> {
    #[serde(borrow)]
    contents: Option<Vec<GContent<'a>>>,
    #[serde(borrow, alias = "system_instruction")]
    system_instruction: Option<GContent<'a>>,
    #[serde(alias = "generation_config")]
    generation_config: Option<GenerationConfig>,
}

#[derive(Deserialize)]
struct GContent<'a> {
    #[serde(borrow)]
    role: Option<Str<'a>>,
    #[serde(borrow)]
    parts: Option<Vec<GPart<'a>>>,
}

/// A part; only `text` is kept (`inlineData`, `functionCall`, ... are ignored).
#[derive(Deserialize)]
struct GPart<'a> {
    #[serde(borrow)]
    text: Option<Str<'a>>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct GenerationConfig {
    #[serde(alias = "max_output_tokens")]
    max_output_tokens: Option<u64>,
}

impl GContent<'_> {
    fn texts(&self) -> impl Iterator<Item = &str> {
        self.parts
            .iter()
            .flatten()
            .filter_map(|p| p.text.as_ref())
            .map(|t| &*t.0)
    }

    fn words(&self) -> u64 {
        self.texts().map(word_count).sum()
    }
}

// ---------------------------------------------------------------------------------------------
// Responses
// ---------------------------------------------------------------------------------------------

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct GenerateResponse<'a> {
    candidates: [Candidate<'a>; 1],
    #[serde(skip_serializing_if = "Option::is_none")]
    usage_metadata: Option<UsageMetadata>,
    model_version: &'a str,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Candidate<'a> {
    content: CandidateContent<'a>,
    #[serde(skip_serializing_if = "Option::is_none")]
    finish_reason: Option<&'static str>,
    index: u32,
}

#[derive(Serialize)]
struct CandidateContent<'a> {
    role: &'static str,
    parts: &'a [OutPart<'a>],
}

#[derive(Serialize)]
#[serde(untagged)]
enum OutPart<'a> {
    Text {
        text: &'a str,
    },
    Call {
        #[serde(rename = "functionCall")]
        function_call: FunctionCall,
    },
}

#[derive(Serialize)]
struct FunctionCall {
    name: &'static str,
    args: Args,
}

#[derive(Serialize)]
struct Args {
    city: &'static str,
}

#[derive(Serialize, Clone, Copy)]
#[serde(rename_all = "camelCase")]
struct UsageMetadata {
    prompt_token_count: u64,
    candidates_token_count: u64,
    total_token_count: u64,
}

fn call(city: &'static str) -> OutPart<'static> {
    OutPart::Call {
        function_call: FunctionCall {
            name: TOOL_NAME,
            args: Args { city },
        },
    }
}

// ---------------------------------------------------------------------------------------------
// Errors
// ---------------------------------------------------------------------------------------------

#[derive(Serialize)]
struct ErrorBody<'a> {
    error: ErrorInner<'a>,
}

#[derive(Serialize)]
struct ErrorInner<'a> {
    code: u16,
    message: &'a str,
    status: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    details: Option<[ErrorInfo; 1]>,
}

#[derive(Serialize)]
struct ErrorInfo {
    #[serde(rename = "@type")]
    kind: &'static str,
    reason: &'static str,
    domain: &'static str,
    metadata: ErrorMetadata,
}

#[derive(Serialize)]
struct ErrorMetadata {
    service: &'static str,
}

/// `{"error":{"code":<status>,"message":<message>,"status":<google_status>}}`
/// `GET /v1beta/models`: Google's model list (`models/{id}` names, camelCase fields).
pub(crate) fn models() -> Response<MockBody> {
    let model = |id: &str, display: &str, methods: &[&str]| {
        serde_json::json!({"name": format!("models/{id}"), "version": "001", "displayName": display,
                           "inputTokenLimit": 1_048_576, "outputTokenLimit": 65_536,
                           "supportedGenerationMethods": methods})
    };
    let body = serde_json::json!({"models": [
        model("gemini-2.5-pro", "Gemini 2.5 Pro", &["generateContent", "countTokens"]),
        model("gemini-2.5-flash", "Gemini 2.5 Flash", &["generateContent", "countTokens"]),
        model("text-embedding-004", "Text Embedding 004", &["embedContent"]),
    ]});
    let mut resp = Response::new(MockBody::full(body.to_string()));
    resp.headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    resp
}

pub(crate) fn error(status: StatusCode, google_status: &str, message: &str) -> Response<MockBody> {
    json(
        status,
        to_json(&ErrorBody {
            error: ErrorInner {
                code: status.as_u16(),
                message,
                status: google_status,
                details: None,
            },
        }),
    )
}

/// What Google answers without a key (403 `PERMISSION_DENIED`) and with a wrong one (400
/// `INVALID_ARGUMENT` carrying an `ErrorInfo` with reason `API_KEY_INVALID`).
pub(crate) fn auth_error(key_given: bool) -> Response<MockBody> {
    if !key_given {
        return error(
            StatusCode::FORBIDDEN,
            "PERMISSION_DENIED",
            "Method doesn't allow unregistered callers (callers without established identity). \
             Please use API Key or other form of API consumer identity to call this API.",
        );
    }
    json(
        StatusCode::BAD_REQUEST,
        to_json(&ErrorBody {
            error: ErrorInner {
                code: 400,
                message: "API key not valid. Please pass a valid API key.",
                status: "INVALID_ARGUMENT",
                details: Some([ErrorInfo {
                    kind: "type.googleapis.com/google.rpc.ErrorInfo",
                    reason: "API_KEY_INVALID",
                    domain: "googleapis.com",
                    metadata: ErrorMetadata {
                        service: "generativelanguage.googleapis.com",
                    },
                }]),
            },
        }),
    )
}

fn invalid_argument(message: &str) -> Reply {
    error(StatusCode::BAD_REQUEST, "INVALID_ARGUMENT", message).into()
}

// ---------------------------------------------------------------------------------------------
// generateContent / streamGenerateContent
// ---------------------------------------------------------------------------------------------

pub(crate) async fn generate(
    shared: &Arc<Shared>,
    model: &str,
    stream: bool,
    sse: bool,
    body: &Bytes,
) -> Reply {
    let req: GenerateRequest = match serde_json::from_slice(body) {
        Ok(r) => r,
        Err(e) => return invalid_argument(&format!("Invalid JSON payload received. {e}")),
    };
    let contents = match req.contents.as_deref() {
        Some(c) if !c.is_empty() => c,
        _ => return invalid_argument("* GenerateContentRequest.contents: contents is not specified\n"),
    };
    let mode = mode_of(model);
    if let Some(reply) = failure_mode(mode).await {
        return reply;
    }

    let prompt_tokens = (req.system_instruction.as_ref().map_or(0, GContent::words)
        + contents.iter().map(GContent::words).sum::<u64>())
    .max(1);
    let usage = |candidates: u64| UsageMetadata {
        prompt_token_count: prompt_tokens,
        candidates_token_count: candidates,
        total_token_count: prompt_tokens + candidates,
    };

    let calls = match mode {
        Mode::Tool => Some(vec![call("Berlin")]),
        Mode::Tools2 => Some(vec![call("Berlin"), call("Hamburg")]),
        _ => None,
    };
    if let Some(parts) = calls {
        // Function calls are not streamed piecewise by Gemini: one chunk carries them all.
        let meta = usage(word_count(TOOL_ARGUMENTS) * parts.len() as u64);
        let resp = response(model, &parts, Some("STOP"), Some(meta));
        if !stream {
            return json(StatusCode::OK, to_json(&resp)).into();
        }
        let mut f = Frames::new();
        push_chunk(&mut f, sse, &resp);
        return stream_response(f, sse, true, shared, None);
    }

    let drip = mode == Mode::Drip && stream;
    let limit = req.generation_config.and_then(|g| g.max_output_tokens);
    let (text, finish) = answer_text(mode, drip, contents, limit);
    let meta = usage(word_count(&text));
    if !stream {
        let body = to_json(&response(
            model,
            &[OutPart::Text { text: &text }],
            Some(finish),
            Some(meta),
        ));
        return if mode == Mode::Cut {
            truncated(body).into()
        } else {
            json(StatusCode::OK, body).into()
        };
    }
    let answer = Answer {
        model,
        text: &text,
        finish,
        meta,
    };
    stream_text(shared, sse, mode, drip, &answer)
}

/// The modes that answer with an error (or no answer); `slow-<ms>*` waits and then answers.
async fn failure_mode(mode: Mode) -> Option<Reply> {
    let (status, rpc, message) = match mode {
        Mode::Fail => (
            StatusCode::INTERNAL_SERVER_ERROR,
            "INTERNAL",
            "Internal error encountered.",
        ),
        Mode::Unavail => (
            StatusCode::SERVICE_UNAVAILABLE,
            "UNAVAILABLE",
            "The model is overloaded. Please try again later.",
        ),
        Mode::RateLimit => (
            StatusCode::TOO_MANY_REQUESTS,
            "RESOURCE_EXHAUSTED",
            "Resource has been exhausted (e.g. check quota).",
        ),
        Mode::Reset => return Some(Reply::Reset),
        Mode::Slow(ms) => {
            tokio::time::sleep(Duration::from_millis(ms)).await;
            return None;
        }
        _ => return None,
    };
    Some(error(status, rpc, message).into())
}

/// The answer's text and finish reason: 100 ticks (a `drip*` stream), else the last user turn's echo
/// truncated to `limit` words (`MAX_TOKENS` then, and always for `maxtok*`).
fn answer_text(
    mode: Mode,
    drip: bool,
    contents: &[GContent<'_>],
    limit: Option<u64>,
) -> (String, &'static str) {
    if drip {
        let text: String = (1..=DRIP_CHUNKS).map(|i| format!("tick{i} ")).collect();
        return (text, "STOP");
    }
    let user_text = contents
        .iter()
        .rev()
        .find(|c| c.role.as_ref().is_none_or(|r| r.0 == "user"))
        .map(|c| c.texts().collect::<String>())
        .unwrap_or_default();
    let (text, finish) = truncate_words(echo_text(&user_text), limit);
    let finish = if mode == Mode::MaxTok || finish == "length" {
        "MAX_TOKENS"
    } else {
        "STOP"
    };
    (text, finish)
}

/// A text answer to stream.
struct Answer<'a> {
    model: &'a str,
    text: &'a str,
    finish: &'static str,
    meta: UsageMetadata,
}

/// A text answer as one chunk per word, the last with the finish reason and usage; `cut*` sends the
/// first chunk only, `drip*` paces every chunk.
fn stream_text(shared: &Arc<Shared>, sse: bool, mode: Mode, drip: bool, answer: &Answer<'_>) -> Reply {
    let model = answer.model;
    let mut pieces = word_pieces(answer.text);
    if pieces.is_empty() {
        pieces.push("");
    }
    let mut f = Frames::new();
    if mode == Mode::Cut {
        // One chunk, then the stream ends: no finishReason, no usage (and no closing `]`).
        push_chunk(
            &mut f,
            sse,
            &response(model, &[OutPart::Text { text: pieces[0] }], None, None),
        );
        return stream_response(f, sse, false, shared, None);
    }
    let last = pieces.len() - 1;
    for (i, text) in pieces.iter().enumerate() {
        let (finish, meta) = if i == last {
            (Some(answer.finish), Some(answer.meta))
        } else {
            (None, None)
        };
        push_chunk(
            &mut f,
            sse,
            &response(model, &[OutPart::Text { text }], finish, meta),
        );
    }
    let paced = drip.then_some(0..pieces.len());
    stream_response(f, sse, true, shared, paced)
}

fn response<'a>(
    model: &'a str,
    parts: &'a [OutPart<'a>],
    finish_reason: Option<&'static str>,
    usage_metadata: Option<UsageMetadata>,
) -> GenerateResponse<'a> {
    GenerateResponse {
        candidates: [Candidate {
            content: CandidateContent { role: "model", parts },
            finish_reason,
            index: 0,
        }],
        usage_metadata,
        model_version: model,
    }
}

/// Appends one streamed `GenerateContentResponse`: an SSE event, or an element of the JSON array.
fn push_chunk(f: &mut Frames, sse: bool, chunk: &GenerateResponse<'_>) {
    if sse {
        f.data(chunk);
    } else {
        let prefix: &[u8] = if f.len() == 0 { b"[" } else { b",\r\n" };
        f.prefixed_json(prefix, chunk);
    }
}

fn stream_response(
    mut f: Frames,
    sse: bool,
    complete: bool,
    shared: &Arc<Shared>,
    paced: Option<std::ops::Range<usize>>,
) -> Reply {
    if !sse && complete {
        f.raw(b"]");
    }
    let body = match paced {
        Some(range) => MockBody::paced_events(f.into_frames(), shared, DRIP_INTERVAL, range),
        None => MockBody::events(f.into_frames(), shared),
    };
    if sse {
        return sse_response(body).into();
    }
    let mut resp = Response::new(body);
    resp.headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    resp.into()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn modes() {
        assert_eq!(mode_of("gemini-2.5-flash"), Mode::Echo);
        assert_eq!(mode_of("tools2"), Mode::Tools2);
        assert_eq!(mode_of("tool-x"), Mode::Tool);
        assert_eq!(mode_of("unavail"), Mode::Unavail);
        assert_eq!(mode_of("slow-5"), Mode::Slow(5));
    }

    #[test]
    fn request_accepts_both_casings() {
        let req: GenerateRequest = serde_json::from_str(
            r#"{"contents":[{"parts":[{"text":"a b"},{"inlineData":{}}]}],
                "system_instruction":{"parts":[{"text":"c"}]},
                "generationConfig":{"max_output_tokens":3}}"#,
        )
        .unwrap();
        assert_eq!(req.contents.unwrap()[0].words(), 2);
        assert_eq!(req.system_instruction.unwrap().words(), 1);
        assert_eq!(req.generation_config.unwrap().max_output_tokens, Some(3));
    }
}
