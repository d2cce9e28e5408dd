//! What chat, the JSON endpoints and the raw pass-through do alike around `dispatch`: plan the call
//! (chat and the JSON endpoints), record the result in the request's observation, and build the
//! client's error, or the answer's headers, stream and response. Each caller keeps what is its own
//! (translation, `extra_fields`, which provider a failure is charged to), so the log row of a call is
//! filled the same way whichever route it came by.

use std::time::Instant;

use axum::body::Body;
use axum::http::{HeaderMap, HeaderName, HeaderValue, StatusCode};
use axum::response::Response;
use serde_json::{json, Value};
use switchyard_core::pricing::Prices;
use switchyard_core::routing::{RuntimeConfig, Target};
use switchyard_translate::usage::{usage_from_json, UsageFormat};
use switchyard_translate::Protocol;
use tokio::sync::OwnedSemaphorePermit;

use crate::chat::routing_headers;
use crate::dispatch::{
    timeout_override, AttemptRecord, DispatchFailure, DispatchOptions, Served, StreamStart,
};
use crate::error::{ApiError, ErrorContext};
use crate::inference::Ingress;
use crate::observe::{capped, ObsHandle};
use crate::relay::{RelayMode, SseRelay, StreamObserver};
use crate::state::AppState;
use crate::upstream::is_hop_by_hop;

/// A call to route over the configured targets.
pub(crate) struct RoutedCall<'a> {
    pub ingress: Ingress,
    pub model: &'a str,
    pub fallbacks: &'a [String],
    /// The call's name in the log row and the error context.
    pub request_type: &'static str,
    pub stream: bool,
}

/// A routed call ready for dispatch.
pub(crate) struct PlannedCall<'a> {
    /// The context of every error the call answers from here on.
    pub ctx: ErrorContext,
    /// The targets in order, after the virtual key's restrictions.
    pub targets: Vec<Target<'a>>,
    pub opts: DispatchOptions,
}

/// Names the call in the observation, reads the client's timeout override and plans its targets
/// (the virtual key's restrictions applied). Errors answer in `shape`, with the call's context.
pub(crate) async fn plan_call<'a>(
    state: &AppState,
    obs: &ObsHandle,
    snapshot: &'a RuntimeConfig,
    headers: &HeaderMap,
    call: RoutedCall<'a>,
    shape: Protocol,
) -> Result<PlannedCall<'a>, ApiError> {
    let ctx = ErrorContext {
        model_requested: Some(call.model.to_owned()),
        request_type: Some(call.request_type),
        ..ErrorContext::default()
    };
    let fail = |error, ctx: &ErrorContext| ApiError {
        error,
        context: ctx.clone(),
        shape,
    };
    obs.update(|d| {
        d.request_type = Some(call.request_type);
        d.model_requested = Some(call.model.to_owned());
        d.stream = call.stream;
    });
    let timeout_override = timeout_override(headers).map_err(|e| fail(e, &ctx))?;
    let mut rng = fastrand::Rng::new();
    let governed = crate::governance::plan(
        state,
        obs,
        snapshot,
        call.model,
        call.ingress.native_provider(),
        call.fallbacks,
        &mut rng,
    )
    .await
    .map_err(|e| fail(e, &ctx))?;
    Ok(PlannedCall {
        ctx,
        targets: governed.targets,
        opts: DispatchOptions {
            stream: call.stream,
            timeout_override,
            key_restriction: governed.key_restriction,
        },
    })
}

/// Who a failed call is charged to in its log row.
pub(crate) enum ChargedTo {
    /// The provider dispatch reports, with the model of that provider's last real attempt; the
    /// error's context names the same provider.
    Reported,
    /// The one provider the route names (the pass-through), whatever dispatch reports; the error's
    /// context keeps the provider it already names.
    Route { provider: String, model: Option<String> },
}

/// Records a failed dispatch in the observation (who, time spent upstream, the trail) and builds the
/// client's error: its context carries the trail and says the gateway already retried, so SDK
/// clients do not multiply the load with retries of their own.
pub(crate) fn dispatch_failed(
    obs: &ObsHandle,
    failure: DispatchFailure,
    mut ctx: ErrorContext,
    shape: Protocol,
    charged_to: ChargedTo,
) -> ApiError {
    let (provider, model) = match charged_to {
        ChargedTo::Reported => {
            // The model of the reported provider's last real attempt.
            let model = failure
                .trail
                .iter()
                .rev()
                .find(|a| a.key.is_some() && Some(&a.provider) == failure.provider.as_ref())
                .map(|a| a.model.clone());
            ctx.provider = failure.provider.clone();
            (failure.provider, model)
        }
        ChargedTo::Route { provider, model } => (Some(provider), model),
    };
    obs.update(|d| {
        d.provider = provider;
        d.model = model;
        d.upstream_ms = Some(upstream_ms(&failure.trail));
        d.trail = failure.trail.clone();
    });
    ctx.attempts = failure.trail;
    ctx.gateway_retried = true;
    ApiError {
        error: failure.error,
        context: ctx,
        shape,
    }
}

