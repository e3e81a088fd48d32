//! Permission requests on Redis: one HASH per request and two indexes beside it (every request
//! kept, the pending ones), each in the request id's partition, changed only by
//! `permissions.lua`; a settlement publishes its wake-up on the control channel in the same
//! step. The rules are one STRING.

use async_trait::async_trait;
use redis::{AsyncCommands, Value};

use super::{corrupt, script, signed, text, RedisStore};
use crate::bus::Signal;
use crate::domain::permissions::{Record, Status};
use crate::store::permissions::{Opened, PermissionLimits, PermissionStore};
use crate::store::StoreError;

/// `[request, status, decision, exp]` from `from` in a reply, as a record.
fn record(parts: &[Value], from: usize) -> Option<Record> {
    let decision = parts.get(from + 2).and_then(text).filter(|d| !d.is_empty());
    Some(Record {
        request: text(parts.get(from)?)?,
        status: Status::parse(&text(parts.get(from + 1)?)?)?,
        decision,
        expires_at_ms: signed(parts.get(from + 3)?)?,
    })
}

impl RedisStore {
    fn permission_keys(&self, id: &str) -> [String; 3] {
        let p = self.keys.partition(id);
        [
            self.keys.permission(id),
            self.keys.permission_index(false, p),
            self.keys.permission_index(true, p),
        ]
    }

    /// The records of `ids` (one partition's), in their order; ids whose HASH went are left out.
    async fn permission_records(&self, ids: &[String]) -> Result<Vec<Record>, StoreError> {
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        let mut pipe = redis::pipe();
        for id in ids {
            pipe.cmd("HMGET")
                .arg(self.keys.permission(id))
                .arg(&["request", "status", "decision", "exp"]);
        }
        let replies: Vec<Vec<Value>> = pipe.query_async(&mut self.read_conn()).await?;
        Ok(replies.iter().filter_map(|r| record(r, 0)).collect())
    }
}

#[async_trait]
impl PermissionStore for RedisStore {
    async fn open(
        &self,
        id: &str,
        request: &str,
        expires_at_ms: i64,
        limits: PermissionLimits,
    ) -> Result<Opened, StoreError> {
        let [key, all, pending] = self.permission_keys(id);
        // The caps hold for the whole store: on a Cluster each partition takes its share.
        let parts = self.keys.partitions();
        let reply: Vec<Value> = script!("permissions.lua")
            .key(key)
            .key(all)
            .key(pending)
            .arg("open")
            .arg(id)
            .arg(request)
            .arg(expires_at_ms)
            .arg(limits.keep_ms)
            .arg(limits.max_pending.div_ceil(parts))
            .arg(limits.max_kept.div_ceil(parts))
            .invoke_async(&mut self.conn())
            .await?;
        match reply.first().and_then(signed) {
            Some(-1) => Err(StoreError::QueueFull),
            Some(0) => Ok(Opened::Existing(
                record(&reply, 1).ok_or_else(|| corrupt("permissions"))?,
            )),
            Some(1) => {
                let opened = record(&reply, 1).ok_or_else(|| corrupt("permissions"))?;
                let gone: Vec<String> = reply[5..]
                    .iter()
                    .filter_map(text)
                    .map(|g| self.keys.permission(&g))
                    .collect();
                if !gone.is_empty() {
                    // Out of the index already; the HASHes would expire on their own.
                    let _: Result<(), _> = self.conn().del(gone).await;
                }
                Ok(Opened::New(opened))
            }
            _ => Err(corrupt("permissions")),
        }
    }

    async fn settle(
        &self,
        id: &str,
        status: Status,
        decision: &str,
    ) -> Result<Option<(Record, bool)>, StoreError> {
        let [key, all, pending] = self.permission_keys(id);
        let reply: Option<Vec<Value>> = script!("permissions.lua")
            .key(key)
            .key(all)
            .key(pending)
            .arg("settle")
            .arg(id)
            .arg(status.as_str())
            .arg(decision)
            .arg(self.keys.control_channel())
            .arg(Signal::Permission.announcement(id))
            .invoke_async(&mut self.conn())
            .await?;
        let Some(reply) = reply else {
            return Ok(None);
        };
        let r = record(&reply, 1).ok_or_else(|| corrupt("permissions"))?;
        Ok(Some((r, reply.first().and_then(signed) == Some(1))))
    }

    async fn permission(&self, id: &str) -> Result<Option<Record>, StoreError> {
        Ok(self
            .permission_records(&[id.to_string()])
            .await?
            .into_iter()
            .next())
    }

    async fn permissions(
        &self,
        pending_only: bool,
        limit: usize,
    ) -> Result<Vec<Record>, StoreError> {
        let now = crate::time::now_ms();
        let limit = limit.max(1);
        let reads = (0..self.keys.partitions()).map(|p| {
            let index = self.keys.permission_index(pending_only, p);
            async move {
                let ids: Vec<String> = self
                    .read(|mut c| {
                        let index = index.clone();
                        async move {
                            redis::cmd("ZREVRANGEBYSCORE")
                                .arg(index)
                                .arg("+inf")
                                .arg(if pending_only {
                                    format!("({now}")
                                } else {
                                    "-inf".into()
                                })
                                .arg("LIMIT")
                                .arg(0)
                                .arg(limit)
                                .query_async(&mut c)
                                .await
                        }
                    })
                    .await?;
                self.permission_records(&ids).await
            }
        });
        let mut found: Vec<Record> = futures::future::try_join_all(reads)
            .await?
            .into_iter()
            .flatten()
            .filter(|r| !pending_only || r.status_at(now) == Status::Pending)
            .collect();
        found.sort_by_key(|r| std::cmp::Reverse(r.expires_at_ms));
        found.truncate(limit);
        Ok(found)
    }

    async fn rules(&self) -> Result<Option<String>, StoreError> {
        let key = self.keys.permission_rules();
        self.read(|mut c| {
            let key = key.clone();
            async move { c.get(key).await }
        })
        .await
    }

    async fn set_rules(&self, rules: &str) -> Result<(), StoreError> {
        let _: () = self.conn().set(self.keys.permission_rules(), rules).await?;
        Ok(())
    }
}
