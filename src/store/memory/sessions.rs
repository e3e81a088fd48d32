//! Sessions in memory: each session's fields and its stream (epoch, seq, events, dedup
//! markers) in one slot, created, renewed and expired together, plus the listing index.

use std::collections::{BTreeSet, HashMap, VecDeque};
use std::sync::Arc;
use std::time::{Duration, Instant};

use async_trait::async_trait;

use super::{MemoryStore, Part, OVERHEAD};
use crate::bus::BusMessage;
use crate::domain::session::{field, index_member, Fields, Session, SessionPage, SessionQuery};
use crate::store::sessions::{decode, member_id, page_sessions};
use crate::store::{SessionStore, StoreError};
use crate::time::Now;

#[derive(Default, serde::Serialize, serde::Deserialize)]
pub(super) struct SessionTable {
    slots: HashMap<String, Slot>,
    /// Listing index, members as [`index_member`] makes them.
    index: BTreeSet<String>,
}

/// A session and its stream.
#[derive(serde::Serialize, serde::Deserialize)]
pub(super) struct Slot {
    pub fields: HashMap<String, String>,
    pub epoch: Arc<str>,
    pub seq: u64,
    pub events: VecDeque<Arc<str>>,
    /// Bytes of `events`, for `MAX_SESSION_EVENT_BYTES`.
    pub event_bytes: usize,
    #[serde(with = "super::persisted::timed_values")]
    pub dedup: HashMap<String, (u64, Instant)>,
    #[serde(with = "super::persisted::instant")]
    pub expires: Instant,
}

impl Slot {
    fn new(fields: HashMap<String, String>, ttl: Duration) -> Slot {
        Slot {
            fields,
            epoch: uuid::Uuid::now_v7().simple().to_string().into(),
            seq: 0,
            events: VecDeque::new(),
            event_bytes: 0,
            dedup: HashMap::new(),
            expires: Instant::now() + ttl,
        }
    }

    pub fn session(&self) -> Result<Session, StoreError> {
        decode(&self.fields)
    }

    /// The session's own TTL once extended, else `default`.
    pub fn ttl(&self, default: Duration) -> Duration {
        self.fields
            .get(field::TTL)
            .and_then(|t| t.parse().ok())
            .map_or(default, Duration::from_secs)
    }
}

impl SessionTable {
    /// The live slot of a session, dropping it first if it has expired.
    pub fn slot(&mut self, id: &str, now: Instant) -> Option<&mut Slot> {
        if self.slots.get(id).is_some_and(|s| s.expires <= now) {
            self.remove(id);
        }
        self.slots.get_mut(id)
    }

    /// The live slot of a session, created (indexed, `in_progress`) if it does not exist:
    /// what an event for an unknown session does.
    pub fn slot_or_start(
        &mut self,
        id: &str,
        now: &Now,
        clock: Instant,
        ttl: Duration,
    ) -> &mut Slot {
        if self.slot(id, clock).is_none() {
            let idx = index_member(now.ms, id);
            let fields = HashMap::from([
                (field::ID.to_string(), id.to_string()),
                (field::STATUS.to_string(), "in_progress".to_string()),
                (field::STARTED_AT.to_string(), now.iso.clone()),
                (field::UPDATED_AT.to_string(), now.iso.clone()),
                (field::INDEX.to_string(), idx.clone()),
            ]);
            self.index.insert(idx);
            self.slots.insert(id.to_string(), Slot::new(fields, ttl));
        }
        self.slots.get_mut(id).expect("ensured above")
    }

    fn remove(&mut self, id: &str) -> bool {
        match self.slots.remove(id) {
            Some(slot) => {
                if let Some(idx) = slot.fields.get(field::INDEX) {
                    self.index.remove(idx);
                }
                true
            }
            None => false,
        }
    }
}

impl Part for SessionTable {
    fn sweep(&mut self, now: Instant) {
        let expired: Vec<String> = self
            .slots
            .iter()
            .filter(|(_, s)| s.expires <= now)
            .map(|(id, _)| id.clone())
            .collect();
        for id in expired {
            self.remove(&id);
        }
        for slot in self.slots.values_mut() {
            slot.dedup.retain(|_, (_, until)| *until > now);
        }
    }

