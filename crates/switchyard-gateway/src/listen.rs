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
use axum::extract::{ConnectInfo, Request};
use axum::response::{IntoResponse, Response};
use axum::Router;
use futures_util::future::Either;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulShutdown;
use hyper_util::service::TowerToHyperService;
use tokio::net::{TcpListener, TcpStream};

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

/// What [`GuardLayer`] applies to every request.
#[derive(Clone)]
pub struct RequestGuard {
    pub head: HeadLimits,
    /// The body deadline, from the request's arrival.
    pub body_limit: Duration,
    pub auth: Arc<AdminAuth>,
}

impl RequestGuard {
    /// What the one layer does to every request: a head over the limits (bytes or header count) is
    /// answered `431` in the API's error shape; any other request gets the body deadline, then passes
    /// the admin gate. `Err` is the answer to send instead of calling the route.
    fn admit(&self, req: Request) -> Result<Request, Box<Response>> {
        if head_size(&req) > self.head.bytes {
            return Err(Box::new(
                GatewayError::HeadersTooLarge {
                    limit_bytes: self.head.bytes,
                }
                .into_response(),
            ));
        }
        if req.headers().len() > self.head.count {
            return Err(Box::new(
                GatewayError::TooManyHeaders {
                    limit: self.head.count,
                }
                .into_response(),
            ));
        }
        let arrived = tokio::time::Instant::now();
        let limit = self.body_limit;
        let mut req = req.map(|inner| {
            Body::new(DeadlineBody {
                inner,
                deadline: None,
                arrived,
                limit,
            })
        });
        admin::auth::admin_check(&self.auth, &mut req)?;
        Ok(req)
    }
}

/// The one layer around every route (one layer, not three, and a hand-written one: axum's
/// `from_fn` clones the route's service and boxes a future for every request). Its decisions need
/// no I/O, so a request it lets through goes straight to the route's own future.
#[derive(Clone)]
pub struct GuardLayer(pub RequestGuard);

impl<S> tower_layer::Layer<S> for GuardLayer {
    type Service = Guarded<S>;

    fn layer(&self, inner: S) -> Guarded<S> {
        Guarded {
            inner,
            guard: self.0.clone(),
        }
    }
}

/// A route behind [`GuardLayer`].
#[derive(Clone)]
pub struct Guarded<S> {
    inner: S,
    guard: RequestGuard,
}

impl<S> tower_service::Service<Request> for Guarded<S>
where
    S: tower_service::Service<Request, Response = Response>,
{
    type Response = Response;
    type Error = S::Error;
    type Future = Either<std::future::Ready<Result<Response, S::Error>>, S::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), S::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, req: Request) -> Self::Future {
        match self.guard.admit(req) {
            Ok(req) => Either::Right(self.inner.call(req)),
            Err(answer) => Either::Left(std::future::ready(Ok(*answer))),
        }
    }
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

/// hyper's connection builders, configured once: HTTP/1.1, and HTTP/2 for clients that open with its
/// preface (h2c, prior knowledge).
struct Protocols {
    h1: hyper::server::conn::http1::Builder,
    h2: hyper::server::conn::http2::Builder<TokioExecutor>,
}

impl Protocols {
    fn new(limits: &ConnectionLimits) -> Protocols {
        let mut h1 = hyper::server::conn::http1::Builder::new();
        h1.timer(TokioTimer::new())
            .header_read_timeout(limits.header_read_timeout)
            .max_headers(limits.hard_header_count())
            .max_buf_size(limits.hard_cap());
        let mut h2 = hyper::server::conn::http2::Builder::new(TokioExecutor::new());
        h2.timer(TokioTimer::new())
            .max_header_list_size(u32::try_from(limits.hard_cap()).unwrap_or(u32::MAX));
        Protocols { h1, h2 }
    }
}

