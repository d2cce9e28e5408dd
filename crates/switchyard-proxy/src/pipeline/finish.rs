//! The pipeline's last phase, **finish**: one place that turns a finished request into its settled
//! usage, its log row, its metrics and its trace.
//!
//! The driver opens an [`ObsHandle`] when the request arrives; the phases fill it in (caller, who
//! served, trail, usage, ...), and [`observed`] wraps the response body so the record is finished when
//! the body has been sent in full, or when it is dropped early (the client went away). That covers JSON
//! answers, errors and streams alike, and the request path never waits on the log database: the record
//! goes to the log writer's queue.

use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use axum::body::Body;
use axum::extract::MatchedPath;
use axum::response::Response;
use bytes::Bytes;
use http_body::{Body as HttpBody, Frame, SizeHint};
use switchyard_core::governance::estimate::estimated_usage;
use switchyard_core::pricing::{Prices, TokenUsage};
use switchyard_core::request_type::RequestType;
use switchyard_core::text::{self, clip, clip_owned};

use switchyard_runtime::error::ErrorSummary;
use switchyard_runtime::metrics::RequestSample;
use switchyard_runtime::state::AppState;
use switchyard_runtime::trace::{new_span_id, new_trace_id, parse_traceparent, AttrValue, SpanData, Tracer};
use switchyard_runtime::trail::AttemptRecord;

/// What the handler and the stream relay learn about a request while it runs.
#[derive(Default)]
pub struct Details {
    pub request_type: Option<RequestType>,
    pub model_requested: Option<String>,
    pub stream: bool,
    pub provider: Option<String>,
    pub model: Option<String>,
    /// The model the upstream's answer names (it may differ from the one asked for).
    pub served_model: Option<String>,
    pub key_id: Option<String>,
    pub key_name: Option<String>,
    pub fallback_index: Option<u32>,
    pub trail: Vec<AttemptRecord>,
    pub upstream_ms: Option<f64>,
    pub ttft_ms: Option<f64>,
    pub usage: Option<TokenUsage>,
    /// Size of the request body, for the input estimate when the upstream reports no usage.
    pub request_bytes: usize,
    /// Bytes of model-written text in the answer, for the output estimate (a relayed stream adds
    /// its text when it ends, and only if it reported no usage).
    pub answer_text_bytes: usize,
    /// `None`: the model has no known price (the cost is reported as unknown, never as $0).
    pub price: Option<Prices>,
    pub request_body: Option<String>,
    pub response_body: Option<String>,
    /// A relayed stream's logged bytes and their cap: `response_body` when the request finishes.
    pub streamed_content: Option<(usize, Vec<u8>)>,
    /// Set by the relay when a stream ended with an error event.
    pub stream_error: Option<String>,
    /// Governance: the virtual key's admission, settled when the request finishes.
    pub admission: Option<Arc<switchyard_runtime::governance::Admission>>,
    /// Governance: (virtual key, team, customer) ids for the log row, rejections included.
    pub governance_ids: Option<(String, Option<String>, Option<String>)>,
    /// Answered from the response cache: cost 0, nothing charged.
    pub cache_hit: bool,
    /// Guardrails that matched, with their decisions (`pipeline::guard`); never the matched text.
    pub guardrails: Vec<(String, &'static str)>,
}

struct Observation {
    started: Instant,
    started_at: SystemTime,
    /// From the caller's `traceparent`, so the gateway's spans join the caller's trace.
    trace_parent: Option<([u8; 16], [u8; 8])>,
    started_unix_ms: i64,
    route: String,
    user_agent: Option<String>,
    details: Mutex<Details>,
}

#[derive(Clone)]
pub struct ObsHandle(Arc<Observation>);

impl ObsHandle {
    pub fn update(&self, f: impl FnOnce(&mut Details)) {
        f(&mut self.0.details.lock().unwrap_or_else(|p| p.into_inner()));
    }

    pub fn elapsed_ms(&self) -> f64 {
        self.0.started.elapsed().as_secs_f64() * 1000.0
    }

    /// A handle for code paths outside the middleware (tests, internal calls): observed nowhere.
    pub fn detached() -> Self {
        ObsHandle::new(String::new(), None, None)
    }

