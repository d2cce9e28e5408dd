//! Phase 6, **respond**: what every route does alike with dispatch's result. A failure becomes the
//! client's error (with the trail, and `x-should-retry: false` once the gateway has retried); a served
//! answer is recorded in the observation (who served, time upstream, trail, price), its headers are
//! passed on with the routing headers added, and its body goes back as JSON (with Bifrost's
//! `extra_fields`) or as a stream relayed event by event. Each route keeps what is its own
//! (translation, `extra_fields`, which provider a failure is charged to), so the log row of a call is
//! filled the same way whichever route it came by.

use std::time::Instant;

use axum::body::Body;
use axum::http::{HeaderMap, HeaderName, HeaderValue, StatusCode};
use axum::response::Response;
use bytes::Bytes;
use switchyard_core::pricing::Prices;
use switchyard_core::request_type::RequestType;
use switchyard_translate::usage::{answer_facts, text_bytes, UsageFormat};
use tokio::sync::OwnedSemaphorePermit;

use super::dispatch::{DispatchFailure, Served};
use super::finish::capped;
use super::relay::{RelayMode, SseRelay, StreamObserver};
use super::Admitted;
use crate::answer::StreamStart;
use switchyard_runtime::error::ApiError;
use switchyard_runtime::trail::{trail_header, upstream_ms, AttemptRecord};
use switchyard_runtime::upstream::is_hop_by_hop;

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
pub(crate) fn dispatch_failed(adm: &Admitted, failure: DispatchFailure, charged_to: ChargedTo) -> ApiError {
    let mut ctx = adm.ctx().clone();
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
    adm.observe(|d| {
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
        shape: adm.spec().shape,
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
pub(crate) fn observe_served(adm: &Admitted, served: &Served, record: ServedRecord<'_>) {
    let max_bytes = adm.state().log_content.max_bytes;
    let elapsed_ms = adm.obs().elapsed_ms();
    adm.observe(|d| {
        d.provider = Some(served.provider.clone());
        d.model = record.model;
        d.key_id = Some(served.key_id.clone());
        d.key_name = Some(served.key_name.clone());
        d.fallback_index = Some(record.fallback_index);
        d.upstream_ms = Some(upstream_ms(&served.trail));
        d.trail = served.trail.clone();
        d.price = record.price;
        if record.stream {
            d.ttft_ms = Some(elapsed_ms);
        }
        if let Some(body) = record.request_body {
            d.request_body = Some(capped(body, max_bytes));
        }
    });
}

/// `observe_served` for routes that plan over the configured targets (chat, the JSON endpoints): the
/// row names the served model and its price, and content is logged when the gateway or the serving
/// provider asks for it. Returns whether content is logged, for the answer's side.
pub(crate) fn observe_served_target(adm: &Admitted, served: &Served, raw: &[u8]) -> bool {
    let state = adm.state();
    let served_provider = adm.config().provider(&served.provider);
    let log_content =
        state.log_content.enabled || served_provider.is_some_and(|p| p.config.store_raw_request_response);
    let record = ServedRecord {
        model: Some(served.model.clone()),
        fallback_index: served.fallback_index as u32,
        price: served_provider.and_then(|p| state.governance.price(p, &served.model)),
        stream: adm.spec().stream,
        request_body: log_content.then_some(raw),
    };
    observe_served(adm, served, record);
    log_content
}

/// Records a whole (non-streamed) answer's usage and, when content is logged, the answer itself.
pub(crate) fn observe_answer(adm: &Admitted, format: UsageFormat, answer: &[u8], log_content: bool) {
    let max_bytes = adm.state().log_content.max_bytes;
    let facts = answer_facts(format, answer);
    adm.observe(|d| {
        if d.served_model.is_none() {
            d.served_model = facts.model;
        }
        d.usage = facts.usage;
        if d.usage.is_none() {
            d.answer_text_bytes = text_bytes(answer);
        }
        if log_content {
            d.response_body = Some(capped(answer, max_bytes));
        }
    });
}

/// The upstream answer's headers for the client: all but hop-by-hop ones, credentials, any that
/// echoes the key sent (in any case or common encoding) and those `keep` refuses; plus the routing
/// headers.
pub(crate) fn answer_headers(served: &Served, keep: impl Fn(&HeaderName) -> bool) -> HeaderMap {
    let mut out = HeaderMap::with_capacity(served.parts.headers.len() + 8);
    let echoes = |value: &HeaderValue| {
        served
            .key_secret
            .as_ref()
            .is_some_and(|s| switchyard_core::secret::echoes_secret(value.as_bytes(), s.expose()))
    };
    for (name, value) in &served.parts.headers {
        if is_hop_by_hop(name) || is_credential(name) || !keep(name) {
            continue;
        }
        if echoes(value) {
            tracing::warn!(provider = %served.provider, header = %name, "upstream answer header echoed the key; not relayed");
            continue;
        }
        out.append(name, value.clone());
    }
    routing_headers(&mut out, served);
    out
}

/// Headers that carry credentials: never relayed from an upstream answer.
fn is_credential(name: &HeaderName) -> bool {
    matches!(
        name.as_str(),
        "authorization"
            | "proxy-authorization"
            | "cookie"
            | "set-cookie"
            | "set-cookie2"
            | "x-api-key"
            | "api-key"
            | "x-goog-api-key"
            | "x-amz-security-token"
    )
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
    adm: &Admitted,
    start: StreamStart,
    provider: String,
    permit: OwnedSemaphorePermit,
    mode: RelayMode,
    format: UsageFormat,
    content_cap: Option<usize>,
) -> Body {
    let mut tap = StreamObserver::new(adm.obs().clone(), format, content_cap);
    if matches!(mode, RelayMode::PassThrough { .. }) {
        tap = tap.watching_model();
    }
    let guard = super::guard_stream::StreamGuard::new(adm, &provider);
    Body::from_stream(
        SseRelay::new(start, provider, mode, Some(permit))
            .observed(tap)
            .guarded(guard),
    )
}

/// Bifrost's `extra_fields` of a served JSON answer (OpenAI-shaped answers carry them).
pub(crate) fn extra_fields<'a>(
    request_type: RequestType,
    model_requested: &'a str,
    provider: &'a str,
    model: &'a str,
    fallback_index: usize,
    trail: &'a [AttemptRecord],
    started: Instant,
) -> ExtraFields<'a> {
    ExtraFields {
        request_type,
        provider,
        model_requested,
        resolved_model_used: model,
        latency: started.elapsed().as_millis() as u64,
        fallback_index,
        attempts: trail,
    }
}

/// Bifrost's `extra_fields` block, written straight into the answer (no JSON value built first).
#[derive(serde::Serialize)]
pub(crate) struct ExtraFields<'a> {
    request_type: RequestType,
    provider: &'a str,
    model_requested: &'a str,
    resolved_model_used: &'a str,
    latency: u64,
    fallback_index: usize,
    attempts: &'a [AttemptRecord],
}

