//! Quotas on Redis: `quota.lua`, with Redis's own clock, in the tenant's key space.

use std::time::Duration;

use async_trait::async_trait;

use super::{corrupt, script, ttl_ms, RedisStore};
use crate::store::{Admission, Admitted, QuotaStore, StoreError};

#[async_trait]
impl QuotaStore for RedisStore {
    async fn quota_hold(
        &self,
        set: &str,
        members: &[(&str, u64)],
        ttl: Duration,
        max: u64,
    ) -> Result<bool, StoreError> {
        let mut inv = script!("quota.lua").prepare_invoke();
        inv.key(self.keys.quota(set, ""))
            .key(self.keys.quota(set, "w"))
            .arg("hold")
            .arg(ttl_ms(ttl))
            .arg(max);
        for (m, weight) in members {
            inv.arg(*m).arg(*weight);
        }
        let taken: i64 = inv.invoke_async(&mut self.conn()).await?;
        Ok(taken == 1)
    }

    async fn quota_admit(&self, a: Admission<'_>) -> Result<Admitted, StoreError> {
        let mut inv = script!("quota.lua").prepare_invoke();
        inv.key(self.keys.quota("sessions", ""))
            .key(self.keys.quota("sessions", "w"))
            .key(self.keys.quota(a.window, ""))
            .arg("admit")
            .arg(ttl_ms(a.ttl))
            .arg(a.max_sessions)
            .arg(a.events)
            .arg(a.max_events)
            .arg(ttl_ms(a.keep));
        for id in a.sessions {
            inv.arg(*id);
        }
        let answer: i64 = inv.invoke_async(&mut self.conn()).await?;
        match answer {
            0 => Ok(Admitted::Taken),
            1 => Ok(Admitted::Sessions),
            2 => Ok(Admitted::Events),
            _ => Err(corrupt("quota")),
        }
    }

    async fn quota_release(&self, set: &str, member: &str) -> Result<(), StoreError> {
        let _: i64 = script!("quota.lua")
            .key(self.keys.quota(set, ""))
            .key(self.keys.quota(set, "w"))
            .arg("release")
            .arg(member)
            .invoke_async(&mut self.conn())
            .await?;
        Ok(())
    }

    async fn quota_give_back(&self, window: &str, n: u64) -> Result<(), StoreError> {
        let _: i64 = script!("quota.lua")
            .key(self.keys.quota(window, ""))
            .arg("give_back")
            .arg(n)
            .invoke_async(&mut self.conn())
            .await?;
        Ok(())
    }
}
