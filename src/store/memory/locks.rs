//! Locks in memory: per name its holder (if any), expiry and last fencing token, on the wall
//! clock in ms like Redis's `TIME`. A name's state is dropped `LOCK_FENCE_KEEP_DAYS` after its
//! last grant.

use std::collections::HashMap;

use std::time::Instant;

use async_trait::async_trait;

use super::{MemoryStore, Part, OVERHEAD};
use crate::bus::{BusMessage, Signal};
use crate::domain::locks::{next_fence, Acquire, LockHolder};
use crate::store::{LockStore, StoreError};
use crate::time::now_ms;

#[derive(Default, serde::Serialize, serde::Deserialize)]
pub(super) struct LockTable {
    locks: HashMap<String, Slot>,
}

#[derive(serde::Serialize, serde::Deserialize)]
struct Slot {
    holder: Option<LockHolder>,
    fence: u64,
    keep_until_ms: i64,
}

impl Slot {
    /// The holder, if the lock is held at `now`.
    fn held(&self, now: i64) -> Option<&LockHolder> {
        self.holder.as_ref().filter(|h| h.expires_at_ms > now)
    }
}

impl Part for LockTable {
    fn sweep(&mut self, _: Instant) {
        let now = now_ms();
        self.locks.retain(|_, s| s.keep_until_ms > now);
    }

    fn bytes(&self) -> usize {
        self.locks.keys().map(|k| k.len() + 2 * OVERHEAD).sum()
    }
}

impl MemoryStore {
    fn fence_keep_ms(&self) -> i64 {
        (self.settings.services.lock_fence_keep_secs * 1000) as i64
    }
}

#[async_trait]
impl LockStore for MemoryStore {
    async fn acquire(
        &self,
        name: &str,
        owner: &str,
        token: &str,
        ttl_ms: u64,
    ) -> Result<Acquire, StoreError> {
        let mut state = self.state.lock();
        let now = now_ms();
        if let Some(h) = state.locks.locks.get(name).and_then(|s| s.held(now)) {
            return Ok(Acquire::Held(h.clone()));
        }
        if !state.locks.locks.contains_key(name) {
            self.admit(&mut state, name.len() + 2 * OVERHEAD)?;
        }
        let keep = self.fence_keep_ms().max(ttl_ms as i64);
        let slot = state.locks.locks.entry(name.to_string()).or_insert(Slot {
            holder: None,
            fence: 0,
            keep_until_ms: 0,
        });
        slot.fence = next_fence(slot.fence, now);
        slot.keep_until_ms = now + keep;
        let h = LockHolder {
            owner: owner.to_string(),
            token: token.to_string(),
            fencing_token: slot.fence,
            expires_at_ms: now + ttl_ms as i64,
        };
        slot.holder = Some(h.clone());
        Ok(Acquire::Granted(h))
    }

    async fn extend(
        &self,
        name: &str,
        token: &str,
        ttl_ms: u64,
    ) -> Result<Option<LockHolder>, StoreError> {
        let mut state = self.state.lock();
        let now = now_ms();
        let keep = self.fence_keep_ms().max(ttl_ms as i64);
        let Some(slot) = state.locks.locks.get_mut(name) else {
            return Ok(None);
        };
        if slot.held(now).is_none_or(|h| h.token != token) {
            return Ok(None);
        }
        slot.keep_until_ms = now + keep;
        let h = slot.holder.as_mut().expect("held");
        h.expires_at_ms = now + ttl_ms as i64;
        Ok(Some(h.clone()))
    }

    async fn release(&self, name: &str, token: &str) -> Result<bool, StoreError> {
        let mut state = self.state.lock();
        let now = now_ms();
        let Some(slot) = state.locks.locks.get_mut(name) else {
            return Ok(false);
        };
        if slot.held(now).is_none_or(|h| h.token != token) {
            return Ok(false);
        }
        slot.holder = None;
        self.publish(BusMessage::Signal {
            signal: Signal::Lock,
            name: name.into(),
        });
        Ok(true)
    }

    async fn lock(&self, name: &str) -> Result<(Option<LockHolder>, u64), StoreError> {
        let state = self.state.lock();
        Ok(match state.locks.locks.get(name) {
            Some(s) => (s.held(now_ms()).cloned(), s.fence),
            None => (None, 0),
        })
    }

    async fn held_locks(&self) -> Result<Option<u64>, StoreError> {
        let (state, now) = (self.state.lock(), now_ms());
        Ok(Some(
            state
                .locks
                .locks
                .values()
                .filter(|s| s.held(now).is_some())
                .count() as u64,
        ))
    }
}
