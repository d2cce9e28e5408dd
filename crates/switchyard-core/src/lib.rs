//! Switchyard's pure core.
//!
//! Everything here is data and decisions: the provider/key configuration model and its validation,
//! model-string parsing, routing and key selection, and the small wire-format helpers the proxy needs
//! (top-level JSON field rewriting, SSE event framing, upstream URL joining). Reading the protocols
//! themselves (usage, upstream error bodies) is `switchyard-translate`'s job.
//!
//! Invariant: this crate performs no I/O (no sockets, files, clocks or environment reads other than
//! through values passed in), so all of it is tested with plain unit and snapshot tests.
#![forbid(unsafe_code)]

pub mod admin_auth;
pub mod config;
pub mod config_file;
pub mod discovery;
pub mod embedding;
pub mod governance;
pub mod health;
pub mod json_fields;
pub mod litellm;
pub mod mcp;
pub mod model_ref;
pub mod multipart;
pub mod presets;
pub mod pricing;
pub mod provider;
pub mod provider_keys;
pub mod request_type;
pub mod retry;
pub mod routing;
pub mod secret;
pub mod sse;
pub mod text;
pub mod upstream_policy;
pub mod upstream_url;

pub use config::{KeyConfig, ProviderConfig, ValidationError};
pub use provider::{ProviderName, WireApi};
