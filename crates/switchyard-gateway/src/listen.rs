//! Accepting connections with limits, and draining them on shutdown.
//!
//! `axum::serve` sets no timer on hyper, so hyper's header read timeout is off there and a client that
//! sends its request head one byte at a time (slowloris) holds a connection for ever. This loop
//! configures hyper directly: a header read timeout, a bounded read buffer (which caps the request
//! head; hyper answers a bare `431` beyond it) and HTTP/2's header list size, and a graceful shutdown
//! that stops accepting, lets in-flight requests and streams finish, and gives up at a deadline.
//! Heads below the hard caps but over `max_header_bytes` or `max_header_count` get a `431` in the
//! API's error shape from [`limit_headers`]; only heads past hyper's own caps (twice the size, four
//! times the count) get hyper's bare `431`.

use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use axum::body::Body;
use axum::extract::{ConnectInfo, Request, State};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::Router;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto::Builder;
use hyper_util::server::graceful::GracefulShutdown;
use hyper_util::service::TowerToHyperService;
use tokio::net::TcpListener;

use switchyard_admin as admin;
use switchyard_admin::auth::AdminAuth;
use switchyard_runtime::body::BodyTimeout;
use switchyard_runtime::error::GatewayError;

#[derive(Clone, Copy, Debug)]
pub struct ConnectionLimits {
    pub header_read_timeout: Duration,
    /// The request head size answered with a `431` in the API's shape.
    pub max_header_bytes: usize,
    /// The number of request headers answered with a `431` in the API's shape.
    pub max_header_count: usize,
    pub shutdown_grace: Duration,
}

impl ConnectionLimits {
    /// hyper's own cap on a request head: well above the answered limit, so the normal case gets the
    /// descriptive error and only absurd heads are cut off by hyper.
    fn hard_cap(&self) -> usize {
        (self.max_header_bytes * 2 + 16 * 1024).max(16 * 1024)
    }

    /// hyper's own cap on the number of request headers (its default is 100, answered with a bare
    /// `431`): above the answered limit for the same reason. hyper reserves room for this many
    /// headers while parsing each head, so it stays a small multiple.
    fn hard_header_count(&self) -> usize {
        (self.max_header_count * 4).max(256)
    }
}

/// What [`limit_headers`] answers with a `431` in the API's shape.
#[derive(Clone, Copy, Debug)]
pub struct HeadLimits {
    pub bytes: usize,
    pub count: usize,
}

/// The size of a request head as sent: request line, and every header as `name: value\r\n`.
pub fn head_size(req: &Request) -> usize {
    let uri = req.uri();
    let target = uri.scheme_str().map_or(0, |s| s.len() + 3)
        + uri.authority().map_or(0, |a| a.as_str().len())
        + uri.path_and_query().map_or(1, |p| p.as_str().len());
    let line = req.method().as_str().len() + target + 12;
    req.headers()
        .iter()
        .map(|(n, v)| n.as_str().len() + v.len() + 4)
        .sum::<usize>()
        + line
}

/// What [`guard_request`] applies to every request.
#[derive(Clone)]
pub struct RequestGuard {
    pub head: HeadLimits,
    /// The body deadline, from the request's arrival.
    pub body_limit: Duration,
    pub auth: Arc<AdminAuth>,
}

/// The one layer around every request (one layer, not three: each costs a boxed future and a
/// service clone per request): a head over the limits (bytes or header count) is answered `431` in
/// the API's error shape; any other request gets the body deadline, then passes the admin gate.
pub async fn guard_request(State(guard): State<RequestGuard>, req: Request, next: Next) -> Response {
    let RequestGuard {
        head,
        body_limit,
        auth,
    } = guard;
    if head_size(&req) > head.bytes {
        return GatewayError::HeadersTooLarge {
            limit_bytes: head.bytes,
        }
        .into_response();
    }
    if req.headers().len() > head.count {
        return GatewayError::TooManyHeaders { limit: head.count }.into_response();
    }
    let arrived = tokio::time::Instant::now();
    let req = req.map(|inner| {
        Body::new(DeadlineBody {
            inner,
            deadline: None,
            arrived,
            limit: body_limit,
        })
    });
    admin::auth::admin_gate(State(auth), req, next).await
}

/// A request body that fails once `limit` has passed since the request arrived: a client that sends
/// its body slowly (the body-phase slowloris) cannot hold a connection and a handler for ever.
struct DeadlineBody {
    inner: Body,
    /// Armed the first time the body is not ready (a body that comes with its head never needs a
    /// timer).
    deadline: Option<Pin<Box<tokio::time::Sleep>>>,
    arrived: tokio::time::Instant,
    limit: Duration,
}

