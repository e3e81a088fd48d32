//! What a tenant's quotas are counted in ([`crate::service::quotas`]), in the tenant's own
//! store, so every instance counts against one total:
//! - a **held set**: members that each weigh something until they expire (live sessions,
//!   cache bytes), all or none of a change taken while the total stays within its maximum;
//! - a **window counter**: a count per window (events per day) that refuses past its maximum.

use std::time::Duration;

use async_trait::async_trait;

use super::StoreError;

/// A quota's answer: whether the change was taken, and what the total is now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct QuotaAnswer {
    pub taken: bool,
    pub total: u64,
}

#[async_trait]
pub trait QuotaStore: Send + Sync + 'static {
    /// Holds each `(member, weight)` of `set` for `ttl` from now (a member held already gets
    /// the later of its two expiries and the new weight), all or none: refused when the set's
    /// total of live members would pass `max`. A change that does not add weight is always
    /// taken.
    async fn quota_hold(
        &self,
        set: &str,
        members: &[(&str, u64)],
        ttl: Duration,
        max: u64,
    ) -> Result<QuotaAnswer, StoreError>;

    /// Lets go of `member` of `set` (deleted before it expired).
    async fn quota_release(&self, set: &str, member: &str) -> Result<(), StoreError>;

    /// Adds `n` to the counter `window` (kept `keep` after its first count), unless it would
    /// pass `max`; a negative `n` gives back what a refused request had counted (never below
    /// zero).
    async fn quota_count(
        &self,
        window: &str,
        n: i64,
        max: u64,
        keep: Duration,
    ) -> Result<QuotaAnswer, StoreError>;
}
