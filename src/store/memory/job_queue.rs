//! One job queue in memory: its jobs and an ordered set per state, with the upkeep every
//! step starts with (as `jobs.lua` does on Redis).

use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;

use super::OVERHEAD;
use crate::domain::jobs::{Backoff, JobSpec, JobState, JobView};
use crate::store::jobs::{ClaimSpec, Claimed, Lease};

#[derive(Default)]
pub(super) struct Queue {
    pub(super) jobs: HashMap<String, Job>,
    /// By (priority offset, enqueue counter).
    pub(super) waiting: BTreeSet<(u64, u64, String)>,
    /// By time (ms): due (delayed, retry), lease expiry (active), finished.
    pub(super) delayed: BTreeSet<(i64, String)>,
    pub(super) retry: BTreeSet<(i64, String)>,
    pub(super) active: BTreeSet<(i64, String)>,
    pub(super) completed: BTreeSet<(i64, String)>,
    pub(super) dead: BTreeSet<(i64, String)>,
    pub(super) seq: u64,
    /// When the whole queue goes, unless a step renews it (as its Redis keys' TTL).
    pub(super) expires_ms: i64,
}

pub(super) struct Job {
    pub(super) fixed: Arc<str>,
    pub(super) state: JobState,
    pub(super) attempts: u32,
    pub(super) max_attempts: u32,
    pub(super) backoff: Backoff,
    pub(super) order: (u64, u64),
    pub(super) created_ms: i64,
    pub(super) at_ms: i64,
    pub(super) worker: Option<String>,
    pub(super) token: Option<String>,
    pub(super) errors: Vec<String>,
    pub(super) result: Option<Arc<str>>,
}

impl Job {
    pub(super) fn bytes(&self) -> usize {
        self.fixed.len()
            + self.errors.iter().map(String::len).sum::<usize>()
            + self.result.as_ref().map_or(0, |r| r.len())
            + 4 * OVERHEAD
    }
}

/// At most this many jobs of each kind per step's upkeep, as on Redis.
const UPKEEP: usize = 1000;

fn take_due(set: &mut BTreeSet<(i64, String)>, now: i64) -> Vec<String> {
    let due: Vec<(i64, String)> = set
        .iter()
        .take_while(|(t, _)| *t <= now)
        .take(UPKEEP)
        .cloned()
        .collect();
    due.into_iter()
        .map(|k| {
            set.remove(&k);
            k.1
        })
        .collect()
}

impl Queue {
    pub(super) fn make_waiting(&mut self, id: &str) {
        if let Some(j) = self.jobs.get_mut(id) {
            j.state = JobState::Waiting;
            j.at_ms = 0;
            self.waiting.insert((j.order.0, j.order.1, id.to_string()));
        }
    }

    pub(super) fn add_error(&mut self, id: &str, error_json: &str, now: i64) {
        if let Some(j) = self.jobs.get_mut(id) {
            j.errors.push(format!(
                "{{\"attempt\":{},\"error\":{error_json},\"at\":{now}}}",
                j.attempts
            ));
        }
    }

    pub(super) fn bury(&mut self, id: &str, now: i64) {
        if let Some(j) = self.jobs.get_mut(id) {
            j.state = JobState::Dead;
            j.at_ms = now;
            j.worker = None;
            j.token = None;
            self.dead.insert((now, id.to_string()));
        }
    }

    pub(super) fn upkeep(&mut self, now: i64, keep_ms: i64) {
        for id in take_due(&mut self.delayed, now)
            .into_iter()
            .chain(take_due(&mut self.retry, now))
        {
            self.make_waiting(&id);
        }
        for id in take_due(&mut self.active, now) {
            let worker = self
                .jobs
                .get(&id)
                .and_then(|j| j.worker.clone())
                .unwrap_or_default();
            let msg = serde_json::to_string(&format!("lease expired (worker {worker})"))
                .expect("a string");
            self.add_error(&id, &msg, now);
            let Some(j) = self.jobs.get_mut(&id) else {
                continue;
            };
            if j.attempts >= j.max_attempts {
                self.bury(&id, now);
            } else {
                j.worker = None;
                j.token = None;
                self.make_waiting(&id);
            }
        }
        for id in take_due(&mut self.completed, now - keep_ms)
            .into_iter()
            .chain(take_due(&mut self.dead, now - keep_ms))
        {
            self.jobs.remove(&id);
        }
    }

