//! The OpenAI endpoints besides chat: `embeddings`, `rerank`, legacy `completions` and `responses`
//! (JSON bodies), and `audio/transcriptions` / `audio/translations` (multipart, see `audio`).
//!
//! They all pass the client's body through with only `model` rewritten, to providers that speak the
//! OpenAI wire API, and run through the same pipeline as chat: `RuntimeConfig::plan`, `dispatch`
//! (keys, retries, fallbacks, breakers, concurrency gates), the `observe` middleware (log row, metrics,
//! trace, and whatever governance layers sit in that stack), and `SseRelay` for streams.

use std::sync::Arc;
use std::time::Instant;

use axum::body::Body;
use axum::extract::State;
use axum::http::{HeaderMap, Method};
use axum::response::Response;
use axum::routing::post;
use axum::{Extension, Router};
use bytes::Bytes;
use switchyard_core::json_fields::JsonObject;
use switchyard_core::routing::{RuntimeKey, Target};
use switchyard_core::WireApi;
use switchyard_translate::usage::UsageFormat;
use switchyard_translate::Protocol;

use crate::body::read_limited;
use crate::chat::{bad_field, take_fallbacks};
use crate::dispatch::{dispatch, ServedBody, UpstreamRequest};
use crate::error::{ApiError, GatewayError};
use crate::inference::{append_extra_fields, Ingress};
use crate::observe::ObsHandle;
use crate::relay::RelayMode;
use crate::served::{
    answer_headers, dispatch_failed, extra_fields, observe_answer, observe_served_target, plan_call,
    relay_body, response, set_event_stream_headers, ChargedTo, RoutedCall,
};
use crate::state::AppState;
use crate::upstream::UpstreamCall;

/// The routes of this module for one surface (`/v1` or `/openai/v1`), each wrapped in `observe`.
pub fn routes(state: Arc<AppState>, ingress: Ingress) -> Router<Arc<AppState>> {
    let observed = |r: axum::routing::MethodRouter<Arc<AppState>>| {
        r.route_layer(axum::middleware::from_fn_with_state(
            state.clone(),
            crate::observe::observe,
        ))
    };
    let mut router = Router::new();
    for endpoint in &JSON_ENDPOINTS {
        router = router.route(
            endpoint.path,
            observed(post(move |s, o, h, b| {
                json_endpoint(s, o, ingress, endpoint, h, b)
            })),
        );
    }
    router
        .route(
            "/audio/transcriptions",
            observed(post(move |s, o, h, b| {
                crate::audio::audio(s, o, ingress, crate::audio::AudioKind::Transcription, h, b)
            })),
        )
        .route(
            "/audio/translations",
            observed(post(move |s, o, h, b| {
                crate::audio::audio(s, o, ingress, crate::audio::AudioKind::Translation, h, b)
            })),
        )
}

/// What an endpoint call is, for routing, the log row and `extra_fields`.
pub(crate) struct EndpointCall {
    pub ingress: Ingress,
    pub model: String,
    pub fallbacks: Vec<String>,
    pub stream: bool,
    /// Bifrost's name for the call (`embedding`, `rerank`, `text_completion`, `responses`,
    /// `transcription`), used in logs and `extra_fields`.
    pub request_type: &'static str,
    pub usage: UsageFormat,
}

/// A JSON body passed through to an OpenAI-compatible provider with only `model` rewritten.
struct JsonPassThrough<'a> {
    path: &'static str,
    /// Checked against `custom_provider_config.allowed_requests`.
    request_type: &'static str,
    body: JsonObject<'a>,
    client_headers: &'a HeaderMap,
    stream: bool,
}

impl UpstreamRequest for JsonPassThrough<'_> {
    fn request_type(&self) -> &'static str {
        self.request_type
    }

    fn supports(&self, wire: WireApi) -> bool {
        // Azure serves embeddings per deployment like chat; its other APIs have other URL shapes.
        wire == WireApi::OpenAi || (wire == WireApi::Azure && self.path == "/embeddings")
    }

    fn build(&mut self, target: &Target<'_>, key: &RuntimeKey) -> Result<http::Request<Body>, GatewayError> {
        self.body.set_str("model", target.model);
        UpstreamCall {
            provider: target.provider,
            key: Some(key),
            method: Method::POST,
            url: crate::providers::openai_style_url(target.provider, key, target.model, self.path),
            accept_sse: self.stream,
            client_headers: self.client_headers,
            protocol_headers: Vec::new(),
        }
        .build(Body::from(self.body.to_vec()))
    }
}

/// Reads the body and the fields every JSON endpoint shares (`model`, `fallbacks`, `stream`).
struct ParsedJson<'a> {
    obj: JsonObject<'a>,
    model: String,
    fallbacks: Vec<String>,
    stream: bool,
}

