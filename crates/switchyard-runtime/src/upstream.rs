//! The upstream HTTP client: one pooled hyper client for every provider (HTTP/1.1 and HTTP/2 over
//! rustls), and the request builders for the OpenAI-compatible and Anthropic wire APIs.

use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use axum::body::Body;
use http::header::{HeaderName, HeaderValue, ACCEPT, AUTHORIZATION, CONTENT_TYPE, USER_AGENT};
use http::{HeaderMap, Method, Request, Response, Uri};
use hyper::body::Incoming;
use hyper_rustls::HttpsConnector;
use hyper_util::client::legacy::connect::dns::{GaiResolver, Name};
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use switchyard_core::routing::{RuntimeKey, RuntimeProvider};
use switchyard_core::upstream_policy::UpstreamPolicy;
use switchyard_core::WireApi;

use crate::error::GatewayError;

const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
static GATEWAY_USER_AGENT: HeaderValue =
    HeaderValue::from_static(concat!("switchyard/", env!("CARGO_PKG_VERSION")));

/// Client headers that must never be forwarded through `x-bf-eh-*`: they carry credentials or belong
/// to the connection.
const FORWARD_DENYLIST: &[&str] = &[
    "authorization",
    "proxy-authorization",
    "cookie",
    "host",
    "content-length",
    "connection",
    "transfer-encoding",
    "x-api-key",
    "api-key",
    "x-goog-api-key",
    "x-amz-security-token",
    "x-amz-date",
    "x-amz-content-sha256",
    "x-bf-vk",
    "te",
    "upgrade",
    "keep-alive",
];

/// The system resolver, filtered by the upstream address policy: a host name that resolves to a
/// refused address (a cloud metadata service, an operator-denied block) fails to connect, and the
/// addresses connected to are exactly the ones checked (no second lookup to rebind).
#[derive(Clone)]
pub struct PolicyResolver {
    policy: Arc<UpstreamPolicy>,
    inner: GaiResolver,
}

type ResolveFuture =
    Pin<Box<dyn Future<Output = Result<std::vec::IntoIter<SocketAddr>, std::io::Error>> + Send>>;

fn refused(reason: String) -> std::io::Error {
    std::io::Error::new(
        std::io::ErrorKind::PermissionDenied,
        format!("upstream address refused by policy: {reason}"),
    )
}

impl tower_service::Service<Name> for PolicyResolver {
    type Response = std::vec::IntoIter<SocketAddr>;
    type Error = std::io::Error;
    type Future = ResolveFuture;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, name: Name) -> Self::Future {
        let policy = self.policy.clone();
        let host = name.as_str().to_owned();
        let lookup = self.inner.call(name);
        Box::pin(async move {
            if let Some(reason) = policy.refuses_host(&host) {
                return Err(refused(reason));
            }
            let addrs: Vec<SocketAddr> = lookup.await?.collect();
            if let Some(reason) = addrs.iter().find_map(|a| policy.refuses_ip(a.ip())) {
                return Err(refused(format!("'{host}' resolves to {reason}")));
            }
            Ok(addrs.into_iter())
        })
    }
}

/// Caps on what an upstream answer may make the gateway hold in memory.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct AnswerLimits {
    /// Largest JSON (non-stream) answer read, in bytes. Default 256 MiB: room for the largest
    /// legitimate answers (an embedding batch of 2,048 × 3,072 floats is ~130 MB as JSON text).
    pub max_json_bytes: usize,
    /// Largest single SSE event (and unfinished event buffered), in bytes.
    pub max_sse_event_bytes: usize,
}

impl Default for AnswerLimits {
    fn default() -> Self {
        AnswerLimits {
            max_json_bytes: 256 * 1024 * 1024,
            max_sse_event_bytes: switchyard_core::sse::DEFAULT_MAX_EVENT_BYTES,
        }
    }
}

#[derive(Clone)]
pub struct UpstreamClient {
    client: Client<HttpsConnector<HttpConnector<PolicyResolver>>, Body>,
    policy: Arc<UpstreamPolicy>,
    limits: AnswerLimits,
}

impl Default for UpstreamClient {
    fn default() -> Self {
        Self::new()
    }
}

impl UpstreamClient {
    pub fn new() -> Self {
        Self::with_policy(UpstreamPolicy::default())
    }

    /// A client that refuses the policy's addresses: IP literals before sending, host names after
    /// resolution.
    pub fn with_policy(policy: UpstreamPolicy) -> Self {
        let policy = Arc::new(policy);
        let mut http = HttpConnector::new_with_resolver(PolicyResolver {
            policy: policy.clone(),
            inner: GaiResolver::new(),
        });
        http.enforce_http(false);
        http.set_nodelay(true);
        http.set_connect_timeout(Some(CONNECT_TIMEOUT));
        http.set_keepalive(Some(Duration::from_secs(60)));
        let https = hyper_rustls::HttpsConnectorBuilder::new()
            .with_webpki_roots()
            .https_or_http()
            .enable_http1()
            .enable_http2()
            .wrap_connector(http);
        let client = Client::builder(TokioExecutor::new())
            .pool_idle_timeout(Duration::from_secs(90))
            .pool_max_idle_per_host(512)
            .build(https);
        UpstreamClient {
            client,
            policy,
            limits: AnswerLimits::default(),
        }
    }

