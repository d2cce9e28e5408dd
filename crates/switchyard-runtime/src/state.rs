//! Shared state: the live config snapshot and the single write path that replaces it.

use std::sync::Arc;
use std::time::Duration;

use arc_swap::ArcSwap;
use switchyard_core::config::{KeyInput, ProviderInput};
use switchyard_core::routing::RuntimeConfig;
use switchyard_core::{KeyConfig, ProviderConfig, ValidationError};
use switchyard_store::{ConfigStore, StoreChange, StoreError};
use tokio::sync::Mutex;

use crate::error::GatewayError;
use crate::metrics::Metrics;
use crate::runtime_state::health::HealthRegistry;
use crate::runtime_state::limits::ProviderLimits;
use crate::runtime_state::RuntimeState;
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
    /// LiteLLM's master key and the admin tokens, as digests (`switchyard_admin::litellm`).
    pub master_keys: switchyard_core::litellm::MasterKeys,
    /// The model lists read from providers with `model_discovery` (a routing input; written by the
    /// proxy's discovery task and the admin `refresh-models` endpoint).
    pub model_lists: arc_swap::ArcSwap<switchyard_core::discovery::ModelLists>,
    /// Listening on a loopback address only: inference open without a virtual key then refuses what
    /// only a browser on another site would send (`switchyard_runtime::browser`).
    pub loopback_bind: bool,
    /// The response cache (`semantic_cache` plugin) and its store.
    pub cache: Arc<crate::cache::ResponseCache>,
    /// Seals secrets kept in the governance store (MCP client header values); `None` without
    /// `SWITCHYARD_ENCRYPTION_KEY`.
    pub sealing: Option<switchyard_store::SealingKey>,
}

