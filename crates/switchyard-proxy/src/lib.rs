//! The inference proxy: one request pipeline (`pipeline`: identify → admit → plan → dispatch →
//! respond → finish) and the routes on it (`routes`: chat on every surface, the OpenAI endpoints,
//! audio, `count_tokens`, model listing, the pass-through), with what they need of wire formats at
//! the edge (`answer`, `providers`, `ingress`, `request`). Decisions live in `switchyard-core`,
//! translation in `switchyard-translate`, shared state in `switchyard-runtime`.
#![forbid(unsafe_code)]

pub mod answer;
pub mod discovery;
pub mod ingress;
pub mod pipeline;
pub mod providers;
pub mod request;
pub mod routes;
