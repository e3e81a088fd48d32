//! Chains as stored: a versioned JSON document per chain, written only by compare and set,
//! with a per-session list and indexes of all and of active chains. The state machine that
//! computes each new version is `domain::chain`; the retry loop is `service::chains`.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;

use super::StoreError;

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

/// Where a walk of a chain index stopped: the last member's update time and the member as
/// the store names it. Opaque to callers (see [`ChainCursor::encode`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChainCursor {
    pub updated_ms: i64,
    pub member: String,
}

impl ChainCursor {
    /// `<ms>.<member as hex>`: safe in a query string whatever the ids hold.
    pub fn encode(&self) -> String {
        let hex: String = self.member.bytes().map(|b| format!("{b:02x}")).collect();
        format!("{}.{hex}", self.updated_ms)
    }

    pub fn decode(text: &str) -> Option<ChainCursor> {
        let (ms, hex) = text.split_once('.')?;
        if hex.len() % 2 != 0 || hex.len() > 2048 {
            return None;
        }
        let bytes: Option<Vec<u8>> = (0..hex.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(hex.get(i..i + 2)?, 16).ok())
            .collect();
        Some(ChainCursor {
            updated_ms: ms.parse().ok()?,
            member: String::from_utf8(bytes?).ok()?,
        })
    }
}

/// One step of a walk over a chain index.
#[derive(Debug, Default)]
pub struct ChainPage {
    /// The live chains among the members walked, most recently updated first.
    pub chains: Vec<Arc<str>>,
    /// Where to go on from; `None` when the walk reached the end of the index.
    pub next: Option<ChainCursor>,
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
        after: Option<&ChainCursor>,
        walk: usize,
    ) -> Result<ChainPage, StoreError>;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cursors_survive_any_member() {
        let c = ChainCursor {
            updated_ms: 1_700_000_000_123,
            member: r#"["a.b","c\u0000 d{}"]"#.into(),
        };
        assert_eq!(ChainCursor::decode(&c.encode()), Some(c));
        assert_eq!(ChainCursor::decode("x.00"), None);
        assert_eq!(ChainCursor::decode("1.0"), None);
        assert_eq!(ChainCursor::decode("1.zz"), None);
    }
}
