//! The settings of the services beside the event stream (docs/configuration.md; "the services beside
//! services"): user context, locks, job queues, the cache and usage totals. Each limit is a
//! named setting with a default a normal agent never meets; `validate` checks their ranges.

use clap::Args;

use super::values::{bad, ConfigError};
use crate::domain::cache::CacheLimits;
use crate::domain::jobs::JobLimits;
use crate::domain::locks::LockLimits;

#[derive(Clone, Debug, Args)]
#[command(next_help_heading = "Services")]
pub struct Services {
    /// Seconds a user context lives after its last write.
    #[arg(
        long,
        env = "CONTEXT_TTL_SECS",
        value_name = "CONTEXT_TTL_SECS",
        default_value_t = 86_400
    )]
    pub context_ttl_secs: u64,
    /// Recent searches a user context keeps (newest first, no duplicates).
    #[arg(
        long,
        env = "RECENT_SEARCHES_LIMIT",
        value_name = "RECENT_SEARCHES_LIMIT",
        default_value_t = 20
    )]
    pub recent_searches_limit: usize,
    /// Session events a user context keeps (newest first).
    #[arg(
        long,
        env = "SESSION_HISTORY_LIMIT",
        value_name = "SESSION_HISTORY_LIMIT",
        default_value_t = 100
    )]
    pub session_history_limit: usize,
    /// Preferences one user context holds at most.
    #[arg(
        long,
        env = "CONTEXT_MAX_PREFERENCES",
        value_name = "CONTEXT_MAX_PREFERENCES",
        default_value_t = 200
    )]
    pub context_max_preferences: usize,
    /// Largest preference value, search term or session-event entry, in bytes of JSON.
    #[arg(long, env = "CONTEXT_VALUE_MAX_BYTES", value_name = "CONTEXT_VALUE_MAX_BYTES", default_value_t = 16 * 1024)]
    pub context_value_max_bytes: usize,
    /// Shortest lock TTL a caller may ask for, in ms.
    #[arg(
        long,
        env = "LOCK_MIN_TTL_MS",
        value_name = "LOCK_MIN_TTL_MS",
        default_value_t = 100
    )]
    pub lock_min_ttl_ms: u64,
    /// Longest lock TTL (and extension) a caller may ask for, in ms.
    #[arg(
        long,
        env = "LOCK_MAX_TTL_MS",
        value_name = "LOCK_MAX_TTL_MS",
        default_value_t = 3_600_000
    )]
    pub lock_max_ttl_ms: u64,
    /// Longest `waitMs` of a lock request, in ms.
    #[arg(
        long,
        env = "LOCK_MAX_WAIT_MS",
        value_name = "LOCK_MAX_WAIT_MS",
        default_value_t = 60_000
    )]
    pub lock_max_wait_ms: u64,
    /// Days a lock name's fencing state is kept after its last grant (fencing tokens keep rising past
    /// it: they never fall below the clock in ms).
    #[arg(
        long,
        env = "LOCK_FENCE_KEEP_SECS",
        value_name = "LOCK_FENCE_KEEP_SECS",
        default_value_t = 30 * 86_400
    )]
    pub lock_fence_keep_secs: u64,
    /// A claim's lease when it names none, in ms.
    #[arg(
        long,
        env = "JOB_LEASE_MS",
        value_name = "JOB_LEASE_MS",
        default_value_t = 30_000
    )]
    pub job_lease_ms: u64,
    /// Longest lease (claim or extension), in ms.
    #[arg(
        long,
        env = "JOB_MAX_LEASE_MS",
        value_name = "JOB_MAX_LEASE_MS",
        default_value_t = 3_600_000
    )]
    pub job_max_lease_ms: u64,
    /// Attempts of a job that names none.
    #[arg(
        long,
        env = "JOB_MAX_ATTEMPTS",
        value_name = "JOB_MAX_ATTEMPTS",
        default_value_t = 3
    )]
    pub job_max_attempts: u32,
    /// First retry delay of a job that names no backoff, in ms (doubling per attempt).
    #[arg(
        long,
        env = "JOB_BACKOFF_MS",
        value_name = "JOB_BACKOFF_MS",
        default_value_t = 1_000
    )]
    pub job_backoff_ms: u64,
    /// Longest retry delay, whatever a job's backoff says, in ms.
    #[arg(
        long,
        env = "JOB_BACKOFF_MAX_MS",
        value_name = "JOB_BACKOFF_MAX_MS",
        default_value_t = 3_600_000
    )]
    pub job_backoff_max_ms: u64,
    /// Longest `delayMs` of a job, in ms (7 days).
    #[arg(long, env = "JOB_MAX_DELAY_MS", value_name = "JOB_MAX_DELAY_MS", default_value_t = 7 * 86_400_000)]
    pub job_max_delay_ms: u64,
    /// Seconds completed and dead jobs are kept, then removed.
    #[arg(
        long,
        env = "JOB_KEEP_SECS",
        value_name = "JOB_KEEP_SECS",
        default_value_t = 86_400
    )]
    pub job_keep_secs: u64,
    /// Largest part of a job, in bytes of JSON: its type and data; its result; its kept errors
    /// (the oldest dropped past it).
    #[arg(long, env = "JOB_MAX_BYTES", value_name = "JOB_MAX_BYTES", default_value_t = 256 * 1024)]
    pub job_max_bytes: usize,
    /// Pending jobs (waiting, delayed, failed awaiting their retry, active) one queue holds at
    /// most; an enqueue past it gets 429 `queue_full`. Finished jobs do not count (see
    /// JOB_HISTORY_MAX).
    #[arg(
        long,
        env = "JOB_QUEUE_MAX_JOBS",
        value_name = "JOB_QUEUE_MAX_JOBS",
        default_value_t = 1_000_000
    )]
    pub job_queue_max_jobs: usize,
    /// Completed jobs one queue keeps, and dead ones apart; past it the oldest finished job
    /// is removed (all of them after JOB_KEEP_SECS anyway).
    #[arg(
        long,
        env = "JOB_HISTORY_MAX",
        value_name = "JOB_HISTORY_MAX",
        default_value_t = 10_000
    )]
    pub job_history_max: usize,
    /// Errors one job keeps, newest first (also within JOB_MAX_BYTES of JSON in all).
    #[arg(
        long,
        env = "JOB_ERRORS_MAX",
        value_name = "JOB_ERRORS_MAX",
        default_value_t = 20
    )]
    pub job_errors_max: usize,
    /// Longest `wait` of a job claim (or of a completion's next claim), in ms.
    #[arg(
        long,
        env = "JOB_MAX_WAIT_MS",
        value_name = "JOB_MAX_WAIT_MS",
        default_value_t = 60_000
    )]
    pub job_max_wait_ms: u64,
    /// Most jobs one claim takes.
    #[arg(
        long,
        env = "JOB_CLAIM_MAX",
        value_name = "JOB_CLAIM_MAX",
        default_value_t = 100
    )]
    pub job_claim_max: usize,
    /// Most jobs one bulk enqueue (`POST /api/queues/:queue/bulk`) carries.
    #[arg(
        long,
        env = "JOB_BULK_MAX",
        value_name = "JOB_BULK_MAX",
        default_value_t = 1000
    )]
    pub job_bulk_max: usize,
    /// Largest cached value, in bytes of JSON (413 past it).
    #[arg(long, env = "CACHE_MAX_VALUE_BYTES", value_name = "CACHE_MAX_VALUE_BYTES", default_value_t = 1024 * 1024)]
    pub cache_max_value_bytes: usize,
    /// Longest `ttlSeconds` of a cache entry.
    #[arg(long, env = "CACHE_MAX_TTL_SECS", value_name = "CACHE_MAX_TTL_SECS", default_value_t = 30 * 86_400)]
    pub cache_max_ttl_secs: u64,
    /// Tags one cache entry carries at most.
    #[arg(
        long,
        env = "CACHE_MAX_TAGS",
        value_name = "CACHE_MAX_TAGS",
        default_value_t = 32
    )]
    pub cache_max_tags: usize,
    /// Seconds daily usage totals are kept after their last change (93 days).
    #[arg(long, env = "USAGE_DAY_KEEP_SECS", value_name = "USAGE_DAY_KEEP_SECS", default_value_t = 93 * 86_400)]
    pub usage_day_keep_secs: u64,
    /// Seconds monthly usage totals are kept after their last change (800 days).
    #[arg(long, env = "USAGE_MONTH_KEEP_SECS", value_name = "USAGE_MONTH_KEEP_SECS", default_value_t = 800 * 86_400)]
    pub usage_month_keep_secs: u64,
}

