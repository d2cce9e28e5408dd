//! Routing and the endpoint implementations.

use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use base64::Engine as _;
use bytes::Bytes;
use http_body_util::BodyExt;
use hyper::body::Incoming;
use hyper::header::{HeaderValue, ALLOW, AUTHORIZATION, CACHE_CONTROL, CONTENT_LENGTH, CONTENT_TYPE};
use hyper::{Method, Request, Response, StatusCode};
use serde::Serialize;

use crate::body::MockBody;
use crate::openai::{self, *};
use crate::state::{Endpoint, Shared};
use crate::{anthropic, gemini, RecordedRequest};

/// What the connection should do with a request.
pub(crate) enum Reply {
    Response(Response<MockBody>),
    /// Close the connection without answering.
    Reset,
}

impl From<Response<MockBody>> for Reply {
    fn from(r: Response<MockBody>) -> Self {
        Reply::Response(r)
    }
}

/// The wire API a route belongs to: decides the auth scheme and the error shape.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Api {
    OpenAi,
    Anthropic,
    Gemini,
}

enum Route<'a> {
    Endpoint(Endpoint),
    Model(&'a str),
    /// `GET /v1beta/models`.
    GeminiModels,
    /// `POST /v1beta/models/{model}:generateContent` / `:streamGenerateContent`.
    Gemini {
        model: &'a str,
        stream: bool,
    },
    MethodNotAllowed(&'static str, Api),
    NotFound(Api),
}

fn route<'a>(method: &Method, path: &'a str) -> Route<'a> {
    let (endpoint, allowed) = match path {
        "/v1/chat/completions" => (Endpoint::Chat, Method::POST),
        "/v1/completions" => (Endpoint::Completions, Method::POST),
        "/v1/embeddings" => (Endpoint::Embeddings, Method::POST),
        "/v1/audio/transcriptions" => (Endpoint::Transcriptions, Method::POST),
        "/v1/audio/translations" => (Endpoint::Translations, Method::POST),
        "/v1/rerank" => (Endpoint::Rerank, Method::POST),
        "/v1/responses" => (Endpoint::Responses, Method::POST),
        "/v1/models" => (Endpoint::Models, Method::GET),
        "/v1/messages" => (Endpoint::Messages, Method::POST),
        "/v1/messages/count_tokens" => (Endpoint::CountTokens, Method::POST),
        _ if path.starts_with("/v1/messages/") => return Route::NotFound(Api::Anthropic),
        _ if path == "/v1beta" || path.starts_with("/v1beta/") => return gemini_route(method, path),
        _ => {
            return match path.strip_prefix("/v1/models/") {
                Some(id) if !id.is_empty() && *method == Method::GET => Route::Model(id),
                Some(id) if !id.is_empty() => Route::MethodNotAllowed("GET", Api::OpenAi),
                _ => Route::NotFound(Api::OpenAi),
            };
        }
    };
    let api = match endpoint {
        Endpoint::Messages | Endpoint::CountTokens => Api::Anthropic,
        _ => Api::OpenAi,
    };
    if *method == allowed {
        Route::Endpoint(endpoint)
    } else if allowed == Method::GET {
        Route::MethodNotAllowed("GET", api)
    } else {
        Route::MethodNotAllowed("POST", api)
    }
}

fn gemini_route<'a>(method: &Method, path: &'a str) -> Route<'a> {
    if path == "/v1beta/models" {
        return if *method == Method::GET {
            Route::GeminiModels
        } else {
            Route::MethodNotAllowed("GET", Api::Gemini)
        };
    }
    let Some((model, action)) = path
        .strip_prefix("/v1beta/models/")
        .and_then(|rest| rest.rsplit_once(':'))
    else {
        return Route::NotFound(Api::Gemini);
    };
    let stream = match action {
        "generateContent" => false,
        "streamGenerateContent" => true,
        _ => return Route::NotFound(Api::Gemini),
    };
    if model.is_empty() || model.contains('/') {
        Route::NotFound(Api::Gemini)
    } else if *method != Method::POST {
        Route::MethodNotAllowed("POST", Api::Gemini)
    } else {
        Route::Gemini { model, stream }
    }
}

