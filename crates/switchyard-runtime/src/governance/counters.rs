//! Usage counters behind one trait: [`MemoryCounters`] for a single gateway (the default) and
//! [`RedisCounters`] for several gateways sharing limits. Both apply `core::governance::admission`'s
//! rules: admission checks every limit of every level and reserves only when all of them admit, as one
//! atomic step (a mutex in memory, one Lua script in Redis), so two requests can never both pass a
//! check that only one of them fits.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Mutex;

use async_trait::async_trait;
use switchyard_core::governance::admission::reserved_counter;
use switchyard_core::governance::{LimitCheck, LimitKind, Rejection};
use switchyard_store::CounterRow;

#[derive(Debug, thiserror::Error)]
#[error("usage counters unavailable: {0}")]
pub struct CounterError(pub String);

#[async_trait]
pub trait Counters: Send + Sync + 'static {
    /// Checks every limit and, only when all admit, adds every reservation, atomically.
    async fn admit(&self, checks: &[LimitCheck], now_ms: i64) -> Result<Result<(), Rejection>, CounterError>;
    /// Adds settlement deltas to counters that still exist (a counter whose window has expired is
    /// left alone).
    async fn apply(&self, deltas: &[(String, i64)]) -> Result<(), CounterError>;
    /// Applies settlement deltas without waiting when that is possible (in-process counters), so a
    /// client's next request already sees its slot released; `false`: use `apply`.
    fn try_apply_now(&self, _deltas: &[(String, i64)]) -> bool {
        false
    }
    /// Current values (0 for counters that do not exist).
    async fn read(&self, names: &[String]) -> Result<Vec<i64>, CounterError>;
    /// The counters to persist to the config store, when this implementation needs that (memory);
    /// `None` when the counters live elsewhere already (Redis). Only returns rows when something
    /// changed since the last call.
    fn export(&self, now_ms: i64) -> Option<Vec<CounterRow>>;
    /// Restores persisted counters at start-up.
    fn restore(&self, rows: Vec<CounterRow>);
    fn kind(&self) -> &'static str;
}

/// In-process counters: exact for one gateway.
#[derive(Default)]
pub struct MemoryCounters {
    values: Mutex<HashMap<String, (i64, i64)>>,
    dirty: AtomicBool,
}

impl MemoryCounters {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, (i64, i64)>> {
        self.values.lock().unwrap_or_else(|p| p.into_inner())
    }
}

fn live(entry: Option<&(i64, i64)>, now_ms: i64) -> i64 {
    match entry {
        Some(&(v, expires)) if expires > now_ms => v,
        _ => 0,
    }
}

#[async_trait]
impl Counters for MemoryCounters {
    async fn admit(&self, checks: &[LimitCheck], now_ms: i64) -> Result<Result<(), Rejection>, CounterError> {
        let mut map = self.lock();
        for c in checks {
            let cur = live(map.get(&c.counter), now_ms);
            if !c.admits(cur) {
                let reserved = live(map.get(&reserved_counter(&c.counter)), now_ms);
                return Ok(Err(Rejection::new(c, cur, reserved, now_ms)));
            }
        }
        for c in checks {
            let expires = now_ms + c.ttl_ms(now_ms);
            // A counter that exists is updated in place: its name is neither hashed again for an
            // insert nor copied.
            match map.get_mut(&c.counter) {
                Some(entry) => *entry = (live(Some(entry), now_ms) + c.add, expires),
                None => {
                    map.insert(c.counter.clone(), (c.add, expires));
                }
            }
        }
        self.dirty.store(true, Ordering::Relaxed);
        Ok(Ok(()))
    }

    async fn apply(&self, deltas: &[(String, i64)]) -> Result<(), CounterError> {
        let mut map = self.lock();
        for (name, delta) in deltas {
            if let Some(entry) = map.get_mut(name) {
                entry.0 += delta;
            }
        }
        self.dirty.store(true, Ordering::Relaxed);
        Ok(())
    }