impl Default for Services {
    fn default() -> Self {
        Services {
            context_ttl_secs: 86_400,
            recent_searches_limit: 20,
            session_history_limit: 100,
            context_max_preferences: 200,
            context_value_max_bytes: 16 * 1024,
            lock_min_ttl_ms: 100,
            lock_max_ttl_ms: 3_600_000,
            lock_max_wait_ms: 60_000,
            lock_fence_keep_secs: 30 * 86_400,
            job_lease_ms: 30_000,
            job_max_lease_ms: 3_600_000,
            job_max_attempts: 3,
            job_backoff_ms: 1_000,
            job_backoff_max_ms: 3_600_000,
            job_max_delay_ms: 7 * 86_400_000,
            job_keep_secs: 86_400,
            job_max_bytes: 256 * 1024,
            job_queue_max_jobs: 1_000_000,
            job_history_max: 10_000,
            job_max_wait_ms: 60_000,
            job_errors_max: 20,
            job_claim_max: 100,
            job_bulk_max: 1000,
            cache_max_value_bytes: 1024 * 1024,
            cache_max_ttl_secs: 30 * 86_400,
            cache_max_tags: 32,
            usage_day_keep_secs: 93 * 86_400,
            usage_month_keep_secs: 800 * 86_400,
        }
    }
}

