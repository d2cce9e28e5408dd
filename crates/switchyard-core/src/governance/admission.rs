//! The admission decision: which limits a request must fit, whether it fits them, what it reserves,
//! and what settling it changes. The counters themselves (in memory or in Redis) live at the edges and
//! apply exactly these rules; the Redis script mirrors [`LimitCheck::admits`].
//!
//! Budgets and token limits admit while there is headroom (`current < max`) and then reserve the
//! request's *estimate*; settling replaces the estimate with the real amount. Counting pending
//! reservations is what bounds concurrent overshoot: when every estimate is at least the real cost, the
//! total charged stays below `max + one estimate` (the last request admitted), however many requests
//! race. Request counts and concurrency are exact: `current + 1 <= max`.

use serde::Serialize;

use super::model::{Budget, RateLimit};
use super::window::ResetDuration;
use crate::pricing::Currency;

/// Budget amounts are counted in nano-USD so counters are integers (atomic `INCRBY` in Redis, no
/// float drift from many small charges).
pub const NANOS_PER_USD: f64 = 1e9;

pub fn usd_to_nanos(usd: f64) -> i64 {
    (usd * NANOS_PER_USD).round() as i64
}

pub fn nanos_to_usd(n: i64) -> f64 {
    n as f64 / NANOS_PER_USD
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum LimitKind {
    Budget,
    Requests,
    Tokens,
    Concurrency,
    /// The part of a budget counter held by calls in flight (their estimates): a companion that
    /// follows each budget check, never refuses, and is given back at settlement, so a refusal can
    /// tell spent from reserved.
    Reserved,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Level {
    VirtualKey,
    Team,
    Customer,
    ProviderConfig,
}

impl Level {
    fn code(self) -> &'static str {
        match self {
            Level::VirtualKey => "vk",
            Level::Team => "team",
            Level::Customer => "customer",
            Level::ProviderConfig => "pc",
        }
    }

    pub fn label(self) -> &'static str {
        match self {
            Level::VirtualKey => "virtual key",
            Level::Team => "team",
            Level::Customer => "customer",
            Level::ProviderConfig => "provider config",
        }
    }
}

/// The limits of one level of the hierarchy, borrowed from its stored entity.
pub struct LevelLimits<'a> {
    pub level: Level,
    /// Stable id: counters are keyed by it, so every gateway sharing a counter store agrees.
    pub id: &'a str,
    pub name: &'a str,
    pub budgets: &'a [Budget],
    pub rate_limit: Option<&'a RateLimit>,
    pub max_concurrent: Option<u32>,
    /// Where rolling windows start (the entity's creation time).
    pub anchor_ms: i64,
}

/// What a request is expected to use, reserved up front.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Estimate {
    pub cost_nanos: i64,
    pub tokens: i64,
}

/// One counter a request must fit, and what it adds to it.
#[derive(Clone, Debug, PartialEq)]
pub struct LimitCheck {
    /// Counter name without the deployment prefix; it embeds the window start, so a new window is a
    /// new counter and nothing needs resetting.
    pub counter: String,
    pub kind: LimitKind,
    pub level: Level,
    pub level_name: String,
    pub max: i64,
    pub add: i64,
    pub duration: Option<ResetDuration>,
    /// When the window ends (unix ms); 0 for concurrency.
    pub window_end_ms: i64,
}

impl LimitCheck {
    pub fn admits(&self, current: i64) -> bool {
        match self.kind {
            LimitKind::Requests | LimitKind::Concurrency => current.saturating_add(self.add) <= self.max,
            LimitKind::Budget | LimitKind::Tokens => current < self.max,
            LimitKind::Reserved => true,
        }
    }

    /// How long a counter must outlive its window for: budgets stay readable for spend views and
    /// persistence a while after their window closed.
    pub fn ttl_ms(&self, now_ms: i64) -> i64 {
        if self.kind == LimitKind::Concurrency {
            // Slots of a crashed gateway are never released; they expire instead.
            return 15 * 60 * 1000;
        }
        (self.window_end_ms - now_ms).max(1000) + 60 * 1000
    }
}

