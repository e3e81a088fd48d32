//! Job queues on Redis: per queue one HASH of its jobs and a ZSET per state, all in the
//! queue's slot, changed only by `jobs.lua` (one script, an op per step, so every step does
//! the same upkeep first).

use async_trait::async_trait;
use redis::Value;

use super::{corrupt, int, script, signed, text, RedisStore};
use crate::bus::Signal;
use crate::domain::jobs::{JobSpec, JobState, JobView};
use crate::store::jobs::{ClaimSpec, Claimed, Failure, JobStats, Lease, Settled};
use crate::store::{Cursor, JobStore, StoreError};

const PARTS: [&str; 7] = [
    "",
    "waiting",
    "delayed",
    "retry",
    "active",
    "completed",
    "dead",
];

/// A job from `view()` in `jobs.lua`.
fn view(v: &Value) -> Option<JobView> {
    let Value::Array(f) = v else { return None };
    let opt = |i: usize| text(f.get(i)?).filter(|s| !s.is_empty());
    Some(JobView {
        id: text(f.first()?)?,
        fixed: text(f.get(1)?)?.into(),
        state: JobState::parse(&text(f.get(2)?)?)?,
        attempts: u32::try_from(int(f.get(3)?)?).ok()?,
        max_attempts: u32::try_from(int(f.get(4)?)?).ok()?,
        created_ms: i64::try_from(int(f.get(5)?)?).ok()?,
        at_ms: i64::try_from(int(f.get(6)?)?).ok()?,
        worker: opt(7),
        token: opt(8),
        errors: text(f.get(9)?)?.into(),
        result: opt(10).map(Into::into),
    })
}

fn settled(reply: &[Value]) -> Result<Settled, StoreError> {
    match reply.first().and_then(signed) {
        Some(1) => reply
            .get(1)
            .and_then(view)
            .map(Settled::Done)
            .ok_or_else(|| corrupt("jobs")),
        Some(0) => Ok(Settled::NotHolder),
        Some(-1) => Ok(Settled::Missing),
        _ => Err(corrupt("jobs")),
    }
}

/// `claim()` in `jobs.lua`: {ms until due (-1: nothing pending), jobs, still waiting}.
fn claimed(reply: &[Value]) -> Option<Claimed> {
    let jobs = match reply.get(1)? {
        Value::Array(a) => a.iter().map(view).collect::<Option<Vec<_>>>()?,
        _ => return None,
    };
    Some(Claimed {
        jobs,
        due_in_ms: u64::try_from(signed(reply.first()?)?).ok(),
        waiting: int(reply.get(2)?)?,
        worker: None,
    })
}

impl RedisStore {
    /// `jobs.lua` with the queue's keys and the op's leading arguments.
    pub(super) fn jobs_op(&self, queue: &str, op: &str) -> redis::ScriptInvocation<'static> {
        let s = &self.settings.services;
        let keep_ms = s.job_keep_secs * 1000;
        // Every key outlives what any job in it can still wait for, then goes.
        let ttl_ms = keep_ms + s.job_max_delay_ms + s.job_max_lease_ms + s.job_backoff_max_ms;
        let mut inv = script!("jobs.lua").prepare_invoke();
        for part in PARTS {
            inv.key(self.keys.jobs(queue, part));
        }
        inv.arg(op)
            .arg(ttl_ms)
            .arg(keep_ms)
            .arg(s.job_history_max)
            .arg(s.job_errors_max)
            .arg(s.job_max_bytes)
            .arg(self.settings.read_max_bytes);
        inv
    }

    pub(super) async fn jobs_call(
        &self,
        inv: redis::ScriptInvocation<'static>,
    ) -> Result<Vec<Value>, StoreError> {
        Ok(inv.invoke_async(&mut self.conn()).await?)
    }

    async fn settle(
        &self,
        queue: &str,
        op: &str,
        id: &str,
        lease: Lease<'_>,
        rest: &[&str],
    ) -> Result<Settled, StoreError> {
        let mut inv = self.jobs_op(queue, op);
        inv.arg(id).arg(lease.token).arg(lease.worker);
        for r in rest {
            inv.arg(*r);
        }
        settled(&self.jobs_call(inv).await?)
    }
}

#[async_trait]
impl JobStore for RedisStore {
    async fn enqueue(
        &self,
        queue: &str,
        jobs: &[JobSpec],
    ) -> Result<Vec<(bool, JobView)>, StoreError> {
        let mut inv = self.jobs_op(queue, "enqueue");
        inv.arg(self.settings.services.job_queue_max_jobs)
            .arg(self.keys.control_channel())
            .arg(Signal::Jobs.announcement(queue));
        for job in jobs {
            inv.arg(&job.id)
                .arg(&job.fixed)
                .arg(job.priority_offset())
                .arg(job.delay_ms)
                .arg(job.max_attempts)
                .arg(job.backoff.spec());
        }
        let reply = self.jobs_call(inv).await?;
        match (reply.first().and_then(signed), reply.get(1)) {
            (Some(-1), _) => Err(StoreError::QueueFull),
            (Some(1), Some(Value::Array(each))) if each.len() == jobs.len() => each
                .iter()
                .map(|v| match v {
                    Value::Array(pair) => {
                        Some((pair.first().and_then(signed)? == 1, view(pair.get(1)?)?))
                    }
                    _ => None,
                })
                .collect::<Option<Vec<_>>>()
                .ok_or_else(|| corrupt("jobs enqueue")),
            _ => Err(corrupt("jobs enqueue")),
        }
    }