impl Services {
    /// The bounds of job requests, as the domain checks them.
    pub fn job_limits(&self) -> JobLimits {
        JobLimits {
            lease_ms: self.job_lease_ms,
            max_lease_ms: self.job_max_lease_ms,
            max_attempts: self.job_max_attempts,
            backoff_ms: self.job_backoff_ms,
            backoff_max_ms: self.job_backoff_max_ms,
            max_delay_ms: self.job_max_delay_ms,
            max_bytes: self.job_max_bytes,
            claim_max: self.job_claim_max,
            bulk_max: self.job_bulk_max,
            max_wait_ms: self.job_max_wait_ms,
        }
    }

    /// The bounds of lock requests.
    pub fn lock_limits(&self) -> LockLimits {
        LockLimits {
            min_ttl_ms: self.lock_min_ttl_ms,
            max_ttl_ms: self.lock_max_ttl_ms,
            max_wait_ms: self.lock_max_wait_ms,
        }
    }

    /// The bounds of cache requests.
    pub fn cache_limits(&self) -> CacheLimits {
        CacheLimits {
            max_value_bytes: self.cache_max_value_bytes,
            max_ttl_secs: self.cache_max_ttl_secs,
            max_tags: self.cache_max_tags,
        }
    }

    pub fn validate(&self) -> Result<(), ConfigError> {
        let within = |var: &'static str, v: u64, lo: u64, hi: u64| {
            if (lo..=hi).contains(&v) {
                Ok(())
            } else {
                Err(bad(var, format!("must be between {lo} and {hi}")))
            }
        };
        within("CONTEXT_TTL_SECS", self.context_ttl_secs, 60, 365 * 86_400)?;
        within(
            "RECENT_SEARCHES_LIMIT",
            self.recent_searches_limit as u64,
            1,
            1000,
        )?;
        within(
            "SESSION_HISTORY_LIMIT",
            self.session_history_limit as u64,
            1,
            10_000,
        )?;
        within(
            "CONTEXT_MAX_PREFERENCES",
            self.context_max_preferences as u64,
            1,
            10_000,
        )?;
        within(
            "CONTEXT_VALUE_MAX_BYTES",
            self.context_value_max_bytes as u64,
            256,
            1 << 20,
        )?;
        within("LOCK_MIN_TTL_MS", self.lock_min_ttl_ms, 1, 60_000)?;
        within(
            "LOCK_MAX_TTL_MS",
            self.lock_max_ttl_ms,
            self.lock_min_ttl_ms,
            86_400_000,
        )?;
        within("LOCK_MAX_WAIT_MS", self.lock_max_wait_ms, 0, 600_000)?;
        within(
            "LOCK_FENCE_KEEP_SECS",
            self.lock_fence_keep_secs,
            86_400,
            3650 * 86_400,
        )?;
        within("JOB_MAX_LEASE_MS", self.job_max_lease_ms, 100, 86_400_000)?;
        within(
            "JOB_LEASE_MS",
            self.job_lease_ms,
            100,
            self.job_max_lease_ms,
        )?;
        within("JOB_MAX_ATTEMPTS", self.job_max_attempts.into(), 1, 1000)?;
        within("JOB_BACKOFF_MAX_MS", self.job_backoff_max_ms, 1, 86_400_000)?;
        within(
            "JOB_BACKOFF_MS",
            self.job_backoff_ms,
            1,
            self.job_backoff_max_ms,
        )?;
        within(
            "JOB_MAX_DELAY_MS",
            self.job_max_delay_ms,
            0,
            365 * 86_400_000,
        )?;
        within("JOB_KEEP_SECS", self.job_keep_secs, 1, 365 * 86_400)?;
        within("JOB_MAX_BYTES", self.job_max_bytes as u64, 1024, 16 << 20)?;
        within(
            "JOB_QUEUE_MAX_JOBS",
            self.job_queue_max_jobs as u64,
            1,
            100_000_000,
        )?;
        within(
            "JOB_HISTORY_MAX",
            self.job_history_max as u64,
            1,
            10_000_000,
        )?;
        within("JOB_ERRORS_MAX", self.job_errors_max as u64, 1, 1000)?;
        within("JOB_MAX_WAIT_MS", self.job_max_wait_ms, 0, 600_000)?;
        within("JOB_CLAIM_MAX", self.job_claim_max as u64, 1, 10_000)?;
        within("JOB_BULK_MAX", self.job_bulk_max as u64, 1, 100_000)?;
        within(
            "CACHE_MAX_VALUE_BYTES",
            self.cache_max_value_bytes as u64,
            256,
            64 << 20,
        )?;
        within(
            "CACHE_MAX_TTL_SECS",
            self.cache_max_ttl_secs,
            1,
            365 * 86_400,
        )?;
        within("CACHE_MAX_TAGS", self.cache_max_tags as u64, 0, 1000)?;
        within(
            "USAGE_DAY_KEEP_SECS",
            self.usage_day_keep_secs,
            86_400,
            3650 * 86_400,
        )?;
        within(
            "USAGE_MONTH_KEEP_SECS",
            self.usage_month_keep_secs,
            31 * 86_400,
            36_500 * 86_400,
        )?;
        Ok(())
    }
}
