//! Chains as stored: a versioned JSON document per chain, written only by compare and set,
//! with a per-session list and indexes of all and of active chains. The state machine that
//! computes each new version is `domain::chain`; the retry loop is `service::chains`.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;

use super::{Cursor, StoreError};

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

/// One step of a walk over a chain index.
#[derive(Debug, Default)]
pub struct ChainPage {
    /// The live chains among the members walked, most recently updated first.
    pub chains: Vec<Arc<str>>,
    /// Where to go on from; `None` when the walk reached the end of the index.
    pub next: Option<Cursor>,
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

    /// Walks at most `walk` members of the index of all (or of active) chains, most recently
    /// updated first, from after `after`.
    async fn page_chains(
        &self,
        active: bool,
        after: Option<&Cursor>,
        walk: usize,
    ) -> Result<ChainPage, StoreError>;
}
