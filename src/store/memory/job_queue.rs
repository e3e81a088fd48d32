//! One job queue in memory: its jobs and an ordered set per state, with the upkeep every
//! step starts with (as `jobs.lua` does on Redis).

use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;

use super::OVERHEAD;
use crate::domain::jobs::{Backoff, JobSpec, JobState, JobView};
use crate::store::jobs::{ClaimSpec, Claimed, Lease, Settled};

/// The bounds every step keeps (from the `JOB_*` settings and `READ_MAX_BYTES`).
#[derive(Debug, Clone, Copy)]
pub(super) struct Rules {
    /// How long finished jobs are kept (`JOB_KEEP_SECS`), in ms.
    pub keep_ms: i64,
    /// Completed jobs kept, and dead ones apart (`JOB_HISTORY_MAX`).
    pub history_max: usize,
    /// Errors one job keeps (`JOB_ERRORS_MAX`)...
    pub errors_max: usize,
    /// ...within this many bytes of JSON (`JOB_MAX_BYTES`).
    pub errors_bytes: usize,
    /// Bytes of jobs one claim or page answers at most, beyond the first (`READ_MAX_BYTES`).
    pub read_max: usize,
}

#[derive(Default, serde::Serialize, serde::Deserialize)]
pub(super) struct JobQueue {
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

#[derive(serde::Serialize, serde::Deserialize)]
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

    /// What an answer carrying this job writes of it, about (the `READ_MAX_BYTES` bound).
    fn answer_bytes(&self) -> usize {
        self.fixed.len()
            + self.errors.iter().map(String::len).sum::<usize>()
            + self.result.as_ref().map_or(0, |r| r.len())
    }
}

