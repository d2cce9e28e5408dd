//! Switchyard's server: it wires the runtime (`switchyard-runtime`), the inference pipeline
//! (`switchyard-proxy`) and the management API and web UI (`switchyard-admin`) to a listening socket,
//! the config store and the start-up config (`config.json`), and runs them with graceful shutdown.
#![forbid(unsafe_code)]

pub mod cache_setup;
pub mod config_source;
pub mod listen;
pub mod server;
pub mod settings;

pub use server::{Gateway, LogsConfig, ServerConfig, StartError};
pub use settings::ConfigStoreSetting;
pub use switchyard_admin as admin;
pub use switchyard_proxy::routes;
pub use switchyard_runtime::security::{self, AdminCredentials, SecurityConfig};
pub use switchyard_runtime::upstream::AnswerLimits;
pub use switchyard_runtime::{error, governance, state};
