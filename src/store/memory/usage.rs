//! Usage totals in memory: per tenant, scope and period its counters, added to by the event
//! append under the same lock (so as atomic as the Redis script), each kept for its period's
//! keep days after its last change.

use std::collections::HashMap;

use std::time::Instant;

use async_trait::async_trait;

use super::{MemoryStore, Part, OVERHEAD};
use crate::config::Services;
use crate::domain::usage::{UsageDraft, UsageTotals};
use crate::store::{StoreError, UsageStore};
use crate::time::now_ms;

type Key = (String, String, String);

#[derive(Default, serde::Serialize, serde::Deserialize)]
pub(super) struct UsageTable {
    #[serde(with = "super::persisted::pairs")]
    totals: HashMap<Key, (UsageTotals, i64)>,
}

impl UsageTable {
    /// Adds one stored event's usage to each of its totals.
    pub fn add(&mut self, session_id: &str, u: &UsageDraft, s: &Services) {
        let now = now_ms();
        let incr = u.increments();
        for (scope, period, keep_secs) in
            u.buckets(session_id, s.usage_day_keep_secs, s.usage_month_keep_secs)
        {
            let (totals, expires) = self
                .totals
                .entry((u.tenant.clone(), scope, period))
                .or_default();
            if *expires <= now {
                totals.fields.clear();
            }
            totals.add(&incr);
            *expires = now + (keep_secs * 1000) as i64;
        }
    }
}

impl Part for UsageTable {
    fn sweep(&mut self, _: Instant) {
        let now = now_ms();
        self.totals.retain(|_, (_, expires)| *expires > now);
    }

    fn bytes(&self) -> usize {
        self.totals
            .iter()
            .map(|((t, s, p), (f, _))| {
                t.len()
                    + s.len()
                    + p.len()
                    + f.fields.keys().map(|k| k.len() + 16).sum::<usize>()
                    + OVERHEAD
            })
            .sum()
    }
}

#[async_trait]
impl UsageStore for MemoryStore {
    async fn usage(
        &self,
        tenant: &str,
        scope: &str,
        period: &str,
    ) -> Result<UsageTotals, StoreError> {
        let state = self.state.lock();
        let key = (tenant.to_string(), scope.to_string(), period.to_string());
        Ok(match state.usage.totals.get(&key) {
            Some((t, expires)) if *expires > now_ms() => t.clone(),
            _ => UsageTotals::default(),
        })
    }
}