/// Serves `router` on `listener` until `shutdown` resolves, then drains for up to the grace period.
pub async fn serve(
    listener: TcpListener,
    router: Router,
    limits: ConnectionLimits,
    shutdown: impl Future<Output = ()> + Send + 'static,
) {
    let protocols = Arc::new(Protocols::new(&limits));
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
        while connections.try_join_next().is_some() {}
        // Protocol detection and the first request head (HTTP/1 or h2c) have a deadline: a client
        // that stays silent, or sends only the h2 preface, is closed when it passes.
        let deadline = tokio::time::Instant::now() + limits.header_read_timeout;
        let (protocols, watcher) = (protocols.clone(), graceful.watcher());
        connections.spawn(async move {
            let Ok(Ok(io)) = tokio::time::timeout_at(deadline, Sniffed::read(tcp)).await else {
                tracing::debug!("no request within the head deadline; connection closed");
                return;
            };
            if io.is_h2() {
                let conn = protocols.h2.serve_connection(TokioIo::new(io), service);
                // HTTP/2's connection state is large: boxed, so that HTTP/1 connections (nearly all)
                // do not carry its size in their task.
                run_connection(Box::pin(watcher.watch(conn)), &seen, deadline).await;
            } else {
                let conn = protocols.h1.serve_connection(TokioIo::new(io), service);
                run_connection(watcher.watch(conn), &seen, deadline).await;
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

/// Runs a connection; at `deadline` one whose first request head has not arrived is closed.
async fn run_connection<C, E>(conn: C, seen: &AtomicBool, deadline: tokio::time::Instant)
where
    C: Future<Output = Result<(), E>>,
    E: std::fmt::Display,
{
    let mut conn = std::pin::pin!(conn);
    let result = tokio::select! {
        r = conn.as_mut() => r,
        () = tokio::time::sleep_until(deadline) => {
            if !seen.load(Ordering::Acquire) {
                tracing::debug!("no request head within the deadline; connection closed");
                return;
            }
            conn.await
        }
    };
    if let Err(e) = result {
        tracing::trace!(error = %e, "connection ended with an error");
    }
}

/// HTTP/2's connection preface: a client that opens with it speaks h2c (prior knowledge).
const H2_PREFACE: &[u8; 24] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";

/// A connection whose first bytes were read to tell its protocol; they are read again first.
struct Sniffed {
    head: [u8; H2_PREFACE.len()],
    /// `head[at..len]` has not been read again yet.
    at: usize,
    len: usize,
    tcp: TcpStream,
}

impl Sniffed {
    /// Reads until the bytes received depart from the HTTP/2 preface or complete it. Fails when the
    /// client closes first.
    async fn read(mut tcp: TcpStream) -> std::io::Result<Sniffed> {
        use tokio::io::AsyncReadExt;
        let mut head = [0u8; H2_PREFACE.len()];
        let mut len = 0;
        while len < head.len() && head[..len] == H2_PREFACE[..len] {
            match tcp.read(&mut head[len..]).await? {
                0 => return Err(std::io::ErrorKind::UnexpectedEof.into()),
                n => len += n,
            }
        }
        Ok(Sniffed {
            head,
            at: 0,
            len,
            tcp,
        })
    }

    fn is_h2(&self) -> bool {
        self.head[..self.len] == H2_PREFACE[..]
    }
}

impl tokio::io::AsyncRead for Sniffed {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut tokio::io::ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        let this = self.get_mut();
        if this.at < this.len {
            let n = (this.len - this.at).min(buf.remaining());
            buf.put_slice(&this.head[this.at..this.at + n]);
            this.at += n;
            return Poll::Ready(Ok(()));
        }
        Pin::new(&mut this.tcp).poll_read(cx, buf)
    }
}

impl tokio::io::AsyncWrite for Sniffed {
    fn poll_write(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.get_mut().tcp).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[std::io::IoSlice<'_>],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.get_mut().tcp).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.tcp.is_write_vectored()
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.get_mut().tcp).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.get_mut().tcp).poll_shutdown(cx)
    }
}
