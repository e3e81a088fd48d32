//! Job queues, one implementation for both stores. Each step is atomic over one queue (one
//! Redis Cluster slot) and starts with the same upkeep: due delayed jobs and due retries
//! become waiting, expired leases are put back with their attempt counted (or dead-lettered),
//! and finished jobs past `JOB_KEEP_SECS` are removed. So a claim is exclusive, and no job
//! depends on a timer of any one instance.
//!
//! The rules both stores keep, each named where it is kept:
//! - a lease ends when its latest extension says, sooner or later than before;
//! - a claim that finds nothing answers how long until something may be claimable, by the
//!   store's own clock, and never "now" unless it did the upkeep that was due (so a waiting
//!   claim never retries at a time the store has already passed without doing the work);
//! - `JOB_QUEUE_MAX_JOBS` counts pending jobs only; finished ones are bounded on their own by
//!   `JOB_HISTORY_MAX` (completed, and dead apart), the oldest removed first;
//! - a job keeps its newest `JOB_ERRORS_MAX` errors, within `JOB_MAX_BYTES` of JSON;
//! - a claim, and a page of dead letters, stops at `READ_MAX_BYTES` of jobs (at least one).

use async_trait::async_trait;

use super::{Cursor, StoreError};
use crate::domain::jobs::{JobSpec, JobView};

/// What settling a job (complete, fail, extend) came to.
#[derive(Debug, Clone)]
pub enum Settled {
    /// Done; the job as it now stands.
    Done(JobView),
    /// The job is not active under this lease (it expired and was put back or re-claimed,
    /// or was never claimed by it): nothing was changed.
    NotHolder,
    /// No such job in the queue.
    Missing,
}

/// How a failed attempt goes on.
#[derive(Debug, Clone, Copy)]
pub struct Failure {
    /// Retry after the backoff if attempts remain (false: dead-letter at once).
    pub retry: bool,
    /// The backoff's jitter, in `0..1`.
    pub jitter: f64,
}

/// How many jobs are in each state.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct JobStats {
    pub waiting: u64,
    pub delayed: u64,
    pub active: u64,
    pub completed: u64,
    pub failed: u64,
    pub dead: u64,
}

/// A claimed lease: the claim's token or the worker id, or both (empty when not given).
#[derive(Debug, Clone, Copy)]
pub struct Lease<'a> {
    pub token: &'a str,
    pub worker: &'a str,
}

/// A claim: `max` waiting jobs under one lease of `lease_ms` named `token`, for `worker`.
#[derive(Debug, Clone, Copy)]
pub struct ClaimSpec<'a> {
    pub worker: &'a str,
    pub max: usize,
    pub lease_ms: u64,
    pub token: &'a str,
}

/// What a claim took, and what it left.
#[derive(Debug, Clone, Default)]
pub struct Claimed {
    pub jobs: Vec<JobView>,
    /// When none was taken: ms until a job may become claimable, by the store's clock (a
    /// delayed job, a retry, a lease that may lapse); `None` when nothing is pending.
    pub due_in_ms: Option<u64>,
    /// Jobs still waiting after it (another waiting claim may take them).
    pub waiting: u64,
    /// The worker the claim was made for, when the store named it (a completion's `next`
    /// with no worker of its own claims for the lease's).
    pub worker: Option<String>,
}

#[async_trait]
pub trait JobStore: Send + Sync + 'static {
    /// Enqueues jobs in one atomic step, each answered `(true, job)`, or `(false, job)` for
    /// the one with its id already there (an earlier job of the same call included); wakes
    /// the queue's waiting claims when one is claimable now. [`StoreError::QueueFull`], and
    /// nothing stored, when the new ones would take the queue past `JOB_QUEUE_MAX_JOBS`.
    async fn enqueue(
        &self,
        queue: &str,
        jobs: &[JobSpec],
    ) -> Result<Vec<(bool, JobView)>, StoreError>;

    /// Takes up to `claim.max` waiting jobs, highest priority first, FIFO within one.
    async fn claim(&self, queue: &str, claim: ClaimSpec<'_>) -> Result<Claimed, StoreError>;

    /// Completes an active job with its result (JSON) under its current lease, and then (in
    /// the same step, only when it was completed) makes the `next` claim; a `next` whose
    /// worker is empty claims for the lease's worker.
    async fn complete(
        &self,
        queue: &str,
        id: &str,
        lease: Lease<'_>,
        result: Option<&str>,
        next: Option<ClaimSpec<'_>>,
    ) -> Result<(Settled, Claimed), StoreError>;

    /// Records a failed attempt (error as JSON): retried after its backoff while attempts
    /// remain and `failure.retry`, else dead-lettered.
    async fn fail(
        &self,
        queue: &str,
        id: &str,
        lease: Lease<'_>,
        error: &str,
        failure: Failure,
    ) -> Result<Settled, StoreError>;

    /// Moves the lease's expiry to `lease_ms` from now.
    async fn extend(
        &self,
        queue: &str,
        id: &str,
        lease: Lease<'_>,
        lease_ms: u64,
    ) -> Result<Settled, StoreError>;

    async fn job(&self, queue: &str, id: &str) -> Result<Option<JobView>, StoreError>;

    async fn stats(&self, queue: &str) -> Result<JobStats, StoreError>;

    /// Dead jobs, newest first, from after `after`: at most `limit`, stopping once they
    /// reach `READ_MAX_BYTES`; with where to go on from when more remain.
    async fn dead(
        &self,
        queue: &str,
        limit: usize,
        after: Option<&Cursor>,
    ) -> Result<(Vec<JobView>, Option<Cursor>), StoreError>;

    /// Puts a dead job back to waiting with its attempts reset; `None` unless it is dead.
    async fn retry_dead(&self, queue: &str, id: &str) -> Result<Option<JobView>, StoreError>;
}
