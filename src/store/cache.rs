//! The cache, one implementation for both stores. Each step is atomic over one namespace
//! (one Redis Cluster slot); entries expire on their own clock and leave the namespace's
//! index and every tag index they were in, and a tag's index lives as long as its longest
//! entry, never less.

use async_trait::async_trait;

use super::StoreError;
use crate::domain::cache::{CacheEntry, CacheStats, Incr, Put};

#[async_trait]
pub trait CacheStore: Send + Sync + 'static {
    /// The live entry, counting a hit or a miss in the namespace's stats.
    async fn cache_get(&self, ns: &str, key: &str) -> Result<Option<CacheEntry>, StoreError>;

    /// Stores `value` (JSON) for `ttl_ms` with `tags`, as a new version; with `if_version`,
    /// only if the entry's version is that (0: only if there is none).
    async fn cache_put(
        &self,
        ns: &str,
        key: &str,
        value: &str,
        ttl_ms: u64,
        tags: &[String],
        if_version: Option<u64>,
    ) -> Result<Put, StoreError>;

    /// Removes an entry; `false` when there was none.
    async fn cache_delete(&self, ns: &str, key: &str) -> Result<bool, StoreError>;

    /// Adds `by` to an integer entry (created at 0 with `ttl_ms` when missing; an existing
    /// entry keeps its expiry and tags).
    async fn cache_incr(
        &self,
        ns: &str,
        key: &str,
        by: i64,
        ttl_ms: u64,
    ) -> Result<Incr, StoreError>;

    /// Removes every entry carrying any of `tags`; how many went.
    async fn cache_invalidate(&self, ns: &str, tags: &[String]) -> Result<u64, StoreError>;

    async fn cache_stats(&self, ns: &str) -> Result<CacheStats, StoreError>;

    /// Removes every entry of the namespace; how many went.
    async fn cache_clear(&self, ns: &str) -> Result<u64, StoreError>;
}
