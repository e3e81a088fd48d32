//! Usage totals on Redis: one HASH per tenant, scope and period (one per partition on a
//! Cluster), added to by `events_append.lua` and read here.

use std::collections::HashMap;

use async_trait::async_trait;
use redis::AsyncCommands;

use super::RedisStore;
use crate::domain::usage::{UsageTotals, USAGE_TOTAL_MAX};

/// The field that says a total reached its bound.
const SATURATED: &str = "sat";
use crate::store::{StoreError, UsageStore};

#[async_trait]
impl UsageStore for RedisStore {
    async fn usage(
        &self,
        tenant: &str,
        scope: &str,
        period: &str,
    ) -> Result<UsageTotals, StoreError> {
        let keys = self.tenant_keys(tenant).usage_shares(scope, period);
        let shares = futures::future::try_join_all(keys.into_iter().map(|key| {
            self.read(move |mut c| {
                let key = key.clone();
                async move { c.hgetall::<_, HashMap<String, u64>>(key).await }
            })
        }))
        .await?;
        // On a Cluster a total is one share per partition: summed, and saturated at the same
        // bound as one share is (`sat` says so).
        let mut fields: HashMap<String, u64> = HashMap::new();
        for share in shares {
            for (f, v) in share {
                let total = fields.entry(f.clone()).or_default();
                *total = if f == SATURATED {
                    (*total).max(v)
                } else {
                    total.saturating_add(v)
                };
            }
        }
        if fields
            .iter()
            .any(|(f, v)| f != SATURATED && *v > USAGE_TOTAL_MAX)
        {
            for (f, v) in fields.iter_mut() {
                if f != SATURATED {
                    *v = (*v).min(USAGE_TOTAL_MAX);
                }
            }
            fields.insert(SATURATED.to_string(), 1);
        }
        Ok(UsageTotals {
            fields: fields.into_iter().collect(),
        })
    }
}
