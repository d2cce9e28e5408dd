//! One connection to an MCP server, whatever its transport. [`Link::open`] connects and runs the MCP
//! handshake (`initialize`, then `notifications/initialized`); [`Link::request`] sends one request and
//! waits for its answer (requests run side by side: each HTTP request is its own exchange; on stdio
//! and SSE answers are matched by id); [`Link::closed`] resolves once the link is unusable.

mod http;
mod sse;
mod stdio;

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use serde_json::{json, Value};
use switchyard_core::mcp::{ConnectionType, McpClientConfig};
use switchyard_runtime::upstream::UpstreamClient;
use tokio::sync::Notify;

use crate::jsonrpc::{self, LinkError, PROTOCOL_VERSION};

/// How long sending a cancellation may take before it is given up.
const CANCEL_SEND_LIMIT: Duration = Duration::from_secs(5);

/// Reads a variable of the gateway's environment.
pub type EnvLookup = Arc<dyn Fn(&str) -> Option<String> + Send + Sync>;

/// What a link needs from the gateway besides the client's config.
#[derive(Clone)]
pub struct LinkEnv {
    pub http: UpstreamClient,
    /// The gateway's environment variables a stdio child may be given (`stdio_config.envs`).
    pub env: EnvLookup,
}

enum Transport {
    Http(http::HttpLink),
    Sse(sse::SseLink),
    Stdio(stdio::StdioLink),
}

pub struct Link {
    transport: Transport,
    next_id: AtomicU64,
    /// Set (and notified) when the link broke.
    dead: Arc<Dead>,
}

/// The link's end: a flag and its notice.
#[derive(Default)]
pub struct Dead {
    flag: std::sync::atomic::AtomicBool,
    notify: Notify,
}

impl Dead {
    pub fn mark(&self) {
        self.flag.store(true, Ordering::SeqCst);
        self.notify.notify_waiters();
    }

    pub fn is_dead(&self) -> bool {
        self.flag.load(Ordering::SeqCst)
    }

    pub async fn wait(&self) {
        loop {
            let notified = self.notify.notified();
            if self.is_dead() {
                return;
            }
            notified.await;
        }
    }
}

pub(crate) fn header_map(headers: &BTreeMap<String, String>) -> ::http::HeaderMap {
    let mut map = ::http::HeaderMap::new();
    for (k, v) in headers {
        if let (Ok(n), Ok(mut v)) = (
            ::http::HeaderName::from_bytes(k.as_bytes()),
            ::http::HeaderValue::from_str(v),
        ) {
            v.set_sensitive(true);
            map.insert(n, v);
        }
    }
    map
}

impl Link {
    /// Connects and initializes. Errors are [`LinkError::Transport`] with a reason a person can read.
    pub async fn open(config: &McpClientConfig, env: &LinkEnv) -> Result<Link, LinkError> {
        let dead = Arc::new(Dead::default());
        let url = config.connection_string.clone().unwrap_or_default();
        let transport = match config.connection_type {
            ConnectionType::Http => Transport::Http(http::HttpLink::new(
                &config.name,
                &url,
                header_map(&config.headers),
                env.http.clone(),
                dead.clone(),
            )?),
            ConnectionType::Sse => Transport::Sse(
                sse::SseLink::connect(
                    &config.name,
                    &url,
                    header_map(&config.headers),
                    env.http.clone(),
                    dead.clone(),
                )
                .await?,
            ),
            ConnectionType::Stdio => {
                let stdio = config.stdio_config.clone().unwrap_or_default();
                Transport::Stdio(stdio::StdioLink::spawn(&stdio, env, dead.clone())?)
            }
        };
        let link = Link {
            transport,
            next_id: AtomicU64::new(1),
            dead,
        };
        let init = json!({
            "protocolVersion": PROTOCOL_VERSION,
            "capabilities": {},
            "clientInfo": {"name": "switchyard", "version": env!("CARGO_PKG_VERSION")},
        });
        let answer = link.request("initialize", init).await?;
        if let (Transport::Http(h), Some(v)) = (&link.transport, answer.get("protocolVersion")) {
            h.set_protocol_version(v.as_str().unwrap_or(PROTOCOL_VERSION));
        }
        link.notify("notifications/initialized").await?;
        Ok(link)
    }

    /// One request and its answer's `result`.
    pub async fn request(&self, method: &str, params: Value) -> Result<Value, LinkError> {
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        self.exchange(id, method, params).await
    }

    /// One request bounded by `after` (`None`: it ran out). A request that ran out is cancelled on the
    /// server with MCP's `notifications/cancelled` naming its id, sent in the background (a hung
    /// server must not hold up the caller's answer), so the server can stop the work.
    pub async fn request_within(
        self: &Arc<Self>,
        method: &str,
        params: Value,
        after: Duration,
    ) -> Option<Result<Value, LinkError>> {
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        if let Ok(r) = tokio::time::timeout(after, self.exchange(id, method, params)).await {
            return Some(r);
        }
        let link = Arc::clone(self);
        tokio::spawn(async move {
            let params = json!({"requestId": id, "reason": "tool_execution_timeout"});
            let msg = jsonrpc::notification_with("notifications/cancelled", params);
            match tokio::time::timeout(CANCEL_SEND_LIMIT, link.send_notification(msg)).await {
                Ok(Ok(())) => tracing::debug!(request_id = id, "MCP request cancelled upstream"),
                Ok(Err(e)) => tracing::debug!(request_id = id, error = %e, "sending the cancellation failed"),
                Err(_) => tracing::debug!(request_id = id, "sending the cancellation timed out"),
            }
        });
        None
    }

    async fn exchange(&self, id: u64, method: &str, params: Value) -> Result<Value, LinkError> {
        let msg = jsonrpc::request(id, method, params);
        let r = match &self.transport {
            Transport::Http(h) => h.request(id, msg).await,
            Transport::Sse(s) => s.request(id, msg).await,
            Transport::Stdio(s) => s.request(id, msg).await,
        };
        if matches!(r, Err(LinkError::Transport(_))) {
            self.dead.mark();
        }
        r
    }

    pub async fn notify(&self, method: &str) -> Result<(), LinkError> {
        self.send_notification(jsonrpc::notification(method)).await
    }

    async fn send_notification(&self, msg: Value) -> Result<(), LinkError> {
        match &self.transport {
            Transport::Http(h) => h.notify(msg).await,
            Transport::Sse(s) => s.notify(msg).await,
            Transport::Stdio(s) => s.send(&msg).await,
        }
    }

    /// Every tool the server lists (following `nextCursor`), as the server describes them.
    pub async fn list_tools(&self) -> Result<Vec<Value>, LinkError> {
        let mut tools = Vec::new();
        let mut cursor: Option<String> = None;
        for _ in 0..100 {
            let params = match &cursor {
                Some(c) => json!({"cursor": c}),
                None => json!({}),
            };
            let page = self.request("tools/list", params).await?;
            if let Some(list) = page.get("tools").and_then(Value::as_array) {
                tools.extend(
                    list.iter()
                        .filter(|t| t.get("name").is_some_and(Value::is_string))
                        .cloned(),
                );
            }
            cursor = page.get("nextCursor").and_then(Value::as_str).map(str::to_owned);
            if cursor.is_none() {
                break;
            }
        }
        Ok(tools)
    }

    pub fn is_dead(&self) -> bool {
        self.dead.is_dead()
    }

    /// Resolves when the link broke (a failed exchange, a stream that ended, a child that exited).
    pub async fn closed(&self) {
        self.dead.wait().await;
    }
}
