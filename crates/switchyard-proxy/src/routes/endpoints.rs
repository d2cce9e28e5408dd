//! The OpenAI endpoints besides chat: `embeddings`, `rerank` and legacy `completions` (JSON
//! bodies; `responses` has its own module, since it is translated for providers without it), and
//! `audio/transcriptions` / `audio/translations` (multipart, see `audio`).
//!
//! They all pass the client's body through with only `model` rewritten, to providers that speak the
//! OpenAI wire API, and run through the same pipeline as chat (`crate::pipeline`): admission, the
//! governed plan, dispatch (keys, retries, fallbacks, breakers, concurrency gates), the relay for
//! streams and the finish phase (settlement, log row, metrics, trace).

use std::time::Instant;

use axum::body::Body;
use axum::http::{HeaderMap, Method};
use axum::response::Response;
use bytes::Bytes;
use switchyard_core::json_fields::JsonObject;
use switchyard_core::request_type::RequestType;
use switchyard_core::routing::{RuntimeKey, Target};
use switchyard_core::WireApi;
use switchyard_translate::usage::UsageFormat;
use switchyard_translate::Protocol;

use crate::answer::ServedBody;
use crate::pipeline::dispatch::{Served, UpstreamRequest};
use crate::pipeline::relay::RelayMode;
use crate::pipeline::respond::{
    answer_headers, append_extra_fields, dispatch_failed, extra_fields, observe_answer,
    observe_served_target, relay_body, response, set_event_stream_headers, ChargedTo,
};
use crate::pipeline::{guard, Admitted, CallSpec, Incoming};
use crate::request::{ask_for_usage, bad_field, output_cap, take_fallbacks, wants_usage};
use switchyard_runtime::error::{ApiError, GatewayError};
use switchyard_runtime::upstream::UpstreamCall;

/// A JSON body passed through to an OpenAI-compatible provider with only `model` rewritten.
struct JsonPassThrough<'a> {
    path: &'static str,
    /// Checked against `custom_provider_config.allowed_requests`.
    request_type: RequestType,
    body: JsonObject<'a>,
    client_headers: &'a HeaderMap,
    stream: bool,
    /// The body after a request guardrail rewrote it.
    guarded: Option<Bytes>,
}

impl UpstreamRequest for JsonPassThrough<'_> {
    fn request_type(&self) -> RequestType {
        self.request_type
    }

    fn supports(&self, wire: WireApi) -> bool {
        // Azure serves embeddings per deployment like chat; its other APIs have other URL shapes.
        wire == WireApi::OpenAi || (wire == WireApi::Azure && self.path == "/embeddings")
    }

    fn guard_shape(&self) -> Option<switchyard_guardrails::BodyShape> {
        guard::request_shape(self.request_type)
    }

    fn guard_body(&self) -> Vec<u8> {
        self.body.to_vec()
    }

    fn set_guarded_body(&mut self, body: Bytes) {
        self.guarded = Some(body);
    }

    fn build(&mut self, target: &Target<'_>, key: &RuntimeKey) -> Result<http::Request<Body>, GatewayError> {
        if let Some(guarded) = &self.guarded {
            let mut obj = JsonObject::parse(guarded)?;
            obj.set_str("model", target.model);
            return self.call(target, key, obj.to_vec());
        }
        self.body.set_str("model", target.model);
        self.call(target, key, self.body.to_vec())
    }
}

impl JsonPassThrough<'_> {
    fn call(
        &self,
        target: &Target<'_>,
        key: &RuntimeKey,
        body: Vec<u8>,
    ) -> Result<http::Request<Body>, GatewayError> {
        UpstreamCall {
            provider: target.provider,
            key: Some(key),
            method: Method::POST,
            url: crate::providers::openai_style_url(target.provider, key, target.model, self.path),
            accept_sse: self.stream,
            client_headers: self.client_headers,
            protocol_headers: Vec::new(),
        }
        .build(Body::from(body))
    }
}

