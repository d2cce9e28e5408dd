//! `POST /v1/responses` and `/openai/v1/responses` (the OpenAI Responses API, which Codex CLI speaks)
//! on any provider.
//!
//! **Which providers serve it natively.** An OpenAI-compatible provider is assumed to serve
//! `/v1/responses` itself, and gets the client's body with only `model` rewritten (streams keep their
//! named events byte for byte). The first time such a provider answers `404` for `/responses` (one
//! that names the path, not the model: a missing model is no reason to stop trying), the
//! gateway learns that it does not (most vLLM deployments): it remembers this for the provider and its
//! base URL until the gateway restarts (or the base URL changes), sends this request again translated,
//! and translates every later one without trying. Providers of any other wire API (Anthropic, Gemini,
//! Bedrock, Azure deployments) are always translated. Translated means: the Responses body becomes a
//! chat completions body (`switchyard_translate::translate_responses_request`), goes to the provider
//! like any chat request (so Anthropic, Gemini and Bedrock providers get their own protocol), and the
//! answer comes back as Responses JSON or Responses SSE events (`response.created` ...
//! `response.completed`).

use std::collections::HashSet;
use std::sync::{LazyLock, Mutex};
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use axum::body::Body;
use axum::http::{HeaderMap, HeaderValue, Method};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use switchyard_core::json_fields::JsonObject;
use switchyard_core::request_type::RequestType;
use switchyard_core::routing::{RuntimeKey, RuntimeProvider, Target};
use switchyard_core::WireApi;
use switchyard_translate::usage::UsageFormat;
use switchyard_translate::{Protocol, RequestOptions, ResponseContext, StreamTranslator, TranslateError};

use super::chat::{is_representation_header, translate_error, ChatUpstream};
use super::endpoints::{parse_json_body, respond_passed_through, Shape, StreamRelay};
use crate::answer::ServedBody;
use crate::ingress::protocol_of;
use crate::pipeline::dispatch::{Served, UpstreamRequest};
use crate::pipeline::relay::RelayMode;
use crate::pipeline::respond::{
    answer_headers, append_extra_fields, dispatch_failed, extra_fields, observe_answer,
    observe_served_target, relay_body, response, set_event_stream_headers, ChargedTo,
};
use crate::pipeline::{guard, Admitted, CallSpec, GovernedPlan, Incoming};
use crate::request::{bad_field, output_cap};
use switchyard_guardrails::BodyShape;
use switchyard_runtime::error::{ApiError, GatewayError};
use switchyard_runtime::upstream::UpstreamCall;

/// OpenAI-compatible providers (`name base_url`) that answered 404 for `/responses`.
static WITHOUT_RESPONSES: LazyLock<Mutex<HashSet<String>>> = LazyLock::new(Mutex::default);

fn provider_key(p: &RuntimeProvider) -> String {
    format!("{} {}", p.config.name, p.base_url)
}

/// Whether `p` is sent the client's Responses body as is.
fn serves_natively(p: &RuntimeProvider) -> bool {
    p.config.wire() == WireApi::OpenAi
        && !WITHOUT_RESPONSES
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .contains(&provider_key(p))
}

fn learn_no_responses(p: &RuntimeProvider) {
    tracing::info!(
        provider = %p.config.name,
        "provider answered 404 for /responses; translating Responses requests to chat completions for it from now on"
    );
    WITHOUT_RESPONSES
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .insert(provider_key(p));
}

/// A 404 that says the path is unknown (vLLM: `{"detail":"Not Found"}`), not that the model is (vLLM:
/// "The model `x` does not exist."): only the former teaches that a provider lacks `/responses`.
fn is_route_not_found(e: &GatewayError) -> bool {
    match e {
        GatewayError::Upstream { status, detail } => {
            *status == http::StatusCode::NOT_FOUND && !detail.message.to_ascii_lowercase().contains("model")
        }
        _ => false,
    }
}

/// `POST /v1/responses`.
pub async fn responses(inc: Incoming) -> Result<Response, ApiError> {
    let bytes = inc.body().clone();
    let parsed = parse_json_body(&bytes, &[]).map_err(|e| inc.reject(e))?;
    // `input` may be left out (a stored prompt supplies it), but must have its type if sent.
    if parsed
        .obj
        .get_raw("input")
        .is_some_and(|raw| !Shape::StringOrArray.admits(raw))
    {
        return Err(inc.reject(bad_field("input must be a string or an array", "input")));
    }
    let stream = parsed.stream;
    let spec = CallSpec {
        model: Some(parsed.model),
        stream,
        fallbacks: parsed.fallbacks,
        output_cap: output_cap(&parsed.obj),
        ..CallSpec::new(RequestType::Responses, Protocol::OpenAi)
    };
    let adm = inc.admit(spec).await?;
    let plan = adm.plan().await?;
    let redacted = guard::request(&adm, &plan, BodyShape::ResponsesRequest, || bytes.to_vec()).await?;
    let (bytes, native) = guard::rebind(redacted.as_ref(), &bytes, Some(parsed.obj));
    // The chat completions form, for the providers that need it (an error only if one does).
    let opts = RequestOptions::new("");
    let chat_body =
        switchyard_translate::translate_responses_request(Protocol::OpenAi, bytes, &opts).map(Bytes::from);
    let chat = match &chat_body {
        Ok(b) => ChatUpstream::openai_body(b, adm.headers(), stream)
            .ok_or_else(|| TranslateError::InvalidJson("the translated body is not a JSON object".into())),
        Err(e) => Err(e.clone()),
    };
    let mut upstream = ResponsesUpstream {
        native: native.expect("a parsed body stays parsed"),
        chat,
        client_headers: adm.headers(),
        stream,
        native_tried: HashSet::new(),
        last_native: false,
    };
    serve(&adm, &plan, bytes, &mut upstream).await
}