pub(crate) fn response(status: StatusCode, headers: HeaderMap, body: Body) -> Response {
    let mut resp = Response::new(body);
    *resp.status_mut() = status;
    *resp.headers_mut() = headers;
    resp
}

/// Adds Bifrost's `extra_fields` block to a JSON object answer by splicing it in before the closing
/// brace; the upstream's bytes are otherwise left untouched. Anything that is not a JSON object (or
/// already has `extra_fields`) is returned as is.
pub fn append_extra_fields(body: Bytes, extra: &impl serde::Serialize) -> Bytes {
    let trimmed_end = body.iter().rposition(|b| !b.is_ascii_whitespace());
    let Some(close) = trimmed_end.filter(|&i| body[i] == b'}') else {
        return body;
    };
    if body.iter().find(|b| !b.is_ascii_whitespace()) != Some(&b'{') {
        return body;
    }
    // Built once: building a searcher costs more than searching an answer.
    static EXTRA_FIELDS: std::sync::LazyLock<memchr::memmem::Finder<'static>> =
        std::sync::LazyLock::new(|| memchr::memmem::Finder::new(b"\"extra_fields\""));
    if EXTRA_FIELDS.find(&body).is_some() {
        return body;
    }
    let before = body[..close].iter().rposition(|b| !b.is_ascii_whitespace());
    let empty_object = before.is_some_and(|i| body[i] == b'{');
    let mut out = Vec::with_capacity(body.len() + 160);
    out.extend_from_slice(&body[..close]);
    if !empty_object {
        out.push(b',');
    }
    out.extend_from_slice(b"\"extra_fields\":");
    serde_json::to_writer(&mut out, extra).expect("writing to a Vec cannot fail");
    out.extend_from_slice(&body[close..]);
    Bytes::from(out)
}

/// Which provider and key served, after how many attempts, and the trail: visible to every caller,
/// streams included (they carry no `extra_fields`).
pub(crate) fn routing_headers(h: &mut HeaderMap, served: &Served) {
    static NAMES: [HeaderName; 6] = [
        HeaderName::from_static("x-switchyard-provider"),
        HeaderName::from_static("x-switchyard-model"),
        HeaderName::from_static("x-switchyard-key"),
        HeaderName::from_static("x-switchyard-attempts"),
        HeaderName::from_static("x-switchyard-fallback-index"),
        HeaderName::from_static("x-switchyard-trail"),
    ];
    let [provider, model, key, attempts, fallback, trail] = &NAMES;
    let text = trail_header(&served.trail);
    let tried = served.trail.iter().filter(|a| a.key.is_some()).count();
    let mut set = |name: &HeaderName, value: Result<HeaderValue, _>| {
        if let Ok(v) = value {
            h.insert(name, v);
        }
    };
    set(provider, HeaderValue::from_str(&served.provider));
    set(model, HeaderValue::from_str(&served.model));
    set(key, HeaderValue::from_str(&served.key_name));
    set(attempts, Ok(HeaderValue::from(tried)));
    set(fallback, Ok(HeaderValue::from(served.fallback_index)));
    set(trail, HeaderValue::from_str(&text));
}