fn parse_json_body<'a>(
    bytes: &'a Bytes,
    required: &[(&'static str, Shape)],
) -> Result<ParsedJson<'a>, GatewayError> {
    let mut obj = JsonObject::parse(bytes)?;
    let model = obj
        .get_str("model")?
        .ok_or_else(|| bad_field("model is required", "model"))?
        .into_owned();
    if model.is_empty() {
        return Err(bad_field("model must not be empty", "model"));
    }
    for (field, shape) in required {
        let raw = obj
            .get_raw(field)
            .ok_or_else(|| bad_field(&format!("{field} is required"), field))?;
        if !shape.admits(raw) {
            return Err(bad_field(&format!("{field} must be {}", shape.describe()), field));
        }
    }
    let stream = obj.get_bool("stream")?.unwrap_or(false);
    let fallbacks = take_fallbacks(&mut obj)?;
    Ok(ParsedJson {
        obj,
        model,
        fallbacks,
        stream,
    })
}

/// The JSON type a required field must have (checked on its raw text, without decoding it).
#[derive(Clone, Copy)]
enum Shape {
    String,
    Array,
    StringOrArray,
}

impl Shape {
    fn admits(self, raw: &str) -> bool {
        match self {
            Shape::String => raw.starts_with('"'),
            Shape::Array => raw.starts_with('['),
            Shape::StringOrArray => raw.starts_with('"') || raw.starts_with('['),
        }
    }

    fn describe(self) -> &'static str {
        match self {
            Shape::String => "a string",
            Shape::Array => "an array",
            Shape::StringOrArray => "a string or an array",
        }
    }
}

/// Rewrites a JSON answer before it is sent (embeddings' base64).
type ReshapeAnswer = fn(Bytes) -> Bytes;

/// One JSON endpoint: its path (the same on the gateway and upstream), what its body must hold, and
/// how its calls are named.
struct JsonEndpoint {
    path: &'static str,
    /// Fields that must be present, with their JSON type.
    required: &'static [(&'static str, Shape)],
    /// Bifrost's name for the call in logs and `extra_fields`, and the one checked against
    /// `custom_provider_config.allowed_requests` for a call that does not stream.
    request_type: &'static str,
    /// For endpoints that stream: the name checked against `allowed_requests` for a streamed call.
    /// `None`: the endpoint never streams, whatever the body's `stream` says.
    stream_request_type: Option<&'static str>,
    usage: UsageFormat,
    /// Checks beyond `required`, run after them (a missing `model` is reported first); returns how
    /// a JSON answer is reshaped before it is sent.
    check: fn(&JsonObject<'_>) -> Result<ReshapeAnswer, GatewayError>,
}

static JSON_ENDPOINTS: [JsonEndpoint; 4] = [
    // `POST /v1/embeddings`. `encoding_format: "base64"` goes upstream as asked; an upstream that
    // still answers with float lists has them encoded here (float32 little-endian, as the SDKs
    // decode it).
    JsonEndpoint {
        path: "/embeddings",
        required: &[("input", Shape::StringOrArray)],
        request_type: "embedding",
        stream_request_type: None,
        usage: UsageFormat::OpenAi,
        check: check_embeddings,
    },
    // `POST /v1/rerank` (Cohere/vLLM shape: `query`, `documents`, `top_n`, ...).
    JsonEndpoint {
        path: "/rerank",
        required: &[("query", Shape::String), ("documents", Shape::Array)],
        request_type: "rerank",
        stream_request_type: None,
        usage: UsageFormat::OpenAi,
        check: no_check,
    },
    // `POST /v1/completions` (legacy text completions), streamed or not.
    JsonEndpoint {
        path: "/completions",
        required: &[("prompt", Shape::StringOrArray)],
        request_type: "text_completion",
        stream_request_type: Some("text_completion_stream"),
        usage: UsageFormat::OpenAi,
        check: no_check,
    },
    // `POST /v1/responses`: passed through to providers that serve the Responses API natively;
    // streams keep their named events (`event: response.output_text.delta`, ...) byte for byte.
    JsonEndpoint {
        path: "/responses",
        required: &[],
        request_type: "responses",
        stream_request_type: Some("responses_stream"),
        usage: UsageFormat::Responses,
        check: check_responses,
    },
];

fn unchanged(answer: Bytes) -> Bytes {
    answer
}

fn no_check(_: &JsonObject<'_>) -> Result<ReshapeAnswer, GatewayError> {
    Ok(unchanged)
}

fn check_embeddings(obj: &JsonObject<'_>) -> Result<ReshapeAnswer, GatewayError> {
    match obj.get_str("encoding_format")?.as_deref() {
        None | Some("float") => Ok(unchanged),
        Some("base64") => Ok(floats_to_base64),
        Some(other) => Err(bad_field(
            &format!("encoding_format must be 'float' or 'base64', not '{other}'"),
            "encoding_format",
        )),
    }
}

