//! Events: appended in one atomic step that assigns each its seq, dedups by `eventId`, trims
//! to the per-session cap and publishes it; read back by seq or from the tail.

use std::sync::Arc;

use async_trait::async_trait;

use super::StoreError;
use crate::domain::event::{Appended, EventDraft, EventRange, ReadFrom};
use crate::time::Now;

#[async_trait]
pub trait EventStore: Send + Sync + 'static {
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
    store: &'a dyn EventStore,
    session_id: &'a str,
    /// The stream being followed; `None` adopts whatever the store has.
    epoch: Option<Arc<str>>,
    after: u64,
    until: Option<u64>,
}

impl<'a> Pages<'a> {
    pub fn new(
        store: &'a dyn EventStore,
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
