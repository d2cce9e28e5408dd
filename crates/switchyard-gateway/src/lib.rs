//! Switchyard's I/O edges: the HTTP server, the management API, the inference proxy, the upstream client
//! and the web UI. Decisions (validation, routing, wire formats) live in `switchyard-core`; this
//! crate wires them to sockets and the config store.
#![forbid(unsafe_code)]

pub mod api;
pub mod audio;
pub mod auth;
pub mod body;
pub mod chat;
pub mod config_source;
pub mod dispatch;
pub mod endpoints;
pub mod error;
pub mod governance;
pub mod health;
pub mod inference;
pub mod limits;
pub mod listen;
pub mod logs_api;
pub mod metrics;
pub mod observe;
pub mod passthrough;
pub mod providers;
pub mod relay;
pub mod runtime_state;
pub mod security;
mod served;
pub mod server;
pub mod state;
pub mod trace;
pub mod ui;
pub mod upstream;

pub use config_source::ConfigStoreSetting;
pub use security::{AdminCredentials, SecurityConfig};
pub use server::{Gateway, LogsConfig, ServerConfig, StartError};
