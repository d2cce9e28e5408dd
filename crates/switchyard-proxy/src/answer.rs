//! What an upstream answered: the committed start of a usable answer ([`ServedBody`]: a whole JSON
//! body, or a stream with its first events already read), and upstream error answers read in the
//! provider's own wire format.

use std::time::Duration;

use bytes::Bytes;
use http::StatusCode;
use http_body_util::BodyExt;
use hyper::body::Incoming;
use switchyard_core::routing::RuntimeKey;
use switchyard_core::secret::scrub_secret;
use switchyard_core::sse::SseFramer;
use switchyard_core::WireApi;
use switchyard_translate::normalize_upstream_error;

use switchyard_runtime::error::GatewayError;

/// A stream whose first events have arrived: what was read, the framer's state, and the rest.
pub struct StreamStart {
    pub first_events: Vec<Bytes>,
    pub framer: SseFramer,
    pub body: Incoming,
    pub idle_timeout: Duration,
}

pub enum ServedBody {
    Json(Bytes),
    Stream(StreamStart),
}

/// Reads an upstream error answer in its own wire format. The status reported to the client may
/// differ from the upstream's (Anthropic's 529 becomes 503); retry decisions use the upstream's.
pub fn upstream_error_for(wire: WireApi, status: StatusCode, body: &[u8], key: &RuntimeKey) -> GatewayError {
    let protocol = match wire {
        WireApi::Anthropic => switchyard_translate::Protocol::Anthropic,
        WireApi::Gemini => switchyard_translate::Protocol::Gemini,
        WireApi::Bedrock => switchyard_translate::Protocol::Bedrock,
        _ => return upstream_error(status, body, key),
    };
    let mut info = switchyard_translate::parse_error(protocol, status.as_u16(), body);
    if let Some(secret) = &key.secret {
        info.detail.message = scrub_secret(&info.detail.message, secret.expose());
    }
    GatewayError::Upstream {
        status: StatusCode::from_u16(info.status).unwrap_or(status),
        detail: info.detail,
    }
}

/// An OpenAI-compatible upstream's error answer, normalised, with the key scrubbed from its message.
pub fn upstream_error(status: StatusCode, body: &[u8], key: &RuntimeKey) -> GatewayError {
    let mut detail = normalize_upstream_error(status.as_u16(), body);
    if let Some(secret) = &key.secret {
        detail.message = scrub_secret(&detail.message, secret.expose());
    }
    GatewayError::Upstream { status, detail }
}

/// Reads at most `cap` bytes of a body (error answers are small; anything larger is cut).
pub async fn read_capped(mut body: Incoming, cap: usize) -> Vec<u8> {
    let mut out = Vec::new();
    while let Some(Ok(frame)) = body.frame().await {
        if let Ok(data) = frame.into_data() {
            let room = cap.saturating_sub(out.len());
            out.extend_from_slice(&data[..data.len().min(room)]);
            if out.len() >= cap {
                break;
            }
        }
    }
    out
}

/// The model an upstream answer (or stream event) names: OpenAI's and Anthropic's `model`,
/// Anthropic's `message_start.message.model`, the Responses API's `response.model`, Gemini's
/// `modelVersion`.
pub fn answer_model(answer: &[u8]) -> Option<String> {
    #[derive(serde::Deserialize)]
    struct Inner {
        model: Option<String>,
    }
    #[derive(serde::Deserialize)]
    struct Answer {
        model: Option<String>,
        #[serde(rename = "modelVersion")]
        model_version: Option<String>,
        message: Option<Inner>,
        response: Option<Inner>,
    }
    let a: Answer = serde_json::from_slice(answer).ok()?;
    a.model
        .or(a.model_version)
        .or(a.message.and_then(|m| m.model))
        .or(a.response.and_then(|r| r.model))
        .filter(|m| !m.is_empty())
}
