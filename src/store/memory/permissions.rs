//! Permission requests in memory: each request by id with when it was opened, and the rules.
//! Settled requests go `PERMISSION_KEEP_SECS` after their deadline (or, past
//! `PERMISSION_MAX_KEPT`, oldest first).

use std::collections::HashMap;
use std::time::Instant;

use async_trait::async_trait;

use super::{MemoryStore, Part, OVERHEAD};
use crate::bus::{BusMessage, Signal};
use crate::domain::permissions::{Record, Status};
use crate::store::permissions::{Opened, PermissionLimits, PermissionStore};
use crate::store::StoreError;
use crate::time::now_ms;

#[derive(Default, serde::Serialize, serde::Deserialize)]
pub(super) struct PermissionTable {
    requests: HashMap<String, Kept>,
    /// Opening order, for listing newest first.
    next: u64,
    rules: Option<String>,
}

#[derive(serde::Serialize, serde::Deserialize)]
struct Kept {
    record: Record,
    order: u64,
    keep_until_ms: i64,
}

impl PermissionTable {
    fn pending(&self, now: i64) -> usize {
        self.requests
            .values()
            .filter(|k| k.record.status_at(now) == Status::Pending)
            .count()
    }

    fn trim(&mut self, now: i64, max_kept: usize) {
        self.requests.retain(|_, k| k.keep_until_ms > now);
        if self.requests.len() > max_kept {
            let mut orders: Vec<u64> = self.requests.values().map(|k| k.order).collect();
            orders.sort_unstable();
            let cut = orders[self.requests.len() - max_kept];
            self.requests.retain(|_, k| k.order >= cut);
        }
    }
}

impl Part for PermissionTable {
    fn sweep(&mut self, _: Instant) {
        let now = now_ms();
        self.requests.retain(|_, k| k.keep_until_ms > now);
    }

    fn bytes(&self) -> usize {
        let requests: usize = self
            .requests
            .iter()
            .map(|(id, k)| {
                id.len()
                    + k.record.request.len()
                    + k.record.decision.as_ref().map_or(0, String::len)
                    + OVERHEAD
            })
            .sum();
        requests + self.rules.as_ref().map_or(0, String::len)
    }
}

#[async_trait]
impl PermissionStore for MemoryStore {
    async fn open(
        &self,
        id: &str,
        request: &str,
        expires_at_ms: i64,
        limits: PermissionLimits,
    ) -> Result<Opened, StoreError> {
        let mut state = self.state.lock();
        let now = now_ms();
        if let Some(k) = state.permissions.requests.get(id) {
            return Ok(Opened::Existing(k.record.clone()));
        }
        state
            .permissions
            .trim(now, limits.max_kept.saturating_sub(1));
        if state.permissions.pending(now) >= limits.max_pending {
            return Err(StoreError::QueueFull);
        }
        self.admit(&mut state, id.len() + request.len() + OVERHEAD)?;
        let record = Record {
            request: request.to_string(),
            status: Status::Pending,
            decision: None,
            expires_at_ms,
        };
        let t = &mut state.permissions;
        t.next += 1;
        let kept = Kept {
            record: record.clone(),
            order: t.next,
            keep_until_ms: expires_at_ms.saturating_add(limits.keep_ms as i64),
        };
        t.requests.insert(id.to_string(), kept);
        Ok(Opened::New(record))
    }

    async fn settle(
        &self,
        id: &str,
        status: Status,
        decision: &str,
    ) -> Result<Option<(Record, bool)>, StoreError> {
        let mut state = self.state.lock();
        let now = now_ms();
        let Some(k) = state.permissions.requests.get_mut(id) else {
            return Ok(None);
        };
        let late = k.record.status_at(now) == Status::Expired
            && !matches!(status, Status::Expired | Status::Abandoned);
        if k.record.status != Status::Pending || late {
            return Ok(Some((k.record.clone(), false)));
        }
        k.record.status = status;
        k.record.decision = Some(decision.to_string());
        let record = k.record.clone();
        state.used += decision.len();
        self.publish(BusMessage::Signal {
            signal: Signal::Permission,
            name: id.into(),
        });
        Ok(Some((record, true)))
    }

    async fn permission(&self, id: &str) -> Result<Option<Record>, StoreError> {
        let state = self.state.lock();
        Ok(state.permissions.requests.get(id).map(|k| k.record.clone()))
    }

    async fn permissions(
        &self,
        pending_only: bool,
        limit: usize,
    ) -> Result<Vec<Record>, StoreError> {
        let state = self.state.lock();
        let now = now_ms();
        let mut found: Vec<&Kept> = state
            .permissions
            .requests
            .values()
            .filter(|k| !pending_only || k.record.status_at(now) == Status::Pending)
            .collect();
        found.sort_unstable_by_key(|k| std::cmp::Reverse(k.order));
        Ok(found
            .into_iter()
            .take(limit)
            .map(|k| k.record.clone())
            .collect())
    }

    async fn rules(&self) -> Result<Option<String>, StoreError> {
        Ok(self.state.lock().permissions.rules.clone())
    }

    async fn set_rules(&self, rules: &str) -> Result<(), StoreError> {
        let mut state = self.state.lock();
        self.admit(&mut state, rules.len())?;
        state.permissions.rules = Some(rules.to_string());
        Ok(())
    }
}
