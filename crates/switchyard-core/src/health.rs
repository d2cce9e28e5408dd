//! The passive circuit breaker kept for every key and every provider.
//!
//! Closed → (after `failure_threshold` consecutive failures) Open for `cooldown` → HalfOpen: exactly one
//! probe request may go through; its success closes the breaker, its failure opens it again. A probe that
//! never reports (its client went away) stops blocking after another cooldown. Time is passed in as
//! milliseconds on a monotonic clock, so the state machine is pure.

use serde::Serialize;

use crate::config::CircuitBreakerConfig;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum BreakerState {
    Closed,
    /// Ejected until the given time.
    Open {
        until_ms: u64,
    },
    /// Cooldown over; a probe started at `probe_started_ms` (if any) decides.
    HalfOpen {
        probe_started_ms: Option<u64>,
    },
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Breaker {
    pub state: BreakerState,
    pub consecutive_failures: u32,
}

impl Default for Breaker {
    fn default() -> Self {
        Breaker {
            state: BreakerState::Closed,
            consecutive_failures: 0,
        }
    }
}

impl Breaker {
    /// Whether a request may be sent now (no side effects).
    pub fn is_available(&self, now_ms: u64, cfg: &CircuitBreakerConfig) -> bool {
        match self.state {
            BreakerState::Closed => true,
            BreakerState::Open { until_ms } => now_ms >= until_ms,
            BreakerState::HalfOpen {
                probe_started_ms: None,
            } => true,
            BreakerState::HalfOpen {
                probe_started_ms: Some(t),
            } => now_ms >= t + cfg.cooldown_in_seconds * 1000,
        }
    }

    /// Records that a request is being sent; in the half-open state it becomes the probe.
    pub fn on_dispatch(&mut self, now_ms: u64) {
        match self.state {
            BreakerState::Open { until_ms } if now_ms >= until_ms => {
                self.state = BreakerState::HalfOpen {
                    probe_started_ms: Some(now_ms),
                }
            }
            BreakerState::HalfOpen { .. } => {
                self.state = BreakerState::HalfOpen {
                    probe_started_ms: Some(now_ms),
                }
            }
            _ => {}
        }
    }

    pub fn on_success(&mut self) {
        *self = Breaker::default();
    }

    /// Returns true when this failure ejected the key (the breaker just opened).
    pub fn on_failure(&mut self, now_ms: u64, cfg: &CircuitBreakerConfig) -> bool {
        self.consecutive_failures = self.consecutive_failures.saturating_add(1);
        let open = match self.state {
            BreakerState::HalfOpen { .. } | BreakerState::Open { .. } => true,
            BreakerState::Closed => self.consecutive_failures >= cfg.failure_threshold,
        };
        if open {
            self.state = BreakerState::Open {
                until_ms: now_ms + cfg.cooldown_in_seconds * 1000,
            };
        }
        open
    }

    /// `healthy`, `ejected` or `half_open`, as shown by the management API.
    pub fn label(&self, now_ms: u64) -> &'static str {
        match self.state {
            BreakerState::Closed => "healthy",
            BreakerState::Open { until_ms } if now_ms < until_ms => "ejected",
            _ => "half_open",
        }
    }

    /// Milliseconds until an ejected key may be probed again.
    pub fn retry_in_ms(&self, now_ms: u64) -> Option<u64> {
        match self.state {
            BreakerState::Open { until_ms } if now_ms < until_ms => Some(until_ms - now_ms),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const CFG: CircuitBreakerConfig = CircuitBreakerConfig {
        failure_threshold: 3,
        cooldown_in_seconds: 10,
    };

    #[test]
    fn opens_after_threshold_and_probes_once_after_cooldown() {
        let mut b = Breaker::default();
        assert!(!b.on_failure(0, &CFG));
        assert!(!b.on_failure(1, &CFG));
        assert!(b.on_failure(2, &CFG));
        assert_eq!(b.label(3), "ejected");
        assert!(!b.is_available(9_000, &CFG));
        assert!(b.is_available(10_002, &CFG));
        b.on_dispatch(10_002);
        assert_eq!(b.label(10_003), "half_open");
        assert!(!b.is_available(10_003, &CFG), "only one probe at a time");
        b.on_success();
        assert_eq!(b, Breaker::default());
    }

    #[test]
    fn failed_probe_reopens_and_a_lost_probe_expires() {
        let mut b = Breaker {
            state: BreakerState::Open { until_ms: 0 },
            consecutive_failures: 3,
        };
        b.on_dispatch(5);
        assert!(b.on_failure(6, &CFG));
        assert_eq!(b.state, BreakerState::Open { until_ms: 10_006 });
        b.on_dispatch(10_006);
        assert!(!b.is_available(15_000, &CFG));
        assert!(
            b.is_available(20_006, &CFG),
            "a probe that never reported stops blocking"
        );
    }

    #[test]
    fn success_resets_the_count() {
        let mut b = Breaker::default();
        b.on_failure(0, &CFG);
        b.on_failure(0, &CFG);
        b.on_success();
        assert!(!b.on_failure(0, &CFG));
    }
}
