//! Job queues in memory, step for step what `jobs.lua` does on Redis: per queue its jobs by
//! id and an ordered set per state, with the same upkeep before every step, on the wall
//! clock in ms.

use std::collections::{BTreeSet, HashMap, HashSet};

use std::time::Instant;

use async_trait::async_trait;

use super::job_queue::{error_entry, JobQueue, Rules};
use super::{MemoryStore, Part, State, OVERHEAD};
use crate::bus::{BusMessage, Signal};
use crate::domain::jobs::{JobSpec, JobState, JobView};
use crate::store::jobs::{ClaimSpec, Claimed, Failure, JobStats, Lease, Settled};
use crate::store::{Cursor, JobStore, StoreError};
use crate::time::now_ms;

#[derive(Default, serde::Serialize, serde::Deserialize)]
pub(super) struct JobTable {
    queues: HashMap<String, JobQueue>,
}

impl Part for JobTable {
    fn sweep(&mut self, _: Instant) {
        let now = now_ms();
        self.queues.retain(|_, q| q.expires_ms > now);
    }

    fn bytes(&self) -> usize {
        self.queues
            .values()
            .map(|q| {
                q.jobs
                    .iter()
                    .map(|(id, j)| 3 * id.len() + j.bytes())
                    .sum::<usize>()
                    + OVERHEAD
            })
            .sum()
    }
}

impl MemoryStore {
    fn job_rules(&self) -> Rules {
        let s = &self.settings.services;
        Rules {
            keep_ms: (s.job_keep_secs * 1000) as i64,
            history_max: s.job_history_max,
            errors_max: s.job_errors_max,
            errors_bytes: s.job_max_bytes,
            read_max: self.settings.read_max_bytes,
        }
    }

    /// Runs `f` on the queue after its upkeep, in one locked step.
    fn with_queue<T>(
        &self,
        queue: &str,
        f: impl FnOnce(&mut JobQueue, i64, Rules, &mut Vec<BusMessage>) -> (T, bool),
    ) -> T {
        self.queue_step(&mut self.state.lock(), queue, f)
    }

    /// Runs `f` on the queue after its upkeep, with the state already locked; the queue's
    /// expiry is renewed when `f` says it wrote (as the Redis keys' TTL is).
    fn queue_step<T>(
        &self,
        state: &mut State,
        queue: &str,
        f: impl FnOnce(&mut JobQueue, i64, Rules, &mut Vec<BusMessage>) -> (T, bool),
    ) -> T {
        let s = &self.settings.services;
        let rules = self.job_rules();
        let ttl_ms =
            rules.keep_ms + (s.job_max_delay_ms + s.job_max_lease_ms + s.job_backoff_max_ms) as i64;
        let now = now_ms();
        let q = state.jobs.queues.entry(queue.to_string()).or_default();
        if q.expires_ms != 0 && q.expires_ms <= now {
            *q = JobQueue::default();
        }
        q.upkeep(now, rules);
        let mut announce = Vec::new();
        let (out, wrote) = f(q, now, rules, &mut announce);
        if wrote {
            q.expires_ms = now + ttl_ms;
        }
        if q.jobs.is_empty() && q.expires_ms == 0 {
            state.jobs.queues.remove(queue);
        }
        for m in announce {
            self.publish(m);
        }
        out
    }

    /// A settling step that stores about `bytes` more (a result, an error): charged to the
    /// budget before anything changes, and given back when the step changed nothing.
    fn settle_charged<T>(
        &self,
        queue: &str,
        bytes: usize,
        f: impl FnOnce(&mut JobQueue, i64, Rules, &mut Vec<BusMessage>) -> (T, bool),
    ) -> Result<T, StoreError> {
        let mut state = self.state.lock();
        self.admit(&mut state, bytes)?;
        let mut wrote = false;
        let out = self.queue_step(&mut state, queue, |q, now, r, announce| {
            let (out, w) = f(q, now, r, announce);
            wrote = w;
            (out, w)
        });
        if !wrote {
            state.used = state.used.saturating_sub(bytes);
        }
        Ok(out)
    }
}

fn wake(queue: &str) -> BusMessage {
    BusMessage::Signal {
        signal: Signal::Jobs,
        name: queue.into(),
    }
}

#[async_trait]
impl JobStore for MemoryStore {
    async fn enqueue(
        &self,
        queue: &str,
        jobs: &[JobSpec],
    ) -> Result<Vec<(bool, JobView)>, StoreError> {
        // One locked step: repeated jobIds are answered before the budget is charged.
        let mut state = self.state.lock();
        let new = self.queue_step(&mut state, queue, |q, _, _, _| {
            let mut seen = HashSet::new();
            let fresh: Vec<&JobSpec> = jobs
                .iter()
                .filter(|j| !q.jobs.contains_key(&j.id) && seen.insert(j.id.as_str()))
                .collect();
            (fresh, false)
        });
        if !new.is_empty() {
            let bytes = new
                .iter()
                .map(|j| j.fixed.len() + 3 * j.id.len())
                .sum::<usize>();
            self.admit(&mut state, bytes + 4 * OVERHEAD * new.len())?;
        }
        let max = self.settings.services.job_queue_max_jobs;
        self.queue_step(&mut state, queue, |q, now, _, announce| {
            // The cap counts pending jobs only: finished ones are bounded on their own.
            if !new.is_empty() && q.pending() + new.len() > max {
                return (Err(StoreError::QueueFull), false);
            }
            let mut out = Vec::with_capacity(jobs.len());
            let mut claimable = false;
            for job in jobs {
                if q.jobs.contains_key(&job.id) {
                    out.push((false, q.view(&job.id).expect("stored")));
                    continue;
                }
                claimable |= job.delay_ms == 0;
                q.insert(job, now);
                out.push((true, q.view(&job.id).expect("just stored")));
            }
            if claimable {
                announce.push(wake(queue));
            }
            (Ok(out), !new.is_empty())
        })
    }

