//! The `Store` trait: everything the gateway keeps, behind one interface with two
//! implementations of the same semantics, [`memory::MemoryStore`] (one process) and
//! [`redis::RedisStore`] (any number of instances). The conformance suite in
//! `tests/conformance.rs` runs against both so they cannot drift.
//!
//! Every write that changes a session's stream also publishes it on the store's bus in the
//! same atomic step, so the bus carries a session's events in seq order.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use tokio::sync::broadcast;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::config::Config;
use crate::error::StoreError;
use crate::metrics::Metrics;
use crate::model::{
    Appended, BusMessage, EventDraft, EventRange, Fields, ReadFrom, Session, SessionPage,
    SessionQuery,
};

pub mod memory;
pub mod redis;

/// How long an `eventId` is remembered for idempotent publishing.
pub const DEDUP_WINDOW: Duration = Duration::from_secs(600);
/// Messages the bus holds for the hub before it counts as lagging (and resyncs from the store).
pub const BUS_CAPACITY: usize = 65_536;

/// A command that was acknowledged: its record, and whether this was the first ack.
#[derive(Debug, Clone)]
pub struct AckedCommand {
    pub session_id: String,
    pub record: Arc<str>,
    pub first: bool,
}

/// Which chains to list.
#[derive(Debug, Clone, Copy)]
pub enum ChainFilter<'a> {
    Session(&'a str),
    /// `pending`, `in_progress` or `paused`.
    Active,
    All,
}

/// A chain as the stores write it: its JSON plus what the indexes need.
#[derive(Debug, Clone)]
pub struct ChainWrite {
    pub id: String,
    pub session_id: String,
    pub json: String,
    pub active: bool,
    pub updated_ms: i64,
    pub ttl: Duration,
}

/// Limits and identity every store needs.
#[derive(Debug, Clone)]
pub struct StoreSettings {
    pub session_ttl: Duration,
    pub max_events_per_session: usize,
    pub dedup_window: Duration,
    pub instance_id: Arc<str>,
    /// How often the Redis store probes its pub/sub subscription.
    pub pubsub_probe_every: Duration,
    pub metrics: Arc<Metrics>,
}

/// The current time, as stored (`iso`) and as the listing index orders it (`ms`).
#[derive(Debug, Clone)]
pub struct Now {
    pub iso: String,
    pub ms: i64,
}

impl Now {
    pub fn get() -> Now {
        let (iso, ms) = crate::time::now();
        Now { iso, ms }
    }
}

#[async_trait]
pub trait Store: Send + Sync + 'static {
    /// `"memory"` or `"redis"`.
    fn kind(&self) -> &'static str;

    /// Creates a session from `fields` (which carry `id`, `status` and the timestamps);
    /// [`StoreError::Conflict`] when the id exists. Starts the session's stream (a new epoch).
    async fn create_session(
        &self,
        id: &str,
        fields: Fields,
        now: &Now,
    ) -> Result<Session, StoreError>;

    async fn get_session(&self, id: &str) -> Result<Option<Session>, StoreError>;

    /// Writes exactly `fields` (nothing else is read or rewritten) and renews the TTLs.
    /// `None` when the session does not exist.
    async fn update_session(&self, id: &str, fields: Fields)
        -> Result<Option<Session>, StoreError>;

    /// Removes the session, its events and queues, and tells every instance's subscribers.
    /// `false` when there was nothing to delete.
    async fn delete_session(&self, id: &str) -> Result<bool, StoreError>;

    /// Sessions newest first, filtered, one page at a time.
    async fn list_sessions(&self, query: &SessionQuery) -> Result<SessionPage, StoreError>;

    /// Stores and publishes the drafts as one atomic step, in order: each gets the next seq
    /// of its session, or the original seq when its `eventId` is a duplicate. Creates missing
    /// sessions, trims to the per-session cap, renews TTLs.
    async fn append(&self, drafts: &[EventDraft], now: &Now) -> Result<Vec<Appended>, StoreError>;

    /// Reads up to `limit` stored events of a session, and where its stream stands.
    async fn read_events(
        &self,
        session_id: &str,
        from: ReadFrom,
        limit: usize,
    ) -> Result<EventRange, StoreError>;

    /// Queues a command (its stored record) for `ttl`, and announces it
    /// ([`BusMessage::Command`]) on every instance.
    async fn push_command(
        &self,
        session_id: &str,
        command_id: &str,
        record: &str,
        ttl: Duration,
    ) -> Result<(), StoreError>;

    /// The session's commands that are neither acknowledged nor expired, oldest first. With
    /// `consume`, what is returned leaves the queue in the same atomic step (it can still be
    /// acknowledged until it expires).
    async fn pending_commands(
        &self,
        session_id: &str,
        consume: bool,
    ) -> Result<Vec<Arc<str>>, StoreError>;

    /// Marks a command acknowledged with `ack` (JSON) and takes it off its queue. `None` for
    /// an unknown or expired command, or one of another session than `session_id` (when
    /// given); `first` is false for a repeated acknowledgement.
    async fn ack_command(
        &self,
        command_id: &str,
        session_id: Option<&str>,
        ack: &str,
    ) -> Result<Option<AckedCommand>, StoreError>;

    /// Queues an input item for `ttl` and wakes the session's input long polls everywhere.
    async fn push_input(
        &self,
        session_id: &str,
        input_id: &str,
        item: &str,
        ttl: Duration,
    ) -> Result<(), StoreError>;

    /// The session's queued input, oldest first; with `consume`, taken off the queue in the
    /// same atomic step (every item returned, none dropped).
    async fn take_input(
        &self,
        session_id: &str,
        consume: bool,
    ) -> Result<Vec<Arc<str>>, StoreError>;

    /// Removes one queued input item; false when it is not queued (taken, expired, unknown).
    async fn ack_input(&self, session_id: &str, input_id: &str) -> Result<bool, StoreError>;

    /// A chain's version and JSON.
    async fn get_chain(&self, id: &str) -> Result<Option<(u64, Arc<str>)>, StoreError>;

    /// Writes a chain if its stored version is still `expected` (0: it must not exist yet), in
    /// one atomic step with its indexes and TTL, and announces it ([`BusMessage::Chain`]).
    /// False when the version moved on (or, for 0, the chain exists): read again and retry.
    async fn put_chain(&self, chain: &ChainWrite, expected: u64) -> Result<bool, StoreError>;

    /// Chains' JSON: a session's in creation order, or the active ones or all of them in
    /// order of last update.
    async fn list_chains(&self, filter: ChainFilter<'_>) -> Result<Vec<Arc<str>>, StoreError>;

    /// The ordered feed of stored events and notifications, for the hub.
    fn subscribe_bus(&self) -> broadcast::Receiver<BusMessage>;

    /// `Ok` when the store answers and its bus is live; otherwise why not.
    async fn readiness(&self) -> Result<(), String>;
}

