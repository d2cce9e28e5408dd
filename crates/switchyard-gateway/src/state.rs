//! Shared state: the live config snapshot and the single write path that replaces it.

use std::sync::Arc;

use arc_swap::ArcSwap;
use switchyard_core::config::{KeyInput, ProviderInput};
use switchyard_core::routing::RuntimeConfig;
use switchyard_core::{KeyConfig, ProviderConfig, ValidationError};
use switchyard_store::{ConfigStore, StoreError};
use tokio::sync::Mutex;

use crate::error::GatewayError;
use crate::health::HealthRegistry;
use crate::limits::ProviderLimits;
use crate::metrics::Metrics;
use crate::upstream::UpstreamClient;
use switchyard_logs::LogWriter;

/// Whether request and response bodies go into the request log (global switch; providers can opt in
/// one by one with `store_raw_request_response`), and how much of each.
#[derive(Clone, Copy, Debug)]
pub struct LogContentConfig {
    pub enabled: bool,
    pub max_bytes: usize,
}

pub struct AppState {
    pub config: ConfigService,
    pub upstream: UpstreamClient,
    pub health: HealthRegistry,
    pub limits: ProviderLimits,
    pub metrics: Metrics,
    /// The request log's queue; `None` when request logging is off.
    pub logs: Option<LogWriter>,
    /// The log store behind the writer, for the logs API.
    pub log_store: Option<std::sync::Arc<dyn switchyard_logs::LogStore>>,
    /// OTLP trace exporter; `None` unless an endpoint is configured.
    pub tracer: Option<crate::trace::Tracer>,
    pub log_content: LogContentConfig,
    /// Largest request body accepted, in bytes.
    pub max_body_bytes: usize,
    /// Virtual keys, budgets, rate limits and their counters.
    pub governance: Arc<crate::governance::Governance>,
}

/// Owns the config snapshot. Reads are lock-free (`snapshot()`); writes are serialised, go to the store
/// in one transaction, and then swap in a snapshot rebuilt from what the store holds, so the in-memory
/// view never runs ahead of what survives a restart.
pub struct ConfigService {
    store: Arc<dyn ConfigStore>,
    snapshot: ArcSwap<RuntimeConfig>,
    write_lock: Mutex<()>,
}

fn new_key_id() -> String {
    uuid::Uuid::new_v4().to_string()
}

fn not_found_provider(name: &str) -> GatewayError {
    GatewayError::NotFound {
        message: format!("provider '{name}' not found; list providers with GET /api/providers"),
        code: Some("provider_not_found"),
    }
}

impl ConfigService {
    pub async fn open(store: Arc<dyn ConfigStore>) -> Result<Self, StoreError> {
        let loaded = store.load().await?;
        Ok(ConfigService {
            store,
            snapshot: ArcSwap::from_pointee(build_runtime(loaded)),
            write_lock: Mutex::new(()),
        })
    }

    pub fn snapshot(&self) -> Arc<RuntimeConfig> {
        self.snapshot.load_full()
    }

    pub async fn ping(&self) -> Result<(), StoreError> {
        self.store.ping().await
    }

    async fn reload(&self) -> Result<(), GatewayError> {
        let loaded = self.store.load().await?;
        self.snapshot.store(Arc::new(build_runtime(loaded)));
        Ok(())
    }

    fn current_provider(&self, name: &str) -> Result<ProviderConfig, GatewayError> {
        self.snapshot()
            .provider(name)
            .map(|p| p.config.clone())
            .ok_or_else(|| not_found_provider(name))
    }

    fn current_key(&self, provider: &str, key_id: &str) -> Result<(ProviderConfig, KeyConfig), GatewayError> {
        let snap = self.snapshot();
        let p = snap
            .provider(provider)
            .ok_or_else(|| not_found_provider(provider))?;
        let k = p
            .keys
            .iter()
            .find(|k| k.config.id == key_id)
            .ok_or_else(|| GatewayError::NotFound {
                message: format!("key '{key_id}' not found in provider '{provider}'"),
                code: Some("key_not_found"),
            })?;
        Ok((p.config.clone(), k.config.clone()))
    }

    pub async fn create_provider(&self, mut input: ProviderInput) -> Result<String, GatewayError> {
        let _guard = self.write_lock.lock().await;
        let key_inputs = input.keys.take().unwrap_or_default();
        let provider = input.into_new_provider()?;
        if self.snapshot().provider(provider.name.as_str()).is_some() {
            return Err(GatewayError::Conflict(format!(
                "provider '{}' already exists; change it with PUT /api/providers/{}",
                provider.name, provider.name
            )));
        }
        let mut keys = Vec::with_capacity(key_inputs.len());
        for (i, k) in key_inputs.into_iter().enumerate() {
            let key = k
                .into_new_key(&provider, new_key_id())
                .map_err(|e| ValidationError::new(format!("keys[{i}].{}", e.field), e.message))?;
            keys.push(key);
        }
        self.store.insert_provider(&provider, &keys).await?;
        self.reload().await?;
        Ok(provider.name.to_string())
    }

    pub async fn update_provider(&self, name: &str, input: ProviderInput) -> Result<(), GatewayError> {
        let _guard = self.write_lock.lock().await;
        let current = self.current_provider(name)?;
        let updated = input.apply_update(&current)?;
        self.store.update_provider(&updated).await?;
        self.reload().await
    }

    pub async fn delete_provider(&self, name: &str) -> Result<(), GatewayError> {
        let _guard = self.write_lock.lock().await;
        self.current_provider(name)?;
        self.store.delete_provider(name).await?;
        self.reload().await
    }

    pub async fn create_key(&self, provider: &str, input: KeyInput) -> Result<String, GatewayError> {
        let _guard = self.write_lock.lock().await;
        let p = self.current_provider(provider)?;
        let key = input.into_new_key(&p, new_key_id())?;
        self.store.insert_key(provider, &key).await?;
        self.reload().await?;
        Ok(key.id)
    }

    pub async fn update_key(
        &self,
        provider: &str,
        key_id: &str,
        input: KeyInput,
    ) -> Result<(), GatewayError> {
        let _guard = self.write_lock.lock().await;
        let (p, current) = self.current_key(provider, key_id)?;
        let updated = input.apply_update(&current, &p)?;
        self.store.update_key(provider, &updated).await?;
        self.reload().await
    }

    pub async fn delete_key(&self, provider: &str, key_id: &str) -> Result<(), GatewayError> {
        let _guard = self.write_lock.lock().await;
        self.current_key(provider, key_id)?;
        self.store.delete_key(provider, key_id).await?;
        self.reload().await
    }
}

/// `env.VAR` references are resolved here, whenever a snapshot is built (start-up and every change).
fn build_runtime(loaded: switchyard_store::StoredConfig) -> RuntimeConfig {
    RuntimeConfig::build(loaded, |var| std::env::var(var).ok())
}
