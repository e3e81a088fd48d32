//! Chains as stored: a versioned JSON document per chain, written only by compare and set,
//! with a per-session list, indexes of all and of active chains, and counters by status
//! beside them (what stats read). The state machine that
//! computes each new version is `domain::chain`; the retry loop is `service::chains`.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;

use super::{Cursor, StoreError};
use crate::domain::chain::StatusCounts;

/// A chain as the stores write it: its JSON plus what the indexes need.
#[derive(Debug, Clone)]
pub struct ChainWrite {
    pub id: String,
    pub session_id: String,
    pub json: String,
    pub active: bool,
    /// Its status and progress (hundredths of a percent), for the status counters.
    pub status: String,
    pub progress_centi: i64,
    pub updated_ms: i64,
    pub ttl: Duration,
}

/// One step of a walk over a chain index.
#[derive(Debug, Default)]
pub struct ChainPage {
    /// The live chains among the members walked, most recently updated first.
    pub chains: Vec<Arc<str>>,
    /// Where to go on from; `None` when the walk reached the end of the index.
    pub next: Option<Cursor>,
    /// The walk stopped short at `READ_MAX_BYTES`: a listing answers with what it has.
    pub full: bool,
}

#[async_trait]
pub trait ChainStore: Send + Sync + 'static {
    /// A chain's version and JSON.
    async fn get_chain(&self, id: &str) -> Result<Option<(u64, Arc<str>)>, StoreError>;

    /// The session a chain id belongs to, without reading the chain.
    async fn chain_session(&self, id: &str) -> Result<Option<String>, StoreError>;

    /// Writes a chain if its stored version is still `expected` (0: it must not exist yet, in
    /// any session), in one atomic step with its indexes and TTL, and announces it
    /// ([`crate::bus::BusMessage::Chain`]). False when the version moved on (or, for 0, the
    /// chain exists): read again and retry.
    async fn put_chain(&self, chain: &ChainWrite, expected: u64) -> Result<bool, StoreError>;

    /// A session's chains' JSON in creation order.
    async fn session_chains(&self, session_id: &str) -> Result<Vec<Arc<str>>, StoreError>;

    /// The id of the session's newest chain that is still stored, read without reading the
    /// chains (events that name no chain go to it).
    async fn newest_chain(&self, session_id: &str) -> Result<Option<String>, StoreError>;

    /// Walks at most `walk` members of the index of all (or of active) chains, most recently
    /// updated first, from after `after`, stopping early once the chains read reach
    /// `READ_MAX_BYTES` (at least one).
    async fn page_chains(
        &self,
        active: bool,
        after: Option<&Cursor>,
        walk: usize,
    ) -> Result<ChainPage, StoreError>;

    /// The chains of the index by status, with their progress summed: counters kept by every
    /// write and removal, never a walk over the chains.
    async fn chain_counts(&self) -> Result<StatusCounts, StoreError>;

    /// Ids of up to `limit` active chains last updated before `before_ms`, oldest first (from
    /// the active index: only those are read).
    async fn stale_chains(&self, before_ms: i64, limit: usize) -> Result<Vec<String>, StoreError>;
}
