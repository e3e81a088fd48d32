//! Job queues: checks each request, names leases, computes jitter, and makes a claim with
//! `wait` a long poll: it registers for the queue's signal (jobs enqueued on any instance)
//! before each attempt, and otherwise sleeps until the store's next due time (a delayed job,
//! a retry, a lease that may lapse), so delayed jobs are claimed on time without polling.

use std::sync::Arc;
use std::time::Duration;

use serde_json::Value;
use tokio_util::sync::CancellationToken;

use super::waiters::Waiters;
use super::ServiceError;
use crate::bus::Signal;
use crate::domain::jobs::{
    check_claim, check_lease, check_new_job, check_new_jobs, Claim, JobLimits, JobView, NewJob,
    NewJobs, Settle,
};
use crate::domain::problems::{check_name, Problems};
use crate::store::jobs::{ClaimSpec, Claimed, Failure, JobStats, Lease, Settled};
use crate::store::{Cursor, JobStore};

#[derive(Clone)]
pub struct Jobs {
    pub store: Arc<dyn JobStore>,
    pub waiters: Arc<Waiters>,
    pub limits: JobLimits,
    pub shutdown: CancellationToken,
}

/// How a settling request (complete, fail, extend) ends.
pub enum Outcome {
    /// The job as it now stands, and what a completion's `next` claimed.
    Done(JobView, Vec<JobView>),
    NotHolder,
}

fn queue_name(queue: &str) -> Result<(), ServiceError> {
    check_name("queue", queue).map_err(ServiceError::invalid)
}

fn job_id(id: &str) -> Result<(), ServiceError> {
    check_name("jobId", id).map_err(ServiceError::invalid)
}

impl Jobs {
    pub async fn enqueue(&self, queue: &str, job: NewJob) -> Result<(bool, JobView), ServiceError> {
        queue_name(queue)?;
        let spec = check_new_job(job, &self.limits, new_id).map_err(ServiceError::Invalid)?;
        let mut one = self.store.enqueue(queue, &[spec]).await?;
        one.pop().ok_or(ServiceError::NotFound("job"))
    }

    /// Several jobs in one atomic step: all of them stored, or (a bad one, a full queue) none.
    pub async fn enqueue_bulk(
        &self,
        queue: &str,
        jobs: NewJobs,
    ) -> Result<Vec<(bool, JobView)>, ServiceError> {
        queue_name(queue)?;
        let specs = check_new_jobs(jobs, &self.limits, new_id).map_err(ServiceError::Invalid)?;
        Ok(self.store.enqueue(queue, &specs).await?)
    }

    pub async fn claim(&self, queue: &str, c: Claim) -> Result<Vec<JobView>, ServiceError> {
        queue_name(queue)?;
        let (worker, max, lease, wait) =
            check_claim(&c, &self.limits).map_err(ServiceError::Invalid)?;
        self.claim_within(queue, &worker, max, lease, wait).await
    }

    /// Claims, waiting up to `wait` ms for a job: registered for the queue's signal before
    /// each attempt, else asleep for as long as the store said nothing can come due (by its
    /// own clock, so a clock apart from this instance's cannot make it spin).
    async fn claim_within(
        &self,
        queue: &str,
        worker: &str,
        max: usize,
        lease_ms: u64,
        wait: u64,
    ) -> Result<Vec<JobView>, ServiceError> {
        let token = new_token();
        let spec = ClaimSpec {
            worker,
            max,
            lease_ms,
            token: &token,
        };
        let deadline = tokio::time::Instant::now() + Duration::from_millis(wait);
        loop {
            let waiting = self.waiters.register_signal(Signal::Jobs, queue);
            let enqueued = waiting.notify.notified();
            tokio::pin!(enqueued);
            enqueued.as_mut().enable();
            let claimed = self.store.claim(queue, spec).await?;
            self.relay(queue, &claimed);
            let now = tokio::time::Instant::now();
            if !claimed.jobs.is_empty() || now >= deadline || self.shutdown.is_cancelled() {
                return Ok(claimed.jobs);
            }
            // "Due now" comes only after the store did the upkeep that was due (more than one
            // step's worth): at least a millisecond, so even that is not a busy loop.
            let retry_at = match claimed.due_in_ms {
                Some(ms) => (now + Duration::from_millis(ms.max(1))).min(deadline),
                None => deadline,
            };
            tokio::select! {
                _ = enqueued => {}
                _ = tokio::time::sleep_until(retry_at) => {}
                _ = self.shutdown.cancelled() => {}
            }
        }
    }

    /// One wake-up stands for one claimable job (or a bulk of them): a claim that took jobs
    /// and left some waiting passes it on to the next waiting claim on this instance.
    fn relay(&self, queue: &str, claimed: &Claimed) {
        if !claimed.jobs.is_empty() && claimed.waiting > 0 {
            self.waiters.wake_signal(Signal::Jobs, queue);
        }
    }