/// One error as a job keeps it: its attempt, the error's JSON and when.
pub(super) fn error_entry(attempt: u32, error_json: &str, now: i64) -> String {
    format!("{{\"attempt\":{attempt},\"error\":{error_json},\"at\":{now}}}")
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

impl JobQueue {
    pub(super) fn make_waiting(&mut self, id: &str) {
        if let Some(j) = self.jobs.get_mut(id) {
            j.state = JobState::Waiting;
            j.at_ms = 0;
            self.waiting.insert((j.order.0, j.order.1, id.to_string()));
        }
    }

    /// Keeps the job's newest errors within `JOB_ERRORS_MAX` and `JOB_MAX_BYTES` (the
    /// newest always stays), as `add_error` in `jobs.lua` does.
    pub(super) fn add_error(&mut self, id: &str, error_json: &str, now: i64, r: Rules) {
        if let Some(j) = self.jobs.get_mut(id) {
            j.errors.push(error_entry(j.attempts, error_json, now));
            let mut bytes: usize = j.errors.iter().map(|e| e.len() + 1).sum::<usize>() + 1;
            let mut drop = 0;
            while j.errors.len() - drop > 1
                && (j.errors.len() - drop > r.errors_max || bytes > r.errors_bytes)
            {
                bytes -= j.errors[drop].len() + 1;
                drop += 1;
            }
            j.errors.drain(..drop);
        }
    }

    pub(super) fn bury(&mut self, id: &str, now: i64, r: Rules) {
        if let Some(j) = self.jobs.get_mut(id) {
            j.state = JobState::Dead;
            j.at_ms = now;
            j.worker = None;
            j.token = None;
            self.dead.insert((now, id.to_string()));
            self.trim_history(JobState::Dead, r);
        }
    }

    /// Marks an active job completed (its lease already left).
    pub(super) fn finish(&mut self, id: &str, now: i64, result: Option<&str>, r: Rules) {
        self.completed.insert((now, id.to_string()));
        if let Some(j) = self.jobs.get_mut(id) {
            j.state = JobState::Completed;
            j.at_ms = now;
            if let Some(r) = result {
                j.result = Some(r.into());
            }
        }
        self.trim_history(JobState::Completed, r);
    }

    /// Finished history is bounded on its own (`JOB_HISTORY_MAX`): the oldest go first, at
    /// most [`UPKEEP`] per step (after a lowered setting, the rest on later steps).
    fn trim_history(&mut self, state: JobState, r: Rules) {
        let set = match state {
            JobState::Completed => &mut self.completed,
            _ => &mut self.dead,
        };
        let over = set.len().saturating_sub(r.history_max).min(UPKEEP);
        for _ in 0..over {
            if let Some((_, id)) = set.pop_first() {
                self.jobs.remove(&id);
            }
        }
    }

    pub(super) fn upkeep(&mut self, now: i64, r: Rules) {
        let keep_ms = r.keep_ms;
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
            self.add_error(&id, &msg, now, r);
            let Some(j) = self.jobs.get_mut(&id) else {
                continue;
            };
            if j.attempts >= j.max_attempts {
                self.bury(&id, now, r);
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

    /// Takes up to `c.max` waiting jobs under one lease, stopping once they reach
    /// `READ_MAX_BYTES` (at least one). `c.worker` empty: none is named (the caller checked).
    pub(super) fn claim(&mut self, c: ClaimSpec<'_>, now: i64, r: Rules) -> Claimed {
        let until = now + c.lease_ms as i64;
        let mut jobs = Vec::new();
        let mut bytes = 0;
        while jobs.len() < c.max && bytes < r.read_max {
            let Some((_, _, id)) = self.waiting.pop_first() else {
                break;
            };
            let j = self.jobs.get_mut(&id).expect("a waiting job exists");
            j.attempts += 1;
            j.state = JobState::Active;
            j.at_ms = until;
            j.worker = Some(c.worker.to_string());
            j.token = Some(c.token.to_string());
            bytes += j.answer_bytes();
            self.active.insert((until, id.clone()));
            jobs.push(self.view(&id).expect("the job"));
        }
        // Nothing taken: when something may be. The upkeep ran at this step's start, so a
        // time already passed means due work beyond one step's upkeep: at once, then.
        let due_in_ms = match (jobs.is_empty(), self.next_due()) {
            (true, Some(t)) => Some(t.saturating_sub(now).max(0) as u64),
            _ => None,
        };
        Claimed {
            jobs,
            due_in_ms,
            waiting: self.waiting.len() as u64,
            worker: None,
        }
    }

    /// The earliest time (ms) something may become claimable, if anything is pending.
    pub(super) fn next_due(&self) -> Option<i64> {
        [&self.delayed, &self.retry, &self.active]
            .iter()
            .filter_map(|s| s.first().map(|(t, _)| *t))
            .min()
    }

    /// Jobs that count against `JOB_QUEUE_MAX_JOBS`: not finished.
    pub(super) fn pending(&self) -> usize {
        self.waiting.len() + self.delayed.len() + self.retry.len() + self.active.len()
    }

    /// The lease's worker when the lease holds the job (as `holds` in `jobs.lua`): it is
    /// active, and the token (if given) and worker (if given) are its current lease's.
    pub(super) fn holder(&self, id: &str, lease: Lease<'_>) -> Option<String> {
        let j = self.jobs.get(id)?;
        let ok = j.state == JobState::Active
            && (lease.token.is_empty() || j.token.as_deref() == Some(lease.token))
            && (lease.worker.is_empty() || j.worker.as_deref() == Some(lease.worker));
        ok.then(|| j.worker.clone().unwrap_or_default())
    }

    /// Why a lease does not hold the job: there is no such job, or it is not its lease.
    pub(super) fn missing_or_not_holder(&self, id: &str) -> Settled {
        if self.jobs.contains_key(id) {
            Settled::NotHolder
        } else {
            Settled::Missing
        }
    }

    pub(super) fn leave_active(&mut self, id: &str) {
        if let Some(j) = self.jobs.get_mut(id) {
            self.active.remove(&(j.at_ms, id.to_string()));
            j.worker = None;
            j.token = None;
        }
    }
}