    /// Opens the observation of a request that has just arrived.
    pub fn start(parts: &http::request::Parts) -> Self {
        let route = parts.extensions.get::<MatchedPath>().map_or_else(
            || clip(parts.uri.path(), text::MAX_ROUTE).into_owned(),
            |m| m.as_str().to_owned(),
        );
        let user_agent = parts
            .headers
            .get(http::header::USER_AGENT)
            .and_then(|v| v.to_str().ok())
            .map(|ua| clip(ua, text::MAX_USER_AGENT).into_owned());
        let trace_parent = parts
            .headers
            .get("traceparent")
            .and_then(|v| v.to_str().ok())
            .and_then(parse_traceparent);
        ObsHandle::new(route, user_agent, trace_parent)
    }

    fn new(route: String, user_agent: Option<String>, trace_parent: Option<([u8; 16], [u8; 8])>) -> Self {
        let started_at = SystemTime::now();
        let started_unix_ms = started_at
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_millis() as i64)
            .unwrap_or(0);
        ObsHandle(Arc::new(Observation {
            started: Instant::now(),
            started_at,
            trace_parent,
            started_unix_ms,
            route,
            user_agent,
            details: Mutex::new(Details::default()),
        }))
    }
}

/// Caps logged content at `max` bytes (on a character boundary).
pub fn capped(content: &[u8], max: usize) -> String {
    clip(&String::from_utf8_lossy(content), max).into_owned()
}

/// The response, its body wrapped so the observation finishes when the body ends or is dropped.
pub fn observed(state: Arc<AppState>, handle: ObsHandle, resp: Response) -> Response {
    let status = resp.status().as_u16();
    let error = resp.extensions().get::<ErrorSummary>().cloned();
    let (parts, body) = resp.into_parts();
    let finisher = Finisher {
        state,
        handle,
        status,
        error,
    };
    Response::from_parts(
        parts,
        Body::new(ObservedBody {
            inner: body,
            finisher: Some(finisher),
        }),
    )
}

struct Finisher {
    state: Arc<AppState>,
    handle: ObsHandle,
    status: u16,
    error: Option<ErrorSummary>,
}

