//! The response body type used by every route of the mock.
//!
//! A hand-written enum instead of a boxed body: no per-response allocation for the body itself, exact
//! size hints for JSON answers (so hyper sends `content-length`) and one body frame per SSE event.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{ready, Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use http_body::{Body, Frame, SizeHint};
use tokio::time::{Instant, Sleep};

use crate::state::Shared;

pub(crate) enum MockBody {
    /// No body at all (204).
    Empty,
    /// A complete body sent as one frame.
    Full(Option<Bytes>),
    /// A truncated body: the bytes are sent, then the body fails so hyper aborts the connection.
    /// Used together with a `content-length` header that promises more bytes than are sent.
    /// `paused` makes the body return `Pending` once after the data, so hyper flushes the head and
    /// the data before it sees the error (otherwise it would drop its unflushed write buffer).
    Truncated { data: Option<Bytes>, paused: bool },
    /// Server-sent events, one frame per event, optionally paced.
    Events(Box<Events>),
}

pub(crate) struct Events {
    frames: Vec<Bytes>,
    pos: usize,
    pace: Option<Pace>,
    guard: CancelGuard,
}

/// Frames whose index lies in `range` are each preceded by a pause of `interval`.
struct Pace {
    interval: Duration,
    range: std::ops::Range<usize>,
    sleep: Pin<Box<Sleep>>,
    waited: bool,
}

/// Counts a cancelled stream when dropped while still armed (i.e. before the last frame went out).
struct CancelGuard(Option<Arc<Shared>>);

impl CancelGuard {
    fn disarm(&mut self) {
        self.0 = None;
    }
}

impl Drop for CancelGuard {
    fn drop(&mut self) {
        if let Some(shared) = self.0.take() {
            shared
                .cancelled
                .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        }
    }
}

impl MockBody {
    pub(crate) fn full(bytes: impl Into<Bytes>) -> Self {
        MockBody::Full(Some(bytes.into()))
    }

    pub(crate) fn events(frames: Vec<Bytes>, shared: &Arc<Shared>) -> Self {
        MockBody::Events(Box::new(Events {
            frames,
            pos: 0,
            pace: None,
            guard: CancelGuard(Some(shared.clone())),
        }))
    }

    /// Like [`MockBody::events`], but every frame with an index in `range` waits `interval` first.
    pub(crate) fn paced_events(
        frames: Vec<Bytes>,
        shared: &Arc<Shared>,
        interval: Duration,
        range: std::ops::Range<usize>,
    ) -> Self {
        MockBody::Events(Box::new(Events {
            frames,
            pos: 0,
            pace: Some(Pace {
                interval,
                range,
                sleep: Box::pin(tokio::time::sleep(interval)),
                waited: false,
            }),
            guard: CancelGuard(Some(shared.clone())),
        }))
    }
}

impl Body for MockBody {
    type Data = Bytes;
    type Error = std::io::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, std::io::Error>>> {
        match self.get_mut() {
            MockBody::Empty => Poll::Ready(None),
            MockBody::Full(bytes) => Poll::Ready(bytes.take().map(|b| Ok(Frame::data(b)))),
            MockBody::Truncated { data, paused } => {
                if let Some(b) = data.take() {
                    return Poll::Ready(Some(Ok(Frame::data(b))));
                }
                if !*paused {
                    *paused = true;
                    cx.waker().wake_by_ref();
                    return Poll::Pending;
                }
                Poll::Ready(Some(Err(std::io::Error::new(
                    std::io::ErrorKind::ConnectionAborted,
                    "switchyard-mock: deliberately truncated body",
                ))))
            }
            MockBody::Events(ev) => {
                let Some(frame) = ev.frames.get(ev.pos) else {
                    ev.guard.disarm();
                    return Poll::Ready(None);
                };
                if let Some(pace) = &mut ev.pace {
                    if pace.range.contains(&ev.pos) && !pace.waited {
                        ready!(pace.sleep.as_mut().poll(cx));
                        pace.waited = true;
                    }
                }
                let frame = frame.clone();
                ev.pos += 1;
                if let Some(pace) = &mut ev.pace {
                    pace.waited = false;
                    let deadline = Instant::now() + pace.interval;
                    pace.sleep.as_mut().reset(deadline);
                }
                if ev.pos == ev.frames.len() {
                    ev.guard.disarm();
                }
                Poll::Ready(Some(Ok(Frame::data(frame))))
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        match self {
            MockBody::Empty => true,
            MockBody::Full(b) => b.is_none(),
            MockBody::Truncated { .. } => false,
            MockBody::Events(ev) => ev.pos >= ev.frames.len(),
        }
    }

    fn size_hint(&self) -> SizeHint {
        match self {
            MockBody::Empty => SizeHint::with_exact(0),
            MockBody::Full(b) => SizeHint::with_exact(b.as_ref().map_or(0, |b| b.len() as u64)),
            MockBody::Truncated { .. } | MockBody::Events(_) => SizeHint::default(),
        }
    }
}
