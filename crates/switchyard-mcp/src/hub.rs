//! The registered MCP servers and every tool call through them. A call takes the server's live link
//! and runs under `tool_execution_timeout` (a call that runs out is cancelled on the server); nothing is shared between calls but the link, whose
//! requests run side by side, so a hung call holds only its own caller. Every call leaves a
//! [`CallRecord`] (the newest [`MAX_RECORDS`] are kept for `/api/mcp-logs`), a metric sample and a
//! trace span.

use std::collections::{BTreeMap, VecDeque};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use serde::Serialize;
use serde_json::{json, Value};
use switchyard_core::mcp::McpClientConfig;
use switchyard_logs::LogStore;

use crate::jsonrpc::LinkError;
use crate::link::LinkEnv;
use crate::metrics::McpMetrics;
use crate::upstream::{ConnState, Timings, Upstream};

/// Tool-call records kept in memory.
pub const MAX_RECORDS: usize = 5000;

#[derive(Clone, Copy, Debug)]
pub struct HubSettings {
    pub tool_execution_timeout: Duration,
    pub timings: Timings,
}

impl Default for HubSettings {
    fn default() -> Self {
        HubSettings {
            tool_execution_timeout: Duration::from_secs(30),
            timings: Timings::default(),
        }
    }
}

/// One tool call, as `/api/mcp-logs` shows it (a row of the log store's `mcp_calls`).
pub use switchyard_logs::McpCallRecord as CallRecord;

/// Why a call produced no tool result.
#[derive(Clone, Debug, PartialEq, thiserror::Error)]
pub enum CallError {
    #[error("MCP server '{server}' did not answer tool '{tool}' within {after:?} (tool_execution_timeout)")]
    Timeout {
        server: String,
        tool: String,
        after: Duration,
    },
    #[error("MCP server '{server}' is unavailable: {reason}")]
    Unavailable { server: String, reason: String },
    #[error("MCP server '{server}' answered with an error: {message}")]
    Rpc {
        server: String,
        code: i64,
        message: String,
    },
}

pub struct Hub {
    clients: RwLock<BTreeMap<String, Arc<Upstream>>>,
    settings: RwLock<HubSettings>,
    env: LinkEnv,
    records: Mutex<VecDeque<CallRecord>>,
    /// Where each record is also written (off the caller's path), when request logging is on.
    store: Option<Arc<dyn LogStore>>,
    pub metrics: McpMetrics,
}

/// A client as the list shows it.
#[derive(Clone, Debug, Serialize)]
pub struct ClientView {
    pub config: McpClientConfig,
    pub tools: Vec<Value>,
    pub state: ConnState,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

impl Hub {
    pub fn new(env: LinkEnv, settings: HubSettings, store: Option<Arc<dyn LogStore>>) -> Hub {
        Hub {
            clients: RwLock::new(BTreeMap::new()),
            settings: RwLock::new(settings),
            env,
            records: Mutex::new(VecDeque::new()),
            store,
            metrics: McpMetrics::default(),
        }
    }

    /// The store the records are written to, if any.
    pub fn store(&self) -> Option<&Arc<dyn LogStore>> {
        self.store.as_ref()
    }

    pub fn settings(&self) -> HubSettings {
        *self.settings.read().unwrap_or_else(|p| p.into_inner())
    }

    pub fn set_settings(&self, s: HubSettings) {
        *self.settings.write().unwrap_or_else(|p| p.into_inner()) = s;
    }

    fn read(&self) -> std::sync::RwLockReadGuard<'_, BTreeMap<String, Arc<Upstream>>> {
        self.clients.read().unwrap_or_else(|p| p.into_inner())
    }

