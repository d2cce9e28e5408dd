//! Runtime health of keys and providers: the circuit breakers (pure state machines from
//! `switchyard_core::health`) with their last error, one per key id and provider name, living in the
//! [`RuntimeState`] entry of that key or provider (so they follow config snapshots and disappear with
//! the key or provider), and shown by the management API.

use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};

use serde::Serialize;
use switchyard_core::config::CircuitBreakerConfig;
use switchyard_core::health::Breaker;

use crate::runtime_state::RuntimeState;

#[derive(Default)]
struct Entry {
    breaker: Breaker,
    last_error: Option<String>,
    last_error_at_ms: Option<u64>,
}

/// One breaker with its last error. `failures` mirrors `breaker.consecutive_failures` (written under
/// the lock): zero means closed, so the common healthy case reads one atomic and takes no lock.
#[derive(Default)]
pub(crate) struct BreakerCell {
    failures: AtomicU32,
    entry: Mutex<Entry>,
}

impl BreakerCell {
    fn lock(&self) -> std::sync::MutexGuard<'_, Entry> {
        self.entry.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn tripped(&self) -> bool {
        self.failures.load(Ordering::Acquire) > 0
    }

    fn is_available(&self, now: u64, cfg: &CircuitBreakerConfig) -> bool {
        !self.tripped() || self.lock().breaker.is_available(now, cfg)
    }

    fn on_dispatch(&self, now: u64) {
        // Only breakers that left Closed track probes.
        if self.tripped() {
            self.lock().breaker.on_dispatch(now);
        }
    }

    fn on_success(&self) {
        if self.tripped() {
            let mut e = self.lock();
            e.breaker.on_success();
            self.failures.store(0, Ordering::Release);
        }
    }

    fn on_failure(&self, now: u64, cfg: &CircuitBreakerConfig, error: &str) -> bool {
        let mut e = self.lock();
        e.last_error = Some(error.to_owned());
        e.last_error_at_ms = Some(now);
        let ejected = e.breaker.on_failure(now, cfg);
        self.failures
            .store(e.breaker.consecutive_failures, Ordering::Release);
        ejected
    }

    fn view(&self, now: u64) -> HealthView {
        let e = self.lock();
        HealthView {
            state: e.breaker.label(now),
            consecutive_failures: e.breaker.consecutive_failures,
            retry_in_ms: e.breaker.retry_in_ms(now),
            last_error: e.last_error.clone(),
            last_error_age_ms: e.last_error_at_ms.map(|t| now.saturating_sub(t)),
        }
    }
}

/// Breakers for keys (by id) and providers (by name), read from the [`RuntimeState`] that follows the
/// config snapshots. An id without state (deleted, or not yet in the state) counts as healthy, and
/// events about it are dropped.
pub struct HealthRegistry {
    state: Arc<RuntimeState>,
}

#[derive(Serialize)]
pub struct HealthView {
    /// `healthy`, `ejected` or `half_open`.
    pub state: &'static str,
    pub consecutive_failures: u32,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub retry_in_ms: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_error: Option<String>,
    /// Seconds since this gateway started, when the last error happened.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_error_age_ms: Option<u64>,
}

#[derive(Clone, Copy)]
pub enum Scope<'a> {
    Key(&'a str),
    Provider(&'a str),
}

impl HealthRegistry {
    pub fn new(state: Arc<RuntimeState>) -> Self {
        HealthRegistry { state }
    }

    fn with<R>(&self, scope: Scope<'_>, f: impl FnOnce(Option<&BreakerCell>, u64) -> R) -> R {
        let now = self.state.now_ms();
        match scope {
            Scope::Key(id) => self.state.with_key(id, |k| f(k.map(|k| &k.health), now)),
            Scope::Provider(name) => self.state.with_provider(name, |p| f(p.map(|p| &p.health), now)),
        }
    }

    pub fn is_available(&self, scope: Scope<'_>, cfg: &CircuitBreakerConfig) -> bool {
        self.with(scope, |c, now| c.is_none_or(|c| c.is_available(now, cfg)))
    }

    pub fn on_dispatch(&self, scope: Scope<'_>) {
        self.with(scope, |c, now| {
            if let Some(c) = c {
                c.on_dispatch(now)
            }
        })
    }

    pub fn on_success(&self, scope: Scope<'_>) {
        self.with(scope, |c, _| {
            if let Some(c) = c {
                c.on_success()
            }
        })
    }

    /// Records a failure; returns true when it ejected the key/provider.
    pub fn on_failure(&self, scope: Scope<'_>, cfg: &CircuitBreakerConfig, error: &str) -> bool {
        self.with(scope, |c, now| c.is_some_and(|c| c.on_failure(now, cfg, error)))
    }

    pub fn view(&self, scope: Scope<'_>) -> HealthView {
        self.with(scope, |c, now| match c {
            Some(c) => c.view(now),
            None => HealthView {
                state: "healthy",
                consecutive_failures: 0,
                retry_in_ms: None,
                last_error: None,
                last_error_age_ms: None,
            },
        })
    }
}
