//! Relaying an upstream SSE stream to the client, one event per write.
//!
//! Same protocol on both sides: events pass through unchanged (no re-encoding). Different protocols:
//! each event goes through a `StreamTranslator`. Either way the relay never lets a stream end silently:
//! if the upstream connection fails, stalls for longer than the provider's
//! `stream_idle_timeout_in_seconds`, or closes before its end marker (`data: [DONE]`, Anthropic's
//! `message_stop`), the client gets a final error event in its own protocol, because the SDKs do not
//! notice a missing end marker and would take a cut answer for a complete one. Dropping the relay
//! (client gone) drops the upstream body, which closes the upstream connection and so cancels the call,
//! and frees the provider's concurrency slot.

use std::collections::VecDeque;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use futures_util::Stream;
use http_body::Body as _;
use hyper::body::Incoming;
use switchyard_core::sse::{error_event, SseFramer};
use switchyard_translate::usage::{event_text_bytes, UsageFormat, UsageTap};
use switchyard_translate::{Protocol, StreamTranslator};
use tokio::sync::OwnedSemaphorePermit;
use tokio::time::{Instant, Sleep};

use super::finish::ObsHandle;
use crate::answer::StreamStart;

/// How many bytes of events without usage a stream keeps for the estimate before it counts their text
/// as they pass: 512 concurrent streams keep at most 4 MB.
const UNMETERED_MAX_BYTES: usize = 8 * 1024;

/// What a stream relayed before usage arrived: the basis of the output estimate if usage never comes.
/// Kept by the relay itself (no lock per event) and handed to the observation once, when the stream
/// ends or is dropped ([`StreamObserver::settle`]).
#[derive(Default)]
struct Unmetered {
    /// Whole events, kept until [`UNMETERED_MAX_BYTES`]; scanned only if usage never comes.
    kept: Vec<u8>,
    /// Text bytes of the events counted as they passed, once `kept` would have grown past the cap.
    counted: usize,
    /// Past the cap: every further event is counted as it passes.
    counting: bool,
}

impl Unmetered {
    fn add(&mut self, frame: &[u8]) {
        if !self.counting && self.kept.len() + frame.len() <= UNMETERED_MAX_BYTES {
            self.kept.extend_from_slice(frame);
            return;
        }
        self.counting = true;
        // Whole events, so each `data:` payload is scanned as the JSON text it is.
        self.counted += event_text_bytes(&std::mem::take(&mut self.kept)) + event_text_bytes(frame);
    }

    /// The text bytes of everything relayed without usage; empties the record.
    fn take_text_bytes(&mut self) -> usize {
        let kept = std::mem::take(&mut self.kept);
        std::mem::take(&mut self.counted) + event_text_bytes(&kept)
    }
}

/// What the relay does with upstream events.
pub enum RelayMode {
    /// Same protocol on both sides: events pass unchanged; `client` decides how a failure is reported.
    /// `strip_usage_chunk`: the gateway asked an OpenAI upstream for usage the client did not ask for,
    /// so the usage-only chunk is metered and not sent.
    PassThrough {
        client: Protocol,
        strip_usage_chunk: bool,
    },
    /// Different protocols: every event goes through the translator.
    Translate(Box<StreamTranslator>),
}

/// Watches the frames that go to the client: usage (for logs, metrics and cost) and, when content
/// logging is on, the text up to a cap. Writes usage to the request's observation as soon as it
/// arrives, so the record is right even when the client leaves mid-stream; what was relayed without
/// usage is handed over once, when the stream ends or the observer is dropped.
pub struct StreamObserver {
    handle: ObsHandle,
    tap: UsageTap,
    /// Content logging: the cap and the bytes logged so far.
    content: Option<(usize, usize)>,
    /// Events relayed while no usage has been seen.
    unmetered: Unmetered,
    /// Still looking for the model the upstream names (pass-through streams only: a translated
    /// stream's frames are the gateway's own).
    watch_model: bool,
}

impl StreamObserver {
    pub fn new(handle: ObsHandle, format: UsageFormat, content_cap: Option<usize>) -> Self {
        StreamObserver {
            handle,
            tap: UsageTap::new(format),
            content: content_cap.map(|cap| (cap, 0)),
            unmetered: Unmetered::default(),
            watch_model: false,
        }
    }

    /// Also record the model the upstream's events name.
    pub fn watching_model(mut self) -> Self {
        self.watch_model = true;
        self
    }

