//! Chains on Redis: a HASH per chain (`json`, `v`) under its session's hash tag, written by
//! compare and set in `chain_put.lua`; an owner key from chain id to session; the session's
//! chain list and the indexes of all and of active chains.

use std::sync::Arc;

use async_trait::async_trait;
use redis::AsyncCommands;

use super::keys::{chain_member, parse_chain_member};
use super::{json_string, script, RedisStore};
use crate::store::{ChainPage, ChainStore, ChainWrite, Cursor, StoreError};

impl RedisStore {
    /// The JSON of each (session, chain), `None` where it is gone.
    async fn chain_jsons(
        &self,
        ids: &[(String, String)],
    ) -> Result<Vec<Option<String>>, StoreError> {
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        let mut pipe = redis::pipe();
        for (sid, cid) in ids {
            pipe.hget(self.keys.chain(sid, cid), "json");
        }
        let pipe = &pipe;
        self.read(|mut conn| async move { pipe.query_async(&mut conn).await })
            .await
    }
}

#[async_trait]
impl ChainStore for RedisStore {
    async fn chain_session(&self, id: &str) -> Result<Option<String>, StoreError> {
        Ok(self.conn().get(self.keys.chain_owner(id)).await?)
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
        let version: u64 = script!("chain_put.lua")
            .key(k.chain(&c.session_id, &c.id))
            .key(k.session_chains(&c.session_id))
            .key(k.session(&c.session_id))
            .key(k.chain_index(false))
            .key(k.chain_index(true))
            .key(k.chain_owner(&c.id))
            .arg(&c.id)
            .arg(json_string(&c.session_id))
            .arg(expected)
            .arg(&c.json)
            .arg(if c.active { "1" } else { "0" })
            .arg(c.updated_ms)
            .arg(ttl)
            .arg(chain_member(&c.session_id, &c.id))
            .arg(k.control_channel())
            .arg(&c.session_id)
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

    async fn page_chains(
        &self,
        active: bool,
        after: Option<&Cursor>,
        walk: usize,
    ) -> Result<ChainPage, StoreError> {
        let index = self.keys.chain_index(active);
        let max = after.map_or("+inf".to_string(), |c| c.ms.to_string());
        // Index members whose chain has expired are dropped on the way (below).
        // Ties of the cursor's score come in reverse member order; those not yet walked are
        // the ones below the cursor's member.
        let behind = |ms: i64, m: &str| after.is_some_and(|c| c.walked(ms, m));
        let mut members: Vec<(String, i64)> = Vec::with_capacity(walk + 1);
        let mut offset = 0;
        'fetch: loop {
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
                    break 'fetch;
                }
            }
            if n <= walk {
                break;
            }
            offset += n;
        }
        let next = (members.len() > walk).then(|| {
            members.truncate(walk);
            let (m, ms) = members.last().expect("walk is at least 1");
            Cursor {
                ms: *ms,
                member: m.clone(),
            }
        });
        let ids: Vec<(String, String)> = members
            .iter()
            .filter_map(|(m, _)| parse_chain_member(m))
            .collect();
        let jsons = self.chain_jsons(&ids).await?;
        let mut chains = Vec::with_capacity(jsons.len());
        let mut stale = Vec::new();
        for ((sid, cid), json) in ids.iter().zip(jsons) {
            match json {
                Some(j) => chains.push(Arc::from(j)),
                None => stale.push(chain_member(sid, cid)),
            }
        }
        if !stale.is_empty() {
            let _: i64 = self.conn().zrem(&index, stale).await?;
        }
        Ok(ChainPage { chains, next })
    }
}
