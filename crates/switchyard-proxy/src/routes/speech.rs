//! `POST /v1/audio/speech` (and `/openai/v1/audio/speech`): text-to-speech, routed by `model` like
//! every other endpoint.
//!
//! The JSON body is checked (`model`, `input` and `voice` are required) and passed through with only
//! `model` rewritten. The audio is relayed to the client as it arrives, chunk by chunk, with the
//! upstream's own `Content-Type` (mittwald always says `audio/mpeg`, whatever `response_format` asks);
//! the call commits at the answer's first bytes, so a target that fails before them is retried or
//! falls back like any other. A failure after them cannot be told in the audio's own format: the
//! connection is aborted (the client sees an incomplete body, never a clean end) and the log row
//! records the stream error.
//!
//! Metering: speech is priced per character of `input` (as OpenAI prices it). The log row's input
//! count is the number of characters (Unicode scalar values) and its output count is 0, so the cost is
//! `characters × input price` with the model's price (an operator's price override sets the price per
//! character). A model without a known price is logged as cost unknown, never as $0.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use axum::body::Body;
use axum::http::{HeaderMap, Method};
use axum::response::Response;
use bytes::Bytes;
use futures_util::Stream;
use http_body::Body as _;
use hyper::body::Incoming as UpstreamBody;
use switchyard_core::json_fields::JsonObject;
use switchyard_core::pricing::TokenUsage;
use switchyard_core::request_type::RequestType;
use switchyard_core::routing::{RuntimeKey, Target};
use switchyard_core::upstream_url::openai_endpoint;
use switchyard_core::WireApi;
use switchyard_translate::Protocol;
use tokio::sync::OwnedSemaphorePermit;
use tokio::time::{Instant, Sleep};

use crate::answer::ServedBody;
use crate::pipeline::dispatch::UpstreamRequest;
use crate::pipeline::finish::ObsHandle;
use crate::pipeline::respond::{answer_headers, dispatch_failed, observe_served_target, response, ChargedTo};
use crate::pipeline::{CallSpec, Incoming};
use crate::request::{bad_field, take_fallbacks};
use switchyard_runtime::error::{ApiError, GatewayError};
use switchyard_runtime::upstream::UpstreamCall;

/// The path under `/v1` and `/openai/v1` (the same upstream).
pub const SPEECH_PATH: &str = "/audio/speech";

/// What the gateway reads of a speech request.
#[derive(Debug)]
pub(crate) struct SpeechRequest<'a> {
    pub obj: JsonObject<'a>,
    pub model: String,
    pub fallbacks: Vec<String>,
    /// Characters of `input`: what the call is metered by.
    pub characters: u64,
    /// `stream_format: "sse"` (OpenAI's streamed speech events); otherwise raw audio.
    pub sse: bool,
}

/// Reads and checks a speech body: `model` (non-empty string), `input` (string), `voice` (a name or
/// an object such as `{"id": ...}`); `stream_format`, if sent, `"audio"` or `"sse"`.
pub(crate) fn read_speech(bytes: &[u8]) -> Result<SpeechRequest<'_>, GatewayError> {
    let mut obj = JsonObject::parse(bytes)?;
    let model = obj
        .get_str("model")?
        .ok_or_else(|| bad_field("model is required", "model"))?
        .into_owned();
    if model.is_empty() {
        return Err(bad_field("model must not be empty", "model"));
    }
    let input = obj
        .get_str("input")
        .map_err(|_| bad_field("input must be a string", "input"))?
        .ok_or_else(|| bad_field("input is required (the text to speak)", "input"))?;
    let characters = input.chars().count() as u64;
    match obj.get_raw("voice") {
        None => return Err(bad_field("voice is required", "voice")),
        Some(raw) if !(raw.starts_with('"') || raw.starts_with('{')) => {
            return Err(bad_field("voice must be a string or an object", "voice"))
        }
        Some(_) => {}
    }
    let sse = match obj
        .get_str("stream_format")
        .map_err(|_| bad_field("stream_format must be 'audio' or 'sse'", "stream_format"))?
        .as_deref()
    {
        None | Some("audio") => false,
        Some("sse") => true,
        Some(other) => {
            return Err(bad_field(
                &format!("stream_format must be 'audio' or 'sse', not '{other}'"),
                "stream_format",
            ))
        }
    };
    let fallbacks = take_fallbacks(&mut obj)?;
    Ok(SpeechRequest {
        obj,
        model,
        fallbacks,
        characters,
        sse,
    })
}

/// The client's JSON body with only `model` rewritten; the answer is relayed as bytes.
struct SpeechPassThrough<'a> {
    body: JsonObject<'a>,
    client_headers: &'a HeaderMap,
    sse: bool,
}

impl UpstreamRequest for SpeechPassThrough<'_> {
    fn request_type(&self) -> RequestType {
        RequestType::Speech.streamed_if(self.sse)
    }

    fn supports(&self, wire: WireApi) -> bool {
        wire == WireApi::OpenAi
    }

    fn build(&mut self, target: &Target<'_>, key: &RuntimeKey) -> Result<http::Request<Body>, GatewayError> {
        self.body.set_str("model", target.model);
        UpstreamCall {
            provider: target.provider,
            key: Some(key),
            method: Method::POST,
            url: openai_endpoint(&target.provider.base_url, SPEECH_PATH),
            accept_sse: self.sse,
            client_headers: self.client_headers,
            protocol_headers: Vec::new(),
        }
        .build(Body::from(self.body.to_vec()))
    }

    fn relays_bytes(&self) -> bool {
        true
    }
}