    /// Records what `frame` tells; whether it names a `"usage"` object, when the tap knows.
    fn observe(&mut self, frame: &[u8]) -> Option<bool> {
        if self.watch_model {
            let payload = switchyard_core::sse::data_payload(frame);
            if let Some(model) = payload.and_then(crate::answer::answer_model) {
                self.watch_model = false;
                self.handle.update(|d| d.served_model = Some(model));
            }
        }
        let before = self.tap.usage();
        let names_usage = self.tap.observe(frame);
        let usage = self.tap.usage();
        if usage != before {
            self.unmetered = Unmetered::default();
            self.handle.update(|d| d.usage = usage);
        }
        if usage.is_none() {
            // Until the upstream reports usage, the text relayed is the estimate's basis if it never
            // does.
            self.unmetered.add(frame);
        }
        if let Some((cap, logged)) = &mut self.content {
            if *logged < *cap {
                let part = &frame[..frame.len().min(*cap - *logged)];
                *logged += part.len();
                let cap = *cap;
                // Appended as it goes (the record is right if the client leaves mid-stream), turned
                // into text once, when the request finishes.
                self.handle.update(|d| {
                    d.streamed_content
                        .get_or_insert_with(|| (cap, Vec::new()))
                        .1
                        .extend_from_slice(part)
                });
            }
        }
        names_usage
    }

    /// Hands what was relayed without usage to the observation (once; later calls add nothing).
    fn settle(&mut self) {
        if self.tap.usage().is_some() {
            return;
        }
        let text = self.unmetered.take_text_bytes();
        if text > 0 {
            self.handle.update(|d| d.answer_text_bytes += text);
        }
    }

    fn failed(&self, message: &str) {
        self.handle.update(|d| d.stream_error = Some(message.to_owned()));
    }
}

impl Drop for StreamObserver {
    /// A client that leaves mid-stream drops the relay before the request finishes
    /// (`finish::ObservedBody` drops its body first), so what it relayed is still counted.
    fn drop(&mut self) {
        self.settle();
    }
}

pub struct SseRelay {
    observer: Option<StreamObserver>,
    upstream: Incoming,
    framer: SseFramer,
    /// Bytes handed to a translator since it last produced a frame.
    unframed: usize,
    mode: RelayMode,
    ready: VecDeque<Bytes>,
    /// The response guard (`guard_stream`), and the frames it let through.
    guard: Option<super::guard_stream::StreamGuard>,
    guarded: VecDeque<Bytes>,
    finished: bool,
    provider: String,
    idle_timeout: Duration,
    /// Fires `idle_timeout` after the last data at the earliest. Data does not move it (a timer
    /// reset per event costs more than the event); when it fires early it is moved then.
    idle: Pin<Box<Sleep>>,
    /// The waker `idle` was last polled with.
    idle_waker: Option<std::task::Waker>,
    last_data: Instant,
    _permit: Option<OwnedSemaphorePermit>,
}

impl SseRelay {
    pub fn new(
        start: StreamStart,
        provider: String,
        mut mode: RelayMode,
        permit: Option<OwnedSemaphorePermit>,
    ) -> Self {
        let mut framer = start.framer;
        let ready: VecDeque<Bytes> = match &mut mode {
            RelayMode::PassThrough { .. } => start.first_events.into(),
            RelayMode::Translate(t) => {
                // The translator frames for itself: hand it everything read so far.
                let mut out = VecDeque::new();
                for ev in start.first_events {
                    out.extend(t.push_bytes(ev));
                }
                if let Some(partial) = framer.take_partial() {
                    out.extend(t.push_bytes(partial));
                }
                out
            }
        };
        SseRelay {
            observer: None,
            upstream: start.body,
            framer,
            unframed: 0,
            mode,
            ready,
            guard: None,
            guarded: VecDeque::new(),
            finished: false,
            provider,
            idle_timeout: start.idle_timeout,
            idle: Box::pin(tokio::time::sleep(start.idle_timeout)),
            idle_waker: None,
            last_data: Instant::now(),
            _permit: permit,
        }
    }

    /// Reports usage, content and failures of this stream to the request's observation.
    pub fn observed(mut self, observer: StreamObserver) -> Self {
        self.observer = Some(observer);
        self
    }

    /// Runs every client frame through the response guardrails.
    pub fn guarded(mut self, guard: Option<super::guard_stream::StreamGuard>) -> Self {
        self.guard = guard;
        self
    }

