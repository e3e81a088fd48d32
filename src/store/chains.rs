//! Chains as stored: a versioned JSON document per chain, written only by compare and set,
//! with a per-session list and indexes of all and of active chains. The state machine that
//! computes each new version is `domain::chain`; the retry loop is `service::chains`.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;

use super::StoreError;

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

#[async_trait]
pub trait ChainStore: Send + Sync + 'static {
    /// A chain's version and JSON.
    async fn get_chain(&self, id: &str) -> Result<Option<(u64, Arc<str>)>, StoreError>;

    /// Writes a chain if its stored version is still `expected` (0: it must not exist yet, in
    /// any session), in one atomic step with its indexes and TTL, and announces it
    /// ([`crate::bus::BusMessage::Chain`]). False when the version moved on (or, for 0, the
    /// chain exists): read again and retry.
    async fn put_chain(&self, chain: &ChainWrite, expected: u64) -> Result<bool, StoreError>;

    /// Chains' JSON: a session's in creation order, or the active ones or all of them in
    /// order of last update.
    async fn list_chains(&self, filter: ChainFilter<'_>) -> Result<Vec<Arc<str>>, StoreError>;
}