    /// About what the sessions hold, for the memory budget.
    fn bytes(&self) -> usize {
        self.slots
            .iter()
            .map(|(id, s)| {
                4 * OVERHEAD
                    + id.len()
                    + s.fields
                        .iter()
                        .map(|(k, v)| k.len() + v.len() + 32)
                        .sum::<usize>()
                    + s.events.iter().map(|e| e.len() + 32).sum::<usize>()
                    + s.dedup.keys().map(|k| k.len() + 64).sum::<usize>()
            })
            .sum()
    }
}

#[async_trait]
impl SessionStore for MemoryStore {
    async fn create_session(
        &self,
        id: &str,
        fields: Fields,
        now: &Now,
    ) -> Result<Session, StoreError> {
        let mut state = self.state.lock();
        if state.sessions.slot(id, Instant::now()).is_some() {
            return Err(StoreError::Exists);
        }
        let size: usize = fields.iter().map(|(k, v)| k.len() + v.len() + 32).sum();
        self.admit(&mut state, 4 * OVERHEAD + id.len() + size)?;
        let sessions = &mut state.sessions;
        let idx = index_member(now.ms, id);
        let mut map: HashMap<String, String> = fields
            .into_iter()
            .map(|(k, v)| (k.to_string(), v))
            .collect();
        map.insert(field::INDEX.into(), idx.clone());
        let slot = Slot::new(map, self.settings.session_ttl);
        let session = slot.session()?;
        sessions.index.insert(idx);
        sessions.slots.insert(id.to_string(), slot);
        Ok(session)
    }

    async fn get_session(&self, id: &str) -> Result<Option<Session>, StoreError> {
        let mut state = self.state.lock();
        state
            .sessions
            .slot(id, Instant::now())
            .map(|s| s.session())
            .transpose()
    }

    async fn update_session(
        &self,
        id: &str,
        fields: Fields,
    ) -> Result<Option<Session>, StoreError> {
        let ttl = self.settings.session_ttl;
        let mut state = self.state.lock();
        let now = Instant::now();
        if state.sessions.slot(id, now).is_none() {
            return Ok(None);
        }
        let size: usize = fields.iter().map(|(k, v)| k.len() + v.len() + 32).sum();
        self.admit(&mut state, size)?;
        let Some(slot) = state.sessions.slot(id, now) else {
            return Ok(None);
        };
        for (k, v) in fields {
            slot.fields.insert(k.to_string(), v);
        }
        slot.expires = now + slot.ttl(ttl);
        slot.session().map(Some)
    }

    async fn extend_session(&self, id: &str, ttl: Duration) -> Result<Option<Session>, StoreError> {
        let mut state = self.state.lock();
        let now = Instant::now();
        let Some(slot) = state.sessions.slot(id, now) else {
            return Ok(None);
        };
        slot.fields
            .insert(field::TTL.to_string(), ttl.as_secs().max(1).to_string());
        slot.expires = now + ttl;
        let session = slot.session()?;
        state.chains.extend_session(id, now + ttl);
        Ok(Some(session))
    }

    async fn delete_session(&self, id: &str) -> Result<bool, StoreError> {
        let mut state = self.state.lock();
        let existed =
            state.sessions.slot(id, Instant::now()).is_some() && state.sessions.remove(id);
        state.control.remove_session(id);
        state.chains.remove_session(id);
        if existed {
            self.publish(BusMessage::SessionDeleted(id.into()));
        }
        Ok(existed)
    }

    async fn list_sessions(&self, query: &SessionQuery) -> Result<SessionPage, StoreError> {
        page_sessions(query, |cursor, n| {
            let mut state = self.state.lock();
            let sessions = &mut state.sessions;
            let now = Instant::now();
            let members: Vec<String> = match &cursor {
                Some(c) => sessions
                    .index
                    .range::<String, _>(..c.clone())
                    .rev()
                    .take(n)
                    .cloned()
                    .collect(),
                None => sessions.index.iter().rev().take(n).cloned().collect(),
            };
            let rows: Result<Vec<_>, StoreError> = members
                .into_iter()
                .map(|m| {
                    let session = sessions
                        .slot(member_id(&m), now)
                        .map(|s| s.session())
                        .transpose()?;
                    Ok((m, session))
                })
                .collect();
            std::future::ready(rows)
        })
        .await
    }
}