/// The value of query parameter `name` (not percent-decoded).
fn query_param<'a>(query: Option<&'a str>, name: &str) -> Option<&'a str> {
    query?
        .split('&')
        .filter_map(|pair| pair.split_once('=').or(Some((pair, ""))))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v)
}

pub(crate) async fn handle(shared: Arc<Shared>, req: Request<Incoming>) -> Reply {
    let (parts, body) = req.into_parts();
    let path = parts.uri.path();

    if path == "/__calls" {
        return match parts.method {
            Method::GET => json(StatusCode::OK, calls_body(&shared)),
            Method::DELETE => {
                shared.reset();
                let mut resp = Response::new(MockBody::Empty);
                *resp.status_mut() = StatusCode::NO_CONTENT;
                resp
            }
            _ => method_not_allowed("GET, DELETE"),
        }
        .into();
    }

    if path == "/__requests/last" {
        return match parts.method {
            Method::GET => match shared.records.lock().unwrap_or_else(|e| e.into_inner()).back() {
                Some(rec) => json(StatusCode::OK, rec.to_json().to_string()),
                None => json(
                    StatusCode::NOT_FOUND,
                    Bytes::from_static(b"{\"error\":\"no request recorded\"}"),
                ),
            },
            _ => method_not_allowed("GET"),
        }
        .into();
    }

    let route = route(&parts.method, path);
    let body = match body.collect().await {
        Ok(collected) => collected.to_bytes(),
        Err(_) => {
            return json(
                StatusCode::BAD_REQUEST,
                flat_error("Could not read the request body", None),
            )
            .into()
        }
    };

    if shared.record {
        shared.push_record(RecordedRequest {
            method: parts.method.as_str().to_owned(),
            path: parts
                .uri
                .path_and_query()
                .map_or(path, |pq| pq.as_str())
                .to_owned(),
            headers: parts
                .headers
                .iter()
                .map(|(k, v)| {
                    (
                        k.as_str().to_owned(),
                        String::from_utf8_lossy(v.as_bytes()).into_owned(),
                    )
                })
                .collect(),
            body: body.clone(),
        });
    }
    let route = match route {
        Route::Endpoint(ep) => {
            shared.count(ep);
            Route::Endpoint(ep)
        }
        Route::Model(id) => {
            shared.count(Endpoint::Models);
            Route::Model(id)
        }
        Route::Gemini { model, stream } => {
            shared.count(Endpoint::Generate);
            Route::Gemini { model, stream }
        }
        Route::GeminiModels => {
            shared.count(Endpoint::Models);
            Route::GeminiModels
        }
        other => other,
    };
    // `GET /v1/models[/{id}]` answers in Anthropic's shape (and takes Anthropic auth) when the request
    // carries `anthropic-version`.
    let anthropic_models = matches!(route, Route::Endpoint(Endpoint::Models) | Route::Model(_))
        && parts.headers.contains_key(ANTHROPIC_VERSION);
    let api = match route {
        Route::Endpoint(Endpoint::Messages | Endpoint::CountTokens) => Api::Anthropic,
        Route::Gemini { .. } | Route::GeminiModels => Api::Gemini,
        Route::MethodNotAllowed(_, api) | Route::NotFound(api) => api,
        _ if anthropic_models => Api::Anthropic,
        _ => Api::OpenAi,
    };

    if !shared.latency.is_zero() {
        tokio::time::sleep(shared.latency).await;
    }

    if let (Some(expected), Some(key)) = (&shared.expected_auth, &shared.api_key) {
        let bearer_ok = parts
            .headers
            .get(AUTHORIZATION)
            .is_some_and(|v| v.as_bytes() == &expected[..]);
        match api {
            Api::OpenAi if path == "/v1" || path.starts_with("/v1/") => {
                if !bearer_ok {
                    return unauthorized().into();
                }
            }
            Api::OpenAi => {}
            Api::Anthropic => {
                let key_ok = parts
                    .headers
                    .get(X_API_KEY)
                    .is_some_and(|v| v.as_bytes() == key.as_bytes());
                if !key_ok && !bearer_ok {
                    return anthropic::unauthorized().into();
                }
            }
            Api::Gemini => {
                let given = parts
                    .headers
                    .get(X_GOOG_API_KEY)
                    .map(HeaderValue::as_bytes)
                    .or_else(|| query_param(parts.uri.query(), "key").map(str::as_bytes));
                if given != Some(key.as_bytes()) {
                    return gemini::auth_error(given.is_some()).into();
                }
            }
        }
    }
    if matches!(route, Route::Endpoint(Endpoint::Messages | Endpoint::CountTokens))
        && !parts.headers.contains_key(ANTHROPIC_VERSION)
    {
        return anthropic::missing_version().into();
    }

    if let Some(reply) = crate::azure::handle(&shared, &parts, &body).await {
        return reply;
    }
    if let Some(reply) = crate::bedrock::handle(&shared, &parts, &body).await {
        return reply;
    }
    match route {
        Route::Endpoint(Endpoint::Models) if anthropic_models => anthropic::models().into(),
        Route::Model(id) if anthropic_models => anthropic::model(id).into(),
        Route::Endpoint(Endpoint::Models) => json(StatusCode::OK, shared.models_body.clone()).into(),
        Route::Endpoint(Endpoint::Chat) => chat(&shared, &body).await,
        Route::Endpoint(Endpoint::Completions) => completions(&shared, &body).await,
        Route::Endpoint(Endpoint::Embeddings) => embeddings(&body).await,
        Route::Endpoint(ep @ (Endpoint::Transcriptions | Endpoint::Translations)) => {
            let ct = parts.headers.get(CONTENT_TYPE).and_then(|v| v.to_str().ok());
            crate::extra::audio(&shared, ep == Endpoint::Translations, ct, &body).await
        }
        Route::Endpoint(Endpoint::Rerank) => crate::extra::rerank(&shared, &body).await,
        Route::Endpoint(Endpoint::Responses) => crate::extra::responses(&shared, &body).await,
        Route::Endpoint(Endpoint::Messages) => anthropic::messages(&shared, &body).await,
        Route::Endpoint(Endpoint::CountTokens) => anthropic::count_tokens(&body),
        Route::Endpoint(Endpoint::Generate) => unreachable!("Gemini requests route as Route::Gemini"),
        Route::GeminiModels => gemini::models().into(),
        Route::Gemini { model, stream } => {
            let sse = query_param(parts.uri.query(), "alt") == Some("sse");
            gemini::generate(&shared, model, stream, sse, &body).await
        }
        Route::Model(id) => match MODEL_IDS.iter().find(|m| **m == id) {
            Some(id) => json(StatusCode::OK, to_json(&model_object(id))).into(),
            None => json(
                StatusCode::NOT_FOUND,
                openai_error(
                    &format!("The model `{id}` does not exist."),
                    "invalid_request_error",
                    Some("model"),
                    Some("model_not_found"),
                ),
            )
            .into(),
        },
        Route::MethodNotAllowed(allow, Api::OpenAi) => method_not_allowed(allow).into(),
        Route::MethodNotAllowed(allow, api) => {
            let mut resp = if api == Api::Anthropic {
                anthropic::error(
                    StatusCode::METHOD_NOT_ALLOWED,
                    "invalid_request_error",
                    "Method Not Allowed",
                )
            } else {
                gemini::error(
                    StatusCode::METHOD_NOT_ALLOWED,
                    "INVALID_ARGUMENT",
                    "Method Not Allowed",
                )
            };
            resp.headers_mut().insert(ALLOW, HeaderValue::from_static(allow));
            resp.into()
        }
        Route::NotFound(Api::Anthropic) => anthropic::error(
            StatusCode::NOT_FOUND,
            "not_found_error",
            &format!("Not found: {} {}", parts.method, path),
        )
        .into(),
        Route::NotFound(Api::Gemini) => gemini::error(
            StatusCode::NOT_FOUND,
            "NOT_FOUND",
            &format!("Requested entity was not found: {} {}", parts.method, path),
        )
        .into(),
        Route::NotFound(Api::OpenAi) => json(
            StatusCode::NOT_FOUND,
            openai_error(
                &format!("Invalid URL ({} {})", parts.method, path),
                "invalid_request_error",
                None,
                None,
            ),
        )
        .into(),
    }
}

