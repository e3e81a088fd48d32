//! Chains on Redis: a HASH per chain (`json`, `v`) under its session's hash tag, written by
//! compare and set in `chain_put.lua`; an owner key from chain id to session; the session's
//! chain list and the indexes of all and of active chains.

use std::sync::Arc;

use async_trait::async_trait;
use redis::AsyncCommands;

use super::keys::{chain_member, parse_chain_member};
use super::{json_string, script, RedisStore};
use crate::store::{ChainFilter, ChainStore, ChainWrite, StoreError};

impl RedisStore {
    /// The session a chain id belongs to.
    async fn chain_session(&self, id: &str) -> Result<Option<String>, StoreError> {
        Ok(self.conn().get(self.keys.chain_owner(id)).await?)
    }

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
        Ok(pipe.query_async(&mut self.conn()).await?)
    }
}

#[async_trait]
impl ChainStore for RedisStore {
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

    async fn list_chains(&self, filter: ChainFilter<'_>) -> Result<Vec<Arc<str>>, StoreError> {
        let (ids, index) = match filter {
            ChainFilter::Session(sid) => {
                let ids: Vec<String> = self
                    .conn()
                    .lrange(self.keys.session_chains(sid), 0, -1)
                    .await?;
                let mut seen = std::collections::HashSet::new();
                let ids = ids
                    .into_iter()
                    .filter(|c| seen.insert(c.clone()))
                    .map(|c| (sid.to_string(), c))
                    .collect::<Vec<_>>();
                (ids, None)
            }
            ChainFilter::Active | ChainFilter::All => {
                let index = self.keys.chain_index(matches!(filter, ChainFilter::Active));
                let members: Vec<String> = self.conn().zrange(&index, 0, -1).await?;
                let ids = members
                    .iter()
                    .filter_map(|m| parse_chain_member(m))
                    .collect();
                (ids, Some(index))
            }
        };
        let jsons = self.chain_jsons(&ids).await?;
        let mut stale = Vec::new();
        let mut out = Vec::with_capacity(jsons.len());
        for ((sid, cid), json) in ids.iter().zip(jsons) {
            match json {
                Some(j) => out.push(Arc::from(j)),
                None => stale.push(chain_member(sid, cid)),
            }
        }
        // Index members whose chain has expired are dropped on the way.
        if let (Some(index), false) = (index, stale.is_empty()) {
            let _: i64 = self.conn().zrem(index, stale).await?;
        }
        Ok(out)
    }
}