    /// The next frame for the client: through the guard when there is one (a block ends the stream
    /// with its error event).
    fn next_ready(&mut self) -> Option<Bytes> {
        let Some(guard) = &mut self.guard else {
            return self.ready.pop_front();
        };
        while self.guarded.is_empty() {
            let ev = self.ready.pop_front()?;
            match guard.filter(ev) {
                Ok(frames) => self.guarded.extend(frames),
                Err(blocked) => {
                    self.ready.clear();
                    self.guarded.push_back(blocked);
                    self.finished = true;
                    self._permit = None;
                }
            }
        }
        self.guarded.pop_front()
    }

    /// The next event for the client, observed; OpenAI's usage-only chunk is left out when the
    /// client did not ask for it.
    fn next_client_event(&mut self) -> Option<Bytes> {
        let strip = matches!(
            self.mode,
            RelayMode::PassThrough {
                strip_usage_chunk: true,
                ..
            }
        );
        loop {
            let ev = self.next_ready()?;
            // The observer's usage tap has searched the event for a usage object already.
            let named = self.observer.as_mut().and_then(|o| o.observe(&ev));
            let names_usage =
                || named.unwrap_or_else(|| switchyard_translate::usage::names_object(&ev, b"\"usage\""));
            if !(strip && names_usage() && is_usage_chunk(&ev)) {
                return Some(ev);
            }
        }
    }

    /// Frames (or translates) a chunk; `Err` with the message when one event passed the cap.
    fn push_data(&mut self, data: Bytes) -> Result<(), String> {
        let len = data.len();
        let overflowed = match &mut self.mode {
            RelayMode::PassThrough { .. } => {
                self.ready.extend(self.framer.push(data));
                self.framer.overflowed()
            }
            RelayMode::Translate(t) => {
                // The translator frames for itself; bytes that produce nothing are an event in
                // progress, held to the same cap.
                let frames = t.push_bytes(data);
                if frames.is_empty() {
                    self.unframed = self.unframed.saturating_add(len);
                } else {
                    self.unframed = 0;
                }
                self.ready.extend(frames);
                self.unframed > self.framer.max_event()
            }
        };
        if overflowed {
            let reason = super::attempt::event_too_large(self.framer.max_event());
            return Err(format!("provider '{}' {reason}", self.provider));
        }
        Ok(())
    }

    /// Whether the upstream has sent nothing for `idle_timeout`; otherwise the timer is armed for
    /// the moment it would have.
    fn idle_expired(&mut self, cx: &mut Context<'_>) -> bool {
        // The timer holds this task's waker and has not fired: polling it again would change nothing.
        if !self.idle.is_elapsed() && self.idle_waker.as_ref().is_some_and(|w| w.will_wake(cx.waker())) {
            return false;
        }
        while self.idle.as_mut().poll(cx).is_ready() {
            let deadline = self.last_data + self.idle_timeout;
            if Instant::now() >= deadline {
                return true;
            }
            self.idle.as_mut().reset(deadline);
        }
        self.idle_waker = Some(cx.waker().clone());
        false
    }

    /// Ends the stream: cleanly (`problem` = None, upstream closed) or with a failure.
    fn end_with(&mut self, problem: Option<String>) {
        self.finished = true;
        self._permit = None;
        if let (Some(o), Some(p)) = (&self.observer, &problem) {
            o.failed(p);
        }
        let client = match &mut self.mode {
            RelayMode::Translate(t) => {
                let frames = match &problem {
                    Some(message) => {
                        tracing::warn!(provider = %self.provider, %message, "stream failed");
                        t.fail(message)
                    }
                    None => t.finish(),
                };
                self.ready.extend(frames);
                return;
            }
            RelayMode::PassThrough { client, .. } => *client,
        };
        if problem.is_none() {
            if let Some(partial) = self.framer.take_partial() {
                // A last event without its blank line is still whole once terminated.
                let mut ev = partial.to_vec();
                ev.extend_from_slice(b"\n\n");
                self.ready.extend(self.framer.push(Bytes::from(ev)));
            }
        } else {
            // A half event is useless to a client; drop it and report the failure instead.
            self.framer.take_partial();
        }
        // Gemini streams have no end marker: their end of stream is a clean end.
        let complete = self.framer.saw_done() || client == Protocol::Gemini;
        if self.framer.saw_error() || (complete && problem.is_none()) {
            return;
        }
        if let (Some(o), None) = (&self.observer, &problem) {
            o.failed("the upstream closed the stream before it finished");
        }
        let message = problem.unwrap_or_else(|| {
            format!(
                "provider '{}' closed the stream before it finished",
                self.provider
            )
        });
        tracing::warn!(provider = %self.provider, %message, "stream cut");
        self.ready.push_back(error_frame(client, &message));
    }
}