impl Finisher {
    fn finish(self, complete: bool) {
        let obs = &self.handle.0;
        let total_ms = obs.started.elapsed().as_secs_f64() * 1000.0;
        let mut d = std::mem::take(&mut *obs.details.lock().unwrap_or_else(|p| p.into_inner()));
        settle_streamed(&self.state, &mut d);
        let (mut error_type, mut error_message) = match &self.error {
            Some(e) => (Some(e.error_type.clone()), Some(e.message.clone())),
            None => (None, None),
        };
        // A stream that failed after its headers went out answered 200, but it is an error: the row and
        // the metrics say 502, what the client would have got had the failure come before the first
        // event, so `status=error` finds it.
        let mut status = self.status;
        if let Some(e) = &d.stream_error {
            error_type.get_or_insert_with(|| "stream_error".into());
            error_message.get_or_insert_with(|| e.clone());
            if status < 400 {
                status = 502;
            }
        }
        if !complete && status < 400 {
            error_type.get_or_insert_with(|| "client_disconnected".into());
            error_message.get_or_insert_with(|| "the client went away before the answer was complete".into());
        }
        let (usage, usage_estimated) = settled_usage(&d);
        let cost = match (usage, d.price) {
            _ if d.cache_hit => Some(0.0),
            (Some(u), Some(p)) => Some(p.cost(&u)),
            _ => None,
        };
        // A cache hit's tokens were not consumed again: its row shows them; limits and counters do not.
        let metered = usage.filter(|_| !d.cache_hit);
        if let Some(admission) = d.admission.clone() {
            let tokens = metered.map_or(0, |u| u.total());
            self.state.governance.settle(&admission, cost, tokens);
        }
        let (virtual_key_id, team_id, customer_id) = d.governance_ids.take().unwrap_or_default();
        let virtual_key_id = (!virtual_key_id.is_empty()).then_some(virtual_key_id);
        let attempts = d.trail.iter().filter(|a| a.key.is_some()).count() as u32;
        self.state.metrics.record(&RequestSample {
            route: &obs.route,
            provider: d.provider.as_deref().unwrap_or(""),
            model: d.model.as_deref().unwrap_or(""),
            status,
            total_secs: total_ms / 1000.0,
            upstream_secs: d.upstream_ms.map(|m| m / 1000.0),
            ttft_secs: d.ttft_ms.map(|m| m / 1000.0),
            retries: u64::from(attempts.saturating_sub(1)),
            fell_back: d.fallback_index.is_some_and(|i| i > 0),
            input_tokens: metered.map_or(0, |u| u.input),
            output_tokens: metered.map_or(0, |u| u.output),
            cached_tokens: metered.map_or(0, |u| u.cache_read + u.cache_write),
            cost_usd: cost,
        });
        self.state.metrics.in_flight().dec();
        if let Some(tracer) = &self.state.tracer {
            emit_spans(tracer, obs, &d, status, usage, error_type.as_deref());
        }
        if let Some(logs) = &self.state.logs {
            logs.log(switchyard_logs::LogRecord {
                id: uuid::Uuid::now_v7().to_string(),
                timestamp_ms: obs.started_unix_ms,
                route: obs.route.clone(),
                request_type: d
                    .request_type
                    .unwrap_or(RequestType::ChatCompletion)
                    .as_str()
                    .to_owned(),
                model_requested: d.model_requested.unwrap_or_default(),
                provider: d.provider,
                model: d.model,
                served_model: d.served_model.map(|m| clip_owned(m, text::MAX_MODEL_NAME)),
                key_id: d.key_id,
                key_name: d.key_name,
                virtual_key_id,
                team_id,
                customer_id,
                status,
                error_type,
                error_message: error_message.map(|m| clip_owned(m, text::MAX_LOGGED_ERROR)),
                stream: d.stream,
                attempts,
                fallback_index: d.fallback_index,
                trail: (!d.trail.is_empty()).then(|| serde_json::to_string(&d.trail).unwrap_or_default()),
                latency_ms: total_ms,
                upstream_latency_ms: d.upstream_ms,
                overhead_ms: d.upstream_ms.map(|u| (total_ms - u).max(0.0)),
                ttft_ms: d.ttft_ms,
                input_tokens: usage.map(|u| (u.input + u.cache_read + u.cache_write) as i64),
                output_tokens: usage.map(|u| u.output as i64),
                cached_tokens: usage.map(|u| (u.cache_read + u.cache_write) as i64),
                cost_usd: cost,
                cost_known: cost.is_some(),
                usage_estimated,
                user_agent: obs.user_agent.clone(),
                request_body: d.request_body,
                response_body: d.response_body,
                cache_hit: d.cache_hit,
                guardrails: guardrails_column(&d.guardrails),
            });
        }
    }
}

/// What a relayed stream left for the end: the logged content as text, with what guardrails matched
/// scrubbed out.
fn settle_streamed(state: &AppState, d: &mut Details) {
    if let Some((cap, bytes)) = d.streamed_content.take() {
        d.response_body = Some(capped(&bytes, cap));
    }
    scrub_content(state, d);
}

/// Logged content never holds what a guardrail matched (a `log` guardrail lets it pass upstream).
fn scrub_content(state: &AppState, d: &mut Details) {
    if d.guardrails.is_empty() {
        return;
    }
    let set = state.governance.snapshot().guardrails.clone();
    for body in [&mut d.request_body, &mut d.response_body].into_iter().flatten() {
        if let Some(clean) = set.scrub(body) {
            *body = clean;
        }
    }
}

