//! Quotas on Redis: `quota.lua`, with Redis's own clock, in the tenant's key space.

use std::time::Duration;

use async_trait::async_trait;
use redis::Value;

use super::{corrupt, int, script, ttl_ms, RedisStore};
use crate::store::{Admission, Admitted, QuotaAnswer, QuotaStore, StoreError};

fn answer(reply: &[Value]) -> Result<QuotaAnswer, StoreError> {
    let n = |i: usize| reply.get(i).and_then(int).ok_or_else(|| corrupt("quota"));
    Ok(QuotaAnswer {
        taken: n(0)? == 1,
        total: n(1)?,
    })
}

#[async_trait]
impl QuotaStore for RedisStore {
    async fn quota_hold(
        &self,
        set: &str,
        members: &[(&str, u64)],
        ttl: Duration,
        max: u64,
    ) -> Result<QuotaAnswer, StoreError> {
        let mut inv = script!("quota.lua").prepare_invoke();
        inv.key(self.keys.quota(set, ""))
            .key(self.keys.quota(set, "w"))
            .arg("hold")
            .arg(ttl_ms(ttl))
            .arg(max);
        for (m, weight) in members {
            inv.arg(*m).arg(*weight);
        }
        let reply: Vec<Value> = inv.invoke_async(&mut self.conn()).await?;
        answer(&reply)
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
        let reply: Vec<Value> = inv.invoke_async(&mut self.conn()).await?;
        match (reply.first().and_then(int), reply.get(1).and_then(int)) {
            (Some(1), _) => Ok(Admitted::Taken),
            (Some(0), Some(1)) => Ok(Admitted::Sessions),
            (Some(0), Some(2)) => Ok(Admitted::Events),
            _ => Err(corrupt("quota")),
        }
    }

    async fn quota_release(&self, set: &str, member: &str) -> Result<(), StoreError> {
        let _: Vec<Value> = script!("quota.lua")
            .key(self.keys.quota(set, ""))
            .key(self.keys.quota(set, "w"))
            .arg("release")
            .arg(member)
            .invoke_async(&mut self.conn())
            .await?;
        Ok(())
    }

    async fn quota_count(
        &self,
        window: &str,
        n: i64,
        max: u64,
        keep: Duration,
    ) -> Result<QuotaAnswer, StoreError> {
        let reply: Vec<Value> = script!("quota.lua")
            .key(self.keys.quota(window, ""))
            .arg("count")
            .arg(n)
            .arg(max)
            .arg(ttl_ms(keep))
            .invoke_async(&mut self.conn())
            .await?;
        answer(&reply)
    }
}