async fn serve(
    adm: &Admitted,
    plan: &GovernedPlan<'_>,
    raw: &Bytes,
    upstream: &mut ResponsesUpstream<'_>,
) -> Result<Response, ApiError> {
    let started = Instant::now();
    let served = match adm.dispatch(plan, upstream).await {
        Ok(s) => s,
        Err(f) => {
            let learned = is_route_not_found(&f.error)
                && f.provider
                    .as_ref()
                    .is_some_and(|p| upstream.native_tried.contains(p));
            let provider = f.provider.as_deref().and_then(|p| adm.config().provider(p));
            match provider {
                Some(p) if learned => {
                    learn_no_responses(p);
                    // Once more, now translated for that provider; the trail keeps both walks.
                    let mut served = adm.dispatch(plan, upstream).await.map_err(|mut again| {
                        again.trail.splice(0..0, f.trail.clone());
                        dispatch_failed(adm, again, ChargedTo::Reported)
                    })?;
                    served.trail.splice(0..0, f.trail);
                    served
                }
                _ => return Err(dispatch_failed(adm, f, ChargedTo::Reported)),
            }
        }
    };
    if upstream.last_native {
        let served = guard::served(adm, served, Some(BodyShape::ResponsesAnswer)).await?;
        return Ok(respond_passed_through(
            adm,
            served,
            raw,
            (UsageFormat::Responses, StreamRelay::default()),
            |b| b,
            started,
        ));
    }
    translated_answer(adm, served, raw, started).await
}

/// A chat answer (in the provider's protocol) as Responses JSON or Responses SSE events, through the
/// response guardrails.
async fn translated_answer(
    adm: &Admitted,
    served: Served,
    raw: &Bytes,
    started: Instant,
) -> Result<Response, ApiError> {
    let upstream_protocol = protocol_of(served.wire).expect("dispatch only serves supported wires");
    let log_content = observe_served_target(adm, &served, raw);
    let mut out_headers = answer_headers(&served, |name| !is_representation_header(name));
    let ctx = ResponseContext {
        created: SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_secs() as i64)
            .unwrap_or(1),
        model: adm.spec().model.clone().unwrap_or_default(),
        id_hint: uuid::Uuid::new_v4().simple().to_string(),
        include_usage: true,
    };
    let status = served.parts.status;
    let body = match served.body {
        ServedBody::Stream(start) => {
            set_event_stream_headers(&mut out_headers);
            let mode =
                RelayMode::Translate(Box::new(StreamTranslator::to_responses(upstream_protocol, &ctx)));
            let content_cap = log_content.then_some(adm.state().log_content.max_bytes);
            relay_body(
                adm,
                start,
                served.provider,
                served.permit,
                mode,
                UsageFormat::Responses,
                content_cap,
            )
        }
        ServedBody::Json(bytes) => {
            drop(served.permit);
            let translated = match switchyard_translate::translate_response_to_responses(
                upstream_protocol,
                &bytes,
                &ctx,
            ) {
                Ok(t) => t,
                Err(e) => {
                    let mut err = adm.fail(GatewayError::UpstreamUnreachable {
                        provider: served.provider.clone(),
                        reason: format!("its answer could not be translated: {e}"),
                    });
                    err.context.provider = Some(served.provider.clone());
                    return Ok(err.into_response());
                }
            };
            out_headers.insert(
                http::header::CONTENT_TYPE,
                HeaderValue::from_static("application/json"),
            );
            let bytes = Bytes::from(translated);
            let bytes = guard::answer(adm, &served.provider, BodyShape::ResponsesAnswer, bytes).await?;
            observe_answer(adm, UsageFormat::Responses, &bytes, log_content);
            let extra = extra_fields(
                RequestType::Responses,
                adm.spec().model.as_deref().unwrap_or_default(),
                &served.provider,
                &served.model,
                served.fallback_index,
                &served.trail,
                started,
            );
            Body::from(append_extra_fields(bytes, &extra))
        }
    };
    Ok(response(status, out_headers, body))
}

/// Each attempt: the client's body to a provider that serves the Responses API, the chat form
/// (through [`ChatUpstream`]) to any other.
struct ResponsesUpstream<'a> {
    native: JsonObject<'a>,
    chat: Result<ChatUpstream<'a>, TranslateError>,
    client_headers: &'a HeaderMap,
    stream: bool,
    /// Providers that were sent the Responses body in this request.
    native_tried: HashSet<String>,
    /// Whether the last request built (the one that served, if any did) was the native one.
    last_native: bool,
}

impl UpstreamRequest for ResponsesUpstream<'_> {
    fn request_type(&self) -> RequestType {
        RequestType::Responses.streamed_if(self.stream)
    }

    fn supports(&self, wire: WireApi) -> bool {
        protocol_of(wire).is_some()
    }

    fn build(&mut self, target: &Target<'_>, key: &RuntimeKey) -> Result<http::Request<Body>, GatewayError> {
        self.last_native = serves_natively(target.provider);
        if !self.last_native {
            return match &mut self.chat {
                Ok(chat) => chat.build(target, key),
                Err(e) => Err(translate_error(e.clone())),
            };
        }
        self.native_tried.insert(target.provider.config.name.to_string());
        self.native.set_str("model", target.model);
        UpstreamCall {
            provider: target.provider,
            key: Some(key),
            method: Method::POST,
            url: crate::providers::openai_style_url(target.provider, key, target.model, "/responses"),
            accept_sse: self.stream,
            client_headers: self.client_headers,
            protocol_headers: Vec::new(),
        }
        .build(Body::from(self.native.to_vec()))
    }
}