    fn try_apply_now(&self, deltas: &[(String, i64)]) -> bool {
        let mut map = self.lock();
        for (name, delta) in deltas {
            if let Some(entry) = map.get_mut(name) {
                entry.0 += delta;
            }
        }
        self.dirty.store(true, Ordering::Relaxed);
        true
    }

    async fn read(&self, names: &[String]) -> Result<Vec<i64>, CounterError> {
        let now = super::now_ms();
        let map = self.lock();
        Ok(names.iter().map(|n| live(map.get(n), now)).collect())
    }

    fn export(&self, now_ms: i64) -> Option<Vec<CounterRow>> {
        if !self.dirty.swap(false, Ordering::Relaxed) {
            return None;
        }
        let mut map = self.lock();
        map.retain(|_, (_, expires)| *expires > now_ms);
        Some(
            map.iter()
                // In-flight slots and reservations belong to this process's lifetime; they are never
                // persisted (a budget counter keeps the estimates of calls cut by a crash: it errs high).
                .filter(|(name, _)| !name.ends_with(":inflight") && !name.ends_with(":reserved"))
                .map(|(name, &(value, expires_at_ms))| CounterRow {
                    name: name.clone(),
                    value,
                    expires_at_ms,
                })
                .collect(),
        )
    }

    fn restore(&self, rows: Vec<CounterRow>) {
        let mut map = self.lock();
        for r in rows {
            map.insert(r.name, (r.value, r.expires_at_ms));
        }
    }

    fn kind(&self) -> &'static str {
        "memory"
    }
}

/// Counters in Redis, shared by every gateway using the same server and key prefix.
pub struct RedisCounters {
    conn: redis::aio::ConnectionManager,
    prefix: String,
    admit_script: redis::Script,
    apply_script: redis::Script,
}

/// KEYS: the counters. ARGV: now, then per key: strict (1: `cur + add <= max`, 0: `cur < max`), max,
/// add, ttl in ms. Returns `{0, 0, 0}` when admitted, else `{index (1-based), current, next}` of the
/// first limit that does not admit, `next` being the value of the key after it (a budget's
/// reservation companion); nothing is written unless every limit admits.
const ADMIT_LUA: &str = r"
local n = #KEYS
for i = 1, n do
  local b = 1 + (i - 1) * 4
  local cur = tonumber(redis.call('GET', KEYS[i]) or '0')
  local max = tonumber(ARGV[b + 2])
  local add = tonumber(ARGV[b + 3])
  local ok
  if ARGV[b + 1] == '1' then ok = (cur + add <= max) else ok = (cur < max) end
  if not ok then
    local nxt = 0
    if i < n then nxt = tonumber(redis.call('GET', KEYS[i + 1]) or '0') end
    return {i, cur, nxt}
  end
end
for i = 1, n do
  local b = 1 + (i - 1) * 4
  redis.call('INCRBY', KEYS[i], ARGV[b + 3])
  redis.call('PEXPIRE', KEYS[i], ARGV[b + 4])
end
return {0, 0, 0}
";

/// KEYS: counters; ARGV: deltas. Only counters that still exist change (no TTL-less resurrection).
const APPLY_LUA: &str = r"
for i = 1, #KEYS do
  if redis.call('EXISTS', KEYS[i]) == 1 then redis.call('INCRBY', KEYS[i], ARGV[i]) end
end
return 0
";

fn redis_err(e: redis::RedisError) -> CounterError {
    CounterError(e.to_string())
}

impl RedisCounters {
    pub async fn connect(url: &str, prefix: String) -> Result<RedisCounters, CounterError> {
        let client = redis::Client::open(url).map_err(redis_err)?;
        let conn = redis::aio::ConnectionManager::new(client)
            .await
            .map_err(redis_err)?;
        Ok(RedisCounters {
            conn,
            prefix,
            admit_script: redis::Script::new(ADMIT_LUA),
            apply_script: redis::Script::new(APPLY_LUA),
        })
    }

    fn key(&self, name: &str) -> String {
        format!("{}{}", self.prefix, name)
    }
}

