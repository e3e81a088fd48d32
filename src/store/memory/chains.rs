//! Chains in memory: each chain's version and JSON, and each session's chain ids in creation
//! order. A first write also counts the chain on its session, in the same locked step.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Instant;

use async_trait::async_trait;

use super::MemoryStore;
use crate::bus::BusMessage;
use crate::domain::session::field;
use crate::store::{ChainFilter, ChainStore, ChainWrite, StoreError};

#[derive(Default)]
pub(super) struct Chains {
    chains: HashMap<String, ChainSlot>,
    /// Per session, its chain ids in creation order.
    by_session: HashMap<String, Vec<String>>,
}

struct ChainSlot {
    version: u64,
    json: Arc<str>,
    active: bool,
    updated_ms: i64,
    expires: Instant,
}

impl Chains {
    fn live(&self, id: &str, now: Instant) -> Option<&ChainSlot> {
        self.chains.get(id).filter(|c| c.expires > now)
    }

    pub fn remove_session(&mut self, session_id: &str) {
        for chain_id in self.by_session.remove(session_id).unwrap_or_default() {
            self.chains.remove(&chain_id);
        }
    }

    pub fn sweep(&mut self, now: Instant) {
        self.chains.retain(|_, c| c.expires > now);
        let chains = &self.chains;
        self.by_session.retain(|_, ids| {
            ids.retain(|id| chains.contains_key(id));
            !ids.is_empty()
        });
    }
}

#[async_trait]
impl ChainStore for MemoryStore {
    async fn get_chain(&self, id: &str) -> Result<Option<(u64, Arc<str>)>, StoreError> {
        let state = self.state.lock();
        Ok(state
            .chains
            .live(id, Instant::now())
            .map(|c| (c.version, Arc::clone(&c.json))))
    }

    async fn put_chain(&self, c: &ChainWrite, expected: u64) -> Result<bool, StoreError> {
        let now = Instant::now();
        let mut state = self.state.lock();
        let current = state.chains.live(&c.id, now).map_or(0, |s| s.version);
        if current != expected {
            return Ok(false);
        }
        let json: Arc<str> = c.json.as_str().into();
        state.chains.chains.insert(
            c.id.clone(),
            ChainSlot {
                version: current + 1,
                json: Arc::clone(&json),
                active: c.active,
                updated_ms: c.updated_ms,
                expires: now + c.ttl,
            },
        );
        if current == 0 {
            let ids = state
                .chains
                .by_session
                .entry(c.session_id.clone())
                .or_default();
            if !ids.contains(&c.id) {
                ids.push(c.id.clone());
            }
            if let Some(slot) = state.sessions.slot(&c.session_id, now) {
                let n: u64 = slot
                    .fields
                    .get(field::CHAINS)
                    .and_then(|n| n.parse().ok())
                    .unwrap_or(0);
                slot.fields
                    .insert(field::CHAINS.into(), (n + 1).to_string());
            }
        }
        self.publish(BusMessage::Chain {
            session_id: c.session_id.as_str().into(),
            chain: json,
        });
        Ok(true)
    }

    async fn list_chains(&self, filter: ChainFilter<'_>) -> Result<Vec<Arc<str>>, StoreError> {
        let now = Instant::now();
        let state = self.state.lock();
        let chains = &state.chains;
        Ok(match filter {
            ChainFilter::Session(sid) => chains
                .by_session
                .get(sid)
                .map(|ids| {
                    ids.iter()
                        .filter_map(|id| chains.live(id, now))
                        .map(|c| Arc::clone(&c.json))
                        .collect()
                })
                .unwrap_or_default(),
            ChainFilter::Active | ChainFilter::All => {
                let active_only = matches!(filter, ChainFilter::Active);
                let mut rows: Vec<&ChainSlot> = chains
                    .chains
                    .values()
                    .filter(|c| c.expires > now && (c.active || !active_only))
                    .collect();
                rows.sort_by_key(|c| c.updated_ms);
                rows.into_iter().map(|c| Arc::clone(&c.json)).collect()
            }
        })
    }
}
