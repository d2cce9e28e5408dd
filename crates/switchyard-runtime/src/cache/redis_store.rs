//! The cache shared by replicas, in Redis. An answer is one string key (`<prefix>e:<key>`, JSON,
//! expiring with its TTL). Embeddings are kept per scope in one hash (`<prefix>v:<scope>`: answer key
//! → `{"v": [...], "exp": ms}`), and a semantic lookup reads the scope's hash and compares by brute
//! force. This needs nothing beyond plain Redis (no search module); a scope holds at most
//! [`MAX_SCOPE_VECTORS`] embeddings, so a lookup reads a bounded amount.

use std::time::Duration;

use async_trait::async_trait;
use redis::AsyncCommands;
use switchyard_cache::vector::cosine;
use switchyard_cache::CachedAnswer;

use super::{CacheError, CacheStore};

/// The most embeddings one scope keeps; past it, new prompts are answered but not embedded.
pub const MAX_SCOPE_VECTORS: usize = 2_000;

pub struct RedisCacheStore {
    conn: redis::aio::ConnectionManager,
    prefix: String,
}

fn redis_err(e: redis::RedisError) -> CacheError {
    CacheError(e.to_string())
}

fn now_ms() -> i64 {
    crate::governance::now_ms()
}

impl RedisCacheStore {
    pub async fn connect(url: &str, prefix: String) -> Result<RedisCacheStore, CacheError> {
        let client = redis::Client::open(url).map_err(redis_err)?;
        let conn = redis::aio::ConnectionManager::new(client)
            .await
            .map_err(redis_err)?;
        Ok(RedisCacheStore { conn, prefix })
    }

    fn answer_key(&self, key: &str) -> String {
        format!("{}e:{key}", self.prefix)
    }

    fn scope_key(&self, scope: &str) -> String {
        format!("{}v:{scope}", self.prefix)
    }

    async fn scan(&self, pattern: String) -> Result<Vec<String>, CacheError> {
        let mut conn = self.conn.clone();
        let mut cursor: u64 = 0;
        let mut out = Vec::new();
        loop {
            let (next, keys): (u64, Vec<String>) = redis::cmd("SCAN")
                .arg(cursor)
                .arg("MATCH")
                .arg(&pattern)
                .arg("COUNT")
                .arg(500)
                .query_async(&mut conn)
                .await
                .map_err(redis_err)?;
            out.extend(keys);
            if next == 0 {
                return Ok(out);
            }
            cursor = next;
        }
    }
}

/// Escapes Redis glob characters in a prefix used as a SCAN pattern.
fn glob_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        if matches!(c, '*' | '?' | '[' | ']' | '\\') {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

#[derive(serde::Serialize, serde::Deserialize)]
struct StoredVector {
    v: Vec<f32>,
    exp: i64,
}

#[async_trait]
impl CacheStore for RedisCacheStore {
    async fn get(&self, key: &str) -> Result<Option<CachedAnswer>, CacheError> {
        let mut conn = self.conn.clone();
        let raw: Option<String> = conn.get(self.answer_key(key)).await.map_err(redis_err)?;
        Ok(raw.and_then(|r| serde_json::from_str(&r).ok()))
    }

    async fn put(&self, key: &str, answer: &CachedAnswer, ttl: Duration) -> Result<(), CacheError> {
        let mut conn = self.conn.clone();
        let text = serde_json::to_string(answer).map_err(|e| CacheError(e.to_string()))?;
        let ms = u64::try_from(ttl.as_millis()).unwrap_or(u64::MAX).max(1);
        let _: () = redis::cmd("SET")
            .arg(self.answer_key(key))
            .arg(text)
            .arg("PX")
            .arg(ms)
            .query_async(&mut conn)
            .await
            .map_err(redis_err)?;
        Ok(())
    }

    async fn nearest(&self, scope: &str, vector: &[f32]) -> Result<Option<(String, f64)>, CacheError> {
        let mut conn = self.conn.clone();
        let hash = self.scope_key(scope);
        let all: Vec<(String, String)> = conn.hgetall(&hash).await.map_err(redis_err)?;
        let now = now_ms();
        let mut best: Option<(String, f64)> = None;
        let mut expired = Vec::new();
        for (key, raw) in all {
            let Ok(sv) = serde_json::from_str::<StoredVector>(&raw) else {
                expired.push(key);
                continue;
            };
            if sv.exp <= now {
                expired.push(key);
                continue;
            }
            let sim = cosine(&sv.v, vector);
            if best.as_ref().is_none_or(|b| sim > b.1) {
                best = Some((key, sim));
            }
        }
        if !expired.is_empty() {
            let _: Result<(), _> = conn.hdel(&hash, expired).await;
        }
        Ok(best)
    }

    async fn put_vector(
        &self,
        scope: &str,
        key: &str,
        vector: &[f32],
        ttl: Duration,
    ) -> Result<(), CacheError> {
        let mut conn = self.conn.clone();
        let hash = self.scope_key(scope);
        let len: usize = conn.hlen(&hash).await.map_err(redis_err)?;
        if len >= MAX_SCOPE_VECTORS {
            return Ok(());
        }
        let ms = i64::try_from(ttl.as_millis()).unwrap_or(i64::MAX / 2);
        let sv = StoredVector {
            v: vector.to_vec(),
            exp: now_ms() + ms,
        };
        let text = serde_json::to_string(&sv).map_err(|e| CacheError(e.to_string()))?;
        let _: () = conn.hset(&hash, key, text).await.map_err(redis_err)?;
        // The hash lives as long as its longest-lived entry could.
        let current: i64 = conn.pttl(&hash).await.map_err(redis_err)?;
        if current < ms {
            let _: () = conn.pexpire(&hash, ms).await.map_err(redis_err)?;
        }
        Ok(())
    }

    async fn clear(&self) -> Result<u64, CacheError> {
        let answers = self.scan(format!("{}e:*", glob_escape(&self.prefix))).await?;
        let vectors = self.scan(format!("{}v:*", glob_escape(&self.prefix))).await?;
        let n = answers.len() as u64;
        let mut conn = self.conn.clone();
        for chunk in answers.chunks(500).chain(vectors.chunks(500)) {
            let _: () = conn.del(chunk).await.map_err(redis_err)?;
        }
        Ok(n)
    }

    async fn entries(&self) -> Result<u64, CacheError> {
        Ok(self
            .scan(format!("{}e:*", glob_escape(&self.prefix)))
            .await?
            .len() as u64)
    }

    fn kind(&self) -> &'static str {
        "redis"
    }
}
