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

use axum::body::Body;
use axum::http::{HeaderMap, HeaderValue, Method};
use axum::response::Response;
use bytes::Bytes;
use switchyard_core::multipart::{self, MultipartError};
use switchyard_core::request_type::RequestType;
use switchyard_core::routing::{RuntimeKey, Target};
use switchyard_core::upstream_url::openai_endpoint;
use switchyard_core::WireApi;
use switchyard_translate::usage::UsageFormat;
use switchyard_translate::Protocol;

use super::endpoints::{serve, StreamRelay};
use crate::pipeline::dispatch::UpstreamRequest;
use crate::pipeline::{CallSpec, Incoming};
use crate::request::bad_field;
use switchyard_runtime::error::{ApiError, GatewayError};
use switchyard_runtime::upstream::UpstreamCall;

/// Largest audio upload accepted (OpenAI's and mittwald's limit).
pub const AUDIO_MAX_BYTES: usize = 25 * 1024 * 1024;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AudioKind {
    Transcription,
    Translation,
}

impl AudioKind {
    pub fn path(self) -> &'static str {
        match self {
            AudioKind::Transcription => "/audio/transcriptions",
            AudioKind::Translation => "/audio/translations",
        }
    }
}

/// `POST /v1/audio/{transcriptions,translations}`. The driver has read the form within
/// [`AUDIO_MAX_BYTES`] (a declared `Content-Length` above it is a 413 before anything is read).
pub async fn audio(inc: Incoming, kind: AudioKind) -> Result<Response, ApiError> {
    let content_type = inc
        .headers()
        .get(http::header::CONTENT_TYPE)
        .cloned()
        .ok_or_else(|| inc.reject(multipart_error(MultipartError::NotMultipart)))?;
    let boundary = content_type
        .to_str()
        .map_err(|_| MultipartError::NotMultipart)
        .and_then(multipart::boundary)
        .map_err(|e| inc.reject(multipart_error(e)))?;
    let bytes = inc.body().clone();
    let form = Form::read(&bytes, &boundary).map_err(|e| inc.reject(e))?;
    // Bifrost's `fallbacks` as repeated form fields would need the form rewritten; plain routing
    // (provider fallbacks configured on the provider) applies as for every endpoint.
    let spec = CallSpec {
        model: Some(form.model),
        stream: form.stream,
        ..CallSpec::new(RequestType::Transcription, Protocol::OpenAi)
    };
    let admitted = inc.admit(spec).await?;
    let mut upstream = MultipartPassThrough {
        stream: form.stream,
        path: kind.path(),
        model_value: form.model_value,
        body: bytes.clone(),
        content_type,
        client_headers: admitted.headers(),
    };
    serve(
        &admitted,
        form.log_summary.as_bytes(),
        &mut upstream,
        UsageFormat::OpenAi,
        StreamRelay::default(),
        |b| b,
    )
    .await
}

/// What the gateway reads of an audio form.
struct Form {
    model: String,
    /// Where the `model` value sits in the body (it is replaced per target).
    model_value: Range<usize>,
    /// `stream=true` asks for SSE (`transcript.text.delta` ... `transcript.text.done`); an upstream
    /// that ignores it answers JSON, which is relayed as such.
    stream: bool,
    /// The form's text fields for the log, never the audio.
    log_summary: String,
}

impl Form {
    fn read(bytes: &Bytes, boundary: &str) -> Result<Form, GatewayError> {
        let parts = multipart::parse(bytes, boundary).map_err(multipart_error)?;
        let model_part = parts
            .iter()
            .find(|p| p.name == "model")
            .ok_or_else(|| bad_field("model is required (a form field)", "model"))?;
        let model = model_part
            .text(bytes)
            .map(str::trim)
            .filter(|m| !m.is_empty())
            .ok_or_else(|| bad_field("model must be a non-empty text field", "model"))?
            .to_owned();
        if !parts.iter().any(|p| p.name == "file" && p.filename.is_some()) {
            return Err(bad_field("file is required (a file part named 'file')", "file"));
        }
        let stream = parts
            .iter()
            .find(|p| p.name == "stream")
            .and_then(|p| p.text(bytes))
            .is_some_and(|v| v.trim().eq_ignore_ascii_case("true"));
        let log_summary = parts
            .iter()
            .filter(|p| p.filename.is_none())
            .filter_map(|p| p.text(bytes).map(|t| format!("{}={}\n", p.name, t)))
            .collect();
        Ok(Form {
            model,
            model_value: model_part.value.clone(),
            stream,
            log_summary,
        })
    }
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
    fn request_type(&self) -> RequestType {
        RequestType::Transcription.streamed_if(self.stream)
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