// ---------------------------------------------------------------------------------------------
// Behaviour selected by the model name
// ---------------------------------------------------------------------------------------------

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Mode {
    Fail,
    Unavail,
    RateLimit,
    /// `ratelimit-after-<secs>`: a 429 that says when to come back (`retry-after`), unlike mittwald's.
    RateLimitAfter(u64),
    Flat400,
    Str401,
    Reset,
    Slow(u64),
    Cut,
    Tool,
    Drip,
    /// `stall*`: a stream that sends its first chunks and then goes silent without closing.
    Stall,
    Echo,
}

fn mode_of(model: &str) -> Mode {
    if model.starts_with("fail") {
        Mode::Fail
    } else if model.starts_with("unavail") {
        Mode::Unavail
    } else if let Some(rest) = model.strip_prefix("ratelimit-after-") {
        Mode::RateLimitAfter(slow_millis(rest).unwrap_or(1))
    } else if model.starts_with("ratelimit") {
        Mode::RateLimit
    } else if model.starts_with("flat400") {
        Mode::Flat400
    } else if model.starts_with("str401") {
        Mode::Str401
    } else if model.starts_with("reset") {
        Mode::Reset
    } else if let Some(rest) = model.strip_prefix("slow-") {
        slow_millis(rest).map_or(Mode::Echo, Mode::Slow)
    } else if model.starts_with("cut") {
        Mode::Cut
    } else if model.starts_with("tool") {
        Mode::Tool
    } else if model.starts_with("drip") {
        Mode::Drip
    } else if model.starts_with("stall") {
        Mode::Stall
    } else {
        Mode::Echo
    }
}