    async fn claim(&self, queue: &str, c: ClaimSpec<'_>) -> Result<Claimed, StoreError> {
        Ok(self.with_queue(queue, |q, now, r, _| {
            let claimed = q.claim(c, now, r);
            let wrote = !claimed.jobs.is_empty();
            (claimed, wrote)
        }))
    }

    async fn complete(
        &self,
        queue: &str,
        id: &str,
        lease: Lease<'_>,
        result: Option<&str>,
        next: Option<ClaimSpec<'_>>,
    ) -> Result<(Settled, Claimed), StoreError> {
        let bytes = result.map_or(0, str::len);
        self.settle_charged(queue, bytes, |q, now, r, _| {
            let Some(worker) = q.holder(id, lease) else {
                return ((q.missing_or_not_holder(id), Claimed::default()), false);
            };
            q.leave_active(id);
            q.finish(id, now, result, r);
            let done = Settled::Done(q.view(id).expect("the job"));
            let claimed = next
                .map(|c| {
                    // A next claim that names no worker is the lease's worker's.
                    let worker = if c.worker.is_empty() {
                        &worker
                    } else {
                        c.worker
                    };
                    let mut claimed = q.claim(ClaimSpec { worker, ..c }, now, r);
                    claimed.worker = Some(worker.to_string());
                    claimed
                })
                .unwrap_or_default();
            ((done, claimed), true)
        })
    }

    async fn fail(
        &self,
        queue: &str,
        id: &str,
        lease: Lease<'_>,
        error: &str,
        f: Failure,
    ) -> Result<Settled, StoreError> {
        // The error as it will be kept (its attempt and time only a few digits).
        let bytes = error_entry(u32::MAX, error, i64::MAX).len();
        self.settle_charged(queue, bytes, |q, now, r, _| {
            if q.holder(id, lease).is_none() {
                return (q.missing_or_not_holder(id), false);
            }
            q.leave_active(id);
            q.add_error(id, error, now, r);
            let j = q.jobs.get_mut(id).expect("the job");
            if f.retry && j.attempts < j.max_attempts {
                let at = now + j.backoff.delay(j.attempts, f.jitter.clamp(0.0, 1.0)) as i64;
                j.state = JobState::Failed;
                j.at_ms = at;
                q.retry.insert((at, id.to_string()));
            } else {
                q.bury(id, now, r);
            }
            (Settled::Done(q.view(id).expect("the job")), true)
        })
    }

    async fn extend(
        &self,
        queue: &str,
        id: &str,
        lease: Lease<'_>,
        lease_ms: u64,
    ) -> Result<Settled, StoreError> {
        Ok(self.with_queue(queue, |q, now, _, _| {
            if q.holder(id, lease).is_none() {
                return (q.missing_or_not_holder(id), false);
            }
            // A lease ends when its latest extension says, sooner or later than before.
            let j = q.jobs.get_mut(id).expect("the job");
            q.active.remove(&(j.at_ms, id.to_string()));
            j.at_ms = now + lease_ms as i64;
            q.active.insert((j.at_ms, id.to_string()));
            (Settled::Done(q.view(id).expect("the job")), true)
        }))
    }

    async fn job(&self, queue: &str, id: &str) -> Result<Option<JobView>, StoreError> {
        Ok(self.with_queue(queue, |q, _, _, _| (q.view(id), false)))
    }

    async fn stats(&self, queue: &str) -> Result<JobStats, StoreError> {
        Ok(self.with_queue(queue, |q, _, _, _| {
            let n = |s: &BTreeSet<(i64, String)>| s.len() as u64;
            let stats = JobStats {
                waiting: q.waiting.len() as u64,
                delayed: n(&q.delayed),
                active: n(&q.active),
                completed: n(&q.completed),
                failed: n(&q.retry),
                dead: n(&q.dead),
            };
            (stats, false)
        }))
    }

    async fn dead(
        &self,
        queue: &str,
        limit: usize,
        after: Option<&Cursor>,
    ) -> Result<(Vec<JobView>, Option<Cursor>), StoreError> {
        Ok(self.with_queue(queue, |q, _, r, _| {
            let mut walk = q
                .dead
                .iter()
                .rev()
                .filter(|(at, id)| after.is_none_or(|c| !c.walked(*at, id)));
            let mut jobs = Vec::new();
            let mut bytes = 0;
            let mut last = None;
            for (at, id) in walk.by_ref() {
                let Some(v) = q.view(id) else { continue };
                bytes += v.fixed.len() + v.errors.len() + v.result.as_ref().map_or(0, |r| r.len());
                jobs.push(v);
                last = Some((*at, id));
                if jobs.len() >= limit || bytes >= r.read_max {
                    break;
                }
            }
            let next = match (last, walk.next()) {
                (Some((ms, id)), Some(_)) => Some(Cursor {
                    ms,
                    member: id.clone(),
                }),
                _ => None,
            };
            ((jobs, next), false)
        }))
    }

    async fn retry_dead(&self, queue: &str, id: &str) -> Result<Option<JobView>, StoreError> {
        Ok(self.with_queue(queue, |q, _, _, announce| {
            let Some(at) = q
                .jobs
                .get(id)
                .filter(|j| j.state == JobState::Dead)
                .map(|j| j.at_ms)
            else {
                return (None, false);
            };
            q.dead.remove(&(at, id.to_string()));
            q.jobs.get_mut(id).expect("the job").attempts = 0;
            q.make_waiting(id);
            announce.push(wake(queue));
            (q.view(id), true)
        }))
    }
}
