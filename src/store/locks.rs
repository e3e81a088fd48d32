//! Distributed locks, one implementation for both stores. Every step is one atomic change of
//! one lock (one key on Redis); a release announces itself so waits on any instance retry at
//! once, and a grant is checked against the store's clock, never the caller's.

use async_trait::async_trait;

use super::StoreError;
use crate::domain::locks::{Acquire, LockHolder};

#[async_trait]
pub trait LockStore: Send + Sync + 'static {
    /// Grants the lock to `owner` with `token` for `ttl_ms` unless someone holds it.
    async fn acquire(
        &self,
        name: &str,
        owner: &str,
        token: &str,
        ttl_ms: u64,
    ) -> Result<Acquire, StoreError>;

    /// Moves the expiry of a held lock to `ttl_ms` from now; `None` unless `token` holds it.
    async fn extend(
        &self,
        name: &str,
        token: &str,
        ttl_ms: u64,
    ) -> Result<Option<LockHolder>, StoreError>;

    /// Releases a held lock and wakes its waiters; `false` unless `token` holds it.
    async fn release(&self, name: &str, token: &str) -> Result<bool, StoreError>;

    /// The lock's holder (`None` when it is free) and the last fencing token granted (0 for
    /// a name never granted, or not for `LOCK_FENCE_KEEP_DAYS`).
    async fn lock(&self, name: &str) -> Result<(Option<LockHolder>, u64), StoreError>;

    /// How many locks are held now; `None` where that is not counted (a Redis Cluster, whose
    /// locks each live in a slot of their own, with no index beside them).
    async fn held_locks(&self) -> Result<Option<u64>, StoreError>;
}
