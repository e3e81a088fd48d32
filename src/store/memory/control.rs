//! Queues in memory: per session and queue, item ids oldest first and each item with its own
//! expiry; per queue, which session an item id belongs to (for acknowledgements by id alone).

use std::collections::{HashMap, VecDeque};
use std::sync::Arc;
use std::time::{Duration, Instant};

use async_trait::async_trait;

use super::{MemoryStore, Part, OVERHEAD};
use crate::bus::BusMessage;
use crate::domain::control::ControlQueue;
use crate::store::{Acked, ControlStore, StoreError};

#[derive(Default, serde::Serialize, serde::Deserialize)]
pub(super) struct ControlTable {
    #[serde(with = "super::persisted::pairs")]
    queues: HashMap<(ControlQueue, String), SessionQueue>,
    /// Which session each live item belongs to.
    #[serde(with = "super::persisted::pairs")]
    owners: HashMap<(ControlQueue, String), String>,
}

#[derive(Default, serde::Serialize, serde::Deserialize)]
struct SessionQueue {
    /// Item ids oldest first, pending or not.
    order: VecDeque<String>,
    items: HashMap<String, Item>,
}

#[derive(serde::Serialize, serde::Deserialize)]
struct Item {
    record: Arc<str>,
    #[serde(with = "super::persisted::instant")]
    expires: Instant,
    /// Taken by a poll or acknowledged: no longer pending.
    taken: bool,
    acked: bool,
}

impl SessionQueue {
    /// Forgets expired items; returns the ids it dropped.
    fn prune(&mut self, now: Instant) -> Vec<String> {
        let items = &mut self.items;
        let mut gone = Vec::new();
        self.order.retain(|id| match items.get(id) {
            Some(i) if i.expires > now => true,
            _ => {
                items.remove(id);
                gone.push(id.clone());
                false
            }
        });
        gone
    }

    /// Takes an item off the queue: kept (but no longer pending) or forgotten, as the queue's
    /// policy says.
    fn take(&mut self, queue: ControlQueue, id: &str) -> bool {
        if queue.keeps_taken() {
            if let Some(i) = self.items.get_mut(id) {
                i.taken = true;
            }
            false
        } else {
            self.items.remove(id);
            self.order.retain(|o| o != id);
            true
        }
    }
}

impl ControlTable {
    /// A deleted session's items stop being pending; those of a queue that keeps taken
    /// items stay until they expire (a late acknowledgement still finds its command).
    pub fn remove_session(&mut self, session_id: &str) {
        for queue in [ControlQueue::Commands, ControlQueue::Input] {
            let key = (queue, session_id.to_string());
            if queue.keeps_taken() {
                if let Some(q) = self.queues.get_mut(&key) {
                    q.items.values_mut().for_each(|i| i.taken = true);
                }
            } else if let Some(q) = self.queues.remove(&key) {
                for id in q.order {
                    self.owners.remove(&(queue, id));
                }
            }
        }
    }
}

impl Part for ControlTable {
    fn sweep(&mut self, now: Instant) {
        let owners = &mut self.owners;
        self.queues.retain(|(queue, _), q| {
            for id in q.prune(now) {
                owners.remove(&(*queue, id));
            }
            !q.order.is_empty()
        });
    }

    /// About what the queues hold, for the memory budget.
    fn bytes(&self) -> usize {
        self.queues
            .iter()
            .map(|((_, sid), q)| {
                sid.len()
                    + OVERHEAD
                    + q.items
                        .iter()
                        .map(|(id, i)| 2 * id.len() + i.record.len() + 2 * OVERHEAD)
                        .sum::<usize>()
            })
            .sum()
    }
}

#[async_trait]
impl ControlStore for MemoryStore {
    async fn push(
        &self,
        queue: ControlQueue,
        session_id: &str,
        item_id: &str,
        record: &str,
        ttl: Duration,
    ) -> Result<(), StoreError> {
        let record: Arc<str> = record.into();
        let mut state = self.state.lock();
        let now = Instant::now();
        if let Some(q) = state
            .control
            .queues
            .get_mut(&(queue, session_id.to_string()))
        {
            let dropped = q.prune(now);
            let full = q.items.len() >= self.settings.queue_max_items;
            for id in dropped {
                state.control.owners.remove(&(queue, id));
            }
            if full {
                return Err(StoreError::QueueFull);
            }
        }
        self.admit(
            &mut state,
            2 * item_id.len() + session_id.len() + record.len() + 2 * OVERHEAD,
        )?;
        let queues = &mut state.control;
        let q = queues
            .queues
            .entry((queue, session_id.to_string()))
            .or_default();
        q.order.push_back(item_id.to_string());
        q.items.insert(
            item_id.to_string(),
            Item {
                record: Arc::clone(&record),
                expires: now + ttl,
                taken: false,
                acked: false,
            },
        );
        queues
            .owners
            .insert((queue, item_id.to_string()), session_id.to_string());
        self.publish(match queue {
            ControlQueue::Commands => BusMessage::Command {
                session_id: session_id.into(),
                record,
            },
            _ => BusMessage::Wake {
                session_id: session_id.into(),
                queue,
            },
        });
        Ok(())
    }

    async fn pending(
        &self,
        queue: ControlQueue,
        session_id: &str,
        take: bool,
    ) -> Result<Vec<Arc<str>>, StoreError> {
        let now = Instant::now();
        let mut state = self.state.lock();
        let queues = &mut state.control;
        let key = (queue, session_id.to_string());
        let Some(q) = queues.queues.get_mut(&key) else {
            return Ok(Vec::new());
        };
        for id in q.prune(now) {
            queues.owners.remove(&(queue, id));
        }
        // Oldest first, stopping before the answer would pass READ_MAX_BYTES (one at least).
        let mut bytes = 0;
        let ids: Vec<String> = q
            .order
            .iter()
            .filter(|id| q.items.get(*id).is_some_and(|i| !i.taken))
            .take_while(|id| {
                let n = q.items[*id].record.len();
                let fits = bytes == 0 || bytes + n <= self.settings.read_max_bytes;
                bytes += n;
                fits
            })
            .cloned()
            .collect();
        let out = ids
            .iter()
            .filter_map(|id| q.items.get(id).map(|i| Arc::clone(&i.record)))
            .collect();
        if take {
            for id in ids {
                if q.take(queue, &id) {
                    queues.owners.remove(&(queue, id));
                }
            }
        }
        if q.order.is_empty() {
            queues.queues.remove(&key);
        }
        Ok(out)
    }

    async fn ack(
        &self,
        queue: ControlQueue,
        session_id: Option<&str>,
        item_id: &str,
        _ack: &str,
    ) -> Result<Option<Acked>, StoreError> {
        let now = Instant::now();
        let mut state = self.state.lock();
        let queues = &mut state.control;
        let Some(owner) = queues.owners.get(&(queue, item_id.to_string())).cloned() else {
            return Ok(None);
        };
        if session_id.is_some_and(|s| s != owner) {
            return Ok(None);
        }
        let Some(q) = queues.queues.get_mut(&(queue, owner.clone())) else {
            return Ok(None);
        };
        let Some(item) = q.items.get_mut(item_id).filter(|i| i.expires > now) else {
            return Ok(None);
        };
        let first = !item.acked;
        item.acked = true;
        let record = Arc::clone(&item.record);
        if q.take(queue, item_id) {
            queues.owners.remove(&(queue, item_id.to_string()));
        }
        Ok(Some(Acked {
            session_id: owner,
            record,
            first,
        }))
    }
}
