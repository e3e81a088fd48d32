//! Rate limits in this process: each subject's GCRA state in a map of its own, beside the
//! state's mutex (a limit is taken before every credentialed request; it must not queue behind
//! the store's writes). An entry goes when its subject's budget is full again, in the sweep.
//! Its bytes are not charged to `MEMORY_STORE_MAX_BYTES`: at most one small entry per subject
//! that was limited within the last burst's worth of time.

use std::time::Instant;

use async_trait::async_trait;
use dashmap::DashMap;

use super::MemoryStore;
use crate::domain::rate::{self, Decision, Gcra};
use crate::store::{RateStore, StoreError};

pub(super) struct RateTable {
    /// `{tenant}\n{subject}` → the TAT, in microseconds since `started`.
    tats: DashMap<String, u64>,
    started: Instant,
}

impl Default for RateTable {
    fn default() -> Self {
        RateTable {
            tats: DashMap::new(),
            started: Instant::now(),
        }
    }
}

impl RateTable {
    fn now_us(&self) -> u64 {
        self.started.elapsed().as_micros() as u64
    }

    fn take(&self, tenant: &str, subject: &str, gcra: Gcra, count: u64) -> Decision {
        let now = self.now_us();
        let key = format!("{tenant}\n{subject}");
        let mut entry = self.tats.entry(key).or_insert(0);
        let tat = Some(*entry).filter(|t| *t > 0);
        let (decision, next) = rate::take_n(gcra, tat, now, count);
        if let Some(next) = next {
            *entry = next;
        }
        decision
    }

    /// Drops every subject whose budget is full again (its TAT is past).
    pub(super) fn sweep(&self) {
        let now = self.now_us();
        self.tats.retain(|_, tat| *tat > now);
    }
}

#[async_trait]
impl RateStore for MemoryStore {
    async fn take_rate(
        &self,
        tenant: &str,
        subject: &str,
        gcra: Gcra,
        count: u64,
    ) -> Result<Decision, StoreError> {
        Ok(self.rates.take(tenant, subject, gcra, count))
    }
}
