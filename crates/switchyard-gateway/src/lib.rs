//! Switchyard's I/O edges: the HTTP server, the management API, the inference proxy, the upstream client
//! and the web UI. Decisions (validation, routing, wire formats) live in `switchyard-core`; this
//! crate wires them to sockets and the config store.
#![forbid(unsafe_code)]

pub mod api;
pub mod body;
pub mod chat;
pub mod dispatch;
pub mod error;
pub mod health;
pub mod inference;
pub mod limits;
pub mod logs_api;
pub mod metrics;
pub mod observe;
pub mod providers;
pub mod relay;
pub mod server;
pub mod state;
pub mod trace;
pub mod ui;
pub mod upstream;

pub use server::{Gateway, LogsConfig, ServerConfig, StartError};
