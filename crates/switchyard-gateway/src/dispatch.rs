//! The attempt loop: every upstream call goes through [`dispatch`], which walks the request's plan
//! (resolved targets, request fallbacks, configured chains) and, per target, picks keys, applies the
//! provider's concurrency gate, timeouts, retries with backoff, key rotation and the circuit breakers.
//! The decisions themselves come from the pure core (`switchyard_core::retry::next_step`,
//! `switchyard_core::health`); this module only performs them.
//!
//! A request is committed to a target only once that target produced a usable start: a 2xx JSON body
//! read in full, or a 2xx stream's first event. Until then every failure may still retry or fall back,
//! so a client never sees a half answer from a failed lane.

use std::time::{Duration, Instant, SystemTime};

use axum::body::Body;
use bytes::Bytes;
use http::{HeaderMap, Request, StatusCode};
use http_body_util::BodyExt;
use hyper::body::Incoming;
use serde::Serialize;
use switchyard_core::config::CircuitBreakerConfig;
use switchyard_core::retry::{next_step, parse_retry_after, Failure, RetryPolicy, Step};
use switchyard_core::routing::{KeyChoiceError, RuntimeKey, Target};
use switchyard_core::secret::scrub_secret;
use switchyard_core::sse::SseFramer;
use switchyard_core::WireApi;
use switchyard_translate::normalize_upstream_error;
use tokio::sync::OwnedSemaphorePermit;
use tokio::time::Instant as TokioInstant;

use crate::error::GatewayError;
use crate::health::Scope;
use crate::state::AppState;

/// Largest upstream error body read (error bodies are small; anything larger is cut).
const MAX_ERROR_BODY: usize = 64 * 1024;

