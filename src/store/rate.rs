//! Rate limits shared by every instance: one GCRA state per limited subject
//! ([`crate::domain::rate`]), taken and moved on in one atomic step by the store's own clock.

use async_trait::async_trait;

use super::StoreError;
use crate::domain::rate::{Decision, Gcra};

#[async_trait]
pub trait RateStore: Send + Sync + 'static {
    /// Takes `count` requests at once (all or none) from `subject`'s budget under `tenant` (a
    /// credential: `k:{subject}`, an address: `a:{ip}`). The state lives as long as the
    /// budget is not full again.
    async fn take_rate(
        &self,
        tenant: &str,
        subject: &str,
        gcra: Gcra,
        count: u64,
    ) -> Result<Decision, StoreError>;
}
