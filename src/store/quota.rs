//! What a tenant's quotas are counted in ([`crate::service::quotas`]), in the tenant's own
//! store, so every instance counts against one total:
//! - a **held set**: members that each weigh something until they expire (live sessions,
//!   cache bytes), all or none of a change taken while the total stays within its maximum;
//! - a **window counter**: a count per window (events per day), counted by
//!   [`QuotaStore::quota_admit`] within its maximum.

use std::time::Duration;

use async_trait::async_trait;

use super::StoreError;

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
    /// taken. Whether it was taken.
    async fn quota_hold(
        &self,
        set: &str,
        members: &[(&str, u64)],
        ttl: Duration,
        max: u64,
    ) -> Result<bool, StoreError>;

    /// A post in one step: its events counted in its window and its sessions held (as
    /// [`Self::quota_hold`] of the `sessions` set), both or neither.
    async fn quota_admit(&self, a: Admission<'_>) -> Result<Admitted, StoreError>;

    /// Lets go of `member` of `set` (deleted before it expired).
    async fn quota_release(&self, set: &str, member: &str) -> Result<(), StoreError>;

    /// Takes `n` off the counter `window` (never below zero): what [`Self::quota_admit`]
    /// counted for a post that was then not stored.
    async fn quota_give_back(&self, window: &str, n: u64) -> Result<(), StoreError>;
}
