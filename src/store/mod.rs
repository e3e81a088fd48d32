//! The store layer: one trait per service, each with an in-memory implementation (one
//! process) and a Redis one (any number of instances) of the same semantics, held together by
//! one [`Stores`] value the app is built from. The conformance suite in `tests/conformance/`
//! runs every service against both, so they cannot drift.
//!
//! - [`sessions::SessionStore`], [`events::EventStore`], [`control::ControlStore`],
//!   [`chains::ChainStore`]: the sessions, their streams, their commands and input, their
//!   chains.
//! - [`permissions::PermissionStore`]: Claude Code's permission prompts and their rules.
//! - [`locks::LockStore`], [`jobs::JobStore`], [`cache::CacheStore`],
//!   [`user_context::UserContextStore`], [`usage::UsageStore`]: the services beside the stream.
//! - [`crate::bus::Bus`]: the ordered feed of what every instance must hear (stored events,
//!   commands, chain changes, wake-ups); [`health::StoreHealth`]: whether the store serves.
//! - [`instances::InstanceStore`]: each instance's figures for the operations view.
//! - [`cursor::Cursor`]: where a walk over an index ordered by time stopped.
//!
//! Every write that changes a session's stream also publishes it on the bus in the same atomic
//! step, so the bus carries a session's events in seq order.

use std::sync::Arc;
use std::time::Duration;

use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::config::Config;
use crate::metrics::Metrics;

pub mod cache;
pub mod chains;
pub mod control;
pub mod cursor;
pub mod events;
pub mod health;
pub mod instances;
pub mod jobs;
pub mod locks;
pub mod memory;
pub mod permissions;
pub mod quota;
pub mod rate;
pub mod redis;
pub mod sessions;
pub mod usage;
pub mod user_context;

pub use crate::bus::Bus;
pub use cache::CacheStore;
pub use chains::{ChainPage, ChainStore, ChainWrite};
pub use control::{Acked, ControlStore};
pub use cursor::Cursor;
pub use events::{EventStore, Page, Pages};
pub use health::StoreHealth;
pub use instances::InstanceStore;
pub use jobs::JobStore;
pub use locks::LockStore;
pub use permissions::PermissionStore;
pub use quota::{Admission, Admitted, QuotaStore};
pub use rate::RateStore;
pub use sessions::SessionStore;
pub use usage::UsageStore;
pub use user_context::UserContextStore;

/// How long an `eventId` is remembered for idempotent publishing.
pub const DEDUP_WINDOW: Duration = Duration::from_secs(600);

/// A store operation that did not happen, by whose fault.
#[derive(Debug, Clone, thiserror::Error)]
pub enum StoreError {
    /// The backing store did not answer or refused; nothing was written. Worth retrying
    /// (the API answers 503 with Retry-After).
    #[error("store unavailable: {0}")]
    Unavailable(String),
    /// The caller asked to create something that already exists (409).
    #[error("already exists")]
    Exists,
    /// Other writers kept changing the same thing while this change was retried; the change
    /// was not made. Worth retrying (503 with Retry-After).
    #[error("contention: {0}")]
    Contention(&'static str),
    /// The embedded store's memory budget (`MEMORY_STORE_MAX_BYTES`) is spent; nothing was
    /// written. Worth retrying once data expires or is deleted (503 `store_full`).
    #[error("the store is full")]
    Full,
    /// The session's queue holds `QUEUE_MAX_ITEMS` items; nothing was queued (429).
    #[error("the queue is full")]
    QueueFull,
    /// The store holds data this version cannot read (a bug or foreign writes).
    #[error("corrupt data in store: {0}")]
    Corrupt(String),
}

/// Limits and identity every store needs.
#[derive(Debug, Clone)]
pub struct StoreSettings {
    pub session_ttl: Duration,
    pub max_events_per_session: usize,
    /// Bytes of stored events a session keeps (`MAX_SESSION_EVENT_BYTES`).
    pub max_session_event_bytes: usize,
    /// Most bytes of events one batch post holds (`MAX_BATCH_BYTES`), and so one append call.
    pub max_batch_bytes: usize,
    pub dedup_window: Duration,
    pub instance_id: Arc<str>,
    /// How often the Redis store probes its pub/sub subscription.
    pub pubsub_probe_every: Duration,
    /// Most bytes of events one read returns (`READ_MAX_BYTES`; always at least one event).
    pub read_max_bytes: usize,
    /// Live items one session's queue holds at most (`QUEUE_MAX_ITEMS`).
    pub queue_max_items: usize,
    /// The memory store's budget (`MEMORY_STORE_MAX_BYTES`); writes past it get `store_full`.
    pub memory_max_bytes: usize,
    /// Where the memory store is kept across restarts (`MEMORY_SNAPSHOT_FILE`).
    pub memory_snapshot_file: Option<std::path::PathBuf>,
    /// The limits of the services beside the event stream (locks, jobs, cache, context, usage).
    pub services: crate::config::Services,
    /// Under Sentinel, the replicas a posted event must reach before it is answered
    /// (`REDIS_WAIT_REPLICAS`), and how long it may wait.
    pub wait_replicas: Option<(u64, Duration)>,
    pub metrics: Arc<Metrics>,
}

/// Every service's store, as the app is built from it. Each field may point at the same
/// backend value; handlers and services hold only the fields they use.
#[derive(Clone)]
pub struct Stores {
    /// `"memory"` or `"redis"`.
    pub kind: &'static str,
    pub sessions: Arc<dyn SessionStore>,
    pub events: Arc<dyn EventStore>,
    pub control: Arc<dyn ControlStore>,
    pub chains: Arc<dyn ChainStore>,
    pub locks: Arc<dyn LockStore>,
    pub permissions: Arc<dyn PermissionStore>,
    pub jobs: Arc<dyn JobStore>,
    pub cache: Arc<dyn CacheStore>,
    pub user_contexts: Arc<dyn UserContextStore>,
    pub usage: Arc<dyn UsageStore>,
    pub rates: Arc<dyn RateStore>,
    pub quotas: Arc<dyn QuotaStore>,
    pub bus: Arc<dyn Bus>,
    pub health: Arc<dyn StoreHealth>,
    /// Each instance's latest figures (the operations view).
    pub instances: Arc<dyn InstanceStore>,
    /// Makes another tenant's stores on the same backend (see [`crate::tenancy`]).
    pub scope: Arc<dyn TenantStores>,
    /// The embedded store's snapshot, when `MEMORY_SNAPSHOT_FILE` asks for one.
    pub snapshot: Option<Arc<dyn Snapshot>>,
}

/// The embedded store kept across restarts: written once serving has stopped.
pub trait Snapshot: Send + Sync + 'static {
    /// Writes every tenant's data to the snapshot file; what it wrote, for the log.
    fn save(&self) -> Result<String, String>;
}

