//! Events on Redis: one script appends a whole batch (seq, dedup, trim, publish), one reads a
//! consistent slice with where the stream stands.

use std::sync::Arc;

use async_trait::async_trait;
use redis::cluster_routing::{Route, RoutingInfo, SingleNodeRoutingInfo, SlotAddr};
use redis::Value;

use super::links::Conn;

use super::{corrupt, int, json_string, script, text, RedisStore};
use crate::domain::event::{Appended, EventDraft, EventRange, ReadFrom};
use crate::domain::session::index_member;
use crate::domain::usage::USAGE_TOTAL_MAX;
use crate::store::{EventStore, StoreError};
use crate::time::Now;

impl RedisStore {
    /// Appends drafts that are all of one partition (all of them on one server) in one script.
    async fn append_in(
        &self,
        drafts: &[&EventDraft],
        partition: usize,
        now: &Now,
    ) -> Result<Vec<Appended>, StoreError> {
        let k = &self.keys;
        let mut inv = script!("events_append.lua").prepare_invoke();
        inv.key(k.session_index(partition))
            .arg(self.settings.max_events_per_session)
            .arg(self.ttl_secs())
            .arg(self.settings.dedup_window.as_secs().max(1))
            .arg(&now.iso)
            .arg(index_member(now.ms, ""))
            .arg(&*self.settings.instance_id)
            .arg(uuid::Uuid::now_v7().simple().to_string())
            .arg(k.events_channel(partition))
            .arg(self.settings.max_session_event_bytes)
            .arg(drafts.len())
            .arg(USAGE_TOTAL_MAX)
            .arg(if k.clustered_layout() {
                "SPUBLISH"
            } else {
                "PUBLISH"
            });
        let mut usage_keys = Vec::new();
        for d in drafts {
            inv.key(k.session(&d.session_id))
                .key(k.events(&d.session_id))
                .arg(&d.session_id)
                .arg(json_string(&self.published_id(&d.session_id)));
            if d.event_id_given {
                inv.key(k.dedup(&d.session_id, &d.event_id)).arg(1);
            } else {
                inv.arg(0);
            }
            inv.arg(&d.json_head);
            let Some(u) = &d.usage else {
                inv.arg(0).arg(0);
                continue;
            };
            let s = &self.settings.services;
            let buckets = u.buckets(
                &d.session_id,
                s.usage_day_keep_secs,
                s.usage_month_keep_secs,
            );
            let scoped = self.tenant_keys(&u.tenant);
            inv.arg(buckets.len());
            for (scope, period, keep_secs) in &buckets {
                usage_keys.push(scoped.usage(scope, period, partition));
                inv.arg(*keep_secs);
            }
            let incr = u.increments();
            inv.arg(incr.len());
            for (field, by) in incr {
                inv.arg(field).arg(by);
            }
        }
        for key in usage_keys {
            inv.key(key);
        }
        let mut conn = self.conn();
        let reply: Vec<Vec<Value>> = inv.invoke_async(&mut conn).await?;
        if reply.len() != drafts.len() {
            return Err(corrupt("append"));
        }
        if let Some((replicas, timeout)) = self.settings.wait_replicas {
            // On the same connection as the append (on a Cluster, the one to the node that
            // holds the partition): it waits for the append too.
            let mut wait = redis::cmd("WAIT");
            wait.arg(replicas).arg(timeout.as_millis() as u64);
            let reached: u64 = match &mut conn.raw {
                Conn::One(c) => wait.query_async(c).await?,
                Conn::Cluster(c, _) => {
                    let node = Route::with_key(k.session_index(partition), SlotAddr::Master);
                    // Boxed, so one server's append future does not carry its state.
                    let v = Box::pin(c.route_command(
                        wait,
                        RoutingInfo::SingleNode(SingleNodeRoutingInfo::SpecificNode(node)),
                    ))
                    .await?;
                    // A node that refuses (a redirection, a cluster that is down) answers
                    // with an error value here.
                    redis::from_redis_value::<u64>(v)
                        .map_err(|e| StoreError::Unavailable(format!("WAIT: {e}")))?
                }
            };
            if reached < replicas {
                return Err(StoreError::Unavailable(format!(
                    "the append reached {reached} of {replicas} replicas in time"
                )));
            }
        }
        drafts
            .iter()
            .zip(reply)
            .map(|(d, r)| match r.as_slice() {
                [seq, epoch, dup] => Ok(Appended {
                    session_id: d.session_id.clone(),
                    event_id: d.event_id.clone(),
                    seq: int(seq).ok_or_else(|| corrupt("append"))?,
                    epoch: text(epoch).ok_or_else(|| corrupt("append"))?,
                    duplicate: int(dup) == Some(1),
                }),
                _ => Err(corrupt("append")),
            })
            .collect()
    }

