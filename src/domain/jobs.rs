//! Job queues: what a job is, the checks on every request, the retry backoff, and a job as
//! the API shows it. A job moves `waiting → active → completed`, or on failure to `failed`
//! (waiting for its retry, then `waiting` again) until it runs out of attempts and is `dead`;
//! `delayed` jobs become `waiting` at their time, and an expired lease puts an `active` job
//! back with its attempt counted.

use serde::Deserialize;
use serde_json::{json, Value};

pub use super::job_view::{JobState, JobView};
use super::problems::Problems;
use super::FieldProblem;

/// Priorities run from `-MAX_PRIORITY` to `MAX_PRIORITY`; higher is claimed first.
pub const MAX_PRIORITY: i64 = 1000;

/// How long a failed job waits before its retry: `delay_ms`, doubled per earlier attempt when
/// exponential, at most `max_ms`, then jittered to between half and all of that.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Backoff {
    pub exponential: bool,
    pub delay_ms: u64,
    pub max_ms: u64,
}

impl Backoff {
    /// As stored beside the job: `e:1000:3600000` or `f:500:500`.
    pub fn spec(&self) -> String {
        let kind = if self.exponential { "e" } else { "f" };
        format!("{kind}:{}:{}", self.delay_ms, self.max_ms)
    }

    pub fn from_spec(s: &str) -> Option<Backoff> {
        let mut it = s.split(':');
        let exponential = match it.next()? {
            "e" => true,
            "f" => false,
            _ => return None,
        };
        Some(Backoff {
            exponential,
            delay_ms: it.next()?.parse().ok()?,
            max_ms: it.next()?.parse().ok()?,
        })
    }

    /// The wait before the retry that follows failed attempt `attempt` (1-based), with
    /// `jitter` in `0..1`. The Redis store computes the same in `jobs.lua`.
    pub fn delay(&self, attempt: u32, jitter: f64) -> u64 {
        let doubled = if self.exponential {
            self.delay_ms as f64 * 2f64.powi(attempt.saturating_sub(1).min(62) as i32)
        } else {
            self.delay_ms as f64
        };
        let capped = doubled.min(self.max_ms as f64);
        (capped / 2.0 + jitter * capped / 2.0).floor() as u64
    }

    fn shown(&self) -> Value {
        json!({
            "type": if self.exponential { "exponential" } else { "fixed" },
            "delayMs": self.delay_ms,
            "maxDelayMs": self.max_ms,
        })
    }
}

/// A checked job to enqueue: `fixed` is the JSON that never changes (type, data, priority,
/// backoff), stored as is.
#[derive(Debug, Clone)]
pub struct JobSpec {
    pub id: String,
    pub fixed: String,
    pub priority: i64,
    pub delay_ms: u64,
    pub max_attempts: u32,
    pub backoff: Backoff,
}

impl JobSpec {
    /// Where the job stands among its queue's waiting jobs: 0 for the highest priority.
    pub fn priority_offset(&self) -> u64 {
        (MAX_PRIORITY - self.priority) as u64
    }
}

/// The limits of job requests (from the `JOB_*` settings).
#[derive(Debug, Clone, Copy)]
pub struct JobLimits {
    pub lease_ms: u64,
    pub max_lease_ms: u64,
    pub max_attempts: u32,
    pub backoff_ms: u64,
    pub backoff_max_ms: u64,
    pub max_delay_ms: u64,
    pub max_bytes: usize,
    pub claim_max: usize,
    pub max_wait_ms: u64,
    /// Most jobs one bulk enqueue may carry.
    pub bulk_max: usize,
}

/// `POST /api/queues/:queue/jobs`.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct NewJob {
    #[serde(rename = "type")]
    pub kind: Option<String>,
    pub data: Option<Value>,
    pub priority: Option<i64>,
    pub delay_ms: Option<u64>,
    pub max_attempts: Option<u64>,
    pub backoff: Option<Value>,
    pub job_id: Option<String>,
}

