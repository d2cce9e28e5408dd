//! One upstream attempt, up to the committed start of its answer: the call under the first-byte and
//! total timeouts, error answers read in the provider's format, and the start of a usable answer
//! (a whole JSON body within its cap, a stream's first events, or a byte relay's first bytes).
//! `dispatch` decides what to do with the outcome.

use std::time::{Duration, SystemTime};

use axum::body::Body;
use http::{HeaderMap, Request};
use http_body_util::BodyExt;
use switchyard_core::retry::{parse_retry_after, Failure};
use switchyard_core::routing::RuntimeKey;
use switchyard_core::sse::SseFramer;
use switchyard_core::WireApi;
use tokio::time::Instant as TokioInstant;

use crate::answer::{read_capped, upstream_error_for, ServedBody, StreamStart};
use switchyard_runtime::error::GatewayError;
use switchyard_runtime::upstream::UpstreamClient;

/// Largest upstream error body read (error bodies are small; anything larger is cut).
const MAX_ERROR_BODY: usize = 64 * 1024;

/// When an attempt's 2xx answer commits.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(super) enum Commit {
    /// Read in full (a JSON body, or a stream that was not asked for).
    Whole,
    /// At the first whole SSE event (or event-stream message).
    FirstEvent,
    /// At the first bytes, whatever the content type.
    FirstBytes,
}

impl Commit {
    pub(super) fn of(relays_bytes: bool, stream: bool) -> Commit {
        match (relays_bytes, stream) {
            (true, _) => Commit::FirstBytes,
            (false, true) => Commit::FirstEvent,
            (false, false) => Commit::Whole,
        }
    }
}

pub(super) struct AttemptError {
    pub(super) failure: Failure,
    pub(super) error: GatewayError,
}

/// The timeouts of one target's attempts.
#[derive(Clone, Copy)]
pub(super) struct Timeouts {
    pub(super) total: Duration,
    pub(super) first_byte: Duration,
    pub(super) idle: Duration,
}