    fn write(&self) -> std::sync::RwLockWriteGuard<'_, BTreeMap<String, Arc<Upstream>>> {
        self.clients.write().unwrap_or_else(|p| p.into_inner())
    }

    /// Registers a client or replaces one with the same id (its connection starts anew).
    pub fn upsert(&self, config: McpClientConfig) {
        let up = Upstream::start(config.clone(), self.env.clone(), self.settings().timings);
        self.write().insert(config.client_id, Arc::new(up));
    }

    /// Makes the registered set exactly `configs`: unchanged clients keep their connections.
    pub fn sync(&self, configs: &[McpClientConfig]) {
        let keep: Vec<&str> = configs.iter().map(|c| c.client_id.as_str()).collect();
        self.write().retain(|id, _| keep.contains(&id.as_str()));
        for c in configs {
            let same = self.read().get(&c.client_id).is_some_and(|u| &u.config == c);
            if !same {
                self.upsert(c.clone());
            }
        }
    }

    pub fn remove(&self, id: &str) -> bool {
        self.write().remove(id).is_some()
    }

    /// Drops the connection and connects again now.
    pub fn reconnect(&self, id: &str) -> bool {
        let config = self.read().get(id).map(|u| u.config.clone());
        config.map(|c| self.upsert(c)).is_some()
    }

    pub fn configs(&self) -> Vec<McpClientConfig> {
        self.read().values().map(|u| u.config.clone()).collect()
    }

    pub fn get(&self, id: &str) -> Option<Arc<Upstream>> {
        self.read().get(id).cloned()
    }

    pub fn by_name(&self, name: &str) -> Option<Arc<Upstream>> {
        self.read().values().find(|u| u.config.name == name).cloned()
    }

    pub fn upstreams(&self) -> Vec<Arc<Upstream>> {
        self.read().values().cloned().collect()
    }

    pub fn views(&self) -> Vec<ClientView> {
        self.upstreams()
            .iter()
            .map(|u| {
                let (state, error) = u.state();
                ClientView {
                    config: u.config.redacted(),
                    tools: u.tools().as_ref().clone(),
                    state,
                    error,
                }
            })
            .collect()
    }

    /// Calls `tool` on `upstream` (already allowed by the caller), bounded by `tool_execution_timeout`.
    /// The answer is the server's `CallToolResult`, unchanged.
    pub async fn call(
        &self,
        upstream: &Upstream,
        tool: &str,
        arguments: Value,
        key_id: Option<&str>,
    ) -> Result<Value, CallError> {
        let span = tracing::info_span!("mcp.tool_call", tool, server = %upstream.config.name, status = tracing::field::Empty);
        tracing::Instrument::instrument(
            self.call_in_span(upstream, tool, arguments, key_id, &span),
            span.clone(),
        )
        .await
    }

    async fn call_in_span(
        &self,
        upstream: &Upstream,
        tool: &str,
        arguments: Value,
        key_id: Option<&str>,
        span: &tracing::Span,
    ) -> Result<Value, CallError> {
        let server = upstream.config.name.clone();
        let started = Instant::now();
        let after = self.settings().tool_execution_timeout;
        let result = match upstream.link() {
            None => {
                let (state, error) = upstream.state();
                let reason = error.unwrap_or_else(|| format!("{state:?}").to_lowercase());
                Err(CallError::Unavailable {
                    server: server.clone(),
                    reason: format!("not connected ({reason})"),
                })
            }
            Some(link) => {
                let params = json!({"name": tool, "arguments": arguments});
                match link.request_within("tools/call", params, after).await {
                    None => Err(CallError::Timeout {
                        server: server.clone(),
                        tool: tool.to_owned(),
                        after,
                    }),
                    Some(Ok(v)) => Ok(v),
                    Some(Err(LinkError::Rpc { code, message })) => Err(CallError::Rpc {
                        server: server.clone(),
                        code,
                        message,
                    }),
                    Some(Err(LinkError::Transport(reason))) => {
                        upstream.link_failed();
                        Err(CallError::Unavailable {
                            server: server.clone(),
                            reason,
                        })
                    }
                }
            }
        };
        let status = match &result {
            Ok(v) if v.get("isError").and_then(Value::as_bool) == Some(true) => "tool_error",
            Ok(_) => "success",
            Err(CallError::Timeout { .. }) => "timeout",
            Err(_) => "error",
        };
        span.record("status", status);
        let error = result.as_ref().err().map(ToString::to_string);
        self.record(tool, &server, key_id, started.elapsed(), status, error);
        result
    }

    /// Records a call (also one refused before reaching any server: status `blocked`).
    pub fn record(
        &self,
        tool: &str,
        server: &str,
        key_id: Option<&str>,
        latency: Duration,
        status: &str,
        error: Option<String>,
    ) {
        self.metrics.record(tool, server, status, latency.as_secs_f64());
        let rec = CallRecord {
            id: uuid::Uuid::now_v7().to_string(),
            timestamp_ms: now_ms() as i64,
            tool: tool.to_owned(),
            server: server.to_owned(),
            virtual_key_id: key_id.map(str::to_owned),
            latency_ms: latency.as_secs_f64() * 1000.0,
            status: status.to_owned(),
            error,
        };
        if let Some(store) = self.store.clone() {
            let row = rec.clone();
            tokio::spawn(async move {
                if let Err(e) = store.insert_mcp_call(&row).await {
                    tracing::warn!(error = %e, "could not write an MCP call record");
                }
            });
        }
        let mut r = self.records.lock().unwrap_or_else(|p| p.into_inner());
        if r.len() >= MAX_RECORDS {
            r.pop_front();
        }
        r.push_back(rec);
    }

    /// Newest first, optionally only one server's or one key's.
    pub fn records(&self, server: Option<&str>, key: Option<&str>, limit: usize) -> (Vec<CallRecord>, usize) {
        let r = self.records.lock().unwrap_or_else(|p| p.into_inner());
        let matching: Vec<&CallRecord> = r
            .iter()
            .rev()
            .filter(|c| server.is_none_or(|s| c.server == s))
            .filter(|c| key.is_none_or(|k| c.virtual_key_id.as_deref() == Some(k)))
            .collect();
        let total = matching.len();
        (matching.into_iter().take(limit).cloned().collect(), total)
    }
}
