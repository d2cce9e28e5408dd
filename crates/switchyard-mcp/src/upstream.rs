//! One registered MCP server and the task that keeps it connected: connect and initialize, read the
//! tools, then watch the link (its end, a failed call, a periodic `ping` or tool sync); when it breaks,
//! connect again after a backoff (250 ms doubling to `max_backoff`) for as long as the client is
//! registered, so a server that comes back is used again without a manual reconnect, and a crashed
//! stdio child is started again.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde::Serialize;
use serde_json::{json, Value};
use switchyard_core::mcp::{parse_duration, McpClientConfig};
use tokio::sync::Notify;

use crate::jsonrpc::LinkError;
use crate::link::{Link, LinkEnv};

/// Connection state, as the list and the UI show it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum ConnState {
    Connected,
    Disconnected,
    Error,
}

/// Timings of the supervisor.
#[derive(Clone, Copy, Debug)]
pub struct Timings {
    /// How often a connected link is checked (`ping`, or `tools/list` without ping).
    pub health_interval: Duration,
    /// How long a connect-and-initialize or a health check may take.
    pub connect_timeout: Duration,
    pub max_backoff: Duration,
    /// How often the tool list is read again (the client's `tool_sync_interval` wins).
    pub tool_sync_interval: Duration,
}

impl Default for Timings {
    fn default() -> Self {
        Timings {
            health_interval: Duration::from_secs(2),
            connect_timeout: Duration::from_secs(10),
            max_backoff: Duration::from_secs(5),
            tool_sync_interval: Duration::from_secs(600),
        }
    }
}

#[derive(Default)]
struct Status {
    state: Option<ConnState>,
    error: Option<String>,
    link: Option<Arc<Link>>,
    tools: Arc<Vec<Value>>,
}

/// A registered client: its config, its live link and tools, and the supervisor task.
pub struct Upstream {
    pub config: McpClientConfig,
    status: Arc<Mutex<Status>>,
    wake: Arc<Notify>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for Upstream {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl Upstream {
    pub fn start(config: McpClientConfig, env: LinkEnv, timings: Timings) -> Upstream {
        let status = Arc::new(Mutex::new(Status::default()));
        let wake = Arc::new(Notify::new());
        let task = tokio::spawn(supervise(
            config.clone(),
            env,
            timings,
            status.clone(),
            wake.clone(),
        ));
        Upstream {
            config,
            status,
            wake,
            task,
        }
    }

    fn status(&self) -> std::sync::MutexGuard<'_, Status> {
        self.status.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub fn state(&self) -> (ConnState, Option<String>) {
        let s = self.status();
        (s.state.unwrap_or(ConnState::Disconnected), s.error.clone())
    }

    pub fn tools(&self) -> Arc<Vec<Value>> {
        self.status().tools.clone()
    }

    pub fn link(&self) -> Option<Arc<Link>> {
        self.status().link.clone().filter(|l| !l.is_dead())
    }

    /// A call found the link broken: the supervisor reconnects now instead of at its next check.
    pub fn link_failed(&self) {
        self.wake.notify_one();
    }
}

fn set(status: &Mutex<Status>, f: impl FnOnce(&mut Status)) {
    f(&mut status.lock().unwrap_or_else(|p| p.into_inner()));
}

async fn connect(config: &McpClientConfig, env: &LinkEnv, t: Timings) -> Result<(Link, Vec<Value>), String> {
    let attempt = async {
        let link = Link::open(config, env).await.map_err(|e| e.to_string())?;
        let tools = link.list_tools().await.map_err(|e| e.to_string())?;
        Ok((link, tools))
    };
    tokio::time::timeout(t.connect_timeout, attempt)
        .await
        .unwrap_or_else(|_| Err(format!("no answer within {:?}", t.connect_timeout)))
}

async fn supervise(
    config: McpClientConfig,
    env: LinkEnv,
    t: Timings,
    status: Arc<Mutex<Status>>,
    wake: Arc<Notify>,
) {
    if config.disabled {
        set(&status, |s| s.state = Some(ConnState::Disconnected));
        return;
    }
    let sync = config
        .tool_sync_interval
        .as_deref()
        .and_then(|s| parse_duration(s).ok())
        .unwrap_or(t.tool_sync_interval);
    let mut failures: u32 = 0;
    loop {
        match connect(&config, &env, t).await {
            Ok((link, tools)) => {
                failures = 0;
                let link = Arc::new(link);
                tracing::info!(client = %config.name, tools = tools.len(), "MCP server connected");
                set(&status, |s| {
                    s.state = Some(ConnState::Connected);
                    s.error = None;
                    s.link = Some(link.clone());
                    s.tools = Arc::new(tools);
                });
                let reason = watch(&config, &link, t, sync, &status, &wake).await;
                tracing::warn!(client = %config.name, %reason, "MCP server connection lost");
                set(&status, |s| {
                    s.state = Some(ConnState::Disconnected);
                    s.error = Some(reason);
                    s.link = None;
                });
            }
            Err(reason) => {
                failures = failures.saturating_add(1);
                set(&status, |s| {
                    s.state = Some(ConnState::Error);
                    s.error = Some(reason);
                    s.link = None;
                });
            }
        }
        let backoff = Duration::from_millis(250u64.saturating_mul(1 << failures.min(8))).min(t.max_backoff);
        tokio::select! {
            () = tokio::time::sleep(backoff) => {}
            () = wake.notified() => {}
        }
    }
}

/// Waits until the link breaks; returns why.
async fn watch(
    config: &McpClientConfig,
    link: &Link,
    t: Timings,
    sync: Duration,
    status: &Mutex<Status>,
    wake: &Notify,
) -> String {
    let mut last_sync = tokio::time::Instant::now();
    loop {
        tokio::select! {
            () = link.closed() => return "the connection ended".into(),
            () = wake.notified() => if link.is_dead() { return "a call found the connection broken".into() },
            () = tokio::time::sleep(t.health_interval) => {
                let due = last_sync.elapsed() >= sync;
                if due || !config.is_ping_available {
                    match tokio::time::timeout(t.connect_timeout, link.list_tools()).await {
                        Ok(Ok(tools)) => {
                            last_sync = tokio::time::Instant::now();
                            set(status, |s| s.tools = Arc::new(tools));
                        }
                        Ok(Err(e)) => return format!("tool sync failed: {e}"),
                        Err(_) => return "tool sync timed out".into(),
                    }
                } else {
                    match tokio::time::timeout(t.connect_timeout, link.request("ping", json!({}))).await {
                        // A server that refuses `ping` (JSON-RPC error) is still there.
                        Ok(Ok(_) | Err(LinkError::Rpc { .. })) => {}
                        Ok(Err(e)) => return format!("ping failed: {e}"),
                        Err(_) => return "ping timed out".into(),
                    }
                }
            }
        }
    }
}