/// What makes the stores of a tenant other than the default one: on Redis the same
/// connections with the tenant's key space and channels, on the embedded store a state of its
/// own. Either way every message the tenant's stores put on the bus names scoped ids.
pub trait TenantStores: Send + Sync + 'static {
    fn tenant(&self, tenant: &Arc<str>) -> Stores;
}

impl Stores {
    /// Every service served by one backend value.
    pub fn of<S>(kind: &'static str, backend: Arc<S>) -> Stores
    where
        S: SessionStore
            + EventStore
            + ControlStore
            + ChainStore
            + LockStore
            + PermissionStore
            + JobStore
            + CacheStore
            + UserContextStore
            + UsageStore
            + RateStore
            + QuotaStore
            + Bus
            + StoreHealth
            + InstanceStore
            + TenantStores,
    {
        Stores {
            kind,
            sessions: backend.clone(),
            events: backend.clone(),
            control: backend.clone(),
            chains: backend.clone(),
            locks: backend.clone(),
            permissions: backend.clone(),
            jobs: backend.clone(),
            cache: backend.clone(),
            user_contexts: backend.clone(),
            usage: backend.clone(),
            rates: backend.clone(),
            quotas: backend.clone(),
            bus: backend.clone(),
            health: backend.clone(),
            instances: backend.clone(),
            scope: backend,
            snapshot: None,
        }
    }
}

/// Opens the store the config asks for and starts its background tasks on `tasks`.
pub async fn open(
    config: &Config,
    instance_id: Arc<str>,
    metrics: Arc<Metrics>,
    tasks: &TaskTracker,
    shutdown: CancellationToken,
) -> Result<Stores, StoreError> {
    let settings = settings(config, instance_id, metrics);
    if !config.store.on_redis() {
        return memory::MemoryStore::start(settings, tasks, shutdown);
    }
    redis::RedisStore::start(&config.store, settings, tasks, shutdown).await
}

/// What every store takes from the config.
pub fn settings(config: &Config, instance_id: Arc<str>, metrics: Arc<Metrics>) -> StoreSettings {
    StoreSettings {
        session_ttl: Duration::from_secs(config.events.session_ttl_secs),
        max_events_per_session: config.events.max_events_per_session,
        max_session_event_bytes: config.events.max_session_event_bytes,
        max_batch_bytes: config.events.max_batch_bytes,
        dedup_window: DEDUP_WINDOW,
        instance_id,
        pubsub_probe_every: config.store.pubsub_probe_every,
        read_max_bytes: config.events.read_max_bytes,
        queue_max_items: config.control.queue_max_items,
        memory_max_bytes: config.store.memory_store_max_bytes,
        memory_snapshot_file: config.store.memory_snapshot_file.clone(),
        services: config.services.clone(),
        wait_replicas: config.store.wait(),
        metrics,
    }
}
