//! Credential guessing on the admin surface, slowed down: failed password logins and wrong admin
//! bearer tokens are counted per source address and in total. After `free_failures` failures a
//! source is locked out for `base_lockout`, doubling with every further failure up to `max_lockout`;
//! too many failures from everyone together within a minute lock every source out until the minute
//! ends. A locked-out attempt is refused before any credential is checked (no Argon2 runs), and a
//! burst of guesses from one source is reported by one WARN line, not one per guess.
//!
//! Times are passed in, so the rules are tested without waiting.

use std::collections::HashMap;
use std::net::{IpAddr, Ipv6Addr};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use switchyard_runtime::security::LoginThrottle;

/// Sources tracked at once; past this, expired entries are dropped, and while still full a new source
/// is counted only in the global total.
const MAX_SOURCES: usize = 10_000;
const GLOBAL_WINDOW: Duration = Duration::from_secs(60);

#[derive(Debug)]
struct Source {
    failures: u32,
    refused: u64,
    first: Instant,
    last: Instant,
    locked_until: Option<Instant>,
    reported: bool,
}

impl Source {
    fn new(now: Instant) -> Source {
        Source {
            failures: 0,
            refused: 0,
            first: now,
            last: now,
            locked_until: None,
            reported: false,
        }
    }
}

#[derive(Debug)]
struct Global {
    window_start: Instant,
    failures: u32,
    refused: u64,
    reported: bool,
}

#[derive(Debug)]
struct Inner {
    sources: HashMap<IpAddr, Source>,
    global: Global,
}

#[derive(Debug)]
pub struct Throttle {
    cfg: LoginThrottle,
    inner: Mutex<Inner>,
}

/// The key a source is counted under: its IPv4 address, or the /64 of an IPv6 address (one host
/// usually owns a whole /64, so counting single IPv6 addresses would count nothing).
pub fn source_key(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => IpAddr::V6(Ipv6Addr::from(u128::from(v6) & !u128::from(u64::MAX))),
        },
        v4 => v4,
    }
}

fn secs_up(d: Duration) -> u64 {
    d.as_secs() + u64::from(d.subsec_nanos() > 0)
}

