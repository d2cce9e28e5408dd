//! What to do after an upstream attempt failed: the one classification table behind retries, key
//! rotation and fallbacks (applied the same way to bare-model fall-through, request `fallbacks` and
//! operator-configured chains).
//!
//! | outcome | retry? | key | wait | then |
//! |---|---|---|---|---|
//! | 400, 404, 409, 413, 422 and other 4xx | no | — | — | returned to the caller as is |
//! | 401, 402, 403 | rotate at once (not counted as a retry) | marked bad for this request | none | fallback when no key is left |
//! | 429 | yes, up to `max_retries` | rotate | `Retry-After`/`retry-after-ms` if given, else backoff | fallback |
//! | 408, 5xx (incl. 529), connection error, timeout | yes, up to `max_retries` | same key | `Retry-After` if given, else backoff | fallback |
//! | provider queue full | no | — | — | fallback |
//!
//! A server-directed delay longer than `retry_backoff_max` is not waited for: the attempt moves on to
//! the next candidate instead (the caller would rather be served elsewhere than sleep).

use std::time::Duration;

/// Why an attempt did not produce a usable answer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Failure {
    Status {
        status: u16,
        retry_after: Option<Duration>,
    },
    /// Could not connect, or the connection broke before an answer arrived.
    Connection,
    Timeout,
    QueueFull,
}

#[derive(Clone, Copy, Debug)]
pub struct RetryPolicy {
    pub max_retries: u32,
    pub backoff_initial: Duration,
    pub backoff_max: Duration,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Step {
    /// A caller error: answer the client with it, no retry, no fallback.
    Return,
    /// Try this target again after `delay`; `rotate_key` prefers another key; `key_is_bad` excludes
    /// the failed key for the rest of this request; `counts` says whether it uses up a retry.
    Retry {
        delay: Duration,
        rotate_key: bool,
        key_is_bad: bool,
        counts: bool,
    },
    /// This target is done; go to the next one.
    Fallback,
}

impl Failure {
    /// Whether this failure says something about the key's health (for its circuit breaker): rejected
    /// credentials, rate limits, and an unreachable or unresponsive endpoint. 5xx answers do not count:
    /// on vLLM-based upstreams such as mittwald they are usually about one model ("model is
    /// restarting"), and ejecting the key would cut off every other model it serves. They are still
    /// retried and fallen back from per request. Caller errors never count.
    pub fn is_health_failure(&self) -> bool {
        match self {
            Failure::Status { status, .. } => is_auth(*status) || *status == 429,
            Failure::Connection | Failure::Timeout => true,
            Failure::QueueFull => false,
        }
    }

    /// Failures of the endpoint as a whole (not of one key or model): it cannot be reached or does not
    /// answer.
    pub fn is_provider_failure(&self) -> bool {
        matches!(self, Failure::Connection | Failure::Timeout)
    }
}

fn is_auth(status: u16) -> bool {
    (401..=403).contains(&status)
}

fn is_transient(status: u16) -> bool {
    status == 408 || status >= 500
}

/// Decides the next step. `retries_used` counts retries of this target so far; `jitter` is uniform in
/// `[0, 1)` (passed in so the core stays deterministic).
pub fn next_step(failure: Failure, retries_used: u32, policy: &RetryPolicy, jitter: f64) -> Step {
    let (retry_after, rotate_key) = match failure {
        Failure::QueueFull => return Step::Fallback,
        Failure::Status { status, .. } if is_auth(status) => {
            return Step::Retry {
                delay: Duration::ZERO,
                rotate_key: true,
                key_is_bad: true,
                counts: false,
            }
        }
        Failure::Status {
            status: 429,
            retry_after,
        } => (retry_after, true),
        Failure::Status { status, retry_after } if is_transient(status) => (retry_after, false),
        Failure::Status { .. } => return Step::Return,
        Failure::Connection | Failure::Timeout => (None, false),
    };
    if retries_used >= policy.max_retries {
        return Step::Fallback;
    }
    let delay = match retry_after {
        Some(d) if d > policy.backoff_max => return Step::Fallback,
        Some(d) => d,
        None => backoff(retries_used, policy, jitter),
    };
    Step::Retry {
        delay,
        rotate_key,
        key_is_bad: false,
        counts: true,
    }
}

/// Exponential backoff with jitter: `min(initial * 2^n, max)` scaled by a factor in `[0.75, 1.25)`,
/// never above `max`.
pub fn backoff(n: u32, policy: &RetryPolicy, jitter: f64) -> Duration {
    let base = policy
        .backoff_initial
        .saturating_mul(1u32.checked_shl(n.min(20)).unwrap_or(u32::MAX));
    let capped = base.min(policy.backoff_max);
    capped
        .mul_f64(0.75 + 0.5 * jitter.clamp(0.0, 1.0))
        .min(policy.backoff_max)
}

/// Reads `retry-after-ms` (milliseconds) or `retry-after` (seconds, fractional allowed). HTTP-date
/// values are converted by the caller, which has a clock.
pub fn parse_retry_after(retry_after_ms: Option<&str>, retry_after: Option<&str>) -> Option<Duration> {
    if let Some(ms) = retry_after_ms.and_then(|v| v.trim().parse::<f64>().ok()) {
        if ms.is_finite() && ms >= 0.0 {
            return Some(Duration::from_secs_f64(ms / 1000.0));
        }
    }
    let secs = retry_after?.trim().parse::<f64>().ok()?;
    (secs.is_finite() && secs >= 0.0).then(|| Duration::from_secs_f64(secs))
}

#[cfg(test)]
mod tests {
    use super::*;

