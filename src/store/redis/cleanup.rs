//! `afw-gateway cleanup`: what no expiry and no step of the gateway will remove by itself, or
//! not for a long time, found in one key space (the default tenant's or another's) and
//! removed (or, in a dry run, only counted).
//!
//! - **Session index members** whose session is gone: the index has no TTL, and a member goes
//!   only when a listing meets it.
//! - **Chain index entries** of chains that expired (with what they added to the counters), for
//!   the same reason.
//! - **Permission index entries** whose request is gone: pruned only when another opens.
//! - **Finished jobs past `JOB_KEEP_SECS`**: a queue removes them at its next step, so a queue
//!   nobody uses keeps them until the whole queue expires.
//! - **Cache tag members** whose entry was deleted, overwritten without the tag or expired: a
//!   tag's set otherwise lives until its latest member's expiry.
//!
//! On a Cluster the keys found by `SCAN` (queues, tags, locks, tenants) are looked for on
//! each primary ([`ScanOn`]); the indexes are known by name, one per partition.
//!
//! Locks are counted, never removed: a lock's HASH keeps its fencing token for
//! `LOCK_FENCE_KEEP_SECS` after its last grant and then expires; deleting it sooner would let
//! the next holder's token start again at 1, which is what fencing exists to prevent.

use std::sync::Arc;

use redis::aio::MultiplexedConnection;
use redis::AsyncCommands;

use super::chains::parse_chain_member;
use super::keys::unescaped;
use super::RedisStore;
use crate::domain::session::field;
use crate::store::StoreError;

/// Members read per round trip.
const PAGE: usize = 500;

/// Where `SCAN` runs: the store's own connection on one server; on a Cluster, each primary
/// (a key lives on one of them; `SCAN` through the cluster client would see one node).
#[derive(Default)]
pub struct ScanOn(pub Vec<MultiplexedConnection>);

/// What one cleanup found (and, unless it was a dry run, removed), per kind.
#[derive(Debug, Default, Clone, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Cleaned {
    pub session_index: u64,
    pub chain_index: u64,
    pub permission_index: u64,
    pub finished_jobs: u64,
    pub tag_members: u64,
    /// Locks whose holder's lease ran out (kept for their fencing token; see the module).
    pub lapsed_locks: u64,
}

impl Cleaned {
    pub fn add(&mut self, o: &Cleaned) {
        self.session_index += o.session_index;
        self.chain_index += o.chain_index;
        self.permission_index += o.permission_index;
        self.finished_jobs += o.finished_jobs;
        self.tag_members += o.tag_members;
        self.lapsed_locks += o.lapsed_locks;
    }
}

impl RedisStore {
    /// Cleans this store's key space (see the module); `dry_run` only counts.
    pub async fn cleanup(&self, dry_run: bool, on: &ScanOn) -> Result<Cleaned, StoreError> {
        Ok(Cleaned {
            session_index: self.tidy_session_index(dry_run).await?,
            chain_index: self.tidy_chain_index(dry_run).await?,
            permission_index: self.tidy_permission_index(dry_run).await?,
            finished_jobs: self.tidy_jobs(dry_run, on).await?,
            tag_members: self.tidy_tags(dry_run, on).await?,
            lapsed_locks: self.lapsed_locks(on).await?,
        })
    }

    /// The tenants other than the default one that have keys, each once (of the default
    /// tenant's store, whose `t` keys are theirs).
    pub async fn tenants(&self, on: &ScanOn) -> Result<Vec<Arc<str>>, StoreError> {
        let mut found = std::collections::BTreeSet::new();
        for key in self.scan(on, &self.keys.scan_pattern("t"), None).await? {
            if let Some((t, _)) = self.keys.channel_tenant(&key) {
                found.insert(t.to_string());
            }
        }
        Ok(found.into_iter().map(Arc::from).collect())
    }

