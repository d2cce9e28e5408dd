//! Runtime health of keys and providers: the circuit breakers (pure state machines from
//! `switchyard_core::health`) with their last error, kept across config snapshots by key id and provider
//! name, and shown by the management API.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Instant;

use serde::Serialize;
use switchyard_core::config::CircuitBreakerConfig;
use switchyard_core::health::Breaker;

#[derive(Default)]
struct Entry {
    breaker: Breaker,
    last_error: Option<String>,
    last_error_at_ms: Option<u64>,
}

/// Breakers for keys (by id) and providers (by name).
pub struct HealthRegistry {
    started: Instant,
    keys: Mutex<HashMap<String, Entry>>,
    providers: Mutex<HashMap<String, Entry>>,
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

impl Default for HealthRegistry {
    fn default() -> Self {
        Self::new()
    }
}

impl HealthRegistry {
    pub fn new() -> Self {
        HealthRegistry {
            started: Instant::now(),
            keys: Mutex::default(),
            providers: Mutex::default(),
        }
    }

    fn now_ms(&self) -> u64 {
        self.started.elapsed().as_millis() as u64
    }

    fn with<R>(&self, scope: Scope<'_>, f: impl FnOnce(&mut Entry, u64) -> R) -> R {
        let now = self.now_ms();
        let (map, id) = match scope {
            Scope::Key(id) => (&self.keys, id),
            Scope::Provider(name) => (&self.providers, name),
        };
        let mut map = map.lock().unwrap_or_else(|p| p.into_inner());
        match map.get_mut(id) {
            Some(e) => f(e, now),
            None => f(map.entry(id.to_owned()).or_default(), now),
        }
    }

    fn peek<R>(&self, scope: Scope<'_>, f: impl FnOnce(Option<&Entry>, u64) -> R) -> R {
        let now = self.now_ms();
        let (map, id) = match scope {
            Scope::Key(id) => (&self.keys, id),
            Scope::Provider(name) => (&self.providers, name),
        };
        let map = map.lock().unwrap_or_else(|p| p.into_inner());
        f(map.get(id), now)
    }

    pub fn is_available(&self, scope: Scope<'_>, cfg: &CircuitBreakerConfig) -> bool {
        self.peek(scope, |e, now| e.is_none_or(|e| e.breaker.is_available(now, cfg)))
    }

    pub fn on_dispatch(&self, scope: Scope<'_>) {
        // Healthy entries need no write; only breakers that left Closed track probes.
        let tracked = self.peek(scope, |e, _| {
            e.is_some_and(|e| e.breaker.consecutive_failures > 0)
        });
        if tracked {
            self.with(scope, |e, now| e.breaker.on_dispatch(now));
        }
    }

    pub fn on_success(&self, scope: Scope<'_>) {
        let tracked = self.peek(scope, |e, _| {
            e.is_some_and(|e| e.breaker.consecutive_failures > 0)
        });
        if tracked {
            self.with(scope, |e, _| e.breaker.on_success());
        }
    }

    /// Records a failure; returns true when it ejected the key/provider.
    pub fn on_failure(&self, scope: Scope<'_>, cfg: &CircuitBreakerConfig, error: &str) -> bool {
        self.with(scope, |e, now| {
            e.last_error = Some(error.to_owned());
            e.last_error_at_ms = Some(now);
            e.breaker.on_failure(now, cfg)
        })
    }

    pub fn view(&self, scope: Scope<'_>) -> HealthView {
        self.peek(scope, |e, now| match e {
            None => HealthView {
                state: "healthy",
                consecutive_failures: 0,
                retry_in_ms: None,
                last_error: None,
                last_error_age_ms: None,
            },
            Some(e) => HealthView {
                state: e.breaker.label(now),
                consecutive_failures: e.breaker.consecutive_failures,
                retry_in_ms: e.breaker.retry_in_ms(now),
                last_error: e.last_error.clone(),
                last_error_age_ms: e.last_error_at_ms.map(|t| now.saturating_sub(t)),
            },
        })
    }
}
