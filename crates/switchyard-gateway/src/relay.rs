//! Relaying an upstream SSE stream to the client, one event per write.
//!
//! Events pass through unchanged (no re-encoding). What the relay adds: it never lets a stream end
//! silently. If the upstream connection fails, stalls for longer than the provider's
//! `stream_idle_timeout_in_seconds`, or closes before `data: [DONE]`, the client gets a final
//! `data: {"error": ...}` event, because the OpenAI SDKs do not notice a missing `[DONE]` and would take
//! a cut answer for a complete one. Dropping the relay (client gone) drops the upstream body, which
//! closes the upstream connection and so cancels the call, and frees the provider's concurrency slot.

use std::collections::VecDeque;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use futures_util::Stream;
use http_body::Body as _;
use hyper::body::Incoming;
use switchyard_core::sse::{error_event, SseFramer};
use tokio::sync::OwnedSemaphorePermit;
use tokio::time::{Instant, Sleep};

use crate::dispatch::StreamStart;

pub struct SseRelay {
    upstream: Incoming,
    framer: SseFramer,
    ready: VecDeque<Bytes>,
    finished: bool,
    provider: String,
    idle_timeout: Duration,
    idle: Pin<Box<Sleep>>,
    _permit: Option<OwnedSemaphorePermit>,
}

impl SseRelay {
    pub fn new(start: StreamStart, provider: String, permit: Option<OwnedSemaphorePermit>) -> Self {
        SseRelay {
            upstream: start.body,
            framer: start.framer,
            ready: start.first_events.into(),
            finished: false,
            provider,
            idle_timeout: start.idle_timeout,
            idle: Box::pin(tokio::time::sleep(start.idle_timeout)),
            _permit: permit,
        }
    }

    fn end_with(&mut self, problem: Option<String>) {
        self.finished = true;
        self._permit = None;
        if self.framer.saw_done() || self.framer.saw_error() {
            return;
        }
        let message = problem.unwrap_or_else(|| {
            format!(
                "provider '{}' closed the stream before it finished (no [DONE])",
                self.provider
            )
        });
        tracing::warn!(provider = %self.provider, %message, "stream cut");
        self.ready
            .push_back(error_event(&message, "upstream_stream_error"));
    }
}

impl Stream for SseRelay {
    type Item = Result<Bytes, std::convert::Infallible>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let this = &mut *self;
        loop {
            if let Some(ev) = this.ready.pop_front() {
                return Poll::Ready(Some(Ok(ev)));
            }
            if this.finished {
                return Poll::Ready(None);
            }
            match Pin::new(&mut this.upstream).poll_frame(cx) {
                Poll::Pending => {
                    if this.idle.as_mut().poll(cx).is_ready() {
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
                    this.idle.as_mut().reset(Instant::now() + this.idle_timeout);
                    if let Ok(data) = frame.into_data() {
                        this.ready.extend(this.framer.push(data));
                    }
                }
                Poll::Ready(Some(Err(e))) => {
                    // A half event is useless to a client; drop it and report the failure instead.
                    this.framer.take_partial();
                    let msg = format!(
                        "connection to provider '{}' failed mid-stream: {e}",
                        this.provider
                    );
                    this.end_with(Some(msg));
                }
                Poll::Ready(None) => {
                    if let Some(partial) = this.framer.take_partial() {
                        // A last event without its blank line is still whole once terminated.
                        let mut ev = partial.to_vec();
                        ev.extend_from_slice(b"\n\n");
                        this.ready.extend(this.framer.push(Bytes::from(ev)));
                    }
                    this.end_with(None);
                }
            }
        }
    }
}
