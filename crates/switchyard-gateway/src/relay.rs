//! Relaying an upstream SSE stream to the client, one event per write.
//!
//! Events pass through unchanged (no re-encoding). What the relay adds: it never lets a stream end
//! silently. If the upstream connection fails, or closes before `data: [DONE]`, the client gets a final
//! `data: {"error": ...}` event, because the OpenAI SDKs do not notice a missing `[DONE]` and would take
//! a cut answer for a complete one. Dropping the relay (client gone) drops the upstream body, which
//! closes the upstream connection and so cancels the call.

use std::collections::VecDeque;
use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::Bytes;
use futures_util::Stream;
use http_body::Body as _;
use hyper::body::Incoming;
use switchyard_core::sse::{error_event, SseFramer};

pub struct SseRelay {
    upstream: Incoming,
    framer: SseFramer,
    ready: VecDeque<Bytes>,
    finished: bool,
    provider: String,
}

impl SseRelay {
    pub fn new(upstream: Incoming, provider: String) -> Self {
        SseRelay {
            upstream,
            framer: SseFramer::new(),
            ready: VecDeque::new(),
            finished: false,
            provider,
        }
    }

    fn end_with(&mut self, problem: Option<String>) {
        self.finished = true;
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
                Poll::Pending => return Poll::Pending,
                Poll::Ready(Some(Ok(frame))) => {
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
                        // A final event without its blank line is still a whole event for SSE parsers
                        // once terminated; forward it so nothing the upstream sent is lost.
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