    /// On a Cluster, one script per partition the batch touches (each keeps to its slot), all
    /// at once. The drafts were all checked before this, so only the store can fail one of
    /// them; then the others may be stored, and the answer is an error (a retry with the same
    /// `eventId`s stores each event once).
    async fn append_partitioned(
        &self,
        drafts: &[EventDraft],
        now: &Now,
    ) -> Result<Vec<Appended>, StoreError> {
        let mut groups: std::collections::BTreeMap<usize, Vec<usize>> = Default::default();
        for (i, d) in drafts.iter().enumerate() {
            groups
                .entry(self.keys.partition(&d.session_id))
                .or_default()
                .push(i);
        }
        let runs = groups.iter().map(|(p, idx)| {
            let part: Vec<&EventDraft> = idx.iter().map(|i| &drafts[*i]).collect();
            async move { self.append_in(&part, *p, now).await }
        });
        let mut out: Vec<Option<Appended>> = vec![None; drafts.len()];
        let mut failed = None;
        for ((_, idx), r) in groups.iter().zip(futures::future::join_all(runs).await) {
            match r {
                Ok(appended) => {
                    for (i, a) in idx.iter().zip(appended) {
                        out[*i] = Some(a);
                    }
                }
                Err(e) => failed = Some(e),
            }
        }
        if let Some(e) = failed {
            return Err(e);
        }
        out.into_iter()
            .map(|a| a.ok_or_else(|| corrupt("append")))
            .collect()
    }

    /// The session id an event's message names: on one server the tenant's own channel says
    /// whose it is; on a Cluster every tenant shares the partitions' channels, so a tenant's
    /// session id goes out scoped (`crate::scope`).
    fn published_id<'a>(&self, session_id: &'a str) -> std::borrow::Cow<'a, str> {
        if self.keys.clustered_layout() {
            crate::scope::scoped(self.tenant.as_deref(), session_id)
        } else {
            session_id.into()
        }
    }
}

#[async_trait]
impl EventStore for RedisStore {
    async fn append(&self, drafts: &[EventDraft], now: &Now) -> Result<Vec<Appended>, StoreError> {
        if drafts.is_empty() {
            return Ok(Vec::new());
        }
        if self.keys.partitions() == 1 {
            let all: Vec<&EventDraft> = drafts.iter().collect();
            return self.append_in(&all, 0, now).await;
        }
        // Boxed, so one server's append future does not carry the Cluster's state.
        Box::pin(self.append_partitioned(drafts, now)).await
    }

    async fn read_events(
        &self,
        session_id: &str,
        from: ReadFrom,
        limit: usize,
    ) -> Result<EventRange, StoreError> {
        let (mode, n) = match from {
            ReadFrom::After(after) => ("after", after),
            ReadFrom::Tail(n) => ("tail", n as u64),
        };
        let (head, epoch, first, events): (u64, String, i64, Vec<String>) = self
            .read(|mut conn| async move {
                script!("events_read.lua")
                    .key(self.keys.session(session_id))
                    .key(self.keys.events(session_id))
                    .arg(mode)
                    .arg(n)
                    .arg(limit)
                    .arg(self.settings.read_max_bytes)
                    .invoke_async(&mut conn)
                    .await
            })
            .await?;
        Ok(EventRange {
            head_seq: head,
            first_seq: u64::try_from(first).map_err(|_| corrupt("read"))?,
            epoch: (!epoch.is_empty()).then_some(epoch),
            events: events.into_iter().map(Arc::from).collect(),
        })
    }
}