/// `POST /v1/audio/speech`.
pub async fn speech(inc: Incoming) -> Result<Response, ApiError> {
    let bytes = inc.body().clone();
    let parsed = read_speech(&bytes).map_err(|e| inc.reject(e))?;
    let spec = CallSpec {
        model: Some(parsed.model),
        stream: parsed.sse,
        fallbacks: parsed.fallbacks,
        ..CallSpec::new(RequestType::Speech, Protocol::OpenAi)
    };
    let adm = inc.admit(spec).await?;
    let mut upstream = SpeechPassThrough {
        body: parsed.obj,
        client_headers: adm.headers(),
        sse: parsed.sse,
    };
    let plan = adm.plan().await?;
    let served = adm
        .dispatch(&plan, &mut upstream)
        .await
        .map_err(|f| dispatch_failed(&adm, f, ChargedTo::Reported))?;
    observe_served_target(&adm, &served, &bytes);
    let characters = parsed.characters;
    adm.observe(|d| {
        d.usage = Some(TokenUsage {
            input: characters,
            ..TokenUsage::default()
        })
    });
    let headers = answer_headers(&served, |_| true);
    let status = served.parts.status;
    let body = match served.body {
        ServedBody::Stream(start) => Body::from_stream(ByteRelay {
            ready: start.first_events.into_iter().collect(),
            upstream: start.body,
            finished: false,
            provider: served.provider.clone(),
            idle_timeout: start.idle_timeout,
            idle: Box::pin(tokio::time::sleep(start.idle_timeout)),
            obs: adm.obs().clone(),
            permit: Some(served.permit),
        }),
        ServedBody::Json(answer) => Body::from(answer),
    };
    Ok(response(status, headers, body))
}

/// Relays an upstream body chunk by chunk as it arrives. A failure or a stall past the provider's
/// `stream_idle_timeout_in_seconds` aborts the client's body (an error, never a clean end) and is
/// recorded as the call's stream error. Holds the provider's concurrency slot until the end; dropping
/// it (client gone) drops the upstream body and so cancels the call.
struct ByteRelay {
    ready: std::collections::VecDeque<Bytes>,
    upstream: UpstreamBody,
    finished: bool,
    provider: String,
    idle_timeout: Duration,
    idle: Pin<Box<Sleep>>,
    obs: ObsHandle,
    permit: Option<OwnedSemaphorePermit>,
}

impl ByteRelay {
    fn fail(&mut self, message: String) -> Poll<Option<Result<Bytes, std::io::Error>>> {
        tracing::warn!(provider = %self.provider, %message, "audio stream failed");
        self.finished = true;
        self.permit = None;
        self.obs.update(|d| d.stream_error = Some(message.clone()));
        Poll::Ready(Some(Err(std::io::Error::other(message))))
    }
}

impl Stream for ByteRelay {
    type Item = Result<Bytes, std::io::Error>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let this = &mut *self;
        loop {
            if let Some(chunk) = this.ready.pop_front() {
                return Poll::Ready(Some(Ok(chunk)));
            }
            if this.finished {
                return Poll::Ready(None);
            }
            match Pin::new(&mut this.upstream).poll_frame(cx) {
                Poll::Pending => {
                    if this.idle.as_mut().poll(cx).is_ready() {
                        let message = format!(
                            "provider '{}' sent nothing for {} s (stream_idle_timeout_in_seconds)",
                            this.provider,
                            this.idle_timeout.as_secs()
                        );
                        return this.fail(message);
                    }
                    return Poll::Pending;
                }
                Poll::Ready(Some(Ok(frame))) => {
                    this.idle.as_mut().reset(Instant::now() + this.idle_timeout);
                    if let Ok(data) = frame.into_data() {
                        if !data.is_empty() {
                            this.ready.push_back(data);
                        }
                    }
                }
                Poll::Ready(Some(Err(e))) => {
                    let message = format!(
                        "connection to provider '{}' failed mid-answer: {e}",
                        this.provider
                    );
                    return this.fail(message);
                }
                Poll::Ready(None) => {
                    this.finished = true;
                    this.permit = None;
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::read_speech;

    #[test]
    fn reads_model_characters_and_format() {
        let body = r#"{"model":"tts","input":"Grüße!","voice":"alloy","stream_format":"sse"}"#;
        let r = read_speech(body.as_bytes()).unwrap();
        assert_eq!(r.model, "tts");
        assert_eq!(r.characters, 6);
        assert!(r.sse);
        let r = read_speech(br#"{"model":"tts","input":"","voice":{"id":"v1"}}"#).unwrap();
        assert_eq!(r.characters, 0);
        assert!(!r.sse);
    }

    #[test]
    fn names_the_bad_field() {
        for (body, field) in [
            (&br#"{"input":"x","voice":"a"}"#[..], "model"),
            (br#"{"model":"","input":"x","voice":"a"}"#, "model"),
            (br#"{"model":"m","voice":"a"}"#, "input"),
            (br#"{"model":"m","input":3,"voice":"a"}"#, "input"),
            (br#"{"model":"m","input":"x"}"#, "voice"),
            (br#"{"model":"m","input":"x","voice":1}"#, "voice"),
            (
                br#"{"model":"m","input":"x","voice":"a","stream_format":"wav"}"#,
                "stream_format",
            ),
        ] {
            let err = read_speech(body).unwrap_err();
            let text = format!("{err:?}");
            assert!(text.contains(field), "{text} should name {field}");
        }
    }
}
