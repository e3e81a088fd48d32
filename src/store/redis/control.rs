//! Queues on Redis: per session and queue a ZSET of live items scored by expiry and a HASH of
//! their records and states, changed only by the `queue_*` scripts; a small owner key per item
//! lets an item be acknowledged by its id alone.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;

use super::{json_string, script, ttl_ms, RedisStore};
use crate::domain::control::ControlQueue;
use crate::store::{Acked, ControlStore, StoreError};

fn flag(b: bool) -> &'static str {
    if b {
        "1"
    } else {
        "0"
    }
}

#[async_trait]
impl ControlStore for RedisStore {
    async fn push(
        &self,
        queue: ControlQueue,
        session_id: &str,
        item_id: &str,
        record: &str,
        ttl: Duration,
    ) -> Result<(), StoreError> {
        let k = &self.keys;
        let sid = json_string(session_id);
        let announcement = match queue {
            ControlQueue::Commands => {
                format!("{{\"kind\":\"command\",\"sessionId\":{sid},\"command\":{record}}}")
            }
            _ => format!(
                "{{\"kind\":\"wake\",\"queue\":\"{}\",\"sessionId\":{sid}}}",
                queue.name()
            ),
        };
        let queued: i64 = script!("control_push.lua")
            .key(k.queue(queue, session_id))
            .key(k.queue_items(queue, session_id))
            .key(k.item_owner(queue, item_id, k.partition(session_id)))
            .arg(item_id)
            .arg(record)
            .arg(ttl_ms(ttl))
            .arg(k.control_channel())
            .arg(announcement)
            .arg(session_id)
            .arg(self.settings.queue_max_items)
            .invoke_async(&mut self.conn())
            .await?;
        if queued == 1 {
            Ok(())
        } else {
            Err(StoreError::QueueFull)
        }
    }

    async fn pending(
        &self,
        queue: ControlQueue,
        session_id: &str,
        take: bool,
    ) -> Result<Vec<Arc<str>>, StoreError> {
        let records: Vec<String> = script!("control_pending.lua")
            .key(self.keys.queue(queue, session_id))
            .key(self.keys.queue_items(queue, session_id))
            .arg(flag(take))
            .arg(flag(queue.keeps_taken()))
            .arg(self.settings.read_max_bytes)
            .invoke_async(&mut self.conn())
            .await?;
        Ok(records.into_iter().map(Arc::from).collect())
    }

    async fn ack(
        &self,
        queue: ControlQueue,
        session_id: Option<&str>,
        item_id: &str,
        ack: &str,
    ) -> Result<Option<Acked>, StoreError> {
        // With a session given, its queue is the only place to look: an item of another
        // session is not in it. Without, the owner key says which queue.
        let owner = match session_id {
            Some(s) => s.to_string(),
            None => {
                let owner = self
                    .owner(|p| self.keys.item_owner(queue, item_id, p))
                    .await?;
                match owner {
                    Some(o) => o,
                    None => return Ok(None),
                }
            }
        };
        let reply: Option<(String, i64)> = script!("control_ack.lua")
            .key(self.keys.queue(queue, &owner))
            .key(self.keys.queue_items(queue, &owner))
            .arg(item_id)
            .arg(ack)
            .arg(flag(queue.keeps_taken()))
            .arg(self.settings.read_max_bytes)
            .invoke_async(&mut self.conn())
            .await?;
        Ok(reply.map(|(record, first)| Acked {
            session_id: owner,
            record: record.into(),
            first: first == 1,
        }))
    }
}
