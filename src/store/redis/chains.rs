//! Chains on Redis: a HASH per chain (`json`, `v`) under its session's hash tag, written by
//! compare and set in `chains.lua`; an owner key from chain id to session; the session's
//! chain list, the indexes of all and of active chains, and the counters by status beside
//! them.

use std::collections::HashMap;
use std::sync::Arc;

use async_trait::async_trait;
use redis::AsyncCommands;

use super::{json_string, script, RedisStore};
use crate::domain::chain::StatusCounts;
use crate::store::{ChainPage, ChainStore, ChainWrite, Cursor, StoreError};

/// Chains one round trip of a listing reads.
const CHAIN_READS: usize = 16;

/// A chain's member in the chain indexes: its session and id, as a JSON array.
pub(super) fn chain_member(session_id: &str, chain_id: &str) -> String {
    serde_json::to_string(&[session_id, chain_id]).expect("strings serialize")
}

/// The session and chain id of a chain index member.
pub(super) fn parse_chain_member(member: &str) -> Option<(String, String)> {
    let [s, c]: [String; 2] = serde_json::from_str(member).ok()?;
    Some((s, c))
}

impl RedisStore {
    /// `chains.lua` with one partition's index keys (index, active index, counters, their
    /// meta).
    fn chains_op(&self, op: &str, ttl_secs: u64, p: usize) -> redis::ScriptInvocation<'static> {
        let k = &self.keys;
        let mut inv = script!("chains.lua").prepare_invoke();
        inv.key(k.chain_index(false, p))
            .key(k.chain_index(true, p))
            .key(k.chain_stats(p))
            .key(k.chain_meta(p))
            .arg(op)
            .arg(ttl_secs);
        inv
    }

    /// The JSON of each (session, chain), `None` where it is gone.
    async fn chain_jsons(
        &self,
        ids: &[(String, String)],
    ) -> Result<Vec<Option<String>>, StoreError> {
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        // One pipeline per partition (each in one slot on a Cluster; one in all on a server).
        let mut groups: std::collections::BTreeMap<usize, Vec<usize>> = Default::default();
        for (i, (sid, _)) in ids.iter().enumerate() {
            groups.entry(self.keys.partition(sid)).or_default().push(i);
        }
        let reads = groups.values().map(|idx| async move {
            let mut pipe = redis::pipe();
            for i in idx {
                let (sid, cid) = &ids[*i];
                pipe.hget(self.keys.chain(sid, cid), "json");
            }
            let pipe = &pipe;
            self.read(
                |mut conn| async move { pipe.query_async::<Vec<Option<String>>>(&mut conn).await },
            )
            .await
        });
        let mut out = vec![None; ids.len()];
        for (idx, jsons) in groups
            .values()
            .zip(futures::future::try_join_all(reads).await?)
        {
            for (i, j) in idx.iter().zip(jsons) {
                out[*i] = j;
            }
        }
        Ok(out)
    }

    /// The members of one index (`active` or all) of partition `p` at or below `after`,
    /// newest first, not yet walked: `walk + 1` at most.
    async fn index_members(
        &self,
        active: bool,
        p: usize,
        after: Option<&Cursor>,
        walk: usize,
    ) -> Result<Vec<(String, i64)>, StoreError> {
        let index = self.keys.chain_index(active, p);
        let max = after.map_or("+inf".to_string(), |c| c.ms.to_string());
        // Ties of the cursor's score come in reverse member order; those not yet walked are
        // the ones below the cursor's member.
        let behind = |ms: i64, m: &str| after.is_some_and(|c| c.walked(ms, m));
        let mut members: Vec<(String, i64)> = Vec::with_capacity(walk + 1);
        let mut offset = 0;
        loop {
            let mut cmd = redis::cmd("ZREVRANGEBYSCORE");
            cmd.arg(&index)
                .arg(&max)
                .arg("-inf")
                .arg("WITHSCORES")
                .arg("LIMIT")
                .arg(offset)
                .arg(walk + 1);
            let cmd = &cmd;
            let got: Vec<(String, f64)> = self
                .read(|mut conn| async move { cmd.query_async(&mut conn).await })
                .await?;
            let n = got.len();
            for (m, score) in got {
                let ms = score as i64;
                if behind(ms, &m) {
                    continue;
                }
                members.push((m, ms));
                if members.len() > walk {
                    return Ok(members);
                }
            }
            if n <= walk {
                return Ok(members);
            }
            offset += n;
        }
    }

    /// Index members of chains that are gone, out of their partitions' indexes.
    pub(super) async fn forget_chains(&self, stale: Vec<String>) -> Result<(), StoreError> {
        let mut groups: std::collections::BTreeMap<usize, Vec<String>> = Default::default();
        for m in stale {
            let p = parse_chain_member(&m).map_or(0, |(sid, _)| self.keys.partition(&sid));
            groups.entry(p).or_default().push(m);
        }
        for (p, members) in groups {
            let mut inv = self.chains_op("forget", self.ttl_secs(), p);
            for m in &members {
                inv.arg(m);
            }
            let _: i64 = inv.invoke_async(&mut self.conn()).await?;
        }
        Ok(())
    }
}