    /// A completion's `next` claim, checked as a claim is; its `workerId` defaults to the
    /// completion's, else (a completion by token alone) to the lease's worker, which the
    /// store knows (an empty worker here). Problems are named under `next.`.
    fn check_next(&self, c: &Claim, s: &Settle, p: &mut Problems) -> (String, usize, u64, u64) {
        let named = c.worker_id.clone().or_else(|| s.worker_id.clone());
        let c = Claim {
            worker_id: Some(named.clone().unwrap_or_else(|| "lease".into())),
            ..*c
        };
        match check_claim(&c, &self.limits) {
            Ok((worker, max, lease, wait)) => (
                if named.is_some() {
                    worker
                } else {
                    String::new()
                },
                max,
                lease,
                wait,
            ),
            Err(problems) => {
                for f in problems {
                    p.add(&format!("next.{}", f.field), f.problem);
                }
                Default::default()
            }
        }
    }

    fn json_within(&self, field: &str, v: &Value, p: &mut Problems) -> String {
        let s = v.to_string();
        if s.len() > self.limits.max_bytes {
            p.add(
                field,
                format!("must be at most {} bytes of JSON", self.limits.max_bytes),
            );
        }
        s
    }

    /// Completes, fails (`op` "fail") or extends a claimed job under its lease.
    pub async fn settle(
        &self,
        queue: &str,
        id: &str,
        op: &str,
        s: Settle,
    ) -> Result<Outcome, ServiceError> {
        queue_name(queue)?;
        job_id(id)?;
        let mut p = Problems::default();
        let (token, worker) = check_lease(&s, &mut p);
        let lease = Lease {
            token: &token,
            worker: &worker,
        };
        if op != "complete" && s.next.is_some() {
            p.add("next", "is for complete only");
        }
        let mut next = Vec::new();
        let settled = match op {
            "complete" => {
                let result = s
                    .result
                    .as_ref()
                    .map(|r| self.json_within("result", r, &mut p));
                let claim = s.next.as_ref().map(|c| self.check_next(c, &s, &mut p));
                p.done().map_err(ServiceError::Invalid)?;
                let token = new_token();
                let spec = claim.as_ref().map(|(worker, max, lease_ms, _)| ClaimSpec {
                    worker,
                    max: *max,
                    lease_ms: *lease_ms,
                    token: &token,
                });
                let (settled, claimed) = self
                    .store
                    .complete(queue, id, lease, result.as_deref(), spec)
                    .await?;
                self.relay(queue, &claimed);
                let claimed_for = claimed.worker;
                next = claimed.jobs;
                // Nothing waiting: with `wait`, the next claim is a long poll once completed.
                if let Some((worker, max, lease_ms, wait)) = claim {
                    let worker = claimed_for.unwrap_or(worker);
                    if next.is_empty()
                        && wait > 0
                        && !worker.is_empty()
                        && matches!(settled, Settled::Done(_))
                    {
                        next = self
                            .claim_within(queue, &worker, max, lease_ms, wait)
                            .await?;
                    }
                }
                settled
            }
            "fail" => {
                let error = match &s.error {
                    Some(e) if !e.is_null() => self.json_within("error", e, &mut p),
                    _ => {
                        p.add("error", "is required");
                        String::new()
                    }
                };
                p.done().map_err(ServiceError::Invalid)?;
                let failure = Failure {
                    retry: s.retry.unwrap_or(true),
                    jitter: rand_unit(),
                };
                self.store.fail(queue, id, lease, &error, failure).await?
            }
            _ => {
                let ms = p.range(
                    "leaseMs",
                    s.lease_ms,
                    Some(self.limits.lease_ms),
                    100,
                    self.limits.max_lease_ms,
                );
                p.done().map_err(ServiceError::Invalid)?;
                self.store.extend(queue, id, lease, ms).await?
            }
        };
        match settled {
            Settled::Done(v) => Ok(Outcome::Done(v, next)),
            Settled::NotHolder => Ok(Outcome::NotHolder),
            Settled::Missing => Err(ServiceError::NotFound("job")),
        }
    }

    pub async fn job(&self, queue: &str, id: &str) -> Result<JobView, ServiceError> {
        queue_name(queue)?;
        job_id(id)?;
        self.store
            .job(queue, id)
            .await?
            .ok_or(ServiceError::NotFound("job"))
    }

    pub async fn stats(&self, queue: &str) -> Result<JobStats, ServiceError> {
        queue_name(queue)?;
        Ok(self.store.stats(queue).await?)
    }

    /// A page of the dead letters, newest first, and where the next one starts.
    pub async fn dead(
        &self,
        queue: &str,
        limit: usize,
        after: Option<&Cursor>,
    ) -> Result<(Vec<JobView>, Option<Cursor>), ServiceError> {
        queue_name(queue)?;
        Ok(self.store.dead(queue, limit, after).await?)
    }

    pub async fn retry_dead(&self, queue: &str, id: &str) -> Result<JobView, ServiceError> {
        queue_name(queue)?;
        job_id(id)?;
        self.store
            .retry_dead(queue, id)
            .await?
            .ok_or(ServiceError::NotFound("dead job"))
    }
}

fn new_id() -> String {
    uuid::Uuid::now_v7().to_string()
}

/// A lease's name.
fn new_token() -> String {
    uuid::Uuid::new_v4().simple().to_string()
}

/// A uniform number in `0..1` for the backoff's jitter.
fn rand_unit() -> f64 {
    let bits = uuid::Uuid::new_v4().as_u128() as u64 >> 11;
    bits as f64 / (1u64 << 53) as f64
}