/// What the log row says about a served call beyond what `Served` carries.
pub(crate) struct ServedRecord<'a> {
    /// The model the row names.
    pub model: Option<String>,
    pub fallback_index: u32,
    pub price: Option<Prices>,
    pub stream: bool,
    /// The request body (or its summary), when content is logged for this call.
    pub request_body: Option<&'a [u8]>,
}

/// Fills the observation from the answer that was served: provider and key, fallback index, time
/// upstream, trail and price; for a stream the time to its first event (dispatch returns once the
/// stream has started).
pub(crate) fn observe_served(state: &AppState, obs: &ObsHandle, served: &Served, record: ServedRecord<'_>) {
    obs.update(|d| {
        d.provider = Some(served.provider.clone());
        d.model = record.model;
        d.key_id = Some(served.key_id.clone());
        d.key_name = Some(served.key_name.clone());
        d.fallback_index = Some(record.fallback_index);
        d.upstream_ms = Some(upstream_ms(&served.trail));
        d.trail = served.trail.clone();
        d.price = record.price;
        if record.stream {
            d.ttft_ms = Some(obs.elapsed_ms());
        }
        if let Some(body) = record.request_body {
            d.request_body = Some(capped(body, state.log_content.max_bytes));
        }
    });
}

/// `observe_served` for routes that plan over the configured targets (chat, the JSON endpoints): the
/// row names the served model and its price, and content is logged when the gateway or the serving
/// provider asks for it. Returns whether content is logged, for the answer's side.
pub(crate) fn observe_served_target(
    state: &AppState,
    obs: &ObsHandle,
    snapshot: &RuntimeConfig,
    served: &Served,
    stream: bool,
    raw: &[u8],
) -> bool {
    let served_provider = snapshot.provider(&served.provider);
    let log_content =
        state.log_content.enabled || served_provider.is_some_and(|p| p.config.store_raw_request_response);
    let record = ServedRecord {
        model: Some(served.model.clone()),
        fallback_index: served.fallback_index as u32,
        price: served_provider.and_then(|p| state.governance.price(p, &served.model)),
        stream,
        request_body: log_content.then_some(raw),
    };
    observe_served(state, obs, served, record);
    log_content
}

/// Records a whole (non-streamed) answer's usage and, when content is logged, the answer itself.
pub(crate) fn observe_answer(
    state: &AppState,
    obs: &ObsHandle,
    format: UsageFormat,
    answer: &[u8],
    log_content: bool,
) {
    obs.update(|d| {
        d.usage = usage_from_json(format, answer);
        if log_content {
            d.response_body = Some(capped(answer, state.log_content.max_bytes));
        }
    });
}

fn upstream_ms(trail: &[AttemptRecord]) -> f64 {
    trail.iter().map(|a| a.latency_ms as f64).sum()
}

/// The upstream answer's headers for the client: all but hop-by-hop ones and those `keep` refuses,
/// plus the routing headers.
pub(crate) fn answer_headers(served: &Served, keep: impl Fn(&HeaderName) -> bool) -> HeaderMap {
    let mut out = HeaderMap::with_capacity(served.parts.headers.len() + 8);
    for (name, value) in &served.parts.headers {
        if !is_hop_by_hop(name) && keep(name) {
            out.append(name, value.clone());
        }
    }
    routing_headers(&mut out, served);
    out
}

/// Marks an answer as an event stream the gateway relays event by event (and must not be cached).
pub(crate) fn set_event_stream_headers(headers: &mut HeaderMap) {
    headers.insert(
        http::header::CONTENT_TYPE,
        HeaderValue::from_static("text/event-stream"),
    );
    headers.insert(http::header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
}

/// The relayed stream's body, watched for usage (and content up to `content_cap` when logged). The
/// relay holds the provider's concurrency slot until the stream ends.
pub(crate) fn relay_body(
    obs: &ObsHandle,
    start: StreamStart,
    provider: String,
    permit: OwnedSemaphorePermit,
    mode: RelayMode,
    format: UsageFormat,
    content_cap: Option<usize>,
) -> Body {
    let tap = StreamObserver::new(obs.clone(), format, content_cap);
    Body::from_stream(SseRelay::new(start, provider, mode, Some(permit)).observed(tap))
}

/// Bifrost's `extra_fields` of a served JSON answer (OpenAI-shaped answers carry them).
pub(crate) fn extra_fields(
    request_type: &str,
    model_requested: &str,
    provider: &str,
    model: &str,
    fallback_index: usize,
    trail: &[AttemptRecord],
    started: Instant,
) -> Value {
    json!({
        "request_type": request_type,
        "provider": provider,
        "model_requested": model_requested,
        "resolved_model_used": model,
        "latency": started.elapsed().as_millis() as u64,
        "fallback_index": fallback_index,
        "attempts": trail,
    })
}

pub(crate) fn response(status: StatusCode, headers: HeaderMap, body: Body) -> Response {
    let mut resp = Response::new(body);
    *resp.status_mut() = status;
    *resp.headers_mut() = headers;
    resp
}
