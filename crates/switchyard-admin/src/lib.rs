//! The management surface: Bifrost's provider and key API (`api`), governance (`governance_api`, and
//! `governance_file` applying `config.json`'s governance through the same write paths),
//! guardrails (`guardrails_api`), the request log and metrics endpoints (`logs_api`), admin
//! authentication (`auth`, with `throttle` slowing down credential guessing) and the web UI (`ui`).
#![forbid(unsafe_code)]

pub mod api;
pub mod auth;
pub mod governance_api;
pub mod governance_file;
pub mod guardrails_api;
pub mod litellm;
pub mod logs_api;
pub mod mcp_api;
pub mod plugins_api;
pub mod throttle;
pub mod ui;
