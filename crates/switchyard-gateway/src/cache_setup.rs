//! Opening the response cache at start: its store (Redis when `config.json` has a redis
//! `vector_store` or `--redis-url` is set, so replicas share entries; otherwise in memory, bounded by
//! size) and its plugin (`config.json`'s `plugins` entry `semantic_cache`, kept in the governance
//! store, or the one kept there by the API).

use std::sync::Arc;

use serde_json::Value;
use switchyard_core::config_file::ConfigFile;
use switchyard_runtime::cache::{read_plugin, CacheStore, MemoryCacheStore, RedisCacheStore, ResponseCache};
use switchyard_runtime::governance::Governance;
use switchyard_runtime::start_error::StartError;

use crate::settings::ServerConfig;

/// The in-memory cache's bound: cached answers weigh their size in bytes.
pub const MEMORY_CACHE_BYTES: u64 = 256 * 1024 * 1024;

pub async fn open(
    config: &ServerConfig,
    file: Option<&ConfigFile>,
    governance: &Governance,
) -> Result<Arc<ResponseCache>, StartError> {
    let redis_url = match file.and_then(|f| f.vector_store.as_ref()) {
        Some(vs) => vector_store_url(vs).map_err(StartError::ConfigFile)?,
        None => None,
    }
    .or_else(|| config.redis_url.clone());
    let store: Arc<dyn CacheStore> = match redis_url {
        Some(url) => Arc::new(
            RedisCacheStore::connect(&url, cache_prefix(&config.redis_key_prefix))
                .await
                .map_err(|e| StartError::Cache(e.to_string()))?,
        ),
        None => Arc::new(MemoryCacheStore::new(MEMORY_CACHE_BYTES)),
    };
    let cache = Arc::new(ResponseCache::new(store));
    let from_file = file.and_then(|f| {
        f.plugins
            .iter()
            .enumerate()
            .find(|(_, p)| p.get("name").and_then(Value::as_str) == Some(switchyard_cache::PLUGIN_NAME))
    });
    if let Some(f) = file {
        for (i, p) in f.plugins.iter().enumerate() {
            if p.get("name").and_then(Value::as_str) != Some(switchyard_cache::PLUGIN_NAME) {
                tracing::warn!("plugins[{i}]: only the built-in plugin 'semantic_cache' exists; ignored");
            }
        }
    }
    let store = governance.store();
    match from_file {
        Some((i, p)) => {
            let plugin = read_plugin(p, &format!("plugins[{i}]"))
                .map_err(|e| StartError::ConfigFile(format!("{}: {}", e.field, e.message)))?;
            cache
                .save(store.as_ref(), Some(plugin))
                .await
                .map_err(|e| StartError::Cache(e.to_string()))?;
        }
        None => cache
            .load(store.as_ref())
            .await
            .map_err(|e| StartError::Cache(e.to_string()))?,
    }
    Ok(cache)
}

/// The cache's Redis keys sit beside the governance counters': `switchyard:gov:` → `switchyard:cache:`.
fn cache_prefix(gov_prefix: &str) -> String {
    match gov_prefix.strip_suffix("gov:") {
        Some(base) => format!("{base}cache:"),
        None => format!("{gov_prefix}cache:"),
    }
}

/// Bifrost's `vector_store` block: `{"enabled": true, "type": "redis", "config": {"addr", "username",
/// "password", "db"}}` as a Redis URL; `None` when disabled.
fn vector_store_url(vs: &Value) -> Result<Option<String>, String> {
    if vs.get("enabled").and_then(Value::as_bool) == Some(false) {
        return Ok(None);
    }
    match vs.get("type").and_then(Value::as_str) {
        Some("redis") => {}
        Some(other) => {
            return Err(format!(
                "vector_store.type: '{other}' is not supported; use \"redis\" (or leave vector_store out for the in-memory cache)"
            ))
        }
        None => return Err("vector_store.type is required (\"redis\")".into()),
    }
    let cfg = vs.get("config").cloned().unwrap_or(Value::Null);
    let Some(addr) = cfg.get("addr").and_then(Value::as_str).filter(|a| !a.is_empty()) else {
        return Err("vector_store.config.addr is required (host:port of the Redis server)".into());
    };
    if addr.starts_with("redis://") || addr.starts_with("rediss://") {
        return Ok(Some(addr.to_owned()));
    }
    let user = cfg.get("username").and_then(Value::as_str).unwrap_or("");
    let auth = match cfg
        .get("password")
        .and_then(Value::as_str)
        .filter(|p| !p.is_empty())
    {
        Some(p) => format!("{user}:{p}@"),
        None => String::new(),
    };
    let db = cfg.get("db").and_then(Value::as_u64).unwrap_or(0);
    Ok(Some(format!("redis://{auth}{addr}/{db}")))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn vector_store_block_as_url() {
        let vs = json!({"enabled": true, "type": "redis", "config": {"addr": "127.0.0.1:6379"}});
        assert_eq!(
            vector_store_url(&vs).unwrap().as_deref(),
            Some("redis://127.0.0.1:6379/0")
        );
        assert_eq!(
            vector_store_url(&json!({"enabled": false, "type": "redis"})).unwrap(),
            None
        );
        assert!(vector_store_url(&json!({"type": "weaviate", "config": {}})).is_err());
        assert!(vector_store_url(&json!({"type": "redis", "config": {}})).is_err());
        assert_eq!(cache_prefix("t1:gov:"), "t1:cache:");
    }
}
