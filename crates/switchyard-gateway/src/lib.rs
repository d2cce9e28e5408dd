//! Switchyard's I/O edges: the HTTP server, the management API, the inference proxy, the upstream client
//! and the web UI. Decisions (validation, routing, wire formats) live in `switchyard-core`; this
//! crate wires them to sockets and the config store.
#![forbid(unsafe_code)]

pub mod answer;
pub mod api;
pub mod auth;
pub mod body;
pub mod config_source;
pub mod error;
pub mod governance;
pub mod ingress;
pub mod listen;
pub mod logs_api;
pub mod metrics;
pub mod pipeline;
pub mod providers;
pub mod request;
pub mod routes;
pub mod runtime_state;
pub mod security;
pub mod server;
pub mod settings;
pub mod start_error;
pub mod state;
pub mod trace;
pub mod trail;
pub mod ui;
pub mod upstream;

pub use security::{AdminCredentials, SecurityConfig};
pub use server::{Gateway, LogsConfig, ServerConfig, StartError};
pub use settings::ConfigStoreSetting;