    /// Every key matching `pattern` (of `kind`, when given), by `SCAN` on each of `on`.
    async fn scan(
        &self,
        on: &ScanOn,
        pattern: &str,
        kind: Option<&str>,
    ) -> Result<Vec<String>, StoreError> {
        let mut keys = Vec::new();
        if on.0.is_empty() {
            scan_one(&mut self.conn(), pattern, kind, &mut keys).await?;
        }
        for conn in &on.0 {
            scan_one(&mut conn.clone(), pattern, kind, &mut keys).await?;
        }
        Ok(keys)
    }

    /// Every member of a ZSET, read `PAGE` at a time by rank (before anything is removed).
    async fn all_members(&self, key: &str) -> Result<Vec<String>, StoreError> {
        let mut conn = self.conn();
        let mut all = Vec::new();
        loop {
            let from = all.len() as isize;
            let page: Vec<String> = conn.zrange(key, from, from + PAGE as isize - 1).await?;
            let done = page.len() < PAGE;
            all.extend(page);
            if done {
                return Ok(all);
            }
        }
    }

    /// Members of every partition's session index whose session no longer names them.
    async fn tidy_session_index(&self, dry_run: bool) -> Result<u64, StoreError> {
        let mut conn = self.conn();
        let mut n = 0;
        for p in 0..self.keys.partitions() {
            let index = self.keys.session_index(p);
            let mut after = "-".to_string();
            loop {
                let members: Vec<String> = redis::cmd("ZRANGEBYLEX")
                    .arg(&index)
                    .arg(&after)
                    .arg("+")
                    .arg("LIMIT")
                    .arg(0)
                    .arg(PAGE)
                    .query_async(&mut conn)
                    .await?;
                let Some(last) = members.last() else { break };
                after = format!("({last}");
                let mut pipe = redis::pipe();
                for m in &members {
                    let id = crate::store::sessions::member_id(m);
                    pipe.hget(self.keys.session(id), field::INDEX);
                }
                let named: Vec<Option<String>> = pipe.query_async(&mut conn).await?;
                let stale: Vec<&String> = members
                    .iter()
                    .zip(&named)
                    .filter(|(m, named)| named.as_deref() != Some(m.as_str()))
                    .map(|(m, _)| m)
                    .collect();
                n += stale.len() as u64;
                if !dry_run && !stale.is_empty() {
                    let _: i64 = conn.zrem(&index, stale).await?;
                }
                if members.len() < PAGE {
                    break;
                }
            }
        }
        Ok(n)
    }

    /// Entries of the chain indexes whose chain expired, out with their counters.
    async fn tidy_chain_index(&self, dry_run: bool) -> Result<u64, StoreError> {
        let mut n = 0;
        for p in 0..self.keys.partitions() {
            let members = self.all_members(&self.keys.chain_index(false, p)).await?;
            for page in members.chunks(PAGE) {
                let mut pipe = redis::pipe();
                for m in page {
                    let (sid, cid) = parse_chain_member(m).unwrap_or_default();
                    pipe.exists(self.keys.chain(&sid, &cid));
                }
                let live: Vec<bool> = pipe.query_async(&mut self.conn()).await?;
                let stale: Vec<String> = page
                    .iter()
                    .zip(live)
                    .filter(|(_, live)| !live)
                    .map(|(m, _)| m.clone())
                    .collect();
                n += stale.len() as u64;
                if !dry_run && !stale.is_empty() {
                    self.forget_chains(stale).await?;
                }
            }
        }
        Ok(n)
    }

    /// Entries of the permission indexes (kept and pending) whose request HASH is gone.
    async fn tidy_permission_index(&self, dry_run: bool) -> Result<u64, StoreError> {
        let mut conn = self.conn();
        let mut n = 0;
        for p in 0..self.keys.partitions() {
            for pending in [false, true] {
                let index = self.keys.permission_index(pending, p);
                let ids = self.all_members(&index).await?;
                for page in ids.chunks(PAGE) {
                    let mut pipe = redis::pipe();
                    for id in page {
                        pipe.exists(self.keys.permission(id));
                    }
                    let live: Vec<bool> = pipe.query_async(&mut conn).await?;
                    let stale: Vec<&String> = page
                        .iter()
                        .zip(live)
                        .filter(|(_, live)| !live)
                        .map(|(id, _)| id)
                        .collect();
                    // A pending entry is also in the kept index: counted there.
                    if !pending {
                        n += stale.len() as u64;
                    }
                    if !dry_run && !stale.is_empty() {
                        let _: i64 = conn.zrem(&index, stale).await?;
                    }
                }
            }
        }
        Ok(n)
    }

