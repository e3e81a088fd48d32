//! Chains in memory: each chain's version and JSON, and each session's chain ids in creation
//! order. A first write also counts the chain on its session, in the same locked step.

use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;
use std::time::Instant;

use async_trait::async_trait;

use super::{MemoryStore, Part, OVERHEAD};
use crate::bus::BusMessage;
use crate::domain::chain::StatusCounts;
use crate::domain::session::field;
use crate::store::{ChainPage, ChainStore, ChainWrite, Cursor, StoreError};

#[derive(Default, serde::Serialize, serde::Deserialize)]
pub(super) struct ChainTable {
    chains: HashMap<String, ChainSlot>,
    /// Per session, its chain ids in creation order.
    by_session: HashMap<String, Vec<String>>,
    /// Every chain by (last update, id), for walks most recent first.
    by_update: BTreeSet<(i64, String)>,
    /// The chains by status with their progress summed, kept by every write and removal.
    counts: StatusCounts,
}

#[derive(serde::Serialize, serde::Deserialize)]
struct ChainSlot {
    session_id: String,
    version: u64,
    json: Arc<str>,
    active: bool,
    status: String,
    progress_centi: i64,
    updated_ms: i64,
    #[serde(with = "super::persisted::instant")]
    expires: Instant,
}

impl ChainTable {
    fn live(&self, id: &str, now: Instant) -> Option<&ChainSlot> {
        self.chains.get(id).filter(|c| c.expires > now)
    }

    fn remove(&mut self, id: &str) {
        if let Some(c) = self.chains.remove(id) {
            self.by_update.remove(&(c.updated_ms, id.to_string()));
            self.counts.add(&c.status, c.progress_centi, -1);
        }
    }

    /// The session's chains live until `until` (its extension).
    pub fn extend_session(&mut self, session_id: &str, until: Instant) {
        for id in self.by_session.get(session_id).into_iter().flatten() {
            if let Some(c) = self.chains.get_mut(id) {
                c.expires = until;
            }
        }
    }

    pub fn remove_session(&mut self, session_id: &str) {
        for chain_id in self.by_session.remove(session_id).unwrap_or_default() {
            self.remove(&chain_id);
        }
    }
}

impl Part for ChainTable {
    fn sweep(&mut self, now: Instant) {
        let expired: Vec<String> = self
            .chains
            .iter()
            .filter(|(_, c)| c.expires <= now)
            .map(|(id, _)| id.clone())
            .collect();
        for id in expired {
            self.remove(&id);
        }
        let chains = &self.chains;
        self.by_session.retain(|_, ids| {
            ids.retain(|id| chains.contains_key(id));
            !ids.is_empty()
        });
    }

    /// About what the chains hold, for the memory budget.
    fn bytes(&self) -> usize {
        self.chains
            .iter()
            .map(|(id, c)| id.len() + c.json.len() + OVERHEAD)
            .sum::<usize>()
            + self
                .by_session
                .values()
                .map(|ids| ids.iter().map(|i| i.len() + 32).sum::<usize>())
                .sum::<usize>()
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

    async fn chain_session(&self, id: &str) -> Result<Option<String>, StoreError> {
        let state = self.state.lock();
        Ok(state
            .chains
            .live(id, Instant::now())
            .map(|c| c.session_id.clone()))
    }

    async fn put_chain(&self, c: &ChainWrite, expected: u64) -> Result<bool, StoreError> {
        let now = Instant::now();
        let mut state = self.state.lock();
        let current = state.chains.live(&c.id, now).map_or(0, |s| s.version);
        if current != expected {
            return Ok(false);
        }
        self.admit(&mut state, c.json.len() + OVERHEAD)?;
        let ttl = match state.sessions.slot(&c.session_id, now) {
            Some(slot) => slot.ttl(c.ttl),
            None => c.ttl,
        };
        let json: Arc<str> = c.json.as_str().into();
        state.chains.remove(&c.id);
        state.chains.by_update.insert((c.updated_ms, c.id.clone()));
        state.chains.counts.add(&c.status, c.progress_centi, 1);
        state.chains.chains.insert(
            c.id.clone(),
            ChainSlot {
                session_id: c.session_id.clone(),
                version: current + 1,
                json: Arc::clone(&json),
                active: c.active,
                status: c.status.clone(),
                progress_centi: c.progress_centi,
                updated_ms: c.updated_ms,
                expires: now + ttl,
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

    async fn session_chains(&self, sid: &str) -> Result<Vec<Arc<str>>, StoreError> {
        let now = Instant::now();
        let state = self.state.lock();
        let chains = &state.chains;
        Ok(chains
            .by_session
            .get(sid)
            .map(|ids| {
                ids.iter()
                    .filter_map(|id| chains.live(id, now))
                    .map(|c| Arc::clone(&c.json))
                    .collect()
            })
            .unwrap_or_default())
    }

    async fn newest_chain(&self, sid: &str) -> Result<Option<String>, StoreError> {
        let now = Instant::now();
        let state = self.state.lock();
        let chains = &state.chains;
        Ok(chains.by_session.get(sid).and_then(|ids| {
            ids.iter()
                .rev()
                .find(|id| chains.live(id, now).is_some())
                .cloned()
        }))
    }

    async fn page_chains(
        &self,
        active: bool,
        after: Option<&Cursor>,
        walk: usize,
    ) -> Result<ChainPage, StoreError> {
        let now = Instant::now();
        let read_max = self.settings.read_max_bytes;
        let state = self.state.lock();
        let chains = &state.chains;
        let mut members = match after {
            Some(c) => chains.by_update.range(..(c.ms, c.member.clone())).rev(),
            None => chains.by_update.range(..).rev(),
        };
        let mut page = ChainPage::default();
        let mut last = None;
        let mut bytes = 0;
        for _ in 0..walk {
            let Some((ms, id)) = members.next() else {
                return Ok(page);
            };
            last = Some((*ms, id));
            if let Some(c) = chains.live(id, now).filter(|c| c.active || !active) {
                bytes += c.json.len();
                page.chains.push(Arc::clone(&c.json));
            }
            if bytes >= read_max {
                page.full = true;
                break;
            }
        }
        if members.next().is_some() {
            page.next = last.map(|(ms, id)| Cursor {
                ms,
                member: id.clone(),
            });
        }
        Ok(page)
    }

    async fn chain_counts(&self) -> Result<StatusCounts, StoreError> {
        Ok(self.state.lock().chains.counts.clone())
    }

    async fn stale_chains(&self, before_ms: i64, limit: usize) -> Result<Vec<String>, StoreError> {
        let now = Instant::now();
        let state = self.state.lock();
        let chains = &state.chains;
        Ok(chains
            .by_update
            .range(..(before_ms, String::new()))
            .filter(|(_, id)| chains.live(id, now).is_some_and(|c| c.active))
            .take(limit)
            .map(|(_, id)| id.clone())
            .collect())
    }
}
