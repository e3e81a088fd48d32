//! Quotas in memory: each held set with its members' weights and expiries, and each window
//! counter with its expiry, beside the state's lock (a quota step touches nothing else).

use std::collections::HashMap;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use parking_lot::Mutex;

use super::MemoryStore;
use crate::store::{Admission, Admitted, QuotaStore, StoreError};

#[derive(Default)]
pub(super) struct QuotaTable(pub(super) Mutex<Quotas>);

#[derive(Default, serde::Serialize, serde::Deserialize)]
pub(super) struct Quotas {
    sets: HashMap<String, HeldSet>,
    #[serde(with = "super::persisted::timed_values")]
    counters: HashMap<String, (u64, Instant)>,
}

#[derive(Default, serde::Serialize, serde::Deserialize)]
struct HeldSet {
    #[serde(with = "super::persisted::timed_values")]
    members: HashMap<String, (u64, Instant)>,
    total: u64,
    /// No member expires before this: a hold scans the members only once one may have.
    #[serde(with = "super::persisted::maybe_instant")]
    next_expiry: Option<Instant>,
}

impl HeldSet {
    /// Holds each member for `ttl` from `now` unless the total would pass `max`; whether
    /// it did.
    fn hold(&mut self, members: &[(&str, u64)], now: Instant, ttl: Duration, max: u64) -> bool {
        self.sweep(now);
        let mut after = self.total as i128;
        for (m, weight) in members {
            after += i128::from(*weight) - i128::from(self.members.get(*m).map_or(0, |e| e.0));
        }
        if after > self.total as i128 && after > i128::from(max) {
            return false;
        }
        let until = now + ttl;
        for (m, weight) in members {
            let e = self.members.entry(m.to_string()).or_insert((0, until));
            *e = (*weight, e.1.max(until));
        }
        self.total = after.max(0) as u64;
        self.next_expiry = Some(self.next_expiry.map_or(until, |t| t.min(until)));
        true
    }

    /// Drops the members that expired, when one may have (a renewal only moves an expiry
    /// later, so the earliest one known is a safe bound).
    fn sweep(&mut self, now: Instant) {
        if self.next_expiry.is_none_or(|t| t > now) {
            return;
        }
        let total = &mut self.total;
        let mut next: Option<Instant> = None;
        self.members.retain(|_, (weight, until)| {
            if *until > now {
                next = Some(next.map_or(*until, |t| t.min(*until)));
                true
            } else {
                *total = total.saturating_sub(*weight);
                false
            }
        });
        self.next_expiry = next;
    }
}

impl QuotaTable {
    /// Drops what expired: sets with no live member, counters past their window.
    pub(super) fn sweep(&self) {
        let now = Instant::now();
        let mut q = self.0.lock();
        q.sets.retain(|_, s| {
            s.sweep(now);
            !s.members.is_empty()
        });
        q.counters.retain(|_, (_, until)| *until > now);
    }
}

#[async_trait]
impl QuotaStore for MemoryStore {
    async fn quota_hold(
        &self,
        set: &str,
        members: &[(&str, u64)],
        ttl: Duration,
        max: u64,
    ) -> Result<bool, StoreError> {
        let mut q = self.quotas.0.lock();
        let s = q.sets.entry(set.to_string()).or_default();
        Ok(s.hold(members, Instant::now(), ttl, max))
    }

    async fn quota_admit(&self, a: Admission<'_>) -> Result<Admitted, StoreError> {
        let now = Instant::now();
        let mut q = self.quotas.0.lock();
        let q = &mut *q;
        if a.max_events > 0 {
            let c = q
                .counters
                .entry(a.window.to_string())
                .or_insert((0, now + a.keep));
            if c.1 <= now {
                *c = (0, now + a.keep);
            }
            if c.0.saturating_add(a.events) > a.max_events {
                return Ok(Admitted::Events);
            }
        }
        if a.max_sessions > 0 {
            let members: Vec<(&str, u64)> = a.sessions.iter().map(|id| (*id, 1)).collect();
            let s = q.sets.entry("sessions".to_string()).or_default();
            if !s.hold(&members, now, a.ttl, a.max_sessions) {
                return Ok(Admitted::Sessions);
            }
        }
        if a.max_events > 0 {
            if let Some(c) = q.counters.get_mut(a.window) {
                c.0 += a.events;
            }
        }
        Ok(Admitted::Taken)
    }

    async fn quota_release(&self, set: &str, member: &str) -> Result<(), StoreError> {
        let mut q = self.quotas.0.lock();
        if let Some(s) = q.sets.get_mut(set) {
            if let Some((weight, _)) = s.members.remove(member) {
                s.total = s.total.saturating_sub(weight);
            }
        }
        Ok(())
    }

    async fn quota_give_back(&self, window: &str, n: u64) -> Result<(), StoreError> {
        if let Some(c) = self.quotas.0.lock().counters.get_mut(window) {
            c.0 = c.0.saturating_sub(n);
        }
        Ok(())
    }
}