impl Throttle {
    pub fn new(cfg: LoginThrottle, now: Instant) -> Throttle {
        Throttle {
            cfg,
            inner: Mutex::new(Inner {
                sources: HashMap::new(),
                global: Global {
                    window_start: now,
                    failures: 0,
                    refused: 0,
                    reported: false,
                },
            }),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// `Err(wait)` when attempts from `ip` are refused for now; the refusal is counted.
    pub fn check(&self, ip: Option<IpAddr>, now: Instant) -> Result<(), Duration> {
        let mut inner = self.lock();
        let g = roll_window(&mut inner.global, now);
        if g.failures >= self.cfg.global_failures_per_minute {
            g.refused += 1;
            return Err((g.window_start + GLOBAL_WINDOW).saturating_duration_since(now));
        }
        let Some(source) = ip.and_then(|ip| inner.sources.get_mut(&source_key(ip))) else {
            return Ok(());
        };
        match source.locked_until {
            Some(until) if until > now => {
                source.refused += 1;
                Err(until - now)
            }
            _ => Ok(()),
        }
    }

    /// A wrong password or token from `ip`.
    pub fn failed(&self, ip: Option<IpAddr>, now: Instant) {
        let cfg = self.cfg;
        let mut inner = self.lock();
        let g = roll_window(&mut inner.global, now);
        g.failures += 1;
        if g.failures == cfg.global_failures_per_minute && !g.reported {
            g.reported = true;
            tracing::warn!(
                failures = g.failures,
                "admin credential guessing from many sources: {} failures this minute; every admin login \
                 and token is refused until the minute ends",
                g.failures
            );
        }
        let Some(ip) = ip.map(source_key) else {
            return;
        };
        if inner.sources.len() >= MAX_SOURCES && !inner.sources.contains_key(&ip) {
            inner
                .sources
                .retain(|ip, s| !expired(s, now, cfg.max_lockout) || report_end(*ip, s, now));
            if inner.sources.len() >= MAX_SOURCES {
                return;
            }
        }
        let s = inner.sources.entry(ip).or_insert_with(|| Source::new(now));
        if expired(s, now, cfg.max_lockout) {
            report_end(ip, s, now);
            *s = Source::new(now);
        }
        s.failures += 1;
        s.last = now;
        if s.failures < cfg.free_failures {
            return;
        }
        let doublings = (s.failures - cfg.free_failures).min(31);
        let lockout = cfg
            .base_lockout
            .saturating_mul(1u32 << doublings)
            .min(cfg.max_lockout);
        s.locked_until = Some(now + lockout);
        if !s.reported {
            s.reported = true;
            tracing::warn!(
                source = %ip,
                failures = s.failures,
                "admin credential guessing from {ip}: {} failed logins or tokens in {} s; further attempts \
                 from it are refused for {} s, doubling with every failure up to {} s",
                s.failures,
                secs_up(now - s.first),
                secs_up(lockout),
                secs_up(cfg.max_lockout),
            );
        }
    }

    /// A correct password from `ip`: its failures are forgotten.
    pub fn succeeded(&self, ip: Option<IpAddr>, now: Instant) {
        if let Some(ip) = ip.map(source_key) {
            if let Some(s) = self.lock().sources.remove(&ip) {
                report_end(ip, &s, now);
            }
        }
    }
}

fn roll_window(g: &mut Global, now: Instant) -> &mut Global {
    if now.saturating_duration_since(g.window_start) >= GLOBAL_WINDOW {
        if g.reported {
            tracing::warn!(
                failures = g.failures,
                refused = g.refused,
                "admin credential guessing from many sources ended its minute: {} failures, {} attempts refused",
                g.failures,
                g.refused
            );
        }
        *g = Global {
            window_start: now,
            failures: 0,
            refused: 0,
            reported: false,
        };
    }
    g
}

fn expired(s: &Source, now: Instant, window: Duration) -> bool {
    now.saturating_duration_since(s.last) >= window
}

/// The end of a reported burst, summarised (the burst's one WARN line was its start); returns false
/// so it can sit in a `retain`.
fn report_end(ip: IpAddr, s: &Source, now: Instant) -> bool {
    if s.reported {
        tracing::info!(
            source = %ip,
            failures = s.failures,
            refused = s.refused,
            "admin credential guessing from {ip} is over: {} failures and {} refused attempts in {} s",
            s.failures,
            s.refused,
            secs_up(now.saturating_duration_since(s.first)),
        );
    }
    false
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg() -> LoginThrottle {
        LoginThrottle {
            free_failures: 3,
            base_lockout: Duration::from_secs(1),
            max_lockout: Duration::from_secs(8),
            global_failures_per_minute: 10,
        }
    }

    #[test]
    fn a_source_is_locked_out_exponentially_and_forgotten_later() {
        let t0 = Instant::now();
        let t = Throttle::new(
            LoginThrottle {
                global_failures_per_minute: 100,
                ..cfg()
            },
            t0,
        );
        let ip = Some("10.0.0.1".parse().unwrap());
        for _ in 0..2 {
            assert!(t.check(ip, t0).is_ok());
            t.failed(ip, t0);
        }
        assert!(t.check(ip, t0).is_ok(), "two failures are free");
        t.failed(ip, t0);
        assert_eq!(t.check(ip, t0), Err(Duration::from_secs(1)));
        let t1 = t0 + Duration::from_secs(1);
        assert!(t.check(ip, t1).is_ok(), "the lockout ends");
        t.failed(ip, t1);
        assert_eq!(t.check(ip, t1), Err(Duration::from_secs(2)), "and doubles");
        for _ in 0..5 {
            t.failed(ip, t1);
        }
        assert_eq!(t.check(ip, t1), Err(Duration::from_secs(8)), "up to the maximum");
        let other = Some("10.0.0.2".parse().unwrap());
        assert!(t.check(other, t1).is_ok(), "other sources are not affected");
        let later = t1 + Duration::from_secs(8);
        assert!(t.check(ip, later).is_ok());
        t.failed(ip, later);
        assert!(
            t.check(ip, later).is_ok(),
            "after a quiet window the source starts afresh"
        );
    }

    #[test]
    fn success_forgets_and_everyone_is_locked_out_past_the_global_limit() {
        let t0 = Instant::now();
        let t = Throttle::new(cfg(), t0);
        let a = Some("10.0.0.1".parse().unwrap());
        t.failed(a, t0);
        t.failed(a, t0);
        t.succeeded(a, t0);
        t.failed(a, t0);
        assert!(t.check(a, t0).is_ok(), "the count started again after a success");
        for i in 0..9u8 {
            t.failed(Some(IpAddr::from([10, 1, 0, i])), t0);
        }
        let fresh = Some("10.9.9.9".parse().unwrap());
        assert_eq!(t.check(fresh, t0), Err(GLOBAL_WINDOW), "ten failures this minute");
        assert!(t.check(None, t0 + GLOBAL_WINDOW).is_ok(), "until the minute ends");
    }

    #[test]
    fn ipv6_sources_count_by_their_64_prefix() {
        assert_eq!(
            source_key("2001:db8:1:2:aaaa::1".parse().unwrap()),
            source_key("2001:db8:1:2:bbbb::2".parse().unwrap())
        );
        assert_eq!(
            source_key("::ffff:10.0.0.1".parse().unwrap()),
            "10.0.0.1".parse::<IpAddr>().unwrap()
        );
    }
}