fn backoff(v: Option<&Value>, l: &JobLimits, p: &mut Problems) -> Backoff {
    let mut b = Backoff {
        exponential: true,
        delay_ms: l.backoff_ms,
        max_ms: l.backoff_max_ms,
    };
    let ms = |v: Option<&Value>, field: &str, p: &mut Problems| match v {
        None | Some(Value::Null) => None,
        Some(v) => match v.as_u64() {
            Some(n) if (1..=l.backoff_max_ms).contains(&n) => Some(n),
            _ => {
                p.add(
                    field,
                    format!("must be whole ms from 1 to {}", l.backoff_max_ms),
                );
                None
            }
        },
    };
    match v {
        None | Some(Value::Null) => {}
        Some(n @ Value::Number(_)) => b.delay_ms = ms(Some(n), "backoff", p).unwrap_or(b.delay_ms),
        Some(Value::Object(o)) => {
            match o.get("type").and_then(Value::as_str) {
                None | Some("exponential") => {}
                Some("fixed") => b.exponential = false,
                Some(_) => p.add("backoff.type", "must be exponential or fixed"),
            }
            if let Some(k) = o
                .keys()
                .find(|k| !["type", "delayMs", "maxDelayMs"].contains(&k.as_str()))
            {
                p.add(&format!("backoff.{k}"), "is not a backoff field");
            }
            b.delay_ms = ms(o.get("delayMs"), "backoff.delayMs", p).unwrap_or(b.delay_ms);
            b.max_ms = ms(o.get("maxDelayMs"), "backoff.maxDelayMs", p).unwrap_or(b.max_ms);
        }
        Some(_) => p.add("backoff", "must be ms or {type, delayMs, maxDelayMs}"),
    }
    if !b.exponential {
        b.max_ms = b.delay_ms;
    }
    b.delay_ms = b.delay_ms.min(b.max_ms);
    b
}

/// Checks a job to enqueue; `new_id` names it when the caller gave no `jobId`.
pub fn check_new_job(
    j: NewJob,
    l: &JobLimits,
    new_id: impl FnOnce() -> String,
) -> Result<JobSpec, Vec<FieldProblem>> {
    let mut p = Problems::default();
    let kind = p.name("type", j.kind.as_deref()).to_string();
    let id = match j.job_id.as_deref() {
        Some(id) => p.name("jobId", Some(id)).to_string(),
        None => new_id(),
    };
    let priority = j.priority.unwrap_or(0);
    if !(-MAX_PRIORITY..=MAX_PRIORITY).contains(&priority) {
        p.add(
            "priority",
            format!("must be between -{MAX_PRIORITY} and {MAX_PRIORITY}"),
        );
    }
    let delay_ms = p.range("delayMs", j.delay_ms, Some(0), 0, l.max_delay_ms);
    let max_attempts = p.range(
        "maxAttempts",
        j.max_attempts,
        Some(l.max_attempts.into()),
        1,
        1000,
    ) as u32;
    let backoff = backoff(j.backoff.as_ref(), l, &mut p);
    let fixed = json!({
        "type": kind,
        "data": j.data.unwrap_or(Value::Null),
        "priority": priority,
        "backoff": backoff.shown(),
    })
    .to_string();
    if fixed.len() > l.max_bytes {
        p.add(
            "data",
            format!("the job must be at most {} bytes of JSON", l.max_bytes),
        );
    }
    p.done().map(|()| JobSpec {
        id,
        fixed,
        priority,
        delay_ms,
        max_attempts,
        backoff,
    })
}

/// `POST /api/queues/:queue/bulk`: several jobs enqueued in one atomic step.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewJobs {
    pub jobs: Option<Vec<NewJob>>,
}

