//! `concurrency_and_buffer_size`: at most `concurrency` upstream calls in flight per provider and at
//! most `buffer_size` requests waiting for a slot; beyond that the provider counts as full (the request
//! falls back, or gets 503). Semaphores, not a task per slot.
//!
//! Each provider's [`Gate`] lives in its [`RuntimeState`] entry, so it survives config changes (calls
//! in flight keep counting) and is dropped with the provider. When the sizes change the gate is resized
//! in place: a larger `concurrency` adds permits at once; a smaller one takes back the free permits and
//! owes the rest, which a take-back queued on the semaphore (FIFO: after the requests already waiting)
//! forgets as calls in flight return theirs. In flight never exceeds the larger of the old and new
//! limits, and no request arriving after the change starts until the calls are below the new limit.

use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;

use switchyard_core::config::ConcurrencyAndBufferSize;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use crate::runtime_state::RuntimeState;

/// One provider's slots and waiting room.
pub(crate) struct Gate {
    slots: Arc<Semaphore>,
    /// The configured concurrency (the semaphore's size once owed permits are taken back).
    concurrency: AtomicU32,
    buffer_size: AtomicU32,
    waiting: AtomicU32,
}

impl Gate {
    pub(crate) fn new(sizes: ConcurrencyAndBufferSize) -> Self {
        Gate {
            slots: Arc::new(Semaphore::new(sizes.concurrency as usize)),
            concurrency: AtomicU32::new(sizes.concurrency),
            buffer_size: AtomicU32::new(sizes.buffer_size),
            waiting: AtomicU32::new(0),
        }
    }

    /// Applies new sizes to this gate; permits in flight stay valid. Called by `RuntimeState::sync`
    /// only (one at a time).
    pub(crate) fn resize(&self, sizes: ConcurrencyAndBufferSize) {
        self.buffer_size.store(sizes.buffer_size, Ordering::Release);
        let old = self.concurrency.swap(sizes.concurrency, Ordering::AcqRel);
        if sizes.concurrency > old {
            // Goes to an outstanding debt first (the semaphore queue is FIFO), which is the right sum.
            self.slots.add_permits((sizes.concurrency - old) as usize);
        } else if sizes.concurrency < old {
            let shrink = (old - sizes.concurrency) as usize;
            let owed = shrink - self.slots.forget_permits(shrink);
            if owed > 0 {
                // Queue for the rest behind the waiters already queued and forget them as they come
                // back; until then, newcomers find no free slot.
                let slots = self.slots.clone();
                let take_back = async move {
                    if let Ok(p) = slots.acquire_many_owned(owed as u32).await {
                        p.forget();
                    }
                };
                match tokio::runtime::Handle::try_current() {
                    Ok(rt) => {
                        rt.spawn(take_back);
                    }
                    // Only outside a runtime (never in the gateway): the old size stays in force
                    // for the permits that were in flight.
                    Err(_) => tracing::warn!(owed, "gate shrunk outside a runtime; permits not taken back"),
                }
            }
        }
    }
}

/// The concurrency gates of all providers, read from the [`RuntimeState`] that follows the config.
pub struct ProviderLimits {
    state: Arc<RuntimeState>,
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
    pub fn new(state: Arc<RuntimeState>) -> Self {
        ProviderLimits { state }
    }

    /// A slot on `provider`'s gate. The gate carries the sizes of the newest config; `sizes` (from the
    /// caller's snapshot) is used only for a provider the state does not know (deleted since the
    /// caller's snapshot was taken): that call gets a gate of its own.
    pub async fn acquire(
        &self,
        provider: &str,
        sizes: ConcurrencyAndBufferSize,
    ) -> Result<OwnedSemaphorePermit, QueueFull> {
        let state = self.state.provider(provider);
        let detached;
        let gate = match &state {
            Some(p) => &p.gate,
            None => {
                detached = Gate::new(sizes);
                &detached
            }
        };
        if let Ok(p) = gate.slots.clone().try_acquire_owned() {
            return Ok(p);
        }
        let buffer = gate.buffer_size.load(Ordering::Acquire);
        if gate.waiting.fetch_add(1, Ordering::AcqRel) >= buffer {
            gate.waiting.fetch_sub(1, Ordering::AcqRel);
            return Err(QueueFull);
        }
        let _waiting = WaitingGuard(&gate.waiting);
        gate.slots.clone().acquire_owned().await.map_err(|_| QueueFull)
    }
}
