//! Usage totals on Redis: one HASH per tenant, scope and period, added to by
//! `events_append.lua` and read here.

use std::collections::HashMap;

use async_trait::async_trait;
use redis::AsyncCommands;

use super::RedisStore;
use crate::domain::usage::UsageTotals;
use crate::store::{StoreError, UsageStore};

#[async_trait]
impl UsageStore for RedisStore {
    async fn usage(
        &self,
        tenant: &str,
        scope: &str,
        period: &str,
    ) -> Result<UsageTotals, StoreError> {
        let key = self.tenant_keys(tenant).usage(scope, period);
        let fields: HashMap<String, u64> = self
            .read(|mut c| {
                let key = key.clone();
                async move { c.hgetall(key).await }
            })
            .await?;
        Ok(UsageTotals {
            fields: fields.into_iter().collect(),
        })
    }
}