/// Checks every job of a bulk enqueue; a problem is named by its job (`jobs[2].type`), and
/// one bad job refuses them all.
pub fn check_new_jobs(
    j: NewJobs,
    l: &JobLimits,
    mut new_id: impl FnMut() -> String,
) -> Result<Vec<JobSpec>, Vec<FieldProblem>> {
    let list = j.jobs.unwrap_or_default();
    if list.is_empty() || list.len() > l.bulk_max {
        return Err(vec![FieldProblem::new(
            "jobs",
            format!("must hold 1 to {} jobs", l.bulk_max),
        )]);
    }
    let mut specs = Vec::with_capacity(list.len());
    let mut problems = Vec::new();
    for (i, job) in list.into_iter().enumerate() {
        match check_new_job(job, l, &mut new_id) {
            Ok(spec) => specs.push(spec),
            Err(ps) => problems.extend(ps.into_iter().map(|p| FieldProblem {
                field: format!("jobs[{i}].{}", p.field),
                problem: p.problem,
            })),
        }
    }
    if problems.is_empty() {
        Ok(specs)
    } else {
        Err(problems)
    }
}

/// `POST /api/queues/:queue/claim`, and a completion's `next`.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct Claim {
    pub worker_id: Option<String>,
    pub max: Option<u64>,
    pub lease_ms: Option<u64>,
    /// Seconds to wait for a job when none is waiting (a long poll).
    pub wait: Option<f64>,
}

/// A checked claim: worker, how many, lease and wait (ms).
pub fn check_claim(
    c: &Claim,
    l: &JobLimits,
) -> Result<(String, usize, u64, u64), Vec<FieldProblem>> {
    let mut p = Problems::default();
    let worker = p.name("workerId", c.worker_id.as_deref()).to_string();
    let max = p.range("max", c.max, Some(1), 1, l.claim_max as u64) as usize;
    let lease = p.range("leaseMs", c.lease_ms, Some(l.lease_ms), 100, l.max_lease_ms);
    let max_wait = l.max_wait_ms as f64 / 1000.0;
    let wait = match c.wait {
        None => 0,
        Some(w) if (0.0..=max_wait).contains(&w) => (w * 1000.0) as u64,
        Some(_) => {
            p.add("wait", format!("must be seconds from 0 to {max_wait}"));
            0
        }
    };
    p.done().map(|()| (worker, max, lease, wait))
}

/// `complete`, `fail` and `extend` of a claimed job: the lease is named by its `token` (from
/// the claim) or its `workerId`, or both.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct Settle {
    pub token: Option<String>,
    pub worker_id: Option<String>,
    pub result: Option<Value>,
    pub error: Option<Value>,
    pub retry: Option<bool>,
    pub lease_ms: Option<u64>,
    /// A completion that also claims the worker's next jobs (one request per job for a busy
    /// worker, as BullMQ's fetch-next); its `workerId` defaults to the completion's.
    pub next: Option<Claim>,
}

/// Which lease a settling request names: (token, worker), either may be empty but not both.
pub fn check_lease(s: &Settle, p: &mut Problems) -> (String, String) {
    if s.token.is_none() && s.worker_id.is_none() {
        p.add("token", "give the claim's token or workerId");
    }
    let token = s
        .token
        .as_deref()
        .map(|t| p.name("token", Some(t)).to_string());
    let worker = s
        .worker_id
        .as_deref()
        .map(|w| p.name("workerId", Some(w)).to_string());
    (token.unwrap_or_default(), worker.unwrap_or_default())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_caps_and_jitters_within_half() {
        let b = Backoff {
            exponential: true,
            delay_ms: 100,
            max_ms: 1000,
        };
        assert_eq!(Backoff::from_spec(&b.spec()), Some(b));
        assert_eq!((b.delay(1, 0.0), b.delay(1, 1.0)), (50, 100));
        assert_eq!(b.delay(3, 1.0), 400);
        assert_eq!(b.delay(10, 1.0), 1000);
        assert_eq!(b.delay(200, 0.0), 500);
        let f = Backoff {
            exponential: false,
            delay_ms: 300,
            max_ms: 300,
        };
        assert_eq!(f.delay(5, 1.0), 300);
    }
}