/// The milliseconds of a `slow-<ms>*` model name (`rest` follows `slow-`); `None` without digits.
pub(crate) fn slow_millis(rest: &str) -> Option<u64> {
    let digits = rest.bytes().take_while(u8::is_ascii_digit).count();
    rest[..digits].parse().ok()
}

/// Handles the modes shared by all POST endpoints. `None` means: produce a normal answer.
async fn common_mode(mode: Mode) -> Option<Reply> {
    Some(match mode {
        Mode::Fail => json(
            StatusCode::INTERNAL_SERVER_ERROR,
            Bytes::from_static(
                br#"{"error":{"message":"Internal server error","type":"server_error","param":null,"code":null}}"#,
            ),
        )
        .into(),
        Mode::Unavail => json(
            StatusCode::SERVICE_UNAVAILABLE,
            Bytes::from_static(
                br#"{"error":{"message":"Model is restarting","type":"server_error","param":null,"code":null}}"#,
            ),
        )
        .into(),
        Mode::RateLimit => json(
            StatusCode::TOO_MANY_REQUESTS,
            Bytes::from_static(
                br#"{"error":{"message":"Rate limit exceeded","type":"requests","param":null,"code":"rate_limit_exceeded"}}"#,
            ),
        )
        .into(),
        Mode::RateLimitAfter(secs) => {
            let mut resp = json(
                StatusCode::TOO_MANY_REQUESTS,
                Bytes::from_static(
                    br#"{"error":{"message":"Rate limit exceeded","type":"requests","param":null,"code":"rate_limit_exceeded"}}"#,
                ),
            );
            resp.headers_mut().insert("retry-after", HeaderValue::from(secs));
            resp.into()
        }
        Mode::Flat400 => json(
            StatusCode::BAD_REQUEST,
            Bytes::from_static(
                br#"{"object":"error","message":"This model's maximum context length is 4096 tokens","type":"invalid_request_error","param":"messages","code":400}"#,
            ),
        )
        .into(),
        Mode::Str401 => unauthorized().into(),
        Mode::Reset => Reply::Reset,
        Mode::Slow(ms) => {
            tokio::time::sleep(Duration::from_millis(ms)).await;
            return None;
        }
        Mode::Cut | Mode::Tool | Mode::Drip | Mode::Stall | Mode::Echo => return None,
    })
}