impl Stream for SseRelay {
    type Item = Result<Bytes, std::convert::Infallible>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let this = &mut *self;
        loop {
            if let Some(first) = this.next_client_event() {
                // Events that are here already leave together: one write for what arrived together
                // (no waiting for more: a lone event goes out at once).
                let Some(second) = this.next_client_event() else {
                    return Poll::Ready(Some(Ok(first)));
                };
                let mut out = BytesMut::with_capacity(2 * (first.len() + second.len()));
                out.extend_from_slice(&first);
                out.extend_from_slice(&second);
                while let Some(ev) = this.next_client_event() {
                    out.extend_from_slice(&ev);
                }
                return Poll::Ready(Some(Ok(out.freeze())));
            }
            if this.finished {
                if let Some(o) = &mut this.observer {
                    o.settle();
                }
                return Poll::Ready(None);
            }
            match Pin::new(&mut this.upstream).poll_frame(cx) {
                Poll::Pending => {
                    if this.idle_expired(cx) {
                        let msg = format!(
                            "provider '{}' sent nothing for {} s (stream_idle_timeout_in_seconds)",
                            this.provider,
                            this.idle_timeout.as_secs()
                        );
                        this.end_with(Some(msg));
                        continue;
                    }
                    return Poll::Pending;
                }
                Poll::Ready(Some(Ok(frame))) => {
                    this.last_data = Instant::now();
                    if let Ok(data) = frame.into_data() {
                        if let Err(msg) = this.push_data(data) {
                            this.end_with(Some(msg));
                        }
                    }
                }
                Poll::Ready(Some(Err(e))) => {
                    let msg = format!(
                        "connection to provider '{}' failed mid-stream: {e}",
                        this.provider
                    );
                    this.end_with(Some(msg));
                }
                Poll::Ready(None) => this.end_with(None),
            }
        }
    }
}

/// An OpenAI usage-only chunk: `data: {..., "choices": [], "usage": {...}}`.
/// The caller has seen that it names a `"usage"` object.
fn is_usage_chunk(event: &[u8]) -> bool {
    let Some(start) = memchr::memmem::find(event, b"data:") else {
        return false;
    };
    let payload = event[start + 5..].trim_ascii();
    #[derive(serde::Deserialize)]
    struct Chunk {
        choices: Option<Vec<serde::de::IgnoredAny>>,
        usage: Option<serde::de::IgnoredAny>,
    }
    serde_json::from_slice::<Chunk>(payload)
        .is_ok_and(|c| c.usage.is_some() && c.choices.is_some_and(|c| c.is_empty()))
}

/// An in-stream error in the client's protocol, for pass-through streams.
fn error_frame(client: Protocol, message: &str) -> Bytes {
    match client {
        // No client speaks Bedrock; pass-through never happens for it.
        Protocol::OpenAi | Protocol::Bedrock => error_event(message, "upstream_stream_error"),
        Protocol::Anthropic => {
            let body =
                serde_json::json!({"type": "error", "error": {"type": "api_error", "message": message}});
            Bytes::from(format!("event: error\ndata: {body}\n\n"))
        }
        Protocol::Gemini => {
            let body =
                serde_json::json!({"error": {"code": 502, "message": message, "status": "UNAVAILABLE"}});
            Bytes::from(format!("data: {body}\n\n"))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::is_usage_chunk;

    #[test]
    fn only_the_usage_only_chunk_is_recognised() {
        let usage = b"data: {\"id\":\"c\",\"choices\":[],\"usage\":{\"prompt_tokens\":7,\"completion_tokens\":5}}\n\n";
        assert!(is_usage_chunk(usage));
        let delta = b"data: {\"id\":\"c\",\"choices\":[{\"index\":0,\"delta\":{\"content\":\"usage\"}}],\"usage\":null}\n\n";
        assert!(!is_usage_chunk(delta));
        assert!(!is_usage_chunk(b"data: [DONE]\n\n"));
        assert!(!is_usage_chunk(b"data: {\"choices\":[],\"usage\":null}\n\n"));
    }
}