/// The log column: `[{"guardrail": name, "decision": ...}]`, each guardrail once.
fn guardrails_column(found: &[(String, &'static str)]) -> Option<String> {
    let mut rows: Vec<serde_json::Value> = Vec::new();
    for (name, decision) in found {
        if !rows.iter().any(|r| r["guardrail"] == name.as_str()) {
            rows.push(serde_json::json!({"guardrail": name, "decision": decision}));
        }
    }
    (!rows.is_empty()).then(|| serde_json::Value::Array(rows).to_string())
}

/// The usage a call is charged: what the upstream reported, or, when a served text call reported none,
/// the estimate from its request bytes and the text relayed (flagged, never 0). A cache hit is never
/// estimated: nothing was consumed upstream.
fn settled_usage(d: &Details) -> (Option<TokenUsage>, bool) {
    match d.usage {
        Some(u) => (Some(u), false),
        None if !d.cache_hit
            && d.key_id.is_some()
            && d.request_type.is_some_and(RequestType::estimated_from_text) =>
        {
            (Some(estimated_usage(d.request_bytes, d.answer_text_bytes)), true)
        }
        None => (None, false),
    }
}

/// The response body, finishing the observation when it ends or is dropped.
struct ObservedBody {
    inner: Body,
    finisher: Option<Finisher>,
}

impl HttpBody for ObservedBody {
    type Data = Bytes;
    type Error = axum::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Self::Error>>> {
        let this = &mut *self;
        let polled = Pin::new(&mut this.inner).poll_frame(cx);
        if let Poll::Ready(None) = polled {
            if let Some(f) = this.finisher.take() {
                f.finish(true);
            }
        }
        polled
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

impl Drop for ObservedBody {
    fn drop(&mut self) {
        if let Some(f) = self.finisher.take() {
            // A body known to be complete (e.g. empty, or fully written without a final poll) counts
            // as delivered; otherwise the client left early.
            let complete = self.inner.is_end_stream();
            // The body goes first: a relay hands what it observed to the observation as it is
            // dropped, and the finish must see it.
            drop(std::mem::replace(&mut self.inner, Body::empty()));
            f.finish(complete);
        }
    }
}

/// One server span for the request and one client span per upstream attempt (GenAI conventions).
fn emit_spans(
    tracer: &Tracer,
    obs: &Observation,
    d: &Details,
    status: u16,
    usage: Option<TokenUsage>,
    error_type: Option<&str>,
) {
    let mut rng = fastrand::Rng::new();
    let (trace_id, parent) = match obs.trace_parent {
        Some((t, p)) => (t, Some(p)),
        None => (new_trace_id(&mut rng), None),
    };
    let span_id = new_span_id(&mut rng);
    let operation = d
        .request_type
        .unwrap_or(RequestType::ChatCompletion)
        .operation_name();
    let end = SystemTime::now();
    let model = d.model_requested.clone().unwrap_or_default();
    let mut attrs = vec![
        ("gen_ai.operation.name", AttrValue::Str(operation.into())),
        ("gen_ai.request.model", AttrValue::Str(model.clone())),
        ("http.route", AttrValue::Str(obs.route.clone())),
        ("http.response.status_code", AttrValue::Int(i64::from(status))),
    ];
    if let Some(p) = &d.provider {
        attrs.push(("gen_ai.provider.name", AttrValue::Str(p.clone())));
    }
    if let Some(m) = &d.model {
        attrs.push(("gen_ai.response.model", AttrValue::Str(m.clone())));
    }
    if let Some(u) = usage {
        attrs.push((
            "gen_ai.usage.input_tokens",
            AttrValue::Int((u.input + u.cache_read + u.cache_write) as i64),
        ));
        attrs.push(("gen_ai.usage.output_tokens", AttrValue::Int(u.output as i64)));
    }
    if let Some(t) = d.ttft_ms {
        attrs.push(("switchyard.time_to_first_token_ms", AttrValue::Float(t)));
    }
    if let Some(e) = error_type {
        attrs.push(("error.type", AttrValue::Str(e.to_owned())));
    }
    tracer.record(SpanData {
        trace_id,
        span_id,
        parent_span_id: parent,
        name: format!("{operation} {model}"),
        kind: 2,
        start: obs.started_at,
        end,
        attributes: attrs,
        error: (status >= 500).then(|| error_type.unwrap_or("error").to_owned()),
    });
    for a in d.trail.iter().filter(|a| a.key.is_some()) {
        let start = a.started_at.unwrap_or(obs.started_at);
        let ok = a.outcome.is_success();
        tracer.record(SpanData {
            trace_id,
            span_id: new_span_id(&mut rng),
            parent_span_id: Some(span_id),
            name: format!("{operation} {}", a.model),
            kind: 3,
            start,
            end: start + std::time::Duration::from_millis(a.latency_ms),
            attributes: vec![
                ("gen_ai.operation.name", AttrValue::Str(operation.into())),
                ("gen_ai.provider.name", AttrValue::Str(a.provider.clone())),
                ("gen_ai.request.model", AttrValue::Str(a.model.clone())),
                (
                    "switchyard.key",
                    AttrValue::Str(a.key.clone().unwrap_or_default()),
                ),
                ("switchyard.outcome", AttrValue::Str(a.outcome.label())),
            ],
            error: (!ok).then(|| a.outcome.label()),
        });
    }
}