impl http_body::Body for DeadlineBody {
    type Data = bytes::Bytes;
    type Error = axum::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<http_body::Frame<Self::Data>, Self::Error>>> {
        if let Poll::Ready(frame) = Pin::new(&mut self.inner).poll_frame(cx) {
            return Poll::Ready(frame);
        }
        let at = self.arrived + self.limit;
        let deadline = self
            .deadline
            .get_or_insert_with(|| Box::pin(tokio::time::sleep_until(at)));
        if deadline.as_mut().poll(cx).is_ready() {
            let limit = self.limit;
            return Poll::Ready(Some(Err(axum::Error::new(BodyTimeout(limit)))));
        }
        Poll::Pending
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> http_body::SizeHint {
        self.inner.size_hint()
    }
}

/// A connection's service that notes when its first request head has arrived, and tells every
/// request where the connection came from (`ConnectInfo`, for the admin login throttle).
#[derive(Clone)]
struct FirstRequest<S> {
    inner: S,
    seen: Arc<AtomicBool>,
    peer: SocketAddr,
}

impl<S, B> hyper::service::Service<http::Request<B>> for FirstRequest<S>
where
    S: hyper::service::Service<http::Request<B>>,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = S::Future;

    fn call(&self, mut req: http::Request<B>) -> Self::Future {
        self.seen.store(true, Ordering::Release);
        req.extensions_mut().insert(ConnectInfo(self.peer));
        self.inner.call(req)
    }
}

/// Pending connections the kernel queues for `accept` (capped by `net.core.somaxconn`). Tokio's
/// `TcpListener::bind` asks for 128: a burst of a few hundred clients connecting at once overflows
/// that, and each connection attempt dropped is retried by its client a whole second later.
pub const LISTEN_BACKLOG: u32 = 4096;

/// Binds `addr` (`host:port`, the host resolved) with a [`LISTEN_BACKLOG`]-deep accept queue: the
/// first resolved address that binds.
pub async fn bind(addr: &str) -> std::io::Result<TcpListener> {
    let mut last = None;
    for resolved in tokio::net::lookup_host(addr).await? {
        let socket = if resolved.is_ipv4() {
            tokio::net::TcpSocket::new_v4()
        } else {
            tokio::net::TcpSocket::new_v6()
        };
        let bound = socket.and_then(|s| {
            s.set_reuseaddr(true)?;
            s.bind(resolved)?;
            s.listen(LISTEN_BACKLOG)
        });
        match bound {
            Ok(listener) => return Ok(listener),
            Err(e) => last = Some(e),
        }
    }
    Err(last.unwrap_or_else(|| {
        std::io::Error::new(
            std::io::ErrorKind::AddrNotAvailable,
            "the address resolved to nothing",
        )
    }))
}

/// Serves `router` on `listener` until `shutdown` resolves, then drains for up to the grace period.
pub async fn serve(
    listener: TcpListener,
    router: Router,
    limits: ConnectionLimits,
    shutdown: impl Future<Output = ()> + Send + 'static,
) {
    let mut builder = Builder::new(TokioExecutor::new());
    builder
        .http1()
        .timer(TokioTimer::new())
        .header_read_timeout(limits.header_read_timeout)
        .max_headers(limits.hard_header_count())
        .max_buf_size(limits.hard_cap());
    builder
        .http2()
        .timer(TokioTimer::new())
        .max_header_list_size(u32::try_from(limits.hard_cap()).unwrap_or(u32::MAX));
    let graceful = GracefulShutdown::new();
    // Connection tasks are kept so that the ones still running at the deadline can be ended.
    let mut connections = tokio::task::JoinSet::new();
    let mut shutdown = std::pin::pin!(shutdown);
    loop {
        let (tcp, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(conn) => conn,
                Err(e) => {
                    // Out of file descriptors and the like: back off instead of spinning.
                    tracing::warn!(error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            _ = &mut shutdown => break,
        };
        let _ = tcp.set_nodelay(true);
        let seen = Arc::new(AtomicBool::new(false));
        let service = FirstRequest {
            inner: TowerToHyperService::new(router.clone()),
            seen: seen.clone(),
            peer,
        };
        let conn = builder
            .serve_connection_with_upgrades(TokioIo::new(tcp), service)
            .into_owned();
        let conn = graceful.watch(conn);
        while connections.try_join_next().is_some() {}
        let first_head = limits.header_read_timeout;
        connections.spawn(async move {
            let mut conn = std::pin::pin!(conn);
            // Protocol detection and the first request head (HTTP/1 or h2c) have a deadline: a
            // client that stays silent, or sends only the h2 preface, is closed when it passes.
            let ended = tokio::select! {
                r = conn.as_mut() => Some(r),
                () = tokio::time::sleep(first_head) => None,
            };
            let result = match ended {
                Some(r) => r,
                None if !seen.load(Ordering::Acquire) => {
                    tracing::debug!(
                        secs = first_head.as_secs(),
                        "no request head within the deadline; connection closed"
                    );
                    return;
                }
                None => conn.await,
            };
            if let Err(e) = result {
                tracing::trace!(error = %e, "connection ended with an error");
            }
        });
    }
    drop(listener);
    tracing::info!("shutdown signal received; finishing in-flight requests");
    let grace = limits.shutdown_grace;
    tokio::select! {
        _ = graceful.shutdown() => {}
        _ = tokio::time::sleep(grace) => {
            tracing::warn!(
                grace_secs = grace.as_secs(),
                connections = connections.len(),
                "shutdown grace period over; closing remaining connections"
            );
        }
    }
    connections.abort_all();
    while connections.join_next().await.is_some() {}
}