/// An embeddings answer with float lists, encoded as base64 (unchanged if it has none).
fn floats_to_base64(answer: Bytes) -> Bytes {
    switchyard_core::embedding::floats_to_base64(&answer).map_or(answer, Bytes::from)
}

fn check_responses(obj: &JsonObject<'_>) -> Result<ReshapeAnswer, GatewayError> {
    // `input` may be left out (a stored prompt template supplies it), but must have its type if sent.
    if obj
        .get_raw("input")
        .is_some_and(|raw| !Shape::StringOrArray.admits(raw))
    {
        return Err(bad_field("input must be a string or an array", "input"));
    }
    Ok(unchanged)
}

/// `POST` to one of the `JSON_ENDPOINTS`: the body checked, passed through with only `model`
/// rewritten.
async fn json_endpoint(
    State(state): State<Arc<AppState>>,
    Extension(obs): Extension<ObsHandle>,
    ingress: Ingress,
    endpoint: &'static JsonEndpoint,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, ApiError> {
    let bytes = read_limited(body, state.max_body_bytes).await?;
    let parsed = parse_json_body(&bytes, endpoint.required)?;
    let shape = (endpoint.check)(&parsed.obj)?;
    let stream = endpoint.stream_request_type.is_some() && parsed.stream;
    let call = EndpointCall {
        ingress,
        model: parsed.model,
        fallbacks: parsed.fallbacks,
        stream,
        request_type: endpoint.request_type,
        usage: endpoint.usage,
    };
    let mut upstream = JsonPassThrough {
        path: endpoint.path,
        request_type: match endpoint.stream_request_type {
            Some(streamed) if stream => streamed,
            _ => endpoint.request_type,
        },
        body: parsed.obj,
        client_headers: &headers,
        stream,
    };
    serve(&state, &obs, call, &headers, &bytes, &mut upstream, shape).await
}

/// The shared pipeline of the pass-through endpoints: plan, dispatch, relay (JSON with
/// `extra_fields`, or SSE event by event), and the observation filled in along the way. `shape` may
/// rewrite a JSON answer before it is sent (embeddings' base64).
pub(crate) async fn serve(
    state: &AppState,
    obs: &ObsHandle,
    call: EndpointCall,
    headers: &HeaderMap,
    raw_for_log: &[u8],
    upstream: &mut dyn UpstreamRequest,
    shape: impl FnOnce(Bytes) -> Bytes,
) -> Result<Response, ApiError> {
    let started = Instant::now();
    let snapshot = state.config.snapshot();
    let routed = RoutedCall {
        ingress: call.ingress,
        model: &call.model,
        fallbacks: &call.fallbacks,
        request_type: call.request_type,
        stream: call.stream,
    };
    let planned = plan_call(state, obs, &snapshot, headers, routed, Protocol::OpenAi).await?;
    let served = match dispatch(state, &planned.targets, upstream, &planned.opts).await {
        Ok(s) => s,
        Err(f) => {
            return Err(dispatch_failed(
                obs,
                f,
                planned.ctx,
                Protocol::OpenAi,
                ChargedTo::Reported,
            ))
        }
    };
    let log_content = observe_served_target(state, obs, &snapshot, &served, call.stream, raw_for_log);

    let mut out_headers = answer_headers(&served, |_| true);
    let status = served.parts.status;
    let body = match served.body {
        ServedBody::Stream(start) => {
            set_event_stream_headers(&mut out_headers);
            let content_cap = log_content.then_some(state.log_content.max_bytes);
            let mode = RelayMode::PassThrough {
                client: Protocol::OpenAi,
            };
            relay_body(
                obs,
                start,
                served.provider,
                served.permit,
                mode,
                call.usage,
                content_cap,
            )
        }
        ServedBody::Json(bytes) => {
            drop(served.permit);
            let reshaped = shape(bytes.clone());
            if reshaped.len() != bytes.len() || reshaped != bytes {
                out_headers.remove(http::header::CONTENT_ENCODING);
            }
            observe_answer(state, obs, call.usage, &reshaped, log_content);
            let extra = extra_fields(
                call.request_type,
                &call.model,
                &served.provider,
                &served.model,
                served.fallback_index,
                &served.trail,
                started,
            );
            let is_json = served
                .parts
                .headers
                .get(http::header::CONTENT_TYPE)
                .and_then(|v| v.to_str().ok())
                .is_some_and(|ct| ct.starts_with("application/json"));
            // Plain-text answers (transcriptions with `response_format: text`) stay byte for byte.
            Body::from(if is_json {
                append_extra_fields(reshaped, &extra)
            } else {
                reshaped
            })
        }
    };
    Ok(response(status, out_headers, body))
}
