//! Runtime state that lives with a key (by id) or a provider (by name) rather than with a config
//! snapshot: circuit breakers (`health`) and concurrency gates (`limits`).
//!
//! The current state is an immutable map behind an `ArcSwap`: a lookup is a lock-free load plus a hash
//! lookup, and then touches only that entry. `ConfigService` calls [`RuntimeState::sync`] every time it
//! builds a snapshot (start-up, local writes, change notices, resync), before the snapshot is swapped
//! in. `sync` builds the next map: ids still configured keep their entry (the same `Arc`, so breaker
//! counts, open state and in-flight permits all carry over), deleted ones are dropped, new ones start
//! fresh. A provider's gate is resized in place when `concurrency_and_buffer_size` changes.
//!
//! A request holding an older snapshot may look up an id the current map no longer (or does not yet)
//! have; every reader treats a missing entry as healthy and fresh.

pub mod health;
pub mod limits;

use foldhash::HashMapExt;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use arc_swap::ArcSwap;
use switchyard_core::routing::RuntimeConfig;

use crate::runtime_state::health::BreakerCell;
use crate::runtime_state::limits::Gate;

/// The state of one key.
pub struct KeyState {
    pub(crate) health: BreakerCell,
}

/// The state of one provider.
pub struct ProviderState {
    pub(crate) health: BreakerCell,
    pub(crate) gate: Gate,
}

#[derive(Default)]
struct StateMap {
    keys: foldhash::HashMap<String, Arc<KeyState>>,
    providers: foldhash::HashMap<String, Arc<ProviderState>>,
}

/// Per-key and per-provider state of the whole gateway, following the config snapshots.
pub struct RuntimeState {
    started: Instant,
    current: ArcSwap<StateMap>,
    /// Serialises `sync`, so two rebuilds never race (`ConfigService` serialises reloads anyway).
    sync_lock: Mutex<()>,
}

impl Default for RuntimeState {
    fn default() -> Self {
        Self::new()
    }
}

impl RuntimeState {
    /// Empty state; call [`sync`](Self::sync) with the first snapshot.
    pub fn new() -> Self {
        RuntimeState {
            started: Instant::now(),
            current: ArcSwap::from_pointee(StateMap::default()),
            sync_lock: Mutex::new(()),
        }
    }

    /// Milliseconds on the monotonic clock the breakers run on.
    pub(crate) fn now_ms(&self) -> u64 {
        self.started.elapsed().as_millis() as u64
    }

    pub fn key(&self, id: &str) -> Option<Arc<KeyState>> {
        self.current.load().keys.get(id).cloned()
    }

    pub fn provider(&self, name: &str) -> Option<Arc<ProviderState>> {
        self.current.load().providers.get(name).cloned()
    }

    /// Runs `f` on the key's entry without taking a reference count (the hot path).
    pub(crate) fn with_key<R>(&self, id: &str, f: impl FnOnce(Option<&KeyState>) -> R) -> R {
        f(self.current.load().keys.get(id).map(|k| &**k))
    }

    pub(crate) fn with_provider<R>(&self, name: &str, f: impl FnOnce(Option<&ProviderState>) -> R) -> R {
        f(self.current.load().providers.get(name).map(|p| &**p))
    }

    /// Makes the state follow `config`: kept ids keep their entry, deleted ones are dropped, new ones
    /// start fresh; gates take the provider's current sizes.
    pub fn sync(&self, config: &RuntimeConfig) {
        let _guard = self.sync_lock.lock().unwrap_or_else(|p| p.into_inner());
        let old = self.current.load_full();
        let mut next = StateMap {
            keys: HashMapExt::with_capacity(old.keys.len()),
            providers: HashMapExt::with_capacity(config.providers.len()),
        };
        for p in &config.providers {
            let sizes = p.config.concurrency_and_buffer_size;
            let state = match old.providers.get(p.config.name.as_str()) {
                Some(s) => {
                    s.gate.resize(sizes);
                    s.clone()
                }
                None => Arc::new(ProviderState {
                    health: BreakerCell::default(),
                    gate: Gate::new(sizes),
                }),
            };
            next.providers.insert(p.config.name.to_string(), state);
            for k in &p.keys {
                let state = old.keys.get(&k.config.id).cloned().unwrap_or_else(|| {
                    Arc::new(KeyState {
                        health: BreakerCell::default(),
                    })
                });
                next.keys.insert(k.config.id.clone(), state);
            }
        }
        self.current.store(Arc::new(next));
    }