/// Owns the config snapshot. Reads are lock-free (`snapshot()`); writes are serialised, go to the store
/// in one transaction, and then swap in a snapshot rebuilt from what the store holds, so the in-memory
/// view never runs ahead of what survives a restart.
pub struct ConfigService {
    store: Arc<dyn ConfigStore>,
    snapshot: Arc<ArcSwap<RuntimeConfig>>,
    write_lock: Mutex<()>,
    /// Serialises reloads (after local writes, and on change notices from other replicas), so a
    /// reload that read older data can never replace the snapshot of one that read newer data.
    reload_lock: Arc<Mutex<()>>,
    /// Set when the config comes from `config.json` alone: every management write is refused.
    read_only: bool,
    /// Bumped after every reload caused by another writer of a shared store (notice or resync), so
    /// state kept beside the config (governance) can reload from the same store too.
    reloads: tokio::sync::watch::Sender<u64>,
    following: std::sync::atomic::AtomicBool,
    /// Breakers and concurrency gates by key id / provider name, synced before each snapshot swap.
    runtime_state: Arc<RuntimeState>,
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
        let runtime = build_runtime(loaded);
        let runtime_state = Arc::new(RuntimeState::new());
        runtime_state.sync(&runtime);
        Ok(ConfigService {
            store,
            snapshot: Arc::new(ArcSwap::from_pointee(runtime)),
            write_lock: Mutex::new(()),
            reload_lock: Arc::new(Mutex::new(())),
            read_only: false,
            reloads: tokio::sync::watch::Sender::new(0),
            following: std::sync::atomic::AtomicBool::new(false),
            runtime_state,
        })
    }

    /// A service whose management writes are all refused (`405`, `config_read_only`).
    pub async fn open_read_only(store: Arc<dyn ConfigStore>) -> Result<Self, StoreError> {
        let mut service = Self::open(store).await?;
        service.read_only = true;
        Ok(service)
    }

    pub fn is_read_only(&self) -> bool {
        self.read_only
    }

    /// `405 config_read_only` when the config comes from a file alone.
    pub fn check_writable(&self) -> Result<(), GatewayError> {
        if self.read_only {
            return Err(GatewayError::Store(StoreError::ReadOnly));
        }
        Ok(())
    }

    /// Applies changes other replicas commit to a shared store: reloads the snapshot on every change
    /// notice, and also every `resync_every` as a safety net (a notice lost with a connection is
    /// covered by the store's resync notice; this covers anything else). Returns `false` when the
    /// store has no other writers to follow. The task ends when the service is dropped.
    pub async fn follow_changes(&self, resync_every: Duration) -> Result<bool, StoreError> {
        let Some(mut feed) = self.store.watch_changes().await? else {
            return Ok(false);
        };
        let store = self.store.clone();
        let snapshot = Arc::downgrade(&self.snapshot);
        let reload_lock = self.reload_lock.clone();
        let reloads = self.reloads.clone();
        let runtime_state = self.runtime_state.clone();
        self.following.store(true, std::sync::atomic::Ordering::Relaxed);
        tokio::spawn(async move {
            // A zero period would make `interval` panic; a reload per second is plenty as a floor.
            let mut resync = tokio::time::interval(resync_every.max(Duration::from_secs(1)));
            resync.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            resync.tick().await; // the first tick is immediate; the snapshot is fresh already
            loop {
                let why = tokio::select! {
                    change = feed.recv() => match change {
                        Some(StoreChange::Changed) => "change notice",
                        Some(StoreChange::Resync) => "listener reconnected",
                        None => return,
                    },
                    _ = resync.tick() => "periodic resync",
                };
                let Some(snapshot) = snapshot.upgrade() else {
                    return;
                };
                if let Err(e) = reload_into(store.as_ref(), &snapshot, &runtime_state, &reload_lock).await {
                    // The old snapshot keeps serving; the next notice or resync tries again.
                    tracing::warn!(error = %e, why, "config reload failed");
                } else {
                    tracing::debug!(why, "config reloaded from the store");
                }
                reloads.send_modify(|n| *n += 1);
            }
        });
        Ok(true)
    }

    /// The per-key / per-provider state that follows this service's snapshots.
    pub fn runtime_state(&self) -> Arc<RuntimeState> {
        self.runtime_state.clone()
    }

    pub fn snapshot(&self) -> Arc<RuntimeConfig> {
        self.snapshot.load_full()
    }

    /// Whether `follow_changes` found other writers to follow.
    pub fn follows_changes(&self) -> bool {
        self.following.load(std::sync::atomic::Ordering::Relaxed)
    }

    /// Changes whenever the store told us another writer changed something (see `follow_changes`).
    pub fn reload_notices(&self) -> tokio::sync::watch::Receiver<u64> {
        self.reloads.subscribe()
    }

    pub async fn ping(&self) -> Result<(), StoreError> {
        self.store.ping().await
    }

    async fn reload(&self) -> Result<(), GatewayError> {
        reload_into(
            self.store.as_ref(),
            &self.snapshot,
            &self.runtime_state,
            &self.reload_lock,
        )
        .await?;
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
        self.check_writable()?;
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
        self.check_writable()?;
        let _guard = self.write_lock.lock().await;
        let current = self.current_provider(name)?;
        let updated = input.apply_update(&current)?;
        self.store.update_provider(&updated).await?;
        self.reload().await
    }

    pub async fn delete_provider(&self, name: &str) -> Result<(), GatewayError> {
        self.check_writable()?;
        let _guard = self.write_lock.lock().await;
        self.current_provider(name)?;
        self.store.delete_provider(name).await?;
        self.reload().await
    }

    pub async fn create_key(&self, provider: &str, input: KeyInput) -> Result<String, GatewayError> {
        self.check_writable()?;
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
        self.check_writable()?;
        let _guard = self.write_lock.lock().await;
        let (p, current) = self.current_key(provider, key_id)?;
        let updated = input.apply_update(&current, &p)?;
        self.store.update_key(provider, &updated).await?;
        self.reload().await
    }

    pub async fn delete_key(&self, provider: &str, key_id: &str) -> Result<(), GatewayError> {
        self.check_writable()?;
        let _guard = self.write_lock.lock().await;
        self.current_key(provider, key_id)?;
        self.store.delete_key(provider, key_id).await?;
        self.reload().await
    }
}

async fn reload_into(
    store: &dyn ConfigStore,
    snapshot: &ArcSwap<RuntimeConfig>,
    runtime_state: &RuntimeState,
    reload_lock: &Mutex<()>,
) -> Result<(), StoreError> {
    let _guard = reload_lock.lock().await;
    let loaded = store.load().await?;
    let runtime = build_runtime(loaded);
    // State first: a request on the new snapshot finds every id it names.
    runtime_state.sync(&runtime);
    snapshot.store(Arc::new(runtime));
    Ok(())
}

/// `env.VAR` references are resolved here, whenever a snapshot is built (start-up and every change).
fn build_runtime(loaded: switchyard_store::StoredConfig) -> RuntimeConfig {
    RuntimeConfig::build(loaded, |var| std::env::var(var).ok())
}
