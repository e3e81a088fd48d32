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
    check_claim, check_lease, check_new_job, Claim, JobLimits, JobView, NewJob, Settle,
};
use crate::domain::limits::{check_name, Problems};
use crate::store::jobs::{Failure, JobStats, Lease, Settled};
use crate::store::JobStore;
use crate::time::now_ms;

#[derive(Clone)]
pub struct Jobs {
    pub store: Arc<dyn JobStore>,
    pub waiters: Arc<Waiters>,
    pub limits: JobLimits,
    pub shutdown: CancellationToken,
}

/// How a settling request (complete, fail, extend) ends.
pub enum Outcome {
    Done(JobView),
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
        let spec = check_new_job(job, &self.limits, || uuid::Uuid::now_v7().to_string())
            .map_err(ServiceError::Invalid)?;
        Ok(self.store.enqueue(queue, &spec).await?)
    }

    pub async fn claim(&self, queue: &str, c: Claim) -> Result<Vec<JobView>, ServiceError> {
        queue_name(queue)?;
        let (worker, max, lease, wait) =
            check_claim(&c, &self.limits).map_err(ServiceError::Invalid)?;
        let token = uuid::Uuid::new_v4().simple().to_string();
        let deadline = tokio::time::Instant::now() + Duration::from_millis(wait);
        loop {
            let waiting = self.waiters.register_signal(Signal::Jobs, queue);
            let enqueued = waiting.notify.notified();
            tokio::pin!(enqueued);
            enqueued.as_mut().enable();
            let (jobs, next_due) = self.store.claim(queue, &worker, max, lease, &token).await?;
            let now = tokio::time::Instant::now();
            if !jobs.is_empty() || now >= deadline || self.shutdown.is_cancelled() {
                return Ok(jobs);
            }
            let retry_at = match u64::try_from(next_due - now_ms()) {
                Ok(ms) if next_due > 0 => (now + Duration::from_millis(ms + 1)).min(deadline),
                _ if next_due > 0 => now + Duration::from_millis(1),
                _ => deadline,
            };
            tokio::select! {
                _ = enqueued => {}
                _ = tokio::time::sleep_until(retry_at) => {}
                _ = self.shutdown.cancelled() => {}
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
        let settled = match op {
            "complete" => {
                let result = s
                    .result
                    .as_ref()
                    .map(|r| self.json_within("result", r, &mut p));
                p.done().map_err(ServiceError::Invalid)?;
                self.store
                    .complete(queue, id, lease, result.as_deref())
                    .await?
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
            Settled::Done(v) => Ok(Outcome::Done(v)),
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

    pub async fn dead(&self, queue: &str, limit: usize) -> Result<Vec<JobView>, ServiceError> {
        queue_name(queue)?;
        Ok(self.store.dead(queue, limit).await?)
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

/// A uniform number in `0..1` for the backoff's jitter.
fn rand_unit() -> f64 {
    let bits = uuid::Uuid::new_v4().as_u128() as u64 >> 11;
    bits as f64 / (1u64 << 53) as f64
}
