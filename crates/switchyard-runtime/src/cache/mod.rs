//! The response cache's state and storage. [`ResponseCache`] holds the `semantic_cache` plugin (its
//! config, swapped whole on change) and the [`CacheStore`] entries live in: [`MemoryCacheStore`]
//! (the default: bounded by size, entries expire by their own TTL) or [`RedisCacheStore`] (shared by
//! replicas). The pipeline phase that looks up and fills it is `switchyard_proxy::pipeline::cache`;
//! keys and configs are built in the pure `switchyard-cache` crate.

mod memory;
mod redis_store;

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use arc_swap::ArcSwap;
use async_trait::async_trait;
use switchyard_cache::{CacheConfig, CachedAnswer, PluginInput};

pub use memory::MemoryCacheStore;
pub use redis_store::RedisCacheStore;

#[derive(Debug, thiserror::Error)]
#[error("response cache unavailable: {0}")]
pub struct CacheError(pub String);

/// Where cached answers (and, for semantic lookups, their prompts' embeddings) are kept.
#[async_trait]
pub trait CacheStore: Send + Sync + 'static {
    async fn get(&self, key: &str) -> Result<Option<CachedAnswer>, CacheError>;
    async fn put(&self, key: &str, answer: &CachedAnswer, ttl: Duration) -> Result<(), CacheError>;
    /// The stored prompt most similar to `vector` within `scope`, whose answer still exists: its
    /// answer key and similarity.
    async fn nearest(&self, scope: &str, vector: &[f32]) -> Result<Option<(String, f64)>, CacheError>;
    async fn put_vector(
        &self,
        scope: &str,
        key: &str,
        vector: &[f32],
        ttl: Duration,
    ) -> Result<(), CacheError>;
    /// Removes every entry; returns how many answers were removed.
    async fn clear(&self) -> Result<u64, CacheError>;
    /// How many answers are stored (approximate for memory: expired ones may still count briefly).
    async fn entries(&self) -> Result<u64, CacheError>;
    fn kind(&self) -> &'static str;
}

/// The plugin as configured: what the API shows and what the cache applies.
#[derive(Clone, Debug)]
pub struct ActivePlugin {
    pub input: PluginInput,
    pub config: CacheConfig,
}

/// The gateway's response cache.
pub struct ResponseCache {
    plugin: ArcSwap<Option<ActivePlugin>>,
    store: Arc<dyn CacheStore>,
    hits: AtomicU64,
    misses: AtomicU64,
}

impl ResponseCache {
    pub fn new(store: Arc<dyn CacheStore>) -> ResponseCache {
        ResponseCache {
            plugin: ArcSwap::from_pointee(None),
            store,
            hits: AtomicU64::new(0),
            misses: AtomicU64::new(0),
        }
    }

    /// The in-memory cache of at most `max_bytes`.
    pub fn in_memory(max_bytes: u64) -> ResponseCache {
        ResponseCache::new(Arc::new(MemoryCacheStore::new(max_bytes)))
    }

    /// The plugin, if configured (enabled or not).
    pub fn plugin(&self) -> Option<ActivePlugin> {
        self.plugin.load().as_ref().clone()
    }

    /// The config to apply to a request: `None` when no plugin is configured or it is disabled. One
    /// atomic load; nothing else is done when the cache is off.
    pub fn active(&self) -> Option<CacheConfig> {
        self.plugin
            .load()
            .as_ref()
            .as_ref()
            .filter(|p| p.config.enabled)
            .map(|p| p.config.clone())
    }

    pub fn set_plugin(&self, plugin: Option<ActivePlugin>) {
        self.plugin.store(Arc::new(plugin));
    }

    pub fn store(&self) -> &Arc<dyn CacheStore> {
        &self.store
    }

    pub fn count(&self, hit: bool) {
        if hit {
            self.hits.fetch_add(1, Ordering::Relaxed);
        } else {
            self.misses.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// Lookups answered from the cache and not, since start.
    pub fn hits_and_misses(&self) -> (u64, u64) {
        (
            self.hits.load(Ordering::Relaxed),
            self.misses.load(Ordering::Relaxed),
        )
    }
}

/// Where the plugin is kept between restarts: a setting of the governance store (the same database
/// as the config, shared by replicas on PostgreSQL).
pub const PLUGIN_SETTING: &str = "plugin.semantic_cache";

impl ResponseCache {
    /// Applies the plugin kept in `store`, if any. A kept plugin that no longer reads is reported and
    /// leaves the cache off.
    pub async fn load(
        &self,
        store: &dyn switchyard_store::GovernanceStore,
    ) -> Result<(), switchyard_store::StoreError> {
        let Some(v) = store.get_setting(PLUGIN_SETTING).await? else {
            self.set_plugin(None);
            return Ok(());
        };
        match read_plugin(&v, "") {
            Ok(p) => self.set_plugin(Some(p)),
            Err(e) => {
                tracing::error!(field = %e.field, error = %e.message, "the stored semantic_cache plugin is invalid; the cache is off");
                self.set_plugin(None);
            }
        }
        Ok(())
    }

    /// Reloads the plugin from `store` whenever another replica changed the shared store (the
    /// governance settings are covered by the config store's change notices). Ends with the notices.
    pub fn follow(
        self: &Arc<Self>,
        store: Arc<dyn switchyard_store::GovernanceStore>,
        mut notices: tokio::sync::watch::Receiver<u64>,
    ) {
        let weak = Arc::downgrade(self);
        tokio::spawn(async move {
            while notices.changed().await.is_ok() {
                let Some(cache) = weak.upgrade() else { return };
                if let Err(e) = cache.load(store.as_ref()).await {
                    tracing::warn!(error = %e, "reloading the semantic_cache plugin after a change notice failed");
                }
            }
        });
    }

    /// Keeps `plugin` (or its removal) in `store` and applies it.
    pub async fn save(
        &self,
        store: &dyn switchyard_store::GovernanceStore,
        plugin: Option<ActivePlugin>,
    ) -> Result<(), switchyard_store::StoreError> {
        let value = plugin
            .as_ref()
            .map_or(serde_json::Value::Null, |p| p.input.to_json());
        store.put_setting(PLUGIN_SETTING, &value).await?;
        self.set_plugin(plugin);
        Ok(())
    }
}

/// Reads a plugin body (`{"name": "semantic_cache", "enabled", "config"}`); `path` prefixes the
/// fields reported. Only `semantic_cache` exists: plugins are never loaded as code.
pub fn read_plugin(
    v: &serde_json::Value,
    path: &str,
) -> Result<ActivePlugin, switchyard_core::ValidationError> {
    let input = switchyard_cache::config::parse_plugin(v, path)?;
    if input.name != switchyard_cache::PLUGIN_NAME {
        let field = if path.is_empty() {
            "name".to_owned()
        } else {
            format!("{path}.name")
        };
        return Err(switchyard_core::ValidationError::new(
            field,
            format!(
                "unknown plugin '{}'; this gateway has the built-in plugin '{}' (plugins are not loaded as code)",
                input.name,
                switchyard_cache::PLUGIN_NAME
            ),
        ));
    }
    let config = input.cache_config(path)?;
    Ok(ActivePlugin { input, config })
}
