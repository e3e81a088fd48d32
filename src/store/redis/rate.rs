//! Rate limits on Redis: one STRING per subject (its GCRA TAT in microseconds), taken by
//! `rate_take.lua` with Redis's own clock, expiring when the budget is full again.

use async_trait::async_trait;
use redis::Value;

use super::{corrupt, int, script, RedisStore};
use crate::domain::rate::{Decision, Gcra};
use crate::store::{RateStore, StoreError};

#[async_trait]
impl RateStore for RedisStore {
    async fn take_rate(
        &self,
        tenant: &str,
        subject: &str,
        gcra: Gcra,
        count: u64,
    ) -> Result<Decision, StoreError> {
        let reply: Vec<Value> = script!("rate_take.lua")
            .key(self.tenant_keys(tenant).rate(subject))
            .arg(gcra.interval_us)
            .arg(gcra.tolerance_us)
            .arg(count.max(1))
            .invoke_async(&mut self.conn())
            .await?;
        let n = |i: usize| {
            reply
                .get(i)
                .and_then(int)
                .ok_or_else(|| corrupt("rate_take"))
        };
        Ok(Decision {
            allowed: n(0)? == 1,
            remaining: n(1)?,
            retry_after_us: n(2)?,
            reset_us: n(3)?,
        })
    }
}
