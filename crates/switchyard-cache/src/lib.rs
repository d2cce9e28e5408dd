//! The response cache's pure part (no I/O): what a cache key is made of and how it is hashed
//! ([`key`], over [`canonical`] JSON), the `semantic_cache` plugin's config ([`config`]), the
//! per-request directives read from `x-bf-cache-*` and `Cache-Control` headers ([`directives`]),
//! what is stored for an answer ([`entry`]) and the similarity of two embeddings ([`vector`]).
//!
//! The gateway's storage (in memory or Redis) and the pipeline phase that looks up and fills the
//! cache live in `switchyard-runtime::cache` and `switchyard-proxy::pipeline::cache`.

pub mod canonical;
pub mod config;
pub mod directives;
pub mod entry;
pub mod key;
pub mod vector;

pub use config::{CacheConfig, PluginInput, PLUGIN_NAME};
pub use directives::{CacheType, Directives};
pub use entry::{CachedAnswer, CachedBody};
pub use key::{Family, KeyParts};
