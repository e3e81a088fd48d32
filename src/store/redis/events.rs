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

/// One request's appends as the append script takes them: its events' keys (each event's
/// own, its usage totals' after them) and its events' arguments (after the call's own).
pub(super) struct Share {
    keys: Vec<String>,
    /// The arguments only (no command name).
    args: redis::Cmd,
    pub(super) events: usize,
    pub(super) bytes: usize,
}

/// An append call's own part: its key space's session index and the script's first
/// arguments, the same for every share a call stores.
pub(super) struct Head {
    pub(super) index: String,
    args: redis::Cmd,
}

impl RedisStore {
    /// The call's own part, for events of `partition` stored at `now`.
    pub(super) fn head(&self, partition: usize, now: &Now) -> Head {
        let k = &self.keys;
        let mut args = redis::Cmd::new();
        args.arg(self.settings.max_events_per_session)
            .arg(self.ttl_secs())
            .arg(self.settings.dedup_window.as_secs().max(1))
            .arg(&now.iso)
            .arg(index_member(now.ms, ""))
            .arg(&*self.settings.instance_id)
            .arg(uuid::Uuid::now_v7().simple().to_string())
            .arg(k.events_channel(partition))
            .arg(self.settings.max_session_event_bytes)
            .arg(USAGE_TOTAL_MAX)
            .arg(if k.clustered_layout() {
                "SPUBLISH"
            } else {
                "PUBLISH"
            });
        Head {
            index: k.session_index(partition),
            args,
        }
    }

    /// The drafts' part of a call.
    pub(super) fn share(&self, drafts: &[&EventDraft], partition: usize) -> Share {
        let k = &self.keys;
        let mut share = Share {
            keys: Vec::with_capacity(drafts.len() * 3),
            args: redis::Cmd::new(),
            events: drafts.len(),
            bytes: 0,
        };
        let args = &mut share.args;
        for d in drafts {
            share.bytes += d.json_head.len();
            share.keys.push(k.session(&d.session_id));
            share.keys.push(k.events(&d.session_id));
            args.arg(&d.session_id)
                .arg(json_string(&self.published_id(&d.session_id)));
            if d.event_id_given {
                share.keys.push(k.dedup(&d.session_id, &d.event_id));
                args.arg(1);
            } else {
                args.arg(0);
            }
            args.arg(&d.json_head);
            let Some(u) = &d.usage else {
                args.arg(0).arg(0);
                continue;
            };
            let s = &self.settings.services;
            let buckets = u.buckets(
                &d.session_id,
                s.usage_day_keep_secs,
                s.usage_month_keep_secs,
            );
            let scoped = self.tenant_keys(&u.tenant);
            args.arg(buckets.len());
            for (scope, period, keep_secs) in &buckets {
                share.keys.push(scoped.usage(scope, period, partition));
                args.arg(*keep_secs);
            }
            let incr = u.increments();
            args.arg(incr.len());
            for (field, by) in incr {
                args.arg(field).arg(by);
            }
        }
        share
    }

    /// Appends drafts that are all of one partition (all of them on one server): on one
    /// server through the group commit (with the appends of other requests in flight), on a
    /// Cluster in a script of their own.
    async fn append_in(
        &self,
        drafts: &[&EventDraft],
        partition: usize,
        now: &Now,
    ) -> Result<Vec<Appended>, StoreError> {
        let share = self.share(drafts, partition);
        let reply = match &self.group {
            Some(group) => group.append(self.head(partition, now), share).await?,
            None => {
                let mut conn = self.conn();
                let mut replies = call(&mut conn, &self.head(partition, now), &[&share]).await?;
                self.wait_for_replicas(&mut conn, partition).await?;
                replies.pop().ok_or_else(|| corrupt("append"))?
            }
        };
        if reply.len() != drafts.len() {
            return Err(corrupt("append"));
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

    /// Under `REDIS_WAIT_REPLICAS`, waits for the replicas to have what was written on
    /// `conn` (on a Cluster, on the node that holds the partition).
    async fn wait_for_replicas(
        &self,
        conn: &mut super::measured::Measured,
        partition: usize,
    ) -> Result<(), StoreError> {
        let Some((replicas, timeout)) = self.settings.wait_replicas else {
            return Ok(());
        };
        let node = Route::with_key(self.keys.session_index(partition), SlotAddr::Master);
        wait_on(conn, replicas, timeout, node).await
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

/// Runs one append call for `shares` (all of the key space and partition `head` names) and
/// answers, per share, its events' replies.
pub(super) async fn call(
    conn: &mut super::measured::Measured,
    head: &Head,
    shares: &[&Share],
) -> Result<Vec<Vec<Vec<Value>>>, StoreError> {
    let mut inv = script!("events_append.lua").prepare_invoke();
    inv.key(&head.index);
    for share in shares {
        for key in &share.keys {
            inv.key(key);
        }
    }
    for a in head.args.args_iter() {
        inv.arg(simple(a));
    }
    inv.arg(shares.iter().map(|s| s.events).sum::<usize>());
    for share in shares {
        for a in share.args.args_iter() {
            inv.arg(simple(a));
        }
    }
    let mut reply: Vec<Vec<Value>> = inv.invoke_async(conn).await?;
    let mut out = Vec::with_capacity(shares.len());
    for share in shares.iter().rev() {
        let at = reply
            .len()
            .checked_sub(share.events)
            .ok_or_else(|| corrupt("append"))?;
        out.push(reply.split_off(at));
    }
    if !reply.is_empty() {
        return Err(corrupt("append"));
    }
    out.reverse();
    Ok(out)
}

/// `WAIT` for `replicas` on `conn`, which wrote what is waited for (on a Cluster, sent to
/// `node`): fewer in time is an error.
pub(super) async fn wait_on(
    conn: &mut super::measured::Measured,
    replicas: u64,
    timeout: std::time::Duration,
    node: Route,
) -> Result<(), StoreError> {
    let mut wait = redis::cmd("WAIT");
    wait.arg(replicas).arg(timeout.as_millis() as u64);
    let reached: u64 = match &mut conn.raw {
        Conn::One(c) => wait.query_async(c).await?,
        Conn::Cluster(c, _) => {
            // Boxed, so one server's append future does not carry its state.
            let v = Box::pin(c.route_command(
                wait,
                RoutingInfo::SingleNode(SingleNodeRoutingInfo::SpecificNode(node)),
            ))
            .await?;
            // A node that refuses (a redirection, a cluster that is down) answers with an
            // error value here.
            redis::from_redis_value::<u64>(v)
                .map_err(|e| StoreError::Unavailable(format!("WAIT: {e}")))?
        }
    };
    if reached < replicas {
        return Err(StoreError::Unavailable(format!(
            "the append reached {reached} of {replicas} replicas in time"
        )));
    }
    Ok(())
}

/// An argument's bytes (a cursor, `SCAN`'s, is never added to an append).
fn simple(a: redis::Arg<&[u8]>) -> &[u8] {
    match a {
        redis::Arg::Simple(b) => b,
        _ => b"0",
    }
}