    const POLICY: RetryPolicy = RetryPolicy {
        max_retries: 2,
        backoff_initial: Duration::from_millis(500),
        backoff_max: Duration::from_secs(5),
    };

    fn status(s: u16) -> Failure {
        Failure::Status {
            status: s,
            retry_after: None,
        }
    }

    #[test]
    fn caller_errors_return_at_once() {
        for s in [400, 404, 409, 413, 422] {
            assert_eq!(next_step(status(s), 0, &POLICY, 0.5), Step::Return, "{s}");
        }
    }

    #[test]
    fn auth_errors_rotate_without_waiting_or_using_a_retry() {
        for s in [401, 402, 403] {
            assert_eq!(
                next_step(status(s), 2, &POLICY, 0.5),
                Step::Retry {
                    delay: Duration::ZERO,
                    rotate_key: true,
                    key_is_bad: true,
                    counts: false
                }
            );
        }
    }

    #[test]
    fn rate_limits_rotate_and_honour_retry_after() {
        let f = Failure::Status {
            status: 429,
            retry_after: Some(Duration::from_secs(1)),
        };
        assert_eq!(
            next_step(f, 0, &POLICY, 0.5),
            Step::Retry {
                delay: Duration::from_secs(1),
                rotate_key: true,
                key_is_bad: false,
                counts: true
            }
        );
        // mittwald's 429 has no Retry-After: backoff applies.
        match next_step(status(429), 1, &POLICY, 0.5) {
            Step::Retry {
                delay,
                rotate_key: true,
                ..
            } => assert_eq!(delay, Duration::from_secs(1)),
            other => panic!("{other:?}"),
        }
        let too_long = Failure::Status {
            status: 429,
            retry_after: Some(Duration::from_secs(60)),
        };
        assert_eq!(next_step(too_long, 0, &POLICY, 0.5), Step::Fallback);
    }

    #[test]
    fn transient_failures_retry_then_fall_back() {
        for f in [
            status(500),
            status(503),
            status(529),
            status(408),
            Failure::Connection,
            Failure::Timeout,
        ] {
            assert!(matches!(
                next_step(f, 0, &POLICY, 0.0),
                Step::Retry {
                    rotate_key: false,
                    counts: true,
                    ..
                }
            ));
            assert_eq!(next_step(f, 2, &POLICY, 0.0), Step::Fallback, "{f:?}");
        }
        assert_eq!(next_step(Failure::QueueFull, 0, &POLICY, 0.0), Step::Fallback);
    }

    #[test]
    fn backoff_grows_and_is_capped() {
        let at = |n, j| backoff(n, &POLICY, j);
        assert_eq!(at(0, 0.5), Duration::from_millis(500));
        assert_eq!(at(1, 0.5), Duration::from_millis(1000));
        assert_eq!(at(3, 0.5), Duration::from_millis(4000));
        assert_eq!(at(10, 0.99), Duration::from_secs(5));
        assert!(at(0, 0.0) >= Duration::from_millis(375) && at(0, 0.999) < Duration::from_millis(625));
        assert_eq!(at(u32::MAX, 0.5), Duration::from_secs(5));
    }

    #[test]
    fn retry_after_headers() {
        assert_eq!(
            parse_retry_after(Some("250"), Some("9")),
            Some(Duration::from_millis(250))
        );
        assert_eq!(
            parse_retry_after(None, Some("1.5")),
            Some(Duration::from_millis(1500))
        );
        assert_eq!(
            parse_retry_after(None, Some("Wed, 21 Oct 2015 07:28:00 GMT")),
            None
        );
        assert_eq!(parse_retry_after(Some("-1"), None), None);
    }

    #[test]
    fn health_classification() {
        assert!(!status(500).is_health_failure() && !status(503).is_provider_failure());
        assert!(Failure::Connection.is_health_failure() && Failure::Connection.is_provider_failure());
        assert!(status(401).is_health_failure() && !status(401).is_provider_failure());
        assert!(!status(400).is_health_failure());
        assert!(Failure::Timeout.is_provider_failure());
    }
}