/// Reads the body and the fields every JSON endpoint shares (`model`, `fallbacks`, `stream`).
pub(crate) struct ParsedJson<'a> {
    pub(crate) obj: JsonObject<'a>,
    pub(crate) model: String,
    pub(crate) fallbacks: Vec<String>,
    pub(crate) stream: bool,
}

pub(crate) fn parse_json_body<'a>(
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
pub(crate) enum Shape {
    String,
    Array,
    StringOrArray,
}

impl Shape {
    pub(crate) fn admits(self, raw: &str) -> bool {
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
pub struct JsonEndpoint {
    /// The path under `/v1` and `/openai/v1` (the same upstream).
    pub path: &'static str,
    /// Fields that must be present, with their JSON type.
    required: &'static [(&'static str, Shape)],
    /// The call's type in logs and `extra_fields`, and the one checked against
    /// `custom_provider_config.allowed_requests` for a call that does not stream (a streamed call is
    /// checked as its streamed variant).
    request_type: RequestType,
    /// Whether the endpoint streams when the body asks; otherwise `stream` is ignored.
    streams: bool,
    usage: UsageFormat,
    /// Checks beyond `required`, run after them (a missing `model` is reported first); returns how
    /// a JSON answer is reshaped before it is sent.
    check: fn(&JsonObject<'_>) -> Result<ReshapeAnswer, GatewayError>,
}

pub static JSON_ENDPOINTS: [JsonEndpoint; 3] = [
    // `POST /v1/embeddings`. `encoding_format: "base64"` goes upstream as asked; an upstream that
    // still answers with float lists has them encoded here (float32 little-endian, as the SDKs
    // decode it).
    JsonEndpoint {
        path: "/embeddings",
        required: &[("input", Shape::StringOrArray)],
        request_type: RequestType::Embedding,
        streams: false,
        usage: UsageFormat::OpenAi,
        check: check_embeddings,
    },
    // `POST /v1/rerank` (Cohere/vLLM shape: `query`, `documents`, `top_n`, ...).
    JsonEndpoint {
        path: "/rerank",
        required: &[("query", Shape::String), ("documents", Shape::Array)],
        request_type: RequestType::Rerank,
        streams: false,
        usage: UsageFormat::OpenAi,
        check: no_check,
    },
    // `POST /v1/completions` (legacy text completions), streamed or not.
    JsonEndpoint {
        path: "/completions",
        required: &[("prompt", Shape::StringOrArray)],
        request_type: RequestType::TextCompletion,
        streams: true,
        usage: UsageFormat::OpenAi,
        check: no_check,
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

/// `POST` to one of the `JSON_ENDPOINTS`: the body checked, passed through with only `model`
/// rewritten.
pub async fn json_endpoint(inc: Incoming, endpoint: &'static JsonEndpoint) -> Result<Response, ApiError> {
    let bytes = inc.body().clone();
    let parsed = parse_json_body(&bytes, endpoint.required).map_err(|e| inc.reject(e))?;
    let reshape = (endpoint.check)(&parsed.obj).map_err(|e| inc.reject(e))?;
    let stream = endpoint.streams && parsed.stream;
    let spec = CallSpec {
        model: Some(parsed.model),
        stream,
        fallbacks: parsed.fallbacks,
        output_cap: output_cap(&parsed.obj),
        ..CallSpec::new(endpoint.request_type, Protocol::OpenAi)
    };
    let admitted = inc.admit(spec).await?;
    // Streamed completions are metered like chat: usage asked for, its chunk kept from a client that
    // did not ask for it. (Responses streams always end with their usage.)
    let meter_stream =
        stream && endpoint.request_type == RequestType::TextCompletion && !wants_usage(&parsed.obj);
    let mut obj = parsed.obj;
    if meter_stream {
        ask_for_usage(&mut obj);
    }
    let mut upstream = JsonPassThrough {
        path: endpoint.path,
        request_type: endpoint.request_type.streamed_if(stream),
        body: obj,
        client_headers: admitted.headers(),
        stream,
        guarded: None,
    };
    let relay = StreamRelay {
        strip_usage_chunk: meter_stream,
    };
    let family = match endpoint.request_type {
        RequestType::Embedding => Some(switchyard_cache::Family::Embeddings),
        RequestType::TextCompletion => Some(switchyard_cache::Family::TextCompletions),
        _ => None,
    };
    crate::pipeline::cache::around(&admitted, family, || {
        serve(&admitted, &bytes, &mut upstream, endpoint.usage, relay, reshape)
    })
    .await
}

/// How a relayed stream is shaped for the client.
#[derive(Clone, Copy, Default)]
pub(crate) struct StreamRelay {
    /// The gateway asked for usage the client did not: the usage-only chunk is metered, not sent.
    pub strip_usage_chunk: bool,
}

/// What the pass-through endpoints do with an admitted call: plan, dispatch, relay (JSON with
/// `extra_fields`, or SSE event by event), and the observation filled in along the way. `reshape` may
/// rewrite a JSON answer before it is sent (embeddings' base64).
pub(crate) async fn serve(
    adm: &Admitted,
    raw_for_log: &[u8],
    upstream: &mut dyn UpstreamRequest,
    usage: UsageFormat,
    relay: StreamRelay,
    reshape: impl FnOnce(Bytes) -> Bytes,
) -> Result<Response, ApiError> {
    let started = Instant::now();
    let plan = adm.plan().await?;
    if let Some(shape) = upstream
        .guard_shape()
        .filter(|_| guard::guardrails(adm).is_some())
    {
        let body = upstream.guard_body();
        if let Some(body) = guard::request(adm, &plan, shape, move || body).await? {
            upstream.set_guarded_body(body);
        }
    }
    let served = adm
        .dispatch(&plan, upstream)
        .await
        .map_err(|f| dispatch_failed(adm, f, ChargedTo::Reported))?;
    let served = guard::served(adm, served, guard::answer_shape(adm.spec().request_type)).await?;
    Ok(respond_passed_through(
        adm,
        served,
        raw_for_log,
        (usage, relay),
        reshape,
        started,
    ))
}

/// The answer of a pass-through call: the upstream's JSON with `extra_fields` (after `reshape`), or
/// its stream relayed event by event; the observation filled in along the way.
pub(crate) fn respond_passed_through(
    adm: &Admitted,
    served: Served,
    raw_for_log: &[u8],
    (usage, relay): (UsageFormat, StreamRelay),
    reshape: impl FnOnce(Bytes) -> Bytes,
    started: Instant,
) -> Response {
    let log_content = observe_served_target(adm, &served, raw_for_log);

    let mut out_headers = answer_headers(&served, |_| true);
    let status = served.parts.status;
    let body = match served.body {
        ServedBody::Stream(start) => {
            set_event_stream_headers(&mut out_headers);
            let content_cap = log_content.then_some(adm.state().log_content.max_bytes);
            let mode = RelayMode::PassThrough {
                client: Protocol::OpenAi,
                strip_usage_chunk: relay.strip_usage_chunk,
            };
            relay_body(
                adm,
                start,
                served.provider,
                served.permit,
                mode,
                usage,
                content_cap,
            )
        }
        ServedBody::Json(bytes) => {
            drop(served.permit);
            let reshaped = reshape(bytes.clone());
            if reshaped.len() != bytes.len() || reshaped != bytes {
                out_headers.remove(http::header::CONTENT_ENCODING);
            }
            observe_answer(adm, usage, &reshaped, log_content);
            let extra = extra_fields(
                adm.spec().request_type,
                adm.spec().model.as_deref().unwrap_or_default(),
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
    response(status, out_headers, body)
}
