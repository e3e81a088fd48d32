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

/// A post's events and sessions, for [`QuotaStore::quota_admit`].
#[derive(Debug, Clone, Copy)]
pub struct Admission<'a> {
    /// Its sessions, held in the `sessions` set for `ttl` (weight 1 each) within
    /// `max_sessions` (0: not held).
    pub sessions: &'a [&'a str],
    pub ttl: Duration,
    pub max_sessions: u64,
    /// Its `events`, counted in `window` (kept `keep`) within `max_events` (0: not counted).
    pub window: &'a str,
    pub events: u64,
    pub max_events: u64,
    pub keep: Duration,
}

/// What [`QuotaStore::quota_admit`] refused, if anything (then nothing was counted).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Admitted {
    Taken,
    /// The sessions would pass `max_sessions`.
    Sessions,
    /// The events would pass `max_events`.
    Events,
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

    /// A post in one step: its events counted and its sessions held (as [`Self::quota_count`]
    /// and [`Self::quota_hold`] of the `sessions` set), both or neither.
    async fn quota_admit(&self, a: Admission<'_>) -> Result<Admitted, StoreError>;

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
