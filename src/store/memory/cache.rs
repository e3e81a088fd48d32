//! The cache in memory: per namespace its entries, an index of them by expiry, each tag's keys
//! and the hit and miss counts, on the wall clock in ms. An expired entry is dropped when met
//! and by the sweep (from the front of the expiry index, so never by walking every entry),
//! leaving every tag's set with it. A namespace exists while it holds entries: reads create
//! none (a miss where there is no namespace is not counted), and its stats go with it, as the
//! Redis store's live in its entries hash.

use std::collections::{BTreeSet, HashMap, HashSet};
use std::sync::Arc;

use std::time::Instant;

use async_trait::async_trait;

use super::{MemoryStore, Part, OVERHEAD};
use crate::domain::cache::{counter, CacheEntry, CacheStats, Incr, Put, MAX_COUNTER};
use crate::store::{CacheStore, StoreError};
use crate::time::now_ms;

#[derive(Default, serde::Serialize, serde::Deserialize)]
pub(super) struct CacheTable {
    namespaces: HashMap<String, Namespace>,
}

#[derive(Default, serde::Serialize, serde::Deserialize)]
struct Namespace {
    entries: HashMap<String, CacheEntry>,
    /// Every entry by (expiry ms, key).
    by_expiry: BTreeSet<(i64, String)>,
    tags: HashMap<String, HashSet<String>>,
    hits: u64,
    misses: u64,
}

impl Namespace {
    fn remove(&mut self, key: &str) -> Option<CacheEntry> {
        let e = self.entries.remove(key)?;
        self.by_expiry.remove(&(e.expires_at_ms, key.to_string()));
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
        self.by_expiry
            .insert((entry.expires_at_ms, key.to_string()));
        self.entries.insert(key.to_string(), entry);
    }

    /// Drops the entries that expired, soonest first.
    fn sweep(&mut self, now: i64) {
        while self.by_expiry.first().is_some_and(|(at, _)| *at <= now) {
            let Some((_, key)) = self.by_expiry.pop_first() else {
                break;
            };
            self.remove(&key);
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

impl Part for CacheTable {
    fn sweep(&mut self, _: Instant) {
        let now = now_ms();
        for n in self.namespaces.values_mut() {
            n.sweep(now);
        }
        self.namespaces.retain(|_, n| !n.entries.is_empty());
    }

    fn bytes(&self) -> usize {
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
}

impl MemoryStore {
    /// Runs `f` on the namespace if it exists (with its expired entries dropped; one left
    /// with none goes). Reads go through here: they never create a namespace.
    fn with_ns<T>(&self, ns: &str, f: impl FnOnce(&mut Namespace, i64) -> T) -> Option<T> {
        let mut state = self.state.lock();
        let now = now_ms();
        let n = state.caches.namespaces.get_mut(ns)?;
        n.sweep(now);
        let out = f(n, now);
        if n.entries.is_empty() {
            state.caches.namespaces.remove(ns);
        }
        Some(out)
    }
}

#[async_trait]
impl CacheStore for MemoryStore {
    async fn cache_get(&self, ns: &str, key: &str) -> Result<Option<CacheEntry>, StoreError> {
        Ok(self
            .with_ns(ns, |n, now| {
                let e = n.live(key, now).cloned();
                if e.is_some() {
                    n.hits += 1;
                } else {
                    n.misses += 1;
                }
                e
            })
            .flatten())
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
        let (current, new_ns) = match state.caches.namespaces.get_mut(ns) {
            Some(n) => (n.live(key, now).map_or(0, |e| e.version), false),
            None => (0, true),
        };
        if if_version.is_some_and(|v| v != current) {
            return Ok(Put::VersionMismatch(current));
        }
        let ns_bytes = if new_ns { OVERHEAD + ns.len() } else { 0 };
        self.admit(&mut state, entry_bytes(key, &entry) + ns_bytes)?;
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
        Ok(self
            .with_ns(ns, |n, now| {
                n.live(key, now).is_some() && n.remove(key).is_some()
            })
            .unwrap_or(false))
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
        let existing = state
            .caches
            .namespaces
            .get_mut(ns)
            .and_then(|n| n.live(key, now).cloned());
        let new_ns = !state.caches.namespaces.contains_key(ns);
        let (base, version, tags, expires_at_ms) = match existing {
            Some(e) => match counter(&e.value) {
                Some(v) => (v, e.version, e.tags.clone(), e.expires_at_ms),
                None => return Ok(Incr::NotInteger),
            },
            None => (0, 0, Vec::new(), now + ttl_ms as i64),
        };
        // `unsigned_abs`: i64::MIN has no `abs`.
        let Some(value) = base
            .checked_add(by)
            .filter(|v| v.unsigned_abs() <= MAX_COUNTER.unsigned_abs())
        else {
            return Ok(Incr::NotInteger);
        };
        let entry = CacheEntry {
            value: value.to_string().into(),
            version: version + 1,
            tags,
            expires_at_ms,
        };
        if version == 0 {
            let ns_bytes = if new_ns { OVERHEAD + ns.len() } else { 0 };
            self.admit(&mut state, entry_bytes(key, &entry) + ns_bytes)?;
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
        // Only live entries count (an expired one is dropped by the sweep, not invalidated).
        Ok(self
            .with_ns(ns, |n, _| {
                let keys: HashSet<String> = tags
                    .iter()
                    .filter_map(|t| n.tags.get(t))
                    .flatten()
                    .cloned()
                    .collect();
                keys.iter().filter(|k| n.remove(k).is_some()).count() as u64
            })
            .unwrap_or(0))
    }

    async fn cache_stats(&self, ns: &str) -> Result<CacheStats, StoreError> {
        Ok(self
            .with_ns(ns, |n, _| CacheStats {
                hits: n.hits,
                misses: n.misses,
                keys: n.entries.len() as u64,
            })
            .unwrap_or_default())
    }

    async fn cache_clear(&self, ns: &str) -> Result<u64, StoreError> {
        Ok(self
            .with_ns(ns, |n, _| {
                let count = n.entries.len() as u64;
                *n = Namespace::default();
                count
            })
            .unwrap_or(0))
    }
}