    /// Finished jobs past their keep time, in every queue of this key space.
    async fn tidy_jobs(&self, dry_run: bool, on: &ScanOn) -> Result<u64, StoreError> {
        let mut n = 0;
        let queues = self
            .scan(on, &self.keys.scan_pattern("jobs"), Some("hash"))
            .await?;
        for key in queues {
            let Some((queue, rest)) = self.keys.entity_of("jobs", &key) else {
                continue;
            };
            if !rest.is_empty() {
                continue;
            }
            loop {
                let mut inv = self.jobs_op(&queue, "tidy");
                inv.arg(if dry_run { "1" } else { "0" });
                let got: u64 = inv.invoke_async(&mut self.conn()).await?;
                n += got;
                if dry_run || got == 0 {
                    break;
                }
            }
        }
        Ok(n)
    }

    /// Members of every cache tag whose entry is gone or no longer carries the tag.
    async fn tidy_tags(&self, dry_run: bool, on: &ScanOn) -> Result<u64, StoreError> {
        let mut n = 0;
        let tags = self
            .scan(on, &self.keys.scan_pattern("cache"), Some("zset"))
            .await?;
        for key in tags {
            let Some((ns, rest)) = self.keys.entity_of("cache", &key) else {
                continue;
            };
            let Some(tag) = rest.strip_prefix(":tag:").map(unescaped) else {
                continue;
            };
            let mut from = 0u64;
            loop {
                let mut inv = self.cache_op(&ns, "tidy", std::slice::from_ref(&tag));
                inv.arg(&tag).arg(if dry_run { "1" } else { "0" }).arg(from);
                let (stale, seen): (u64, u64) = inv.invoke_async(&mut self.conn()).await?;
                n += stale;
                if seen < 1000 {
                    break;
                }
                from += if dry_run { seen } else { seen - stale };
            }
        }
        Ok(n)
    }

    /// Locks whose holder's lease ran out and that nobody took since (each lock in its own
    /// slot: read one by one, all at once).
    async fn lapsed_locks(&self, on: &ScanOn) -> Result<u64, StoreError> {
        let mut conn = self.conn();
        let (secs, micros): (i64, i64) = redis::cmd("TIME").query_async(&mut conn).await?;
        let now_ms = secs * 1000 + micros / 1000;
        let locks = self
            .scan(on, &self.keys.scan_pattern("lock"), Some("hash"))
            .await?;
        let mut n = 0;
        for page in locks.chunks(PAGE) {
            let reads = page.iter().map(|key| {
                let mut conn = self.conn();
                async move { conn.hget::<_, _, Option<i64>>(key, "exp").await }
            });
            for exp in futures::future::try_join_all(reads).await? {
                n += u64::from(matches!(exp, Some(ms) if ms != 0 && ms <= now_ms));
            }
        }
        Ok(n)
    }
}

/// `SCAN` of one server, every key matching `pattern` (of `kind`, when given) into `keys`.
async fn scan_one(
    conn: &mut (impl redis::aio::ConnectionLike + Send),
    pattern: &str,
    kind: Option<&str>,
    keys: &mut Vec<String>,
) -> Result<(), StoreError> {
    let mut cursor = 0u64;
    loop {
        let mut cmd = redis::cmd("SCAN");
        cmd.arg(cursor)
            .arg("MATCH")
            .arg(pattern)
            .arg("COUNT")
            .arg(1000);
        if let Some(kind) = kind {
            cmd.arg("TYPE").arg(kind);
        }
        let (next, batch): (u64, Vec<String>) = cmd.query_async(conn).await?;
        keys.extend(batch);
        if next == 0 {
            return Ok(());
        }
        cursor = next;
    }
}