#[async_trait]
impl ChainStore for RedisStore {
    async fn chain_session(&self, id: &str) -> Result<Option<String>, StoreError> {
        self.owner(|p| self.keys.chain_owner(id, p)).await
    }

    async fn get_chain(&self, id: &str) -> Result<Option<(u64, Arc<str>)>, StoreError> {
        let Some(sid) = self.chain_session(id).await? else {
            return Ok(None);
        };
        let (v, json): (Option<u64>, Option<String>) = redis::cmd("HMGET")
            .arg(self.keys.chain(&sid, id))
            .arg("v")
            .arg("json")
            .query_async(&mut self.conn())
            .await?;
        Ok(match (v, json) {
            (Some(v), Some(json)) => Some((v, json.into())),
            _ => None,
        })
    }

    async fn put_chain(&self, c: &ChainWrite, expected: u64) -> Result<bool, StoreError> {
        let k = &self.keys;
        let ttl = c.ttl.as_secs().max(1);
        let p = k.partition(&c.session_id);
        let mut inv = self.chains_op("put", ttl, p);
        let version: u64 = inv
            .key(k.chain(&c.session_id, &c.id))
            .key(k.session_chains(&c.session_id))
            .key(k.session(&c.session_id))
            .key(k.chain_owner(&c.id, p))
            .arg(&c.id)
            .arg(json_string(&c.session_id))
            .arg(expected)
            .arg(&c.json)
            .arg(if c.active { "1" } else { "0" })
            .arg(c.updated_ms)
            .arg(chain_member(&c.session_id, &c.id))
            .arg(k.control_channel())
            .arg(&c.session_id)
            .arg(&c.status)
            .arg(c.progress_centi)
            .invoke_async(&mut self.conn())
            .await?;
        Ok(version > 0)
    }

    async fn session_chains(&self, sid: &str) -> Result<Vec<Arc<str>>, StoreError> {
        let key = self.keys.session_chains(sid);
        let ids: Vec<String> = self
            .read(|mut conn| {
                let key = key.clone();
                async move { conn.lrange(key, 0, -1).await }
            })
            .await?;
        let mut seen = std::collections::HashSet::new();
        let ids = ids
            .into_iter()
            .filter(|c| seen.insert(c.clone()))
            .map(|c| (sid.to_string(), c))
            .collect::<Vec<_>>();
        let jsons = self.chain_jsons(&ids).await?;
        Ok(jsons.into_iter().flatten().map(Arc::from).collect())
    }

    async fn newest_chain(&self, sid: &str) -> Result<Option<String>, StoreError> {
        // The last ids of the list, newest first, until one whose chain is still there.
        let key = self.keys.session_chains(sid);
        let ids: Vec<String> = self
            .read(|mut conn| {
                let key = key.clone();
                async move { conn.lrange(key, -(CHAIN_READS as isize), -1).await }
            })
            .await?;
        if ids.is_empty() {
            return Ok(None);
        }
        let mut pipe = redis::pipe();
        for id in ids.iter().rev() {
            pipe.exists(self.keys.chain(sid, id));
        }
        let pipe = &pipe;
        let there: Vec<bool> = self
            .read(|mut conn| async move { pipe.query_async(&mut conn).await })
            .await?;
        Ok(ids
            .iter()
            .rev()
            .zip(there)
            .find(|(_, t)| *t)
            .map(|(id, _)| id.clone()))
    }