/// The behaviour modes of `model` for endpoints without streaming quirks; `None`: answer normally.
pub(crate) async fn common_mode_for(model: &str) -> Option<Reply> {
    common_mode(mode_of(model)).await
}

/// The checks shared by chat and legacy completions: vLLM's `stream_options` rule, then the
/// model's behaviour mode. `Err` is the answer to send instead.
async fn checked_mode(
    model: &str,
    stream: Option<bool>,
    has_stream_options: bool,
) -> Result<(bool, Mode), Reply> {
    let stream = stream == Some(true);
    if has_stream_options && !stream {
        return Err(bad_request(
            "Stream options can only be defined when `stream=True`.",
            Some("stream_options"),
        ));
    }
    let mode = mode_of(model);
    match common_mode(mode).await {
        Some(reply) => Err(reply),
        None => Ok((stream, mode)),
    }
}

// ---------------------------------------------------------------------------------------------
// Chat completions
// ---------------------------------------------------------------------------------------------

pub(crate) async fn chat(shared: &Arc<Shared>, body: &Bytes) -> Reply {
    let req: ChatRequest = match serde_json::from_slice(body) {
        Ok(r) => r,
        Err(e) => return bad_request(&format!("Invalid request body: {e}"), None),
    };
    let Some(model) = req.model else {
        return bad_request("Field required: model", Some("model"));
    };
    let model = &*model.0;
    let Some(messages) = req.messages else {
        return bad_request("Field required: messages", Some("messages"));
    };
    let (stream, mode) = match checked_mode(model, req.stream, req.stream_options.is_some()).await {
        Ok(v) => v,
        Err(reply) => return reply,
    };

    let include_usage = req.stream_options.and_then(|o| o.include_usage) == Some(true);
    let thinking = req
        .chat_template_kwargs
        .and_then(|k| k.enable_thinking)
        .is_some_and(|v| v == serde_json::Value::Bool(true));
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
        .find(|m| m.role.as_ref().is_some_and(|r| r.0 == "user"))
        .and_then(|m| m.content.as_ref())
        .map(Content::text);
    let content = echo_text(user_text.as_deref().unwrap_or(""));
    let limit = req.max_completion_tokens.or(req.max_tokens);
    let id = format!("chatcmpl-mock-{}", shared.next_id());
    let created = unix_now();

    if !stream {
        return match mode {
            Mode::Tool => {
                let usage = Usage::new(prompt_tokens, word_count(TOOL_ARGUMENTS));
                let message = AssistantMessage {
                    role: "assistant",
                    content: None,
                    refusal: (),
                    reasoning_content: reasoning,
                    tool_calls: Some([ToolCall {
                        id: TOOL_CALL_ID,
                        kind: "function",
                        function: ToolFunction {
                            name: TOOL_NAME,
                            arguments: TOOL_ARGUMENTS,
                        },
                    }]),
                };
                json(
                    StatusCode::OK,
                    chat_completion(&id, created, model, message, "tool_calls", usage),
                )
                .into()
            }
            _ => {
                let (content, finish) = truncate_words(content, limit);
                let usage = Usage::new(prompt_tokens, word_count(&content));
                let message = AssistantMessage {
                    role: "assistant",
                    content: Some(&content),
                    refusal: (),
                    reasoning_content: reasoning,
                    tool_calls: None,
                };
                let body = chat_completion(&id, created, model, message, finish, usage);
                if mode == Mode::Cut {
                    truncated(body).into()
                } else {
                    json(StatusCode::OK, body).into()
                }
            }
        };
    }

    let mut w = StreamWriter::new(&id, created, model, "chat.completion.chunk", include_usage);
    w.chat_delta(
        Delta {
            role: Some("assistant"),
            content: Some(""),
            ..Delta::default()
        },
        None,
    );
    if let Some(r) = reasoning {
        w.chat_delta(
            Delta {
                reasoning_content: Some(r),
                ..Delta::default()
            },
            None,
        );
    }
    match mode {
        Mode::Tool => {
            w.chat_delta(
                Delta {
                    tool_calls: Some([ToolCallDelta {
                        index: 0,
                        id: Some(TOOL_CALL_ID),
                        kind: Some("function"),
                        function: ToolFunctionDelta {
                            name: Some(TOOL_NAME),
                            arguments: "",
                        },
                    }]),
                    ..Delta::default()
                },
                None,
            );
            for piece in TOOL_ARGUMENT_PIECES {
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
            let usage = Usage::new(prompt_tokens, word_count(TOOL_ARGUMENTS));
            sse_response(MockBody::events(w.finish(Some(usage)), shared)).into()
        }
        Mode::Drip => {
            let first_paced = w.frames();
            for i in 1..=DRIP_CHUNKS {
                let text = format!("tick{i} ");
                w.chat_delta(
                    Delta {
                        content: Some(&text),
                        ..Delta::default()
                    },
                    None,
                );
            }
            w.chat_delta(Delta::default(), Some("stop"));
            let frames = w.finish(Some(Usage::new(prompt_tokens, DRIP_CHUNKS as u64)));
            let range = first_paced..first_paced + DRIP_CHUNKS;
            sse_response(MockBody::paced_events(frames, shared, DRIP_INTERVAL, range)).into()
        }
        Mode::Cut => {
            if let Some(first) = word_pieces(&content).first() {
                w.chat_delta(
                    Delta {
                        content: Some(first),
                        ..Delta::default()
                    },
                    None,
                );
            }
            sse_response(MockBody::events(w.into_frames(), shared)).into()
        }
        Mode::Stall => {
            // Role chunk and one word now, the rest after an hour: the stream is open but silent.
            let pieces = word_pieces(&content);
            for piece in &pieces {
                w.chat_delta(
                    Delta {
                        content: Some(piece),
                        ..Delta::default()
                    },
                    None,
                );
            }
            w.chat_delta(Delta::default(), Some("stop"));
            let frames = w.finish(None);
            let range = 2..frames.len();
            sse_response(MockBody::paced_events(frames, shared, STALL_PAUSE, range)).into()
        }
        _ => {
            let (content, finish) = truncate_words(content, limit);
            let pieces = word_pieces(&content);
            for piece in &pieces {
                w.chat_delta(
                    Delta {
                        content: Some(piece),
                        ..Delta::default()
                    },
                    None,
                );
            }
            w.chat_delta(Delta::default(), Some(finish));
            let usage = Usage::new(prompt_tokens, pieces.len() as u64);
            sse_response(MockBody::events(w.finish(Some(usage)), shared)).into()
        }
    }
}

pub(crate) const DRIP_CHUNKS: usize = 100;
pub(crate) const STALL_PAUSE: Duration = Duration::from_secs(3600);
pub(crate) const DRIP_INTERVAL: Duration = Duration::from_millis(100);

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
        usage,
        system_fingerprint: (),
    })
}

