//! The cache in memory: per namespace its entries, each tag's keys and the hit and miss
//! counts, on the wall clock in ms. An expired entry is dropped when met and by the sweep,
//! leaving every tag's set with it.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use async_trait::async_trait;

use super::{MemoryStore, OVERHEAD};
use crate::domain::cache::{counter, CacheEntry, CacheStats, Incr, Put, MAX_COUNTER};
use crate::store::{CacheStore, StoreError};
use crate::time::now_ms;

#[derive(Default)]
pub(super) struct Caches {
    namespaces: HashMap<String, Namespace>,
}

#[derive(Default)]
struct Namespace {
    entries: HashMap<String, CacheEntry>,
    tags: HashMap<String, HashSet<String>>,
    hits: u64,
    misses: u64,
}

impl Namespace {
    fn remove(&mut self, key: &str) -> Option<CacheEntry> {
        let e = self.entries.remove(key)?;
        for t in &e.tags {
            if let Some(set) = self.tags.get_mut(t) {
                set.remove(key);
                if set.is_empty() {
                    self.tags.remove(t);
                }
            }
        }
        Some(e)
    }

    /// The live entry; an expired one is dropped.
    fn live(&mut self, key: &str, now: i64) -> Option<&CacheEntry> {
        if self
            .entries
            .get(key)
            .is_some_and(|e| e.expires_at_ms <= now)
        {
            self.remove(key);
        }
        self.entries.get(key)
    }

    fn store(&mut self, key: &str, entry: CacheEntry) {
        self.remove(key);
        for t in &entry.tags {
            self.tags
                .entry(t.clone())
                .or_default()
                .insert(key.to_string());
        }
        self.entries.insert(key.to_string(), entry);
    }

    fn sweep(&mut self, now: i64) {
        let gone: Vec<String> = self
            .entries
            .iter()
            .filter(|(_, e)| e.expires_at_ms <= now)
            .map(|(k, _)| k.clone())
            .collect();
        for k in gone {
            self.remove(&k);
        }
    }
}

fn entry_bytes(key: &str, e: &CacheEntry) -> usize {
    key.len()
        + e.value.len()
        + e.tags
            .iter()
            .map(|t| 2 * t.len() + key.len())
            .sum::<usize>()
        + OVERHEAD
}

impl Caches {
    pub fn bytes(&self) -> usize {
        self.namespaces
            .values()
            .map(|n| {
                n.entries
                    .iter()
                    .map(|(k, e)| entry_bytes(k, e))
                    .sum::<usize>()
                    + OVERHEAD
            })
            .sum()
    }

    pub fn sweep(&mut self) {
        let now = now_ms();
        for n in self.namespaces.values_mut() {
            n.sweep(now);
        }
        self.namespaces
            .retain(|_, n| !n.entries.is_empty() || n.hits + n.misses > 0);
    }
}

impl MemoryStore {
    fn with_ns<T>(&self, ns: &str, f: impl FnOnce(&mut Namespace, i64) -> T) -> T {
        let mut state = self.state.lock();
        f(
            state.caches.namespaces.entry(ns.to_string()).or_default(),
            now_ms(),
        )
    }
}

#[async_trait]
impl CacheStore for MemoryStore {
    async fn cache_get(&self, ns: &str, key: &str) -> Result<Option<CacheEntry>, StoreError> {
        Ok(self.with_ns(ns, |n, now| {
            let e = n.live(key, now).cloned();
            if e.is_some() {
                n.hits += 1;
            } else {
                n.misses += 1;
            }
            e
        }))
    }

    async fn cache_put(
        &self,
        ns: &str,
        key: &str,
        value: &str,
        ttl_ms: u64,
        tags: &[String],
        if_version: Option<u64>,
    ) -> Result<Put, StoreError> {
        let mut state = self.state.lock();
        let now = now_ms();
        let entry = CacheEntry {
            value: Arc::from(value),
            version: 0,
            tags: tags.to_vec(),
            expires_at_ms: now + ttl_ms as i64,
        };
        let n = state.caches.namespaces.entry(ns.to_string()).or_default();
        let current = n.live(key, now).map_or(0, |e| e.version);
        if if_version.is_some_and(|v| v != current) {
            return Ok(Put::VersionMismatch(current));
        }
        self.admit(&mut state, entry_bytes(key, &entry))?;
        let n = state.caches.namespaces.entry(ns.to_string()).or_default();
        let expires_at_ms = entry.expires_at_ms;
        n.store(
            key,
            CacheEntry {
                version: current + 1,
                ..entry
            },
        );
        Ok(Put::Stored {
            version: current + 1,
            expires_at_ms,
        })
    }

    async fn cache_delete(&self, ns: &str, key: &str) -> Result<bool, StoreError> {
        Ok(self.with_ns(ns, |n, now| {
            n.live(key, now).is_some() && n.remove(key).is_some()
        }))
    }

    async fn cache_incr(
        &self,
        ns: &str,
        key: &str,
        by: i64,
        ttl_ms: u64,
    ) -> Result<Incr, StoreError> {
        let mut state = self.state.lock();
        let now = now_ms();
        let n = state.caches.namespaces.entry(ns.to_string()).or_default();
        let (base, version, tags, expires_at_ms) = match n.live(key, now) {
            Some(e) => match counter(&e.value) {
                Some(v) => (v, e.version, e.tags.clone(), e.expires_at_ms),
                None => return Ok(Incr::NotInteger),
            },
            None => (0, 0, Vec::new(), now + ttl_ms as i64),
        };
        let Some(value) = base.checked_add(by).filter(|v| v.abs() <= MAX_COUNTER) else {
            return Ok(Incr::NotInteger);
        };
        let entry = CacheEntry {
            value: value.to_string().into(),
            version: version + 1,
            tags,
            expires_at_ms,
        };
        if version == 0 {
            self.admit(&mut state, entry_bytes(key, &entry))?;
        }
        state
            .caches
            .namespaces
            .entry(ns.to_string())
            .or_default()
            .store(key, entry);
        Ok(Incr::Value {
            value,
            version: version + 1,
            expires_at_ms,
        })
    }

    async fn cache_invalidate(&self, ns: &str, tags: &[String]) -> Result<u64, StoreError> {
        Ok(self.with_ns(ns, |n, _| {
            let keys: HashSet<String> = tags
                .iter()
                .filter_map(|t| n.tags.get(t))
                .flatten()
                .cloned()
                .collect();
            keys.iter().filter(|k| n.remove(k).is_some()).count() as u64
        }))
    }

    async fn cache_stats(&self, ns: &str) -> Result<CacheStats, StoreError> {
        Ok(self.with_ns(ns, |n, now| {
            n.sweep(now);
            CacheStats {
                hits: n.hits,
                misses: n.misses,
                keys: n.entries.len() as u64,
            }
        }))
    }

    async fn cache_clear(&self, ns: &str) -> Result<u64, StoreError> {
        Ok(self.with_ns(ns, |n, now| {
            n.sweep(now);
            let count = n.entries.len() as u64;
            n.entries.clear();
            n.tags.clear();
            count
        }))
    }
}