    pub(super) fn view(&self, id: &str) -> Option<JobView> {
        let j = self.jobs.get(id)?;
        Some(JobView {
            id: id.to_string(),
            fixed: Arc::clone(&j.fixed),
            state: j.state,
            attempts: j.attempts,
            max_attempts: j.max_attempts,
            created_ms: j.created_ms,
            at_ms: j.at_ms,
            worker: j.worker.clone(),
            token: j.token.clone(),
            errors: format!("[{}]", j.errors.join(",")).into(),
            result: j.result.clone(),
        })
    }

    /// Stores a new job: delayed, or waiting at once.
    pub(super) fn insert(&mut self, job: &JobSpec, now: i64) {
        self.seq += 1;
        let order = (job.priority_offset(), self.seq);
        self.jobs.insert(
            job.id.clone(),
            Job {
                fixed: job.fixed.as_str().into(),
                state: JobState::Delayed,
                attempts: 0,
                max_attempts: job.max_attempts,
                backoff: job.backoff,
                order,
                created_ms: now,
                at_ms: now + job.delay_ms as i64,
                worker: None,
                token: None,
                errors: Vec::new(),
                result: None,
            },
        );
        if job.delay_ms > 0 {
            self.delayed
                .insert((now + job.delay_ms as i64, job.id.clone()));
        } else {
            self.make_waiting(&job.id);
        }
    }

    /// Takes up to `c.max` waiting jobs under one lease.
    pub(super) fn claim(&mut self, c: ClaimSpec<'_>, now: i64) -> Claimed {
        let until = now + c.lease_ms as i64;
        let mut jobs = Vec::new();
        while jobs.len() < c.max {
            let Some((_, _, id)) = self.waiting.pop_first() else {
                break;
            };
            let j = self.jobs.get_mut(&id).expect("a waiting job exists");
            j.attempts += 1;
            j.state = JobState::Active;
            j.at_ms = until;
            j.worker = Some(c.worker.to_string());
            j.token = Some(c.token.to_string());
            self.active.insert((until, id.clone()));
            jobs.push(self.view(&id).expect("the job"));
        }
        let next_due = if jobs.is_empty() { self.next_due() } else { 0 };
        Claimed {
            jobs,
            next_due,
            waiting: self.waiting.len() as u64,
        }
    }

    pub(super) fn next_due(&self) -> i64 {
        [&self.delayed, &self.retry, &self.active]
            .iter()
            .filter_map(|s| s.first().map(|(t, _)| *t))
            .min()
            .unwrap_or(0)
    }

    pub(super) fn count(&self) -> usize {
        self.jobs.len()
    }

    /// 1 when the lease holds the job, 0 when not, -1 for no such job (as `holds` in Lua).
    pub(super) fn holds(&self, id: &str, lease: Lease<'_>) -> i8 {
        let Some(j) = self.jobs.get(id) else {
            return -1;
        };
        let ok = j.state == JobState::Active
            && (lease.token.is_empty() || j.token.as_deref() == Some(lease.token))
            && (lease.worker.is_empty() || j.worker.as_deref() == Some(lease.worker));
        i8::from(ok)
    }

    pub(super) fn leave_active(&mut self, id: &str) {
        if let Some(j) = self.jobs.get_mut(id) {
            self.active.remove(&(j.at_ms, id.to_string()));
            j.worker = None;
            j.token = None;
        }
    }
}