/// The companion counter of a budget counter: what calls in flight have reserved of it.
pub fn reserved_counter(budget_counter: &str) -> String {
    [budget_counter, ":reserved"].concat()
}

/// `base:tag:duration:window start`, the name of a windowed counter (built without `format!`: every
/// governed request names several).
fn window_counter(base: &str, tag: &str, dur: ResetDuration, start_ms: i64) -> String {
    use std::fmt::Write as _;
    let mut name = String::with_capacity(base.len() + tag.len() + 24);
    name.push_str(base);
    name.push(':');
    name.push_str(tag);
    // Writing to a String cannot fail.
    let _ = write!(name, ":{dur}:{start_ms}");
    name
}

/// Every counter the request must fit, across all levels, in a fixed order (levels as given; per
/// level: concurrency, requests, tokens, budgets).
pub fn limit_checks(levels: &[LevelLimits<'_>], now_ms: i64, estimate: Estimate) -> Vec<LimitCheck> {
    let mut out = Vec::new();
    for l in levels {
        let base = [l.level.code(), ":", l.id].concat();
        let check = |kind: LimitKind, tag: &str, max: i64, add: i64, dur: ResetDuration, aligned: bool| {
            let w = dur.window(now_ms, l.anchor_ms, aligned);
            LimitCheck {
                counter: window_counter(&base, tag, dur, w.start_ms),
                kind,
                level: l.level,
                level_name: l.name.to_owned(),
                max,
                add,
                duration: Some(dur),
                window_end_ms: w.end_ms,
            }
        };
        if let Some(m) = l.max_concurrent {
            out.push(LimitCheck {
                counter: [base.as_str(), ":inflight"].concat(),
                kind: LimitKind::Concurrency,
                level: l.level,
                level_name: l.name.to_owned(),
                max: i64::from(m),
                add: 1,
                duration: None,
                window_end_ms: 0,
            });
        }
        if let Some(r) = l.rate_limit {
            if let (Some(max), Some(d)) = (r.request_max_limit, r.request_reset_duration) {
                out.push(check(LimitKind::Requests, "req", max as i64, 1, d, true));
            }
            if let (Some(max), Some(d)) = (r.token_max_limit, r.token_reset_duration) {
                out.push(check(
                    LimitKind::Tokens,
                    "tok",
                    max as i64,
                    estimate.tokens,
                    d,
                    true,
                ));
            }
        }
        for b in l.budgets {
            let budget = check(
                LimitKind::Budget,
                "usd",
                usd_to_nanos(b.max_limit),
                estimate.cost_nanos,
                b.reset_duration,
                b.calendar_aligned,
            );
            let reserved = LimitCheck {
                counter: reserved_counter(&budget.counter),
                kind: LimitKind::Reserved,
                max: i64::MAX,
                ..budget.clone()
            };
            out.push(budget);
            out.push(reserved);
        }
    }
    out
}

/// The first check the current values do not admit, if any.
pub fn first_violation(checks: &[LimitCheck], currents: &[i64]) -> Option<usize> {
    checks.iter().zip(currents).position(|(c, &cur)| !c.admits(cur))
}

/// What settling a request adds to each counter it reserved: the real cost and tokens in place of the
/// estimate, and its concurrency slot back. Request counts stay.
pub fn settlement(checks: &[LimitCheck], cost_nanos: i64, tokens: i64) -> Vec<(String, i64)> {
    checks
        .iter()
        .filter_map(|c| {
            let delta = match c.kind {
                LimitKind::Budget => cost_nanos - c.add,
                LimitKind::Tokens => tokens - c.add,
                LimitKind::Concurrency | LimitKind::Reserved => -c.add,
                LimitKind::Requests => 0,
            };
            (delta != 0).then(|| (c.counter.clone(), delta))
        })
        .collect()
}

/// A refused request: which limit of which level, for the error message and headers.
#[derive(Clone, Debug, PartialEq)]
pub struct Rejection {
    pub kind: LimitKind,
    pub level: Level,
    pub level_name: String,
    pub max: i64,
    /// The counter's value: for a budget, spent plus what calls in flight reserved.
    pub current: i64,
    /// For a budget: what calls in flight reserved of `current` (their estimates); 0 otherwise.
    pub reserved: i64,
    /// The operator's currency, for a budget's message.
    pub currency: Currency,
    pub duration: Option<ResetDuration>,
    /// Seconds until the window resets (at least 1).
    pub retry_after_secs: u64,
    pub reset_at_ms: i64,
}

impl Rejection {
    /// `reserved`: the value of the check's companion `Reserved` counter, for a budget.
    pub fn new(check: &LimitCheck, current: i64, reserved: i64, now_ms: i64) -> Rejection {
        let retry_after_secs = match check.kind {
            LimitKind::Concurrency => 1,
            _ => ((check.window_end_ms - now_ms).max(0) as u64)
                .div_ceil(1000)
                .max(1),
        };
        Rejection {
            kind: check.kind,
            level: check.level,
            level_name: check.level_name.clone(),
            max: check.max,
            current,
            reserved: if check.kind == LimitKind::Budget {
                reserved.clamp(0, current.max(0))
            } else {
                0
            },
            currency: Currency::default(),
            duration: check.duration,
            retry_after_secs,
            reset_at_ms: check.window_end_ms,
        }
    }

    /// The amount settled calls have spent of a budget (its counter less what is in flight).
    pub fn spent(&self) -> i64 {
        (self.current - self.reserved).max(0)
    }

    /// The same rejection, its amounts named in `currency`.
    pub fn in_currency(mut self, currency: Currency) -> Rejection {
        self.currency = currency;
        self
    }

    pub fn message(&self) -> String {
        let who = format!("{} '{}'", self.level.label(), self.level_name);
        let per = self.duration.map(|d| format!(" per {d}")).unwrap_or_default();
        match self.kind {
            LimitKind::Budget => format!(
                "budget exhausted: {who}{}: spent {:.6} {cur}, {:.6} {cur} reserved by calls in flight, \
                 limit {:.6} {cur}; it resets in {} s",
                self.duration.map(|d| format!(" ({d})")).unwrap_or_default(),
                nanos_to_usd(self.spent()),
                nanos_to_usd(self.reserved),
                nanos_to_usd(self.max),
                self.retry_after_secs,
                cur = self.currency,
            ),
            LimitKind::Requests => format!(
                "rate limit exceeded: {who} allows {} requests{per}; retry in {} s",
                self.max, self.retry_after_secs
            ),
            LimitKind::Tokens => format!(
                "rate limit exceeded: {who} allows {} tokens{per} and has used {}; retry in {} s",
                self.max, self.current, self.retry_after_secs
            ),
            LimitKind::Concurrency => format!(
                "concurrency limit reached: {who} allows {} requests in flight at once",
                self.max
            ),
            LimitKind::Reserved => format!("{who}: reservations never refuse"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn budget(usd: f64) -> Budget {
        Budget {
            max_limit: usd,
            reset_duration: ResetDuration::parse("1h").unwrap(),
            calendar_aligned: false,
        }
    }

    #[test]
    fn every_level_contributes_its_checks() {
        let rl = RateLimit {
            request_max_limit: Some(10),
            request_reset_duration: Some(ResetDuration::parse("1m").unwrap()),
            token_max_limit: Some(1000),
            token_reset_duration: Some(ResetDuration::parse("1m").unwrap()),
        };
        let vk_budgets = [budget(1.0)];
        let team_budgets = [budget(5.0)];
        let levels = [
            LevelLimits {
                level: Level::VirtualKey,
                id: "v",
                name: "app",
                budgets: &vk_budgets,
                rate_limit: Some(&rl),
                max_concurrent: Some(2),
                anchor_ms: 0,
            },
            LevelLimits {
                level: Level::Team,
                id: "t",
                name: "team",
                budgets: &team_budgets,
                rate_limit: None,
                max_concurrent: None,
                anchor_ms: 0,
            },
        ];
        let est = Estimate {
            cost_nanos: 500,
            tokens: 40,
        };
        let checks = limit_checks(&levels, 90_000, est);
        let names: Vec<&str> = checks.iter().map(|c| c.counter.as_str()).collect();
        assert_eq!(
            names,
            [
                "vk:v:inflight",
                "vk:v:req:1m:60000",
                "vk:v:tok:1m:60000",
                "vk:v:usd:1h:0",
                "vk:v:usd:1h:0:reserved",
                "team:t:usd:1h:0",
                "team:t:usd:1h:0:reserved"
            ]
        );
        assert_eq!(first_violation(&checks, &[1, 9, 999, 999_999_999, 0, 0, 0]), None);
        assert_eq!(first_violation(&checks, &[2, 0, 0, 0, 0, 0, 0]), Some(0));
        assert_eq!(first_violation(&checks, &[0, 10, 0, 0, 0, 0, 0]), Some(1));
        assert_eq!(
            first_violation(&checks, &[0, 0, 0, 0, i64::MAX, 5_000_000_000, 0]),
            Some(5)
        );
        let settle = settlement(&checks, 300, 50);
        assert_eq!(
            settle,
            [
                ("vk:v:inflight".to_string(), -1),
                ("vk:v:tok:1m:60000".to_string(), 10),
                ("vk:v:usd:1h:0".to_string(), -200),
                ("vk:v:usd:1h:0:reserved".to_string(), -500),
                ("team:t:usd:1h:0".to_string(), -200),
                ("team:t:usd:1h:0:reserved".to_string(), -500)
            ]
        );
        let budget = Rejection::new(&checks[3], 1_200_000_000, 400_000_000, 90_000)
            .in_currency(Currency::parse("EUR").unwrap());
        assert_eq!(budget.spent(), 800_000_000);
        assert!(
            budget
                .message()
                .contains("spent 0.800000 EUR, 0.400000 EUR reserved by calls in flight, limit 1.000000 EUR"),
            "{}",
            budget.message()
        );
        let r = Rejection::new(&checks[1], 10, 0, 90_000);
        assert_eq!(r.retry_after_secs, 30);
        assert_eq!(
            r.message(),
            "rate limit exceeded: virtual key 'app' allows 10 requests per 1m; retry in 30 s"
        );
    }

    proptest! {
        /// Any interleaving of admissions and settlements, with real costs at most the estimates,
        /// charges at most the budget plus one estimate.
        #[test]
        fn overshoot_is_bounded_by_one_estimate(
            max in 1i64..10_000,
            requests in proptest::collection::vec((1i64..500, 0u32..=100, any::<bool>()), 1..80),
        ) {
            let check = LimitCheck {
                counter: "b".into(), kind: LimitKind::Budget, level: Level::VirtualKey,
                level_name: "k".into(), max, add: 0, duration: None, window_end_ms: 0,
            };
            let mut current = 0i64;
            let mut pending: Vec<(i64, i64)> = Vec::new();
            let mut charged = 0i64;
            let max_estimate = requests.iter().map(|r| r.0).max().unwrap();
            for (estimate, percent, settle_first) in requests {
                if settle_first {
                    if let Some((est, actual)) = pending.pop() {
                        current += actual - est;
                        charged += actual;
                    }
                }
                if check.admits(current) {
                    current += estimate;
                    pending.push((estimate, estimate * i64::from(percent) / 100));
                }
            }
            for (est, actual) in pending {
                current += actual - est;
                charged += actual;
            }
            prop_assert_eq!(current, charged);
            prop_assert!(charged <= max + max_estimate, "charged {} max {} est {}", charged, max, max_estimate);
        }
    }
}