    async fn page_chains(
        &self,
        active: bool,
        after: Option<&Cursor>,
        walk: usize,
    ) -> Result<ChainPage, StoreError> {
        let mut members = if self.keys.partitions() == 1 {
            self.index_members(active, 0, after, walk).await?
        } else {
            // Each partition's next `walk + 1`, merged in the order one index would give.
            let parts = futures::future::try_join_all(
                (0..self.keys.partitions()).map(|p| self.index_members(active, p, after, walk)),
            )
            .await?;
            let mut all: Vec<(String, i64)> = parts.into_iter().flatten().collect();
            all.sort_unstable_by(|a, b| b.1.cmp(&a.1).then_with(|| b.0.cmp(&a.0)));
            all.truncate(walk + 1);
            all
        };
        let more = members.len() > walk;
        members.truncate(walk);
        // The chains themselves a few at a time, until READ_MAX_BYTES of them are read.
        let mut page = ChainPage::default();
        let mut stale = Vec::new();
        let mut bytes = 0;
        let mut walked = 0;
        'read: for chunk in members.chunks(CHAIN_READS) {
            // A member that names no chain (written by something else) is walked past.
            let ids: Vec<(String, String)> = chunk
                .iter()
                .map(|(m, _)| parse_chain_member(m).unwrap_or_default())
                .collect();
            for ((sid, cid), json) in ids.iter().zip(self.chain_jsons(&ids).await?) {
                walked += 1;
                match json {
                    Some(j) => {
                        bytes += j.len();
                        page.chains.push(Arc::from(j));
                    }
                    None if !cid.is_empty() => stale.push(chain_member(sid, cid)),
                    None => {}
                }
                if bytes >= self.settings.read_max_bytes {
                    page.full = true;
                    break 'read;
                }
            }
        }
        if more || walked < members.len() {
            page.next = members.get(walked.max(1) - 1).map(|(m, ms)| Cursor {
                ms: *ms,
                member: m.clone(),
            });
        }
        if !stale.is_empty() {
            self.forget_chains(stale).await?;
        }
        Ok(page)
    }

    async fn chain_counts(&self) -> Result<StatusCounts, StoreError> {
        let shares = futures::future::try_join_all((0..self.keys.partitions()).map(|p| {
            let mut conn = self.conn();
            let inv = self.chains_op("counts", self.ttl_secs(), p);
            async move { inv.invoke_async::<HashMap<String, i64>>(&mut conn).await }
        }))
        .await?;
        let mut fields: HashMap<String, i64> = HashMap::new();
        for share in shares {
            for (f, n) in share {
                *fields.entry(f).or_default() += n;
            }
        }
        let mut counts = StatusCounts::default();
        for (field, n) in &fields {
            if let Some(status) = field.strip_prefix("n:") {
                let progress = fields.get(&format!("p:{status}")).copied().unwrap_or(0);
                if *n > 0 {
                    counts
                        .by_status
                        .insert(status.to_string(), (*n as u64, progress));
                }
            }
        }
        Ok(counts)
    }

    async fn stale_chains(&self, before_ms: i64, limit: usize) -> Result<Vec<String>, StoreError> {
        let reads = (0..self.keys.partitions()).map(|p| async move {
            let mut cmd = redis::cmd("ZRANGEBYSCORE");
            cmd.arg(self.keys.chain_index(true, p))
                .arg("-inf")
                .arg(format!("({before_ms}"))
                .arg("WITHSCORES")
                .arg("LIMIT")
                .arg(0)
                .arg(limit);
            let cmd = &cmd;
            self.read(
                |mut conn| async move { cmd.query_async::<Vec<(String, f64)>>(&mut conn).await },
            )
            .await
        });
        // The oldest `limit` of all partitions.
        let mut members: Vec<(String, f64)> = futures::future::try_join_all(reads)
            .await?
            .into_iter()
            .flatten()
            .collect();
        members.sort_by(|a, b| a.1.total_cmp(&b.1));
        members.truncate(limit);
        Ok(members
            .iter()
            .filter_map(|(m, _)| parse_chain_member(m))
            .map(|(_, id)| id)
            .collect())
    }
}
