//! `concurrency_and_buffer_size`: at most `concurrency` upstream calls in flight per provider and at
//! most `buffer_size` requests waiting for a slot; beyond that the provider counts as full (the request
//! falls back, or gets 503). Semaphores, not a task per slot.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};

use switchyard_core::config::ConcurrencyAndBufferSize;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

struct Gate {
    sizes: ConcurrencyAndBufferSize,
    slots: Arc<Semaphore>,
    waiting: AtomicU32,
}

#[derive(Default)]
pub struct ProviderLimits {
    gates: Mutex<HashMap<String, Arc<Gate>>>,
}

/// The provider has `concurrency` calls in flight and `buffer_size` waiting.
#[derive(Debug)]
pub struct QueueFull;

struct WaitingGuard<'a>(&'a AtomicU32);

impl Drop for WaitingGuard<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::AcqRel);
    }
}

impl ProviderLimits {
    fn gate(&self, provider: &str, sizes: ConcurrencyAndBufferSize) -> Arc<Gate> {
        let mut gates = self.gates.lock().unwrap_or_else(|p| p.into_inner());
        match gates.get(provider) {
            Some(g) if g.sizes == sizes => g.clone(),
            // New provider, or its sizes changed: calls in flight keep their old permits.
            _ => {
                let g = Arc::new(Gate {
                    sizes,
                    slots: Arc::new(Semaphore::new(sizes.concurrency as usize)),
                    waiting: AtomicU32::new(0),
                });
                gates.insert(provider.to_owned(), g.clone());
                g
            }
        }
    }

    pub async fn acquire(
        &self,
        provider: &str,
        sizes: ConcurrencyAndBufferSize,
    ) -> Result<OwnedSemaphorePermit, QueueFull> {
        let gate = self.gate(provider, sizes);
        if let Ok(p) = gate.slots.clone().try_acquire_owned() {
            return Ok(p);
        }
        if gate.waiting.fetch_add(1, Ordering::AcqRel) >= sizes.buffer_size {
            gate.waiting.fetch_sub(1, Ordering::AcqRel);
            return Err(QueueFull);
        }
        let _waiting = WaitingGuard(&gate.waiting);
        gate.slots.clone().acquire_owned().await.map_err(|_| QueueFull)
    }
}
