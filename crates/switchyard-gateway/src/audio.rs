//! `POST /v1/audio/transcriptions` and `/v1/audio/translations`: multipart uploads routed on their
//! `model` field.
//!
//! What is buffered, and why: the form is read into memory up to the audio limit (25 MB, the limit of
//! OpenAI and mittwald; a smaller `--max-request-body-mb` wins), because the `model` field may come
//! after the file and routing needs it, and because retries and fallbacks must be able to send the same
//! body again. A declared `Content-Length` over the limit is refused with 413 before anything is read.
//! The file bytes are never copied or decoded: each attempt sends three slices of the one buffer (what
//! precedes the `model` value, the provider's model name, what follows), so every field (`language`,
//! `response_format`, `prompt`, ...) and the file reach the provider exactly as the client sent them.

use std::convert::Infallible;
use std::ops::Range;
use std::sync::Arc;

use axum::body::Body;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, Method};
use axum::response::Response;
use axum::Extension;
use bytes::Bytes;
use switchyard_core::multipart::{self, MultipartError};
use switchyard_core::routing::{RuntimeKey, Target};
use switchyard_core::upstream_url::openai_endpoint;
use switchyard_core::WireApi;
use switchyard_translate::usage::UsageFormat;

use crate::body::read_limited;
use crate::chat::bad_field;
use crate::dispatch::UpstreamRequest;
use crate::endpoints::{serve, EndpointCall};
use crate::error::{ApiError, GatewayError};
use crate::inference::Ingress;
use crate::observe::ObsHandle;
use crate::state::AppState;
use crate::upstream::UpstreamCall;

/// Largest audio upload accepted (OpenAI's and mittwald's limit).
pub const AUDIO_MAX_BYTES: usize = 25 * 1024 * 1024;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AudioKind {
    Transcription,
    Translation,
}

impl AudioKind {
    fn path(self) -> &'static str {
        match self {
            AudioKind::Transcription => "/audio/transcriptions",
            AudioKind::Translation => "/audio/translations",
        }
    }
}

pub async fn audio(
    State(state): State<Arc<AppState>>,
    Extension(obs): Extension<ObsHandle>,
    ingress: Ingress,
    kind: AudioKind,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, ApiError> {
    let limit = AUDIO_MAX_BYTES.min(state.max_body_bytes);
    let declared = headers
        .get(http::header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|n| n > limit as u64) {
        return Err(GatewayError::PayloadTooLarge { limit_bytes: limit }.into());
    }
    let content_type = headers
        .get(http::header::CONTENT_TYPE)
        .cloned()
        .ok_or_else(|| multipart_error(MultipartError::NotMultipart))?;
    let boundary = content_type
        .to_str()
        .map_err(|_| MultipartError::NotMultipart)
        .and_then(multipart::boundary)
        .map_err(multipart_error)?;
    let bytes = read_limited(body, limit).await?;
    let parts = multipart::parse(&bytes, &boundary).map_err(multipart_error)?;
    let model_part = parts
        .iter()
        .find(|p| p.name == "model")
        .ok_or_else(|| bad_field("model is required (a form field)", "model"))?;
    let model = model_part
        .text(&bytes)
        .map(str::trim)
        .filter(|m| !m.is_empty())
        .ok_or_else(|| bad_field("model must be a non-empty text field", "model"))?
        .to_owned();
    if !parts.iter().any(|p| p.name == "file" && p.filename.is_some()) {
        return Err(bad_field("file is required (a file part named 'file')", "file").into());
    }
    // `stream=true` asks for SSE (`transcript.text.delta` ... `transcript.text.done`); an upstream
    // that ignores it answers JSON, which is relayed as such.
    let stream = parts
        .iter()
        .find(|p| p.name == "stream")
        .and_then(|p| p.text(&bytes))
        .is_some_and(|v| v.trim().eq_ignore_ascii_case("true"));
    // Bifrost's `fallbacks` as repeated form fields would need the form rewritten; plain routing
    // (provider fallbacks configured on the provider) applies as for every endpoint.
    let call = EndpointCall {
        ingress,
        model,
        fallbacks: Vec::new(),
        stream,
        request_type: "transcription",
        usage: UsageFormat::OpenAi,
    };
    let mut upstream = MultipartPassThrough {
        stream,
        path: kind.path(),
        model_value: model_part.value.clone(),
        body: bytes.clone(),
        content_type,
        client_headers: &headers,
    };
    // The log gets the form's text fields, never the audio.
    let log_summary: String = parts
        .iter()
        .filter(|p| p.filename.is_none())
        .filter_map(|p| p.text(&bytes).map(|t| format!("{}={}\n", p.name, t)))
        .collect();
    serve(
        &state,
        &obs,
        call,
        &headers,
        log_summary.as_bytes(),
        &mut upstream,
        |b| b,
    )
    .await
}

fn multipart_error(e: MultipartError) -> GatewayError {
    GatewayError::BadRequest {
        message: format!("{e}; audio endpoints take multipart/form-data with 'file' and 'model'"),
        param: None,
    }
}

/// The client's form with the `model` value replaced, sent as slices of the buffered body.
struct MultipartPassThrough<'a> {
    stream: bool,
    path: &'static str,
    model_value: Range<usize>,
    body: Bytes,
    content_type: HeaderValue,
    client_headers: &'a HeaderMap,
}

impl UpstreamRequest for MultipartPassThrough<'_> {
    fn request_type(&self) -> &'static str {
        if self.stream {
            "transcription_stream"
        } else {
            "transcription"
        }
    }

    fn supports(&self, wire: WireApi) -> bool {
        wire == WireApi::OpenAi
    }

    fn build(&mut self, target: &Target<'_>, key: &RuntimeKey) -> Result<http::Request<Body>, GatewayError> {
        let chunks = [
            self.body.slice(..self.model_value.start),
            Bytes::copy_from_slice(target.model.as_bytes()),
            self.body.slice(self.model_value.end..),
        ];
        let length: usize = chunks.iter().map(Bytes::len).sum();
        let stream = futures_util::stream::iter(chunks.map(Ok::<_, Infallible>));
        let mut req = UpstreamCall {
            provider: target.provider,
            key: Some(key),
            method: Method::POST,
            url: openai_endpoint(&target.provider.base_url, self.path),
            accept_sse: false,
            client_headers: self.client_headers,
            protocol_headers: Vec::new(),
        }
        .build(Body::from_stream(stream))?;
        let h = req.headers_mut();
        h.insert(http::header::CONTENT_TYPE, self.content_type.clone());
        h.insert(http::header::CONTENT_LENGTH, HeaderValue::from(length));
        // `response_format: text` answers in plain text, `stream=true` in SSE.
        h.insert(
            http::header::ACCEPT,
            HeaderValue::from_static(if self.stream {
                "text/event-stream"
            } else {
                "application/json, text/plain"
            }),
        );
        Ok(req)
    }
}
