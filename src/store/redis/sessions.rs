//! Sessions on Redis: a HASH per session, the listing index, and the delete that takes the
//! session's stream, queues and chains with it.

use std::collections::HashMap;

use async_trait::async_trait;
use redis::AsyncCommands;

use super::chains::chain_member;
use super::{json_string, script, session_from_reply, RedisStore};
use crate::domain::control::ControlQueue;
use crate::domain::session::{field, index_member, Fields, Session, SessionPage, SessionQuery};
use crate::store::sessions::{member_id, page_sessions};
use crate::store::{SessionStore, StoreError};
use crate::time::Now;

/// Attempts of a delete whose session gained a chain between reading its chains and deleting.
const DELETE_ATTEMPTS: usize = 10;

#[async_trait]
impl SessionStore for RedisStore {
    async fn create_session(
        &self,
        id: &str,
        fields: Fields,
        now: &Now,
    ) -> Result<Session, StoreError> {
        let epoch = uuid::Uuid::now_v7().simple().to_string();
        let mut inv = script!("session_create.lua").prepare_invoke();
        inv.key(self.keys.session(id))
            .key(self.keys.events(id))
            .key(self.keys.session_index(self.keys.partition(id)))
            .arg(self.ttl_secs())
            .arg(index_member(now.ms, id))
            .arg(epoch);
        for (k, v) in &fields {
            inv.arg(*k).arg(v);
        }
        let reply: Option<HashMap<String, String>> = inv.invoke_async(&mut self.conn()).await?;
        match session_from_reply(reply)? {
            Some(s) => Ok(s),
            None => Err(StoreError::Exists),
        }
    }

    async fn get_session(&self, id: &str) -> Result<Option<Session>, StoreError> {
        let map: HashMap<String, String> = self.conn().hgetall(self.keys.session(id)).await?;
        session_from_reply(Some(map))
    }

    async fn extend_session(
        &self,
        id: &str,
        ttl: std::time::Duration,
    ) -> Result<Option<Session>, StoreError> {
        let k = &self.keys;
        let chain_ids: Vec<String> = self.conn().lrange(k.session_chains(id), 0, -1).await?;
        let mut inv = script!("session_extend.lua").prepare_invoke();
        inv.key(k.session(id))
            .key(k.events(id))
            .key(k.session_chains(id));
        for c in &chain_ids {
            inv.key(k.chain(id, c))
                .key(k.chain_owner(c, k.partition(id)));
        }
        inv.arg(ttl.as_secs().max(1));
        let map: Option<HashMap<String, String>> = inv.invoke_async(&mut self.conn()).await?;
        session_from_reply(map)
    }

    async fn update_session(
        &self,
        id: &str,
        fields: Fields,
    ) -> Result<Option<Session>, StoreError> {
        let mut inv = script!("session_update.lua").prepare_invoke();
        inv.key(self.keys.session(id))
            .key(self.keys.events(id))
            .arg(self.ttl_secs());
        for (k, v) in &fields {
            inv.arg(*k).arg(v);
        }
        let reply: Option<HashMap<String, String>> = inv.invoke_async(&mut self.conn()).await?;
        session_from_reply(reply)
    }

    async fn delete_session(&self, id: &str) -> Result<bool, StoreError> {
        let k = &self.keys;
        let p = k.partition(id);
        let notice = format!(
            "{{\"kind\":\"session_deleted\",\"sessionId\":{}}}",
            json_string(id)
        );
        for _ in 0..DELETE_ATTEMPTS {
            // The script deletes exactly the chains read here, and refuses (-1) when the
            // session's chain list changed in between.
            let chains: Vec<String> = self.conn().lrange(k.session_chains(id), 0, -1).await?;
            let mut inv = script!("session_delete.lua").prepare_invoke();
            inv.key(k.session(id))
                .key(k.events(id))
                .key(k.session_chains(id))
                .key(k.queue(ControlQueue::Commands, id))
                .key(k.queue_items(ControlQueue::Commands, id))
                .key(k.queue(ControlQueue::Input, id))
                .key(k.queue_items(ControlQueue::Input, id))
                .key(k.session_index(p))
                .key(k.chain_index(false, p))
                .key(k.chain_index(true, p))
                .key(k.chain_stats(p))
                .key(k.chain_meta(p));
            for c in &chains {
                inv.key(k.chain(id, c));
            }
            for c in &chains {
                inv.key(k.chain_owner(c, p));
            }
            inv.arg(k.control_channel()).arg(&notice).arg(chains.len());
            for c in &chains {
                inv.arg(c);
            }
            for c in &chains {
                inv.arg(chain_member(id, c));
            }
            let existed: i64 = inv.invoke_async(&mut self.conn()).await?;
            if existed >= 0 {
                return Ok(existed == 1);
            }
        }
        Err(StoreError::Contention(
            "chains kept being added to the deleted session",
        ))
    }

    async fn list_sessions(&self, query: &SessionQuery) -> Result<SessionPage, StoreError> {
        page_sessions(query, |cursor, n| async move {
            if self.keys.partitions() == 1 {
                return self.index_page(0, cursor.as_deref(), n).await;
            }
            // Each partition's next `n`, newest first, merged; the page takes the first `n`
            // (what it leaves is read again from the next cursor).
            let pages = futures::future::try_join_all(
                (0..self.keys.partitions()).map(|p| self.index_page(p, cursor.as_deref(), n)),
            )
            .await?;
            let mut rows: Vec<_> = pages.into_iter().flatten().collect();
            rows.sort_unstable_by(|a, b| b.0.cmp(&a.0));
            rows.truncate(n);
            Ok(rows)
        })
        .await
    }
}

impl RedisStore {
    /// The next `n` members of one partition's session index after `cursor` (newest first),
    /// with their sessions; members whose session is gone are dropped from the index.
    async fn index_page(
        &self,
        partition: usize,
        cursor: Option<&str>,
        n: usize,
    ) -> Result<Vec<(String, Option<Session>)>, StoreError> {
        let index = self.keys.session_index(partition);
        let mut conn = self.read_conn();
        let max = match cursor {
            Some(c) => format!("({c}"),
            None => "+".to_string(),
        };
        let members: Vec<String> = redis::cmd("ZREVRANGEBYLEX")
            .arg(&index)
            .arg(max)
            .arg("-")
            .arg("LIMIT")
            .arg(0)
            .arg(n)
            .query_async(&mut conn)
            .await?;
        if members.is_empty() {
            // The index is walked to its end (an empty pipeline is no command at all).
            return Ok(Vec::new());
        }
        // One partition's sessions share its slot: one pipeline.
        let mut pipe = redis::pipe();
        for m in &members {
            pipe.hgetall(self.keys.session(member_id(m)));
        }
        let maps: Vec<HashMap<String, String>> = pipe.query_async(&mut conn).await?;
        let mut rows = Vec::with_capacity(members.len());
        let mut stale = Vec::new();
        for (m, map) in members.into_iter().zip(maps) {
            // A member is live only if its session names it: an expired session
            // leaves its member behind, and the id may since have been used again.
            let session = if map.get(field::INDEX) == Some(&m) {
                session_from_reply(Some(map))?
            } else {
                None
            };
            if session.is_none() {
                stale.push(m.clone());
            }
            rows.push((m, session));
        }
        if !stale.is_empty() {
            let _: i64 = conn.zrem(&index, stale).await?;
        }
        Ok(rows)
    }
}
