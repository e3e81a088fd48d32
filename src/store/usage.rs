//! Usage totals, read back. They are written by [`super::EventStore::append`], in the atomic
//! step that stores the event that reports them, so a duplicate `eventId` adds nothing.

use async_trait::async_trait;

use super::StoreError;
use crate::domain::usage::UsageTotals;

#[async_trait]
pub trait UsageStore: Send + Sync + 'static {
    /// One total: `scope` is `tenant`, `u:{user}` or `s:{session}` within `tenant`, `period`
    /// `d:YYYY-MM-DD` or `m:YYYY-MM`. Zeros when nothing was counted.
    async fn usage(
        &self,
        tenant: &str,
        scope: &str,
        period: &str,
    ) -> Result<UsageTotals, StoreError>;
}