    /// How many keys and providers have state (for tests and diagnostics).
    pub fn counts(&self) -> (usize, usize) {
        let m = self.current.load();
        (m.keys.len(), m.providers.len())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::runtime_state::health::{HealthRegistry, Scope};
    use crate::runtime_state::limits::ProviderLimits;
    use switchyard_core::config::{CircuitBreakerConfig, ConcurrencyAndBufferSize, KeyInput, ProviderInput};
    use switchyard_core::{KeyConfig, ProviderConfig};

    const CB: CircuitBreakerConfig = CircuitBreakerConfig {
        failure_threshold: 2,
        cooldown_in_seconds: 60,
    };

    fn provider(name: &str, concurrency: u32, buffer: u32) -> ProviderConfig {
        serde_json::from_value::<ProviderInput>(serde_json::json!({
            "provider": name,
            "network_config": {"base_url": "https://example.invalid/v1"},
            "custom_provider_config": {"base_provider_type": "openai"},
            "concurrency_and_buffer_size": {"concurrency": concurrency, "buffer_size": buffer},
        }))
        .unwrap()
        .into_new_provider()
        .unwrap()
    }

    fn key(p: &ProviderConfig, id: &str, name: &str) -> KeyConfig {
        serde_json::from_value::<KeyInput>(
            serde_json::json!({"name": name, "value": "sk-x", "models": ["*"]}),
        )
        .unwrap()
        .into_new_key(p, id.to_owned())
        .unwrap()
    }

    fn config(entries: Vec<(ProviderConfig, Vec<KeyConfig>)>) -> RuntimeConfig {
        RuntimeConfig::build(entries, |_| None)
    }

    /// Provider `a` (keys k1, k2) and provider `b` (key k3).
    fn two_providers() -> RuntimeConfig {
        let a = provider("a", 2, 0);
        let b = provider("b", 1, 0);
        let (k1, k2, k3) = (key(&a, "k1", "one"), key(&a, "k2", "two"), key(&b, "k3", "three"));
        config(vec![(a, vec![k1, k2]), (b, vec![k3])])
    }

    fn registries() -> (Arc<RuntimeState>, HealthRegistry, ProviderLimits) {
        let state = Arc::new(RuntimeState::new());
        let health = HealthRegistry::new(state.clone());
        let limits = ProviderLimits::new(state.clone());
        (state, health, limits)
    }

    fn eject(health: &HealthRegistry, scope: Scope<'_>) {
        health.on_failure(scope, &CB, "boom");
        assert!(health.on_failure(scope, &CB, "boom"), "second failure ejects");
        assert!(!health.is_available(scope, &CB));
    }

    #[test]
    fn kept_ids_carry_their_breakers_over_a_swap() {
        let (state, health, _) = registries();
        state.sync(&two_providers());
        eject(&health, Scope::Key("k1"));
        eject(&health, Scope::Provider("b"));
        health.on_failure(Scope::Key("k2"), &CB, "once");
        let before = state.key("k1").unwrap();

        // An unrelated change: provider `c` added.
        let mut next = two_providers();
        let c = provider("c", 1, 0);
        let k4 = key(&c, "k4", "four");
        next = config(
            next.providers
                .drain(..)
                .map(|p| (p.config, p.keys.into_iter().map(|k| k.config).collect()))
                .chain([(c, vec![k4])])
                .collect(),
        );
        state.sync(&next);

        assert!(Arc::ptr_eq(&before, &state.key("k1").unwrap()), "same entry");
        assert!(!health.is_available(Scope::Key("k1"), &CB));
        assert_eq!(health.view(Scope::Key("k1")).state, "ejected");
        assert_eq!(health.view(Scope::Key("k1")).last_error.as_deref(), Some("boom"));
        assert!(!health.is_available(Scope::Provider("b"), &CB));
        assert_eq!(health.view(Scope::Key("k2")).consecutive_failures, 1);
        assert!(health.is_available(Scope::Key("k4"), &CB));
        assert_eq!(health.view(Scope::Provider("c")).state, "healthy");
        assert_eq!(state.counts(), (4, 3));
    }

    #[test]
    fn deleted_ids_drop_their_state_and_return_fresh() {
        let (state, health, _) = registries();
        state.sync(&two_providers());
        eject(&health, Scope::Key("k1"));
        eject(&health, Scope::Provider("b"));
        let weak_key = Arc::downgrade(&state.key("k1").unwrap());
        let weak_provider = Arc::downgrade(&state.provider("b").unwrap());

        // k1 deleted from `a`, provider `b` deleted.
        let a = provider("a", 2, 0);
        let k2 = key(&a, "k2", "two");
        state.sync(&config(vec![(a.clone(), vec![k2.clone()])]));
        assert_eq!(state.counts(), (1, 1));
        assert!(weak_key.upgrade().is_none(), "the key's state is freed");
        assert!(weak_provider.upgrade().is_none(), "the provider's state is freed");

        // A late caller with the old snapshot sees the missing ids as healthy and never panics.
        assert!(health.is_available(Scope::Key("k1"), &CB));
        health.on_dispatch(Scope::Key("k1"));
        health.on_success(Scope::Key("k1"));
        assert!(!health.on_failure(Scope::Key("k1"), &CB, "late"));
        assert_eq!(health.view(Scope::Provider("b")).state, "healthy");

        // Re-added (same id, same name): fresh.
        let b = provider("b", 1, 0);
        let (k1, k3) = (key(&a, "k1", "one"), key(&b, "k3", "three"));
        state.sync(&config(vec![(a, vec![k1, k2]), (b, vec![k3])]));
        assert_eq!(health.view(Scope::Key("k1")).state, "healthy");
        assert_eq!(health.view(Scope::Key("k1")).consecutive_failures, 0);
        assert!(health.is_available(Scope::Provider("b"), &CB));
    }

    #[tokio::test]
    async fn permits_survive_a_swap() {
        let (state, _, limits) = registries();
        state.sync(&two_providers());
        let sizes = ConcurrencyAndBufferSize {
            concurrency: 2,
            buffer_size: 0,
        };
        let p1 = limits.acquire("a", sizes).await.unwrap();
        let p2 = limits.acquire("a", sizes).await.unwrap();
        assert!(limits.acquire("a", sizes).await.is_err(), "full");

        state.sync(&two_providers());
        assert!(
            limits.acquire("a", sizes).await.is_err(),
            "still full after the swap"
        );
        drop(p1);
        let p3 = limits.acquire("a", sizes).await.unwrap();
        assert!(limits.acquire("a", sizes).await.is_err());
        drop((p2, p3));
        let _both = (
            limits.acquire("a", sizes).await.unwrap(),
            limits.acquire("a", sizes).await.unwrap(),
        );
    }

    fn with_sizes(concurrency: u32, buffer: u32) -> RuntimeConfig {
        let a = provider("a", concurrency, buffer);
        let k = key(&a, "k1", "one");
        config(vec![(a, vec![k])])
    }

    #[tokio::test]
    async fn a_resized_gate_applies_to_new_requests_and_old_permits_return() {
        let (state, _, limits) = registries();
        state.sync(&with_sizes(3, 0));
        let any = ConcurrencyAndBufferSize {
            concurrency: 3,
            buffer_size: 0,
        };
        let held: Vec<_> = futures_collect(&limits, any, 3).await;
        assert!(limits.acquire("a", any).await.is_err());

        // Shrunk to 1 while 3 are in flight: nothing new starts until the in-flight calls are down
        // to below the new limit.
        state.sync(&with_sizes(1, 0));
        let mut held = held;
        held.pop();
        tokio::task::yield_now().await;
        assert!(limits.acquire("a", any).await.is_err(), "2 in flight > 1");
        held.pop();
        tokio::task::yield_now().await;
        assert!(limits.acquire("a", any).await.is_err(), "1 in flight = 1");
        held.pop();
        tokio::task::yield_now().await;
        let one = limits.acquire("a", any).await.unwrap();
        assert!(limits.acquire("a", any).await.is_err(), "limit is 1 now");

        // Grown to 4: three more at once.
        state.sync(&with_sizes(4, 0));
        let more = futures_collect(&limits, any, 3).await;
        assert!(limits.acquire("a", any).await.is_err());
        drop((one, more));
        assert_eq!(futures_collect(&limits, any, 4).await.len(), 4);
    }

    #[tokio::test]
    async fn a_grown_buffer_lets_requests_wait() {
        let (state, _, limits) = registries();
        state.sync(&with_sizes(1, 0));
        let any = ConcurrencyAndBufferSize {
            concurrency: 1,
            buffer_size: 0,
        };
        let held = limits.acquire("a", any).await.unwrap();
        assert!(limits.acquire("a", any).await.is_err());
        state.sync(&with_sizes(1, 1));
        let limits = Arc::new(limits);
        let waiter = tokio::spawn({
            let limits = limits.clone();
            async move { limits.acquire("a", any).await.is_ok() }
        });
        tokio::task::yield_now().await;
        drop(held);
        assert!(waiter.await.unwrap());
    }

    #[tokio::test]
    async fn an_unknown_provider_is_not_limited_and_does_not_panic() {
        let (state, _, limits) = registries();
        state.sync(&two_providers());
        let sizes = ConcurrencyAndBufferSize {
            concurrency: 1,
            buffer_size: 0,
        };
        let _a = limits.acquire("gone", sizes).await.unwrap();
        let _b = limits.acquire("gone", sizes).await.unwrap();
    }

    /// A shared store written by "another replica": the test edits `data` and sends a notice.
    struct SharedStore {
        data: Mutex<switchyard_store::StoredConfig>,
        feed: Mutex<Option<switchyard_store::ChangeFeed>>,
    }

    #[async_trait::async_trait]
    impl switchyard_store::ConfigStore for SharedStore {
        async fn load(&self) -> Result<switchyard_store::StoredConfig, switchyard_store::StoreError> {
            Ok(self.data.lock().unwrap().clone())
        }
        async fn insert_provider(
            &self,
            provider: &ProviderConfig,
            keys: &[KeyConfig],
        ) -> Result<(), switchyard_store::StoreError> {
            self.data.lock().unwrap().push((provider.clone(), keys.to_vec()));
            Ok(())
        }
        async fn update_provider(&self, _: &ProviderConfig) -> Result<(), switchyard_store::StoreError> {
            Err(switchyard_store::StoreError::ReadOnly)
        }
        async fn delete_provider(&self, _: &str) -> Result<(), switchyard_store::StoreError> {
            Err(switchyard_store::StoreError::ReadOnly)
        }
        async fn insert_key(&self, _: &str, _: &KeyConfig) -> Result<(), switchyard_store::StoreError> {
            Err(switchyard_store::StoreError::ReadOnly)
        }
        async fn update_key(&self, _: &str, _: &KeyConfig) -> Result<(), switchyard_store::StoreError> {
            Err(switchyard_store::StoreError::ReadOnly)
        }
        async fn delete_key(&self, _: &str, _: &str) -> Result<(), switchyard_store::StoreError> {
            Err(switchyard_store::StoreError::ReadOnly)
        }
        async fn ping(&self) -> Result<(), switchyard_store::StoreError> {
            Ok(())
        }
        async fn watch_changes(
            &self,
        ) -> Result<Option<switchyard_store::ChangeFeed>, switchyard_store::StoreError> {
            Ok(self.feed.lock().unwrap().take())
        }
    }

    /// Every path by which `ConfigService` swaps a snapshot moves the state along: a local write, a
    /// change notice from another replica, a resync after a lost listener.
    #[tokio::test]
    async fn every_snapshot_swap_of_the_config_service_syncs_the_state() {
        use switchyard_store::StoreChange;
        let a = provider("a", 2, 0);
        let b = provider("b", 1, 0);
        let (k1, k2, k3) = (key(&a, "k1", "one"), key(&a, "k2", "two"), key(&b, "k3", "three"));
        let (notify, feed) = tokio::sync::mpsc::channel(4);
        let store = Arc::new(SharedStore {
            data: Mutex::new(vec![(a.clone(), vec![k1.clone(), k2]), (b, vec![k3])]),
            feed: Mutex::new(Some(feed)),
        });
        let service = crate::state::ConfigService::open(store.clone()).await.unwrap();
        assert!(service
            .follow_changes(std::time::Duration::from_secs(3600))
            .await
            .unwrap());
        let state = service.runtime_state();
        let health = HealthRegistry::new(state.clone());
        assert_eq!(state.counts(), (3, 2), "synced at open");
        eject(&health, Scope::Key("k1"));
        eject(&health, Scope::Provider("b"));

        // A local write through the API path.
        let input: ProviderInput = serde_json::from_value(serde_json::json!({
            "provider": "c", "network_config": {"base_url": "https://example.invalid/v1"},
            "custom_provider_config": {"base_provider_type": "openai"}
        }))
        .unwrap();
        service.create_provider(input).await.unwrap();
        assert_eq!(state.counts(), (3, 3));
        assert!(!health.is_available(Scope::Key("k1"), &CB));

        // Another replica deletes k2 and provider b; its notice arrives.
        let wait_for = |keys: usize, providers: usize| {
            let state = state.clone();
            async move {
                for _ in 0..200 {
                    if state.counts() == (keys, providers) {
                        return;
                    }
                    tokio::time::sleep(std::time::Duration::from_millis(5)).await;
                }
                panic!(
                    "state never reached {keys} keys, {providers} providers: {:?}",
                    state.counts()
                );
            }
        };
        {
            let mut data = store.data.lock().unwrap();
            data.retain(|(p, _)| p.name.as_str() != "b");
            data[0].1.retain(|k| k.id != "k2");
        }
        notify.send(StoreChange::Changed).await.unwrap();
        wait_for(1, 2).await;
        assert!(!health.is_available(Scope::Key("k1"), &CB), "k1 kept its breaker");
        assert_eq!(health.view(Scope::Provider("b")).state, "healthy");

        // The listener reconnects; the resync brings provider b back, fresh.
        let b = provider("b", 1, 0);
        let k3 = key(&b, "k3", "three");
        store.data.lock().unwrap().push((b, vec![k3]));
        notify.send(StoreChange::Resync).await.unwrap();
        wait_for(2, 3).await;
        assert!(health.is_available(Scope::Provider("b"), &CB));
        assert!(!health.is_available(Scope::Key("k1"), &CB));
        assert!(service.snapshot().provider("b").is_some());
    }

    async fn futures_collect(
        limits: &ProviderLimits,
        sizes: ConcurrencyAndBufferSize,
        n: usize,
    ) -> Vec<tokio::sync::OwnedSemaphorePermit> {
        let mut out = Vec::with_capacity(n);
        for _ in 0..n {
            out.push(limits.acquire("a", sizes).await.unwrap());
        }
        out
    }
}