/// Builds the upstream request for one attempt; one implementation per (ingress, wire) pairing.
pub trait UpstreamRequest: Send {
    /// `chat_completion`, `chat_completion_stream`, ... (checked against `allowed_requests`).
    fn request_type(&self) -> &'static str;
    fn supports(&self, wire: WireApi) -> bool;
    fn build(&mut self, target: &Target<'_>, key: &RuntimeKey) -> Result<Request<Body>, GatewayError>;
}

/// One line of the routing trail shown to callers (headers, `extra_fields`) and logs.
#[derive(Clone, Debug, Serialize)]
pub struct AttemptRecord {
    pub provider: String,
    pub model: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub key: Option<String>,
    /// The upstream status, or what happened instead (`connection_error`, `timeout`, `queue_full`,
    /// `skipped: ...`).
    pub outcome: String,
    pub latency_ms: u64,
    /// When the attempt started (for trace spans; not shown to callers).
    #[serde(skip)]
    pub started_at: Option<std::time::SystemTime>,
}

impl AttemptRecord {
    /// `provider/model:key=outcome`, for the `x-switchyard-trail` header.
    pub fn compact(&self) -> String {
        match &self.key {
            Some(k) => format!("{}/{}:{}={}", self.provider, self.model, k, self.outcome),
            None => format!("{}/{}={}", self.provider, self.model, self.outcome),
        }
    }
}

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

/// A target that answered: the committed response start and how it was reached.
pub struct Served {
    pub parts: http::response::Parts,
    pub body: ServedBody,
    pub provider: String,
    /// The wire API of the provider that served (decides whether the answer is translated).
    pub wire: WireApi,
    pub model: String,
    pub key_id: String,
    pub key_name: String,
    pub fallback_index: usize,
    pub trail: Vec<AttemptRecord>,
    /// Holds the provider's concurrency slot until the answer has been relayed.
    pub permit: OwnedSemaphorePermit,
}

pub struct DispatchFailure {
    pub error: GatewayError,
    pub provider: Option<String>,
    pub trail: Vec<AttemptRecord>,
}

pub struct DispatchOptions {
    pub stream: bool,
    /// Per-request override of `default_request_timeout_in_seconds` (header `x-switchyard-timeout`).
    pub timeout_override: Option<Duration>,
    /// Governance: the provider key ids a virtual key may use (`None`: all).
    pub key_restriction: Option<std::sync::Arc<crate::governance::KeyRestriction>>,
}

struct AttemptError {
    failure: Failure,
    error: GatewayError,
}

pub async fn dispatch(
    state: &AppState,
    plan: &[Target<'_>],
    request: &mut dyn UpstreamRequest,
    opts: &DispatchOptions,
) -> Result<Served, DispatchFailure> {
    let mut rng = fastrand::Rng::new();
    let mut trail: Vec<AttemptRecord> = Vec::new();
    // The error reported when everything fails: the primary target's (as Bifrost does), unless the
    // primary was never tried.
    let mut primary_error: Option<(GatewayError, String)> = None;
    let mut last_error: Option<(GatewayError, String)> = None;
    let mut tried_any = false;

    for (index, target) in plan.iter().enumerate() {
        let provider = target.provider;
        let pname = provider.config.name.to_string();
        let breaker_cfg = provider.config.circuit_breaker;
        let skip = |trail: &mut Vec<AttemptRecord>, why: &str| {
            trail.push(AttemptRecord {
                provider: pname.clone(),
                model: target.model.to_owned(),
                key: None,
                outcome: format!("skipped: {why}"),
                latency_ms: 0,
                started_at: None,
            })
        };
        if !request.supports(provider.config.wire()) {
            let e = GatewayError::NotImplemented(format!(
                "provider '{}' speaks the {} API, which this build cannot translate this request to yet",
                pname,
                provider.config.wire().as_str()
            ));
            skip(&mut trail, "wire API not supported");
            last_error = Some((e, pname.clone()));
            continue;
        }
        if !provider.config.allows_request(request.request_type()) {
            skip(&mut trail, "request type not allowed");
            let e = GatewayError::RequestTypeNotAllowed {
                provider: pname.clone(),
                request_type: request.request_type(),
            };
            last_error = Some((e, pname.clone()));
            continue;
        }
        // An ejected provider is skipped, unless it is the only chance left for a request that has
        // not reached any upstream yet (then it acts as the probe).
        let last_chance = index + 1 == plan.len() && !tried_any;
        if !last_chance && !state.health.is_available(Scope::Provider(&pname), &breaker_cfg) {
            skip(&mut trail, "provider ejected by its circuit breaker");
            let e =
                GatewayError::Unavailable(format!("provider '{pname}' is ejected after repeated failures"));
            last_error.get_or_insert((e, pname.clone()));
            continue;
        }
        let permit = match state
            .limits
            .acquire(&pname, provider.config.concurrency_and_buffer_size)
            .await
        {
            Ok(p) => p,
            Err(_) => {
                skip(&mut trail, "queue full");
                let c = provider.config.concurrency_and_buffer_size;
                let e = GatewayError::Unavailable(format!(
                    "provider '{pname}' is at capacity ({} in flight, {} waiting); raise concurrency_and_buffer_size",
                    c.concurrency, c.buffer_size
                ));
                last_error = Some((e, pname.clone()));
                continue;
            }
        };

        let nc = &provider.config.network_config;
        let policy = RetryPolicy {
            max_retries: nc.max_retries,
            backoff_initial: Duration::from_millis(nc.retry_backoff_initial),
            backoff_max: Duration::from_millis(nc.retry_backoff_max),
        };
        let total = opts
            .timeout_override
            .unwrap_or(Duration::from_secs(nc.default_request_timeout_in_seconds));
        let first_byte = nc
            .first_byte_timeout_in_seconds
            .map(Duration::from_secs)
            .unwrap_or(total)
            .min(total);
        let idle = Duration::from_secs(nc.stream_idle_timeout_in_seconds);

        let mut bad_keys: Vec<&str> = Vec::new();
        let mut avoid_key: Option<&str> = None;
        let mut retries = 0u32;
        let mut target_error: Option<GatewayError> = None;
        loop {
            let vk_allows = |k: &switchyard_core::routing::RuntimeKey| {
                opts.key_restriction
                    .as_ref()
                    .is_none_or(|r| r.allows(provider.config.name.as_str(), &k.config.id))
            };
            let choice = provider.select_key_where(target.model, &mut rng, |k| {
                vk_allows(k)
                    && !bad_keys.contains(&k.config.id.as_str())
                    && avoid_key != Some(k.config.id.as_str())
                    && state.health.is_available(Scope::Key(&k.config.id), &breaker_cfg)
            });
            let choice = match choice {
                // Rotation is a preference: with a single key left, use it again.
                Err(KeyChoiceError::AllExcluded) if avoid_key.is_some() => {
                    provider.select_key_where(target.model, &mut rng, |k| {
                        vk_allows(k)
                            && !bad_keys.contains(&k.config.id.as_str())
                            && state.health.is_available(Scope::Key(&k.config.id), &breaker_cfg)
                    })
                }
                other => other,
            };
            let key = match choice {
                Ok(k) => k,
                Err(KeyChoiceError::NotConfigured(e)) => {
                    if plan.len() == 1 {
                        return Err(DispatchFailure {
                            error: e.into(),
                            provider: Some(pname),
                            trail,
                        });
                    }
                    skip(&mut trail, "no key serves this model");
                    target_error.get_or_insert(e.into());
                    break;
                }
                Err(KeyChoiceError::AllExcluded) if !provider.keys.iter().any(vk_allows) => {
                    let why = "the virtual key may not use any of this provider's keys (provider_configs[].key_ids)";
                    skip(&mut trail, why);
                    target_error.get_or_insert(GatewayError::Forbidden {
                        message: format!("provider '{pname}': {why}"),
                        code: "key_not_allowed",
                    });
                    break;
                }
                Err(KeyChoiceError::AllExcluded) => {
                    let why = if bad_keys.is_empty() {
                        "every key is ejected by its circuit breaker"
                    } else {
                        "every key was rejected by the upstream (401/402/403)"
                    };
                    skip(&mut trail, why);
                    target_error
                        .get_or_insert(GatewayError::Unavailable(format!("provider '{pname}': {why}")));
                    break;
                }
            };
            tried_any = true;
            let key_id = key.config.id.as_str();
            state.health.on_dispatch(Scope::Key(key_id));
            let started = Instant::now();
            let started_at = std::time::SystemTime::now();
            let req = match request.build(target, key) {
                Ok(r) => r,
                Err(e) => {
                    return Err(DispatchFailure {
                        error: e,
                        provider: Some(pname),
                        trail,
                    })
                }
            };
            let attempt = attempt(
                state,
                &pname,
                provider.config.wire(),
                key,
                req,
                opts.stream,
                total,
                first_byte,
                idle,
            )
            .await;
            let latency_ms = started.elapsed().as_millis() as u64;
            match attempt {
                Ok((parts, body)) => {
                    state.health.on_success(Scope::Key(key_id));
                    state.health.on_success(Scope::Provider(&pname));
                    trail.push(AttemptRecord {
                        provider: pname.clone(),
                        model: target.model.to_owned(),
                        key: Some(key.config.name.clone()),
                        outcome: parts.status.as_u16().to_string(),
                        latency_ms,
                        started_at: Some(started_at),
                    });
                    if trail.len() > 1 {
                        tracing::info!(
                            provider = %pname, attempts = trail.len(), fallback_index = index,
                            trail = %trail.iter().map(AttemptRecord::compact).collect::<Vec<_>>().join(","),
                            "served after retries or fallback"
                        );
                    }
                    return Ok(Served {
                        parts,
                        body,
                        provider: pname,
                        wire: provider.config.wire(),
                        model: target.model.to_owned(),
                        key_id: key.config.id.clone(),
                        key_name: key.config.name.clone(),
                        fallback_index: index,
                        trail,
                        permit,
                    });
                }
                Err(AttemptError { failure, error }) => {
                    let outcome = match failure {
                        Failure::Status { status, .. } => status.to_string(),
                        Failure::Connection => "connection_error".to_owned(),
                        Failure::Timeout => "timeout".to_owned(),
                        Failure::QueueFull => "queue_full".to_owned(),
                    };
                    tracing::warn!(provider = %pname, key = %key.config.name, %outcome, error = %error, "upstream attempt failed");
                    trail.push(AttemptRecord {
                        provider: pname.clone(),
                        model: target.model.to_owned(),
                        key: Some(key.config.name.clone()),
                        outcome,
                        latency_ms,
                        started_at: Some(started_at),
                    });
                    record_failure(state, &pname, key_id, &breaker_cfg, &failure, &error);
                    match next_step(failure, retries, &policy, rng.f64()) {
                        Step::Return => {
                            return Err(DispatchFailure {
                                error,
                                provider: Some(pname),
                                trail,
                            })
                        }
                        Step::Retry {
                            delay,
                            rotate_key,
                            key_is_bad,
                            counts,
                        } => {
                            if key_is_bad {
                                bad_keys.push(key_id);
                            }
                            avoid_key = rotate_key.then_some(key_id);
                            if counts {
                                retries += 1;
                            }
                            target_error = Some(error);
                            if !delay.is_zero() {
                                tokio::time::sleep(delay).await;
                            }
                        }
                        Step::Fallback => {
                            target_error = Some(error);
                            break;
                        }
                    }
                }
            }
        }
        drop(permit);
        if let Some(e) = target_error {
            if primary_error.is_none() && trail.iter().any(|a| a.key.is_some()) {
                primary_error = Some((e, pname.clone()));
            } else {
                last_error = Some((e, pname.clone()));
            }
        }
    }
    let (error, provider) = primary_error.or(last_error).unwrap_or_else(|| {
        (
            GatewayError::Unavailable("no provider could take the request".into()),
            String::new(),
        )
    });
    Err(DispatchFailure {
        error,
        provider: (!provider.is_empty()).then_some(provider),
        trail,
    })
}

fn record_failure(
    state: &AppState,
    provider: &str,
    key_id: &str,
    cfg: &CircuitBreakerConfig,
    failure: &Failure,
    error: &GatewayError,
) {
    let message = error.to_string();
    if failure.is_health_failure() && state.health.on_failure(Scope::Key(key_id), cfg, &message) {
        tracing::warn!(
            provider,
            key_id,
            cooldown_secs = cfg.cooldown_in_seconds,
            "key ejected"
        );
    }
    if failure.is_provider_failure() && state.health.on_failure(Scope::Provider(provider), cfg, &message) {
        tracing::warn!(
            provider,
            cooldown_secs = cfg.cooldown_in_seconds,
            "provider ejected"
        );
    }
}

/// One upstream call up to the committed start of its answer.
#[allow(clippy::too_many_arguments)]
async fn attempt(
    state: &AppState,
    provider: &str,
    provider_wire: WireApi,
    key: &RuntimeKey,
    req: Request<Body>,
    stream: bool,
    total: Duration,
    first_byte: Duration,
    idle: Duration,
) -> Result<(http::response::Parts, ServedBody), AttemptError> {
    let now = TokioInstant::now();
    let total_deadline = now + total;
    let first_byte_deadline = now + first_byte;
    let timed_out = |secs: Duration| AttemptError {
        failure: Failure::Timeout,
        error: GatewayError::UpstreamTimeout {
            provider: provider.to_owned(),
            timeout_secs: secs.as_secs().max(1),
        },
    };
    let unreachable = |reason: String| AttemptError {
        failure: Failure::Connection,
        error: GatewayError::UpstreamUnreachable {
            provider: provider.to_owned(),
            reason,
        },
    };

    let resp = match tokio::time::timeout_at(first_byte_deadline, state.upstream.send(provider, req)).await {
        Err(_) => return Err(timed_out(first_byte)),
        Ok(Err(GatewayError::UpstreamUnreachable { reason, .. })) => return Err(unreachable(reason)),
        Ok(Err(e)) => {
            return Err(AttemptError {
                failure: Failure::Connection,
                error: e,
            })
        }
        Ok(Ok(r)) => r,
    };
    let (parts, body) = resp.into_parts();

    if !parts.status.is_success() {
        let bytes = tokio::time::timeout_at(total_deadline, read_capped(body, MAX_ERROR_BODY))
            .await
            .unwrap_or_default();
        let failure = Failure::Status {
            status: parts.status.as_u16(),
            retry_after: retry_after(&parts.headers),
        };
        return Err(AttemptError {
            failure,
            error: upstream_error_for(provider_wire, parts.status, &bytes, key),
        });
    }

    let is_sse = parts
        .headers
        .get(http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|ct| ct.starts_with("text/event-stream"));
    let is_eventstream = parts
        .headers
        .get(http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|ct| ct.starts_with("application/vnd.amazon.eventstream"));
    if stream && is_eventstream {
        return crate::providers::first_eventstream_message(
            provider_wire,
            key,
            parts,
            body,
            first_byte_deadline,
            idle,
        )
        .await
        .map_err(|e| match e {
            crate::providers::StartError::Timeout => timed_out(first_byte),
            crate::providers::StartError::Broken(reason) => unreachable(reason),
            crate::providers::StartError::Exception { status, error } => AttemptError {
                failure: Failure::Status {
                    status,
                    retry_after: None,
                },
                error,
            },
        });
    }
    if stream && is_sse {
        let mut body = body;
        let mut framer = SseFramer::new();
        let first = tokio::time::timeout_at(first_byte_deadline, async {
            loop {
                match body.frame().await {
                    None => return Err("the stream ended before its first event".to_owned()),
                    Some(Err(e)) => return Err(format!("the stream failed before its first event: {e}")),
                    Some(Ok(frame)) => {
                        if let Ok(data) = frame.into_data() {
                            let events = framer.push(data);
                            if !events.is_empty() {
                                return Ok(events);
                            }
                        }
                    }
                }
            }
        })
        .await;
        return match first {
            Err(_) => Err(timed_out(first_byte)),
            Ok(Err(reason)) => Err(unreachable(reason)),
            Ok(Ok(first_events)) => Ok((
                parts,
                ServedBody::Stream(StreamStart {
                    first_events,
                    framer,
                    body,
                    idle_timeout: idle,
                }),
            )),
        };
    }

    match tokio::time::timeout_at(total_deadline, body.collect()).await {
        Err(_) => Err(timed_out(total)),
        Ok(Err(e)) => Err(unreachable(format!(
            "connection failed while reading the answer: {e}"
        ))),
        Ok(Ok(collected)) => Ok((parts, ServedBody::Json(collected.to_bytes()))),
    }
}

/// Reads an upstream error answer in its own wire format. The status reported to the client may
/// differ from the upstream's (Anthropic's 529 becomes 503); retry decisions use the upstream's.
pub(crate) fn upstream_error_for(
    wire: WireApi,
    status: StatusCode,
    body: &[u8],
    key: &RuntimeKey,
) -> GatewayError {
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

pub fn upstream_error(status: StatusCode, body: &[u8], key: &RuntimeKey) -> GatewayError {
    let mut detail = normalize_upstream_error(status.as_u16(), body);
    if let Some(secret) = &key.secret {
        detail.message = scrub_secret(&detail.message, secret.expose());
    }
    GatewayError::Upstream { status, detail }
}

fn retry_after(headers: &HeaderMap) -> Option<Duration> {
    let get = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
    parse_retry_after(get("retry-after-ms"), get("retry-after")).or_else(|| {
        let date = httpdate::parse_http_date(get("retry-after")?).ok()?;
        Some(date.duration_since(SystemTime::now()).unwrap_or(Duration::ZERO))
    })
}

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

/// Parses the per-request timeout header (`x-switchyard-timeout`: seconds, fractions allowed).
pub fn timeout_override(headers: &HeaderMap) -> Result<Option<Duration>, GatewayError> {
    let Some(v) = headers.get("x-switchyard-timeout") else {
        return Ok(None);
    };
    let secs = v.to_str().ok().and_then(|s| s.trim().parse::<f64>().ok());
    match secs {
        Some(s) if s.is_finite() && s > 0.0 && s <= 86_400.0 => Ok(Some(Duration::from_secs_f64(s))),
        _ => Err(GatewayError::BadRequest {
            message: "x-switchyard-timeout must be a number of seconds between 0 and 86400".into(),
            param: Some("x-switchyard-timeout".into()),
        }),
    }
}
