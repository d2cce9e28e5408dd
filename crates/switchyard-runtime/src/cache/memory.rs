//! The embedded cache: `moka`'s size-bounded concurrent cache (TinyLFU admission, LRU eviction,
//! per-entry expiry), weighted by each answer's size. Semantic lookups scan the embeddings of one
//! scope (same cache key, model, parameters and caller) by brute force: scopes are small, and the
//! number of embeddings kept is bounded too.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use moka::sync::Cache;
use moka::Expiry;
use switchyard_cache::vector::cosine;
use switchyard_cache::CachedAnswer;

use super::{CacheError, CacheStore};

/// The most embeddings kept (all scopes together); the oldest go first.
const MAX_VECTORS: usize = 20_000;

#[derive(Clone)]
struct Stored {
    answer: Arc<CachedAnswer>,
    ttl: Duration,
}

struct ByOwnTtl;

impl Expiry<String, Stored> for ByOwnTtl {
    fn expire_after_create(&self, _key: &String, value: &Stored, _now: Instant) -> Option<Duration> {
        Some(value.ttl)
    }
}

struct VectorEntry {
    key: String,
    vector: Vec<f32>,
    expires: Instant,
}

#[derive(Default)]
struct Vectors {
    by_scope: HashMap<String, Vec<VectorEntry>>,
    /// (scope, key) in insertion order, for the bound.
    order: VecDeque<(String, String)>,
}

pub struct MemoryCacheStore {
    answers: Cache<String, Stored>,
    vectors: Mutex<Vectors>,
}

impl MemoryCacheStore {
    pub fn new(max_bytes: u64) -> MemoryCacheStore {
        let answers = Cache::builder()
            .max_capacity(max_bytes)
            .weigher(|k: &String, v: &Stored| v.answer.weight().saturating_add(k.len() as u32))
            .expire_after(ByOwnTtl)
            .build();
        MemoryCacheStore {
            answers,
            vectors: Mutex::new(Vectors::default()),
        }
    }

    fn vectors(&self) -> std::sync::MutexGuard<'_, Vectors> {
        self.vectors.lock().unwrap_or_else(|p| p.into_inner())
    }
}

#[async_trait]
impl CacheStore for MemoryCacheStore {
    async fn get(&self, key: &str) -> Result<Option<CachedAnswer>, CacheError> {
        Ok(self.answers.get(key).map(|s| (*s.answer).clone()))
    }

    async fn put(&self, key: &str, answer: &CachedAnswer, ttl: Duration) -> Result<(), CacheError> {
        self.answers.insert(
            key.to_owned(),
            Stored {
                answer: Arc::new(answer.clone()),
                ttl,
            },
        );
        Ok(())
    }

    async fn nearest(&self, scope: &str, vector: &[f32]) -> Result<Option<(String, f64)>, CacheError> {
        let now = Instant::now();
        let mut v = self.vectors();
        let Some(entries) = v.by_scope.get_mut(scope) else {
            return Ok(None);
        };
        entries.retain(|e| e.expires > now);
        let best = entries
            .iter()
            .filter(|e| self.answers.contains_key(&e.key))
            .map(|e| (e.key.clone(), cosine(&e.vector, vector)))
            .max_by(|a, b| a.1.total_cmp(&b.1));
        Ok(best)
    }

    async fn put_vector(
        &self,
        scope: &str,
        key: &str,
        vector: &[f32],
        ttl: Duration,
    ) -> Result<(), CacheError> {
        let mut v = self.vectors();
        let entries = v.by_scope.entry(scope.to_owned()).or_default();
        entries.retain(|e| e.key != key);
        entries.push(VectorEntry {
            key: key.to_owned(),
            vector: vector.to_vec(),
            expires: Instant::now() + ttl,
        });
        v.order.push_back((scope.to_owned(), key.to_owned()));
        while v.order.len() > MAX_VECTORS {
            let Some((s, k)) = v.order.pop_front() else { break };
            if let Some(list) = v.by_scope.get_mut(&s) {
                list.retain(|e| e.key != k);
                if list.is_empty() {
                    v.by_scope.remove(&s);
                }
            }
        }
        Ok(())
    }

    async fn clear(&self) -> Result<u64, CacheError> {
        self.answers.run_pending_tasks();
        let n = self.answers.entry_count();
        self.answers.invalidate_all();
        self.answers.run_pending_tasks();
        *self.vectors() = Vectors::default();
        Ok(n)
    }

    async fn entries(&self) -> Result<u64, CacheError> {
        self.answers.run_pending_tasks();
        Ok(self.answers.entry_count())
    }

    fn kind(&self) -> &'static str {
        "memory"
    }
}