/// One upstream call up to the committed start of its answer.
pub(super) async fn attempt(
    client: &UpstreamClient,
    provider: &str,
    provider_wire: WireApi,
    key: &RuntimeKey,
    req: Request<Body>,
    commit: Commit,
    t: Timeouts,
) -> Result<(http::response::Parts, ServedBody), AttemptError> {
    let Timeouts {
        total,
        first_byte,
        idle,
    } = t;
    let now = TokioInstant::now();
    let total_deadline = now + total;
    let first_byte_deadline = now + first_byte;
    let timed_out = |secs: Duration| timed_out(provider, secs);
    let unreachable = |reason: String| unreachable(provider, reason);

    let resp = match tokio::time::timeout_at(first_byte_deadline, client.send(provider, req)).await {
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
    let limits = client.limits();
    if let Some(e) = unexpected_status(provider, parts.status) {
        return Err(e);
    }

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

    let is_sse = content_type_is(&parts.headers, "text/event-stream");
    let is_eventstream = content_type_is(&parts.headers, "application/vnd.amazon.eventstream");
    if commit == Commit::FirstEvent && is_eventstream {
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
    if commit == Commit::FirstEvent && is_sse {
        let framer = SseFramer::with_max_event(limits.max_sse_event_bytes);
        return match tokio::time::timeout_at(first_byte_deadline, first_sse_events(body, framer)).await {
            Err(_) => Err(timed_out(first_byte)),
            Ok(Err(SseStartError::Overflow(reason))) => {
                Err(invalid(provider, reason, "upstream_event_too_large"))
            }
            Ok(Err(SseStartError::Broken(reason))) => Err(unreachable(reason)),
            Ok(Ok((first_events, framer, body))) => Ok((
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

    if commit == Commit::FirstBytes {
        let start = tokio::time::timeout_at(first_byte_deadline, bytes_start(body, idle)).await;
        let start = start.map_err(|_| timed_out(first_byte))?;
        return start.map(|b| (parts, b)).map_err(unreachable);
    }

    let bytes = json_answer(provider, body, limits.max_json_bytes, total_deadline, total).await?;
    Ok((parts, ServedBody::Json(bytes)))
}

fn timed_out(provider: &str, secs: Duration) -> AttemptError {
    AttemptError {
        failure: Failure::Timeout,
        error: GatewayError::UpstreamTimeout {
            provider: provider.to_owned(),
            timeout_secs: secs.as_secs().max(1),
        },
    }
}

fn unreachable(provider: &str, reason: String) -> AttemptError {
    AttemptError {
        failure: Failure::Connection,
        error: GatewayError::UpstreamUnreachable {
            provider: provider.to_owned(),
            reason,
        },
    }
}

/// An answer the gateway will not relay; counted as the upstream's 502.
fn invalid(provider: &str, reason: String, code: &'static str) -> AttemptError {
    AttemptError {
        failure: Failure::Status {
            status: 502,
            retry_after: None,
        },
        error: GatewayError::UpstreamInvalid {
            provider: provider.to_owned(),
            reason,
            code,
        },
    }
}

/// 1xx/3xx are never relayed: a 101 would hand the client's connection to the upstream, a 3xx would
/// send the client elsewhere (and the gateway does not follow redirects with a stored key).
fn unexpected_status(provider: &str, status: http::StatusCode) -> Option<AttemptError> {
    (status.is_informational() || status.is_redirection()).then(|| {
        let reason = format!(
            "answered {status} where a final answer was expected; the gateway does not relay 1xx/3xx answers"
        );
        invalid(provider, reason, "upstream_unexpected_status")
    })
}

/// A whole JSON answer, within the cap and the request's deadline.
async fn json_answer(
    provider: &str,
    body: hyper::body::Incoming,
    cap: usize,
    deadline: TokioInstant,
    total: Duration,
) -> Result<bytes::Bytes, AttemptError> {
    match tokio::time::timeout_at(deadline, read_answer(body, cap)).await {
        Err(_) => Err(timed_out(provider, total)),
        Ok(Err(AnswerReadError::TooLarge)) => Err(invalid(
            provider,
            format!(
                "sent an answer larger than the limit of {cap} bytes (--max-upstream-answer-mb); nothing of it was relayed"
            ),
            "upstream_answer_too_large",
        )),
        Ok(Err(AnswerReadError::Broken(e))) => Err(unreachable(
            provider,
            format!("connection failed while reading the answer: {e}"),
        )),
        Ok(Ok(bytes)) => Ok(bytes),
    }
}

enum AnswerReadError {
    TooLarge,
    Broken(hyper::Error),
}

/// Reads a whole answer of at most `cap` bytes (a larger one is refused as soon as it is known to be:
/// by its `Content-Length`, or when the bytes read pass the cap).
async fn read_answer(mut body: hyper::body::Incoming, cap: usize) -> Result<bytes::Bytes, AnswerReadError> {
    use hyper::body::Body as _;
    if body.size_hint().lower() > cap as u64 {
        return Err(AnswerReadError::TooLarge);
    }
    let mut out = bytes::BytesMut::new();
    let mut first: Option<bytes::Bytes> = None;
    while let Some(frame) = body.frame().await {
        let Ok(data) = frame.map_err(AnswerReadError::Broken)?.into_data() else {
            continue;
        };
        let len = first.as_ref().map_or(0, bytes::Bytes::len) + out.len() + data.len();
        if len > cap {
            return Err(AnswerReadError::TooLarge);
        }
        // A single-frame answer is kept without copying.
        match first.take() {
            None if out.is_empty() => first = Some(data),
            Some(f) => {
                out.extend_from_slice(&f);
                out.extend_from_slice(&data);
            }
            None => out.extend_from_slice(&data),
        }
    }
    Ok(first.unwrap_or_else(|| out.freeze()))
}

enum SseStartError {
    Broken(String),
    Overflow(String),
}

fn content_type_is(headers: &HeaderMap, prefix: &str) -> bool {
    headers
        .get(http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|ct| ct.starts_with(prefix))
}

/// Reads a stream up to its first whole SSE event(s).
async fn first_sse_events(
    mut body: hyper::body::Incoming,
    mut framer: SseFramer,
) -> Result<(Vec<bytes::Bytes>, SseFramer, hyper::body::Incoming), SseStartError> {
    let broken = |m: String| SseStartError::Broken(m);
    loop {
        match body.frame().await {
            None => return Err(broken("the stream ended before its first event".to_owned())),
            Some(Err(e)) => return Err(broken(format!("the stream failed before its first event: {e}"))),
            Some(Ok(frame)) => {
                if let Ok(data) = frame.into_data() {
                    let events = framer.push(data);
                    if framer.overflowed() {
                        return Err(SseStartError::Overflow(event_too_large(framer.max_event())));
                    }
                    if !events.is_empty() {
                        return Ok((events, framer, body));
                    }
                }
            }
        }
    }
}

/// Reads an answer up to its first bytes (none if it ends before any), for a request that relays
/// bytes: the start is a `ServedBody::Stream` whose `first_events` hold those bytes.
async fn bytes_start(mut body: hyper::body::Incoming, idle_timeout: Duration) -> Result<ServedBody, String> {
    let first_events = loop {
        match body.frame().await {
            None => break Vec::new(),
            Some(Err(e)) => return Err(format!("the answer failed before its first byte: {e}")),
            Some(Ok(frame)) => match frame.into_data() {
                Ok(data) if !data.is_empty() => break vec![data],
                _ => {}
            },
        }
    };
    Ok(ServedBody::Stream(StreamStart {
        first_events,
        framer: SseFramer::new(),
        body,
        idle_timeout,
    }))
}

/// The message of a stream cut because one event passed the cap.
pub(crate) fn event_too_large(cap: usize) -> String {
    format!("sent a stream event larger than the limit of {cap} bytes (--max-sse-event-mb)")
}

fn retry_after(headers: &HeaderMap) -> Option<Duration> {
    let get = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
    parse_retry_after(get("retry-after-ms"), get("retry-after")).or_else(|| {
        let date = httpdate::parse_http_date(get("retry-after")?).ok()?;
        Some(date.duration_since(SystemTime::now()).unwrap_or(Duration::ZERO))
    })
}