// ---------------------------------------------------------------------------------------------
// Legacy completions
// ---------------------------------------------------------------------------------------------

async fn completions(shared: &Arc<Shared>, body: &Bytes) -> Reply {
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
            let embedding = if base64 {
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

// ---------------------------------------------------------------------------------------------
// Helpers
// ---------------------------------------------------------------------------------------------

/// Accumulates SSE events in one buffer; every event becomes its own body frame (a slice of it).
struct StreamWriter<'a> {
    id: &'a str,
    created: u64,
    model: &'a str,
    object: &'static str,
    include_usage: bool,
    buf: Vec<u8>,
    ends: Vec<usize>,
}

impl<'a> StreamWriter<'a> {
    fn new(id: &'a str, created: u64, model: &'a str, object: &'static str, include_usage: bool) -> Self {
        StreamWriter {
            id,
            created,
            model,
            object,
            include_usage,
            buf: Vec::with_capacity(2048),
            ends: Vec::with_capacity(16),
        }
    }

    fn frames(&self) -> usize {
        self.ends.len()
    }

    fn event<T: Serialize>(&mut self, value: &T) {
        self.buf.extend_from_slice(b"data: ");
        serde_json::to_writer(&mut self.buf, value).expect("serializing a chunk cannot fail");
        self.buf.extend_from_slice(b"\n\n");
        self.ends.push(self.buf.len());
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
        self.buf.extend_from_slice(b"data: [DONE]\n\n");
        self.ends.push(self.buf.len());
        self.into_frames()
    }

    fn into_frames(self) -> Vec<Bytes> {
        let all = Bytes::from(self.buf);
        let mut start = 0;
        self.ends
            .iter()
            .map(|&end| {
                let frame = all.slice(start..end);
                start = end;
                frame
            })
            .collect()
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

pub(crate) fn to_json<T: Serialize>(value: &T) -> Vec<u8> {
    serde_json::to_vec(value).expect("serializing a response cannot fail")
}

fn calls_body(shared: &Shared) -> Vec<u8> {
    format!(
        r#"{{"chat":{},"models":{},"embeddings":{},"completions":{},"messages":{},"count_tokens":{},"generate":{},"transcriptions":{},"translations":{},"rerank":{},"responses":{}}}"#,
        shared.calls(Endpoint::Chat),
        shared.calls(Endpoint::Models),
        shared.calls(Endpoint::Embeddings),
        shared.calls(Endpoint::Completions),
        shared.calls(Endpoint::Messages),
        shared.calls(Endpoint::CountTokens),
        shared.calls(Endpoint::Generate),
        shared.calls(Endpoint::Transcriptions),
        shared.calls(Endpoint::Translations),
        shared.calls(Endpoint::Rerank),
        shared.calls(Endpoint::Responses),
    )
    .into_bytes()
}

const ANTHROPIC_VERSION: &str = "anthropic-version";
const X_API_KEY: &str = "x-api-key";
const X_GOOG_API_KEY: &str = "x-goog-api-key";

pub(crate) fn json(status: StatusCode, body: impl Into<Bytes>) -> Response<MockBody> {
    let mut resp = Response::new(MockBody::full(body));
    *resp.status_mut() = status;
    resp.headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    resp
}

pub(crate) fn sse_response(body: MockBody) -> Response<MockBody> {
    let mut resp = Response::new(body);
    let headers = resp.headers_mut();
    headers.insert(CONTENT_TYPE, HeaderValue::from_static("text/event-stream"));
    headers.insert(CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    resp
}

/// 200 with a `content-length` that promises more than is sent; the connection is then aborted.
pub(crate) fn truncated(body: Vec<u8>) -> Response<MockBody> {
    let full_len = body.len();
    let mut bytes = Bytes::from(body);
    bytes.truncate(full_len / 2);
    let mut resp = Response::new(MockBody::Truncated {
        data: Some(bytes),
        paused: false,
    });
    let headers = resp.headers_mut();
    headers.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    headers.insert(CONTENT_LENGTH, HeaderValue::from(full_len));
    resp
}

fn bad_request(message: &str, param: Option<&str>) -> Reply {
    json(StatusCode::BAD_REQUEST, openai::flat_error(message, param)).into()
}

fn unauthorized() -> Response<MockBody> {
    json(
        StatusCode::UNAUTHORIZED,
        Bytes::from_static(br#"{"error":"Unauthorized"}"#),
    )
}

fn method_not_allowed(allow: &'static str) -> Response<MockBody> {
    let mut resp = json(
        StatusCode::METHOD_NOT_ALLOWED,
        openai_error("Method Not Allowed", "invalid_request_error", None, None),
    );
    resp.headers_mut().insert(ALLOW, HeaderValue::from_static(allow));
    resp
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn modes() {
        assert_eq!(mode_of("fail-x"), Mode::Fail);
        assert_eq!(mode_of("slow-300"), Mode::Slow(300));
        assert_eq!(mode_of("slow-25ms"), Mode::Slow(25));
        assert_eq!(mode_of("slow-"), Mode::Echo);
        assert_eq!(mode_of("slowpoke"), Mode::Echo);
        assert_eq!(mode_of("tool-call"), Mode::Tool);
        assert_eq!(mode_of("gpt-oss-120b"), Mode::Echo);
        assert_eq!(mode_of("resetting"), Mode::Reset);
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
