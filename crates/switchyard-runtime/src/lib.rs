//! The gateway's runtime: what every part of the server shares. The live config snapshot and its
//! single write path (`state`), governance state and counters (`governance`), per-key and per-provider
//! breakers and concurrency gates that follow the config (`runtime_state`), the pooled upstream client
//! (`upstream`), metrics, traces, the error type and its one mapping to HTTP (`error`), body reading,
//! and the security settings. No routes: the inference pipeline (`switchyard-proxy`) and the
//! management API (`switchyard-admin`) are built on it.
#![forbid(unsafe_code)]

pub mod body;
pub mod browser;
pub mod cache;
pub mod error;
pub mod governance;
pub mod metrics;
pub mod runtime_state;
pub mod security;
pub mod start_error;
pub mod state;
pub mod trace;
pub mod trail;
pub mod upstream;