#[async_trait]
impl Counters for RedisCounters {
    async fn admit(&self, checks: &[LimitCheck], now_ms: i64) -> Result<Result<(), Rejection>, CounterError> {
        if checks.is_empty() {
            return Ok(Ok(()));
        }
        let mut inv = self.admit_script.prepare_invoke();
        inv.arg(now_ms);
        for c in checks {
            let strict = matches!(c.kind, LimitKind::Requests | LimitKind::Concurrency);
            inv.key(self.key(&c.counter))
                .arg(if strict { 1 } else { 0 })
                .arg(c.max)
                .arg(c.add)
                .arg(c.ttl_ms(now_ms));
        }
        let mut conn = self.conn.clone();
        let (index, current, next): (i64, i64, i64) = inv.invoke_async(&mut conn).await.map_err(redis_err)?;
        if index == 0 {
            return Ok(Ok(()));
        }
        let check = &checks[(index - 1) as usize];
        let companion = checks
            .get(index as usize)
            .filter(|c| c.kind == LimitKind::Reserved && c.counter == reserved_counter(&check.counter));
        let reserved = companion.map_or(0, |_| next);
        Ok(Err(Rejection::new(check, current, reserved, now_ms)))
    }

    async fn apply(&self, deltas: &[(String, i64)]) -> Result<(), CounterError> {
        if deltas.is_empty() {
            return Ok(());
        }
        let mut inv = self.apply_script.prepare_invoke();
        for (name, delta) in deltas {
            inv.key(self.key(name)).arg(*delta);
        }
        let mut conn = self.conn.clone();
        let _: i64 = inv.invoke_async(&mut conn).await.map_err(redis_err)?;
        Ok(())
    }

    async fn read(&self, names: &[String]) -> Result<Vec<i64>, CounterError> {
        if names.is_empty() {
            return Ok(Vec::new());
        }
        let keys: Vec<String> = names.iter().map(|n| self.key(n)).collect();
        let mut conn = self.conn.clone();
        let values: Vec<Option<i64>> = redis::cmd("MGET")
            .arg(&keys)
            .query_async(&mut conn)
            .await
            .map_err(redis_err)?;
        Ok(values.into_iter().map(|v| v.unwrap_or(0)).collect())
    }

    fn export(&self, _now_ms: i64) -> Option<Vec<CounterRow>> {
        None
    }

    fn restore(&self, _rows: Vec<CounterRow>) {}

    fn kind(&self) -> &'static str {
        "redis"
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use switchyard_core::governance::Level;

    fn check(counter: &str, kind: LimitKind, max: i64, add: i64) -> LimitCheck {
        LimitCheck {
            counter: counter.into(),
            kind,
            level: Level::VirtualKey,
            level_name: "k".into(),
            max,
            add,
            duration: None,
            // `read` looks at the wall clock, so the window must still be open now.
            window_end_ms: i64::MAX / 2,
        }
    }

    #[tokio::test]
    async fn memory_admission_is_all_or_nothing() {
        let c = MemoryCounters::default();
        let checks = [
            check("req", LimitKind::Requests, 2, 1),
            check("usd", LimitKind::Budget, 100, 60),
        ];
        assert!(c.admit(&checks, 0).await.unwrap().is_ok());
        assert!(c.admit(&checks, 0).await.unwrap().is_ok());
        // Third: requests full. Nothing else is reserved.
        let r = c.admit(&checks, 0).await.unwrap().unwrap_err();
        assert_eq!(r.kind, LimitKind::Requests);
        assert_eq!(c.read(&["req".into(), "usd".into()]).await.unwrap(), vec![2, 120]);
        c.apply(&[("usd".into(), -50), ("gone".into(), 5)]).await.unwrap();
        assert_eq!(c.read(&["usd".into(), "gone".into()]).await.unwrap(), vec![70, 0]);
        let rows = c.export(0).unwrap();
        assert_eq!(rows.len(), 2);
        assert!(c.export(0).is_none(), "nothing changed since the last export");
        let restored = MemoryCounters::default();
        restored.restore(rows);
        assert_eq!(restored.read(&["usd".into()]).await.unwrap(), vec![70]);
    }
}