    async fn claim(&self, queue: &str, c: ClaimSpec<'_>) -> Result<Claimed, StoreError> {
        let mut inv = self.jobs_op(queue, "claim");
        inv.arg(c.worker).arg(c.max).arg(c.lease_ms).arg(c.token);
        claimed(&self.jobs_call(inv).await?).ok_or_else(|| corrupt("jobs claim"))
    }

    async fn complete(
        &self,
        queue: &str,
        id: &str,
        lease: Lease<'_>,
        result: Option<&str>,
        next: Option<ClaimSpec<'_>>,
    ) -> Result<(Settled, Claimed), StoreError> {
        let mut inv = self.jobs_op(queue, "complete");
        inv.arg(id)
            .arg(lease.token)
            .arg(lease.worker)
            .arg(result.unwrap_or(""));
        if let Some(c) = next {
            inv.arg(c.worker).arg(c.max).arg(c.lease_ms).arg(c.token);
        }
        let reply = self.jobs_call(inv).await?;
        let done = settled(&reply)?;
        let next = match reply.get(2..) {
            Some(rest) if !rest.is_empty() => {
                let mut c = claimed(rest).ok_or_else(|| corrupt("jobs complete"))?;
                c.worker = rest.get(3).and_then(text);
                c
            }
            _ => Claimed::default(),
        };
        Ok((done, next))
    }

    async fn fail(
        &self,
        queue: &str,
        id: &str,
        lease: Lease<'_>,
        error: &str,
        f: Failure,
    ) -> Result<Settled, StoreError> {
        let jitter = format!("{:.6}", f.jitter.clamp(0.0, 1.0));
        self.settle(
            queue,
            "fail",
            id,
            lease,
            &[error, if f.retry { "1" } else { "0" }, &jitter],
        )
        .await
    }

    async fn extend(
        &self,
        queue: &str,
        id: &str,
        lease: Lease<'_>,
        lease_ms: u64,
    ) -> Result<Settled, StoreError> {
        self.settle(queue, "extend", id, lease, &[&lease_ms.to_string()])
            .await
    }

    async fn job(&self, queue: &str, id: &str) -> Result<Option<JobView>, StoreError> {
        let mut inv = self.jobs_op(queue, "get");
        inv.arg(id);
        Ok(self.jobs_call(inv).await?.first().and_then(view))
    }

    async fn stats(&self, queue: &str) -> Result<JobStats, StoreError> {
        let reply = self.jobs_call(self.jobs_op(queue, "stats")).await?;
        let n: Vec<u64> = reply.iter().filter_map(int).collect();
        let [waiting, delayed, active, completed, failed, dead] = n[..] else {
            return Err(corrupt("jobs stats"));
        };
        Ok(JobStats {
            waiting,
            delayed,
            active,
            completed,
            failed,
            dead,
        })
    }

    async fn dead(
        &self,
        queue: &str,
        limit: usize,
        after: Option<&Cursor>,
    ) -> Result<(Vec<JobView>, Option<Cursor>), StoreError> {
        let mut inv = self.jobs_op(queue, "dead");
        inv.arg(limit)
            .arg(after.map(|c| c.ms.to_string()).unwrap_or_default())
            .arg(after.map_or("", |c| c.member.as_str()));
        // A page may be READ_MAX_BYTES: on the read connection, behind no write.
        let reply: Vec<Value> = inv.invoke_async(&mut self.read_conn()).await?;
        let jobs = match reply.first() {
            Some(Value::Array(list)) => list
                .iter()
                .map(|v| view(v).ok_or_else(|| corrupt("jobs dead")))
                .collect::<Result<Vec<_>, _>>()?,
            _ => return Err(corrupt("jobs dead")),
        };
        let next = match (reply.get(1).and_then(signed), reply.get(2).and_then(text)) {
            (Some(ms), Some(member)) => Some(Cursor { ms, member }),
            _ => None,
        };
        Ok((jobs, next))
    }

    async fn retry_dead(&self, queue: &str, id: &str) -> Result<Option<JobView>, StoreError> {
        let mut inv = self.jobs_op(queue, "retry_dead");
        inv.arg(id)
            .arg(self.keys.control_channel())
            .arg(Signal::Jobs.announcement(queue));
        let reply = self.jobs_call(inv).await?;
        Ok(reply.get(1).and_then(view))
    }
}