    /// The same client with other answer caps.
    pub fn with_limits(mut self, limits: AnswerLimits) -> Self {
        self.limits = limits;
        self
    }

    pub fn limits(&self) -> AnswerLimits {
        self.limits
    }

    /// Sends a request; connection-level failures become [`GatewayError::UpstreamUnreachable`].
    pub async fn send(&self, provider: &str, req: Request<Body>) -> Result<Response<Incoming>, GatewayError> {
        // IP literals never reach the resolver, so they are checked here.
        if let Some(host) = req.uri().host() {
            let host = host.trim_start_matches('[').trim_end_matches(']');
            if let Some(reason) = self.policy.refuses_host(host) {
                return Err(GatewayError::UpstreamUnreachable {
                    provider: provider.to_owned(),
                    reason: format!("upstream address refused by policy: {reason}"),
                });
            }
        }
        self.client
            .request(req)
            .await
            .map_err(|e| GatewayError::UpstreamUnreachable {
                provider: provider.to_owned(),
                reason: describe_client_error(&e),
            })
    }
}

fn describe_client_error(e: &hyper_util::client::legacy::Error) -> String {
    use std::error::Error;
    let mut msg = if e.is_connect() {
        "connection failed".to_owned()
    } else {
        "request failed".to_owned()
    };
    let mut source = e.source();
    while let Some(s) = source {
        msg.push_str(": ");
        msg.push_str(&s.to_string());
        source = s.source();
    }
    msg
}

/// What an upstream call needs besides the body.
pub struct UpstreamCall<'a> {
    pub provider: &'a RuntimeProvider,
    pub key: Option<&'a RuntimeKey>,
    pub method: Method,
    pub url: String,
    pub accept_sse: bool,
    pub client_headers: &'a HeaderMap,
    /// Protocol headers the wire API needs (e.g. `anthropic-version`).
    pub protocol_headers: Vec<(HeaderName, HeaderValue)>,
}

/// How a wire API carries the key.
fn auth_header(wire: WireApi, secret: &str) -> (HeaderName, String) {
    match wire {
        WireApi::Anthropic => (HeaderName::from_static("x-api-key"), secret.to_owned()),
        WireApi::Gemini => (HeaderName::from_static("x-goog-api-key"), secret.to_owned()),
        WireApi::Azure => (HeaderName::from_static("api-key"), secret.to_owned()),
        _ => (AUTHORIZATION, format!("Bearer {secret}")),
    }
}

impl UpstreamCall<'_> {
    /// Builds the upstream request from scratch: the client's own credentials are never copied; only
    /// `x-bf-eh-*` headers (prefix stripped, credentials denied) and the provider's `extra_headers` are
    /// added, and the stored key is set last so nothing can override it.
    pub fn build(self, body: Body) -> Result<Request<Body>, GatewayError> {
        let uri: Uri = self.url.parse().map_err(|e| GatewayError::UpstreamUnreachable {
            provider: self.provider.config.name.to_string(),
            reason: format!("invalid upstream URL '{}': {e}", self.url),
        })?;
        let mut req = Request::builder()
            .method(self.method)
            .uri(uri)
            .body(body)
            .expect("parts are valid");
        let h = req.headers_mut();
        h.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
        h.insert(
            ACCEPT,
            HeaderValue::from_static(if self.accept_sse {
                "text/event-stream"
            } else {
                "application/json"
            }),
        );
        h.insert(USER_AGENT, GATEWAY_USER_AGENT.clone());
        for (name, value) in self.client_headers {
            if let Some(stripped) = name.as_str().strip_prefix("x-bf-eh-") {
                if FORWARD_DENYLIST.contains(&stripped) {
                    continue;
                }
                if let Ok(n) = HeaderName::from_bytes(stripped.as_bytes()) {
                    h.insert(n, value.clone());
                }
            }
        }
        for (name, value) in self.protocol_headers {
            h.insert(name, value);
        }
        for (name, value) in &self.provider.config.network_config.extra_headers {
            if let (Ok(n), Ok(v)) = (
                HeaderName::from_bytes(name.as_bytes()),
                HeaderValue::from_str(value),
            ) {
                h.insert(n, v);
            }
        }
        if let Some(secret) = self.key.and_then(|k| k.secret.as_ref()) {
            let (name, value) = auth_header(self.provider.config.wire(), secret.expose());
            let mut v = HeaderValue::from_str(&value).map_err(|_| GatewayError::UpstreamUnreachable {
                provider: self.provider.config.name.to_string(),
                reason: "the stored key contains characters that cannot be sent in a header".into(),
            })?;
            v.set_sensitive(true);
            h.insert(name, v);
        }
        Ok(req)
    }
}

/// Response headers that describe the upstream connection, not the answer, and are not passed on.
pub fn is_hop_by_hop(name: &HeaderName) -> bool {
    matches!(
        name.as_str(),
        "connection"
            | "keep-alive"
            | "proxy-connection"
            | "transfer-encoding"
            | "te"
            | "trailer"
            | "upgrade"
            | "content-length"
            | "set-cookie"
    )
}
