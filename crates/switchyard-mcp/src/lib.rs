//! The MCP gateway's moving parts: a connection to each registered MCP server ([`link`]: streamable
//! HTTP, the older HTTP+SSE transport, or a child process on stdio), kept alive by a supervisor task
//! ([`upstream`]: connect, initialize, read the tools, watch, reconnect with backoff, respawn a crashed
//! child), the [`hub`] that owns them and runs tool calls under `tool_execution_timeout` (each call on
//! its own, so a slow one holds nothing else) with a record and metrics per call, and the `/mcp`
//! server's JSON-RPC methods ([`server`]).
//!
//! What is allowed (names, allow-lists) is decided in `switchyard_core::mcp`; who the caller is, by the
//! pipeline's identify step (`switchyard_proxy`).

pub mod hub;
pub mod jsonrpc;
pub mod link;
pub mod metrics;
pub mod server;
pub mod upstream;

pub use hub::{CallError, CallRecord, Hub, HubSettings};