/// Opens the store the config asks for and starts its background tasks on `tasks`.
pub async fn open(
    config: &Config,
    instance_id: Arc<str>,
    metrics: Arc<Metrics>,
    tasks: &TaskTracker,
    shutdown: CancellationToken,
) -> Result<Arc<dyn Store>, StoreError> {
    let settings = StoreSettings {
        session_ttl: Duration::from_secs(config.session_ttl_secs),
        max_events_per_session: config.max_events_per_session,
        dedup_window: DEDUP_WINDOW,
        instance_id,
        pubsub_probe_every: config.pubsub_probe_every,
        metrics,
    };
    match &config.redis_url {
        None => Ok(memory::MemoryStore::start(settings, tasks, shutdown)),
        Some(url) => {
            redis::RedisStore::start(url, &config.redis_prefix, settings, tasks, shutdown).await
        }
    }
}

/// Walks a newest-first index from `cursor`, keeping sessions that match, until a page is
/// full. Shared by both stores so paging means the same thing on each. `fetch` returns the
/// next index members after the given one (exclusive) with their sessions, `None` for
/// members whose session is gone.
pub(crate) async fn page_sessions<F, Fut>(
    query: &SessionQuery,
    mut fetch: F,
) -> Result<SessionPage, StoreError>
where
    F: FnMut(Option<String>, usize) -> Fut,
    Fut: std::future::Future<Output = Result<Vec<(String, Option<Session>)>, StoreError>>,
{
    let limit = query.limit.max(1);
    let batch = (limit + 1).max(100);
    let mut cursor = query.cursor.clone();
    let mut page = SessionPage::default();
    loop {
        let rows = fetch(cursor.clone(), batch).await?;
        let exhausted = rows.len() < batch;
        for (member, session) in rows {
            cursor = Some(member.clone());
            let Some(session) = session else { continue };
            if !query.matches(&session) {
                continue;
            }
            if page.sessions.len() == limit {
                // One more match exists beyond the page: the page ends at the previous one.
                return Ok(page);
            }
            page.sessions.push((&session).into());
            page.next_cursor = Some(member);
        }
        if exhausted {
            page.next_cursor = None;
            return Ok(page);
        }
    }
}

/// One page of a session's stored events: seqs `start`, `start + 1`, ... of stream `epoch`.
pub struct Page {
    pub epoch: Arc<str>,
    pub start: u64,
    pub events: Vec<Arc<str>>,
}

/// Reads a session's stored events after a seq, a page at a time, up to an optional last seq,
/// and stops where the stream is another epoch than the one being followed. The fan-out's gap
/// fill and a connection's catch-up both walk the store this way.
pub struct Pages<'a> {
    store: &'a dyn Store,
    session_id: &'a str,
    /// The stream being followed; `None` adopts whatever the store has.
    epoch: Option<Arc<str>>,
    after: u64,
    until: Option<u64>,
}

impl<'a> Pages<'a> {
    pub fn new(
        store: &'a dyn Store,
        session_id: &'a str,
        epoch: Option<Arc<str>>,
        after: u64,
        until: Option<u64>,
    ) -> Pages<'a> {
        Pages {
            store,
            session_id,
            epoch,
            after,
            until,
        }
    }

    /// The next page, or `None` when there is nothing more to read.
    pub async fn next(&mut self, page_size: usize) -> Result<Option<Page>, StoreError> {
        if self.until.is_some_and(|u| self.after >= u) {
            return Ok(None);
        }
        let range = self
            .store
            .read_events(self.session_id, ReadFrom::After(self.after), page_size)
            .await?;
        let Some(stored) = range.epoch.as_deref() else {
            return Ok(None);
        };
        if self.epoch.as_deref().is_some_and(|e| e != stored) || range.events.is_empty() {
            return Ok(None);
        }
        let epoch: Arc<str> = match &self.epoch {
            Some(e) => Arc::clone(e),
            None => Arc::from(stored),
        };
        let start = range.start_after(self.after);
        let mut events = range.events;
        if let Some(u) = self.until {
            events.truncate((u + 1).saturating_sub(start) as usize);
        }
        if events.is_empty() {
            return Ok(None);
        }
        self.after = start + events.len() as u64 - 1;
        self.epoch = Some(Arc::clone(&epoch));
        Ok(Some(Page {
            epoch,
            start,
            events,
        }))
    }
}
