//! The embedded store: everything in this process, for one instance and for development.
//! Same semantics as Redis, including TTLs (checked on access and swept periodically), the
//! per-session cap and the dedup window. One mutex guards the data; it is never held across
//! an `.await`, and the bus publish happens under it so the bus order is the seq order.

use std::collections::{BTreeSet, HashMap, VecDeque};
use std::sync::Arc;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use parking_lot::Mutex;
use tokio::sync::broadcast;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use super::{
    page_sessions, AckedCommand, ChainFilter, ChainWrite, Now, Store, StoreSettings, BUS_CAPACITY,
};
use crate::control::Queue;
use crate::error::StoreError;
use crate::model::{
    field, index_member, Appended, BusMessage, EventDraft, EventRange, Fields, LiveEvent, ReadFrom,
    Session, SessionPage, SessionQuery,
};

const SWEEP_EVERY: Duration = Duration::from_secs(30);

pub struct MemoryStore {
    state: Mutex<State>,
    bus: broadcast::Sender<BusMessage>,
    settings: StoreSettings,
}

#[derive(Default)]
struct State {
    sessions: HashMap<String, Slot>,
    /// Listing index, members as [`index_member`] makes them.
    index: BTreeSet<String>,
    /// Every command by id, until it expires (acknowledged or not).
    commands: HashMap<String, CommandSlot>,
    /// Per session, the ids of commands not yet acknowledged or consumed, oldest first.
    pending: HashMap<String, VecDeque<String>>,
    /// Per session, queued input, oldest first.
    input: HashMap<String, VecDeque<InputSlot>>,
    /// Every chain by id.
    chains: HashMap<String, ChainSlot>,
    /// Per session, its chain ids in creation order.
    session_chains: HashMap<String, Vec<String>>,
}

struct ChainSlot {
    version: u64,
    json: Arc<str>,
    active: bool,
    updated_ms: i64,
    expires: Instant,
}

struct CommandSlot {
    session_id: String,
    record: Arc<str>,
    acked: bool,
    expires: Instant,
}

struct InputSlot {
    id: String,
    item: Arc<str>,
    expires: Instant,
}

/// A session and its stream; they are created, renewed and expire together.
struct Slot {
    fields: HashMap<String, String>,
    epoch: Arc<str>,
    seq: u64,
    events: VecDeque<Arc<str>>,
    dedup: HashMap<String, (u64, Instant)>,
    expires: Instant,
}

impl Slot {
    fn new(fields: HashMap<String, String>, ttl: Duration) -> Slot {
        Slot {
            fields,
            epoch: uuid::Uuid::now_v7().simple().to_string().into(),
            seq: 0,
            events: VecDeque::new(),
            dedup: HashMap::new(),
            expires: Instant::now() + ttl,
        }
    }

    fn session(&self) -> Result<Session, StoreError> {
        Session::from_fields(&self.fields)
    }
}

impl State {
    /// The live slot of a session, dropping it first if it has expired.
    fn slot(&mut self, id: &str, now: Instant) -> Option<&mut Slot> {
        if self.sessions.get(id).is_some_and(|s| s.expires <= now) {
            self.remove(id);
        }
        self.sessions.get_mut(id)
    }

    fn remove(&mut self, id: &str) -> bool {
        match self.sessions.remove(id) {
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

impl MemoryStore {
    pub fn start(
        settings: StoreSettings,
        tasks: &TaskTracker,
        shutdown: CancellationToken,
    ) -> Arc<dyn Store> {
        let store = Arc::new(MemoryStore {
            state: Mutex::new(State::default()),
            bus: broadcast::channel(BUS_CAPACITY).0,
            settings,
        });
        let sweeper = Arc::clone(&store);
        tasks.spawn(async move {
            let mut tick = tokio::time::interval(SWEEP_EVERY);
            loop {
                tokio::select! {
                    _ = shutdown.cancelled() => return,
                    _ = tick.tick() => sweeper.sweep(),
                }
            }
        });
        store
    }

    /// Drops expired sessions and dedup markers so memory stays bounded without reads.
    fn sweep(&self) {
        let now = Instant::now();
        let mut state = self.state.lock();
        let expired: Vec<String> = state
            .sessions
            .iter()
            .filter(|(_, s)| s.expires <= now)
            .map(|(id, _)| id.clone())
            .collect();
        for id in expired {
            state.remove(&id);
        }
        for slot in state.sessions.values_mut() {
            slot.dedup.retain(|_, (_, until)| *until > now);
        }
        state.commands.retain(|_, c| c.expires > now);
        let State {
            commands, pending, ..
        } = &mut *state;
        pending.retain(|_, ids| {
            ids.retain(|id| commands.contains_key(id));
            !ids.is_empty()
        });
        state.input.retain(|_, q| {
            q.retain(|i| i.expires > now);
            !q.is_empty()
        });
        state.chains.retain(|_, c| c.expires > now);
        let State {
            chains,
            session_chains,
            ..
        } = &mut *state;
        session_chains.retain(|_, ids| {
            ids.retain(|id| chains.contains_key(id));
            !ids.is_empty()
        });
    }
}

#[async_trait]
impl Store for MemoryStore {
    fn kind(&self) -> &'static str {
        "memory"
    }

    async fn create_session(
        &self,
        id: &str,
        fields: Fields,
        now: &Now,
    ) -> Result<Session, StoreError> {
        let mut state = self.state.lock();
        if state.slot(id, Instant::now()).is_some() {
            return Err(StoreError::Conflict);
        }
        let idx = index_member(now.ms, id);
        let mut map: HashMap<String, String> = fields
            .into_iter()
            .map(|(k, v)| (k.to_string(), v))
            .collect();
        map.insert(field::INDEX.into(), idx.clone());
        let slot = Slot::new(map, self.settings.session_ttl);
        let session = slot.session()?;
        state.index.insert(idx);
        state.sessions.insert(id.to_string(), slot);
        Ok(session)
    }

    async fn get_session(&self, id: &str) -> Result<Option<Session>, StoreError> {
        let mut state = self.state.lock();
        state
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
        let Some(slot) = state.slot(id, now) else {
            return Ok(None);
        };
        for (k, v) in fields {
            slot.fields.insert(k.to_string(), v);
        }
        slot.expires = now + ttl;
        slot.session().map(Some)
    }

    async fn delete_session(&self, id: &str) -> Result<bool, StoreError> {
        let mut state = self.state.lock();
        let existed = state.slot(id, Instant::now()).is_some() && state.remove(id);
        state.pending.remove(id);
        state.input.remove(id);
        for chain_id in state.session_chains.remove(id).unwrap_or_default() {
            state.chains.remove(&chain_id);
        }
        if existed {
            let _ = self.bus.send(BusMessage::SessionDeleted(id.into()));
        }
        Ok(existed)
    }

    async fn list_sessions(&self, query: &SessionQuery) -> Result<SessionPage, StoreError> {
        page_sessions(query, |cursor, n| {
            let mut state = self.state.lock();
            let now = Instant::now();
            let members: Vec<String> = match &cursor {
                Some(c) => state
                    .index
                    .range::<String, _>(..c.clone())
                    .rev()
                    .take(n)
                    .cloned()
                    .collect(),
                None => state.index.iter().rev().take(n).cloned().collect(),
            };
            let rows: Result<Vec<_>, StoreError> = members
                .into_iter()
                .map(|m| {
                    let id = m.split_once(':').map(|(_, id)| id).unwrap_or_default();
                    let session = state.slot(id, now).map(|s| s.session()).transpose()?;
                    Ok((m, session))
                })
                .collect();
            std::future::ready(rows)
        })
        .await
    }

    async fn append(&self, drafts: &[EventDraft], now: &Now) -> Result<Vec<Appended>, StoreError> {
        let ttl = self.settings.session_ttl;
        let cap = self.settings.max_events_per_session;
        let window = self.settings.dedup_window;
        let clock = Instant::now();
        let mut state = self.state.lock();
        let mut out = Vec::with_capacity(drafts.len());
        for d in drafts {
            if state.slot(&d.session_id, clock).is_none() {
                let idx = index_member(now.ms, &d.session_id);
                let fields = HashMap::from([
                    (field::ID.to_string(), d.session_id.clone()),
                    (field::STATUS.to_string(), "in_progress".to_string()),
                    (field::STARTED_AT.to_string(), now.iso.clone()),
                    (field::UPDATED_AT.to_string(), now.iso.clone()),
                    (field::INDEX.to_string(), idx.clone()),
                ]);
                state.index.insert(idx);
                state
                    .sessions
                    .insert(d.session_id.clone(), Slot::new(fields, ttl));
            }
            let slot = state
                .sessions
                .get_mut(&d.session_id)
                .expect("ensured above");
            slot.expires = clock + ttl;
            slot.fields
                .insert(field::UPDATED_AT.to_string(), now.iso.clone());
            if let Some((seq, until)) = slot.dedup.get(&d.event_id) {
                if *until > clock {
                    out.push(Appended {
                        session_id: d.session_id.clone(),
                        event_id: d.event_id.clone(),
                        seq: *seq,
                        epoch: slot.epoch.to_string(),
                        duplicate: true,
                    });
                    continue;
                }
            }
            slot.seq += 1;
            let seq = slot.seq;
            let stored: Arc<str> = d.complete(seq).into();
            slot.events.push_back(Arc::clone(&stored));
            while slot.events.len() > cap {
                slot.events.pop_front();
            }
            slot.dedup.insert(d.event_id.clone(), (seq, clock + window));
            let _ = self.bus.send(BusMessage::Event(Arc::new(LiveEvent {
                session_id: d.session_id.as_str().into(),
                seq,
                epoch: Arc::clone(&slot.epoch),
                event: stored,
            })));
            out.push(Appended {
                session_id: d.session_id.clone(),
                event_id: d.event_id.clone(),
                seq,
                epoch: slot.epoch.to_string(),
                duplicate: false,
            });
        }
        Ok(out)
    }

    async fn read_events(
        &self,
        session_id: &str,
        from: ReadFrom,
        limit: usize,
    ) -> Result<EventRange, StoreError> {
        let mut state = self.state.lock();
        let Some(slot) = state.slot(session_id, Instant::now()) else {
            return Ok(EventRange {
                first_seq: 1,
                ..EventRange::default()
            });
        };
        let len = slot.events.len() as u64;
        let first_seq = slot.seq + 1 - len;
        let (skip, take) = match from {
            ReadFrom::After(after) => {
                let start = after.saturating_add(1).max(first_seq);
                ((start - first_seq) as usize, limit)
            }
            ReadFrom::Tail(n) => {
                let n = n.min(limit).min(len as usize);
                (len as usize - n, n)
            }
        };
        Ok(EventRange {
            head_seq: slot.seq,
            first_seq,
            epoch: Some(slot.epoch.to_string()),
            events: slot.events.iter().skip(skip).take(take).cloned().collect(),
        })
    }

    async fn push_command(
        &self,
        session_id: &str,
        command_id: &str,
        record: &str,
        ttl: Duration,
    ) -> Result<(), StoreError> {
        let record: Arc<str> = record.into();
        let mut state = self.state.lock();
        state.commands.insert(
            command_id.to_string(),
            CommandSlot {
                session_id: session_id.to_string(),
                record: Arc::clone(&record),
                acked: false,
                expires: Instant::now() + ttl,
            },
        );
        state
            .pending
            .entry(session_id.to_string())
            .or_default()
            .push_back(command_id.to_string());
        let _ = self.bus.send(BusMessage::Command {
            session_id: session_id.into(),
            record,
        });
        Ok(())
    }

    async fn pending_commands(
        &self,
        session_id: &str,
        consume: bool,
    ) -> Result<Vec<Arc<str>>, StoreError> {
        let now = Instant::now();
        let mut state = self.state.lock();
        let State {
            commands, pending, ..
        } = &mut *state;
        let Some(ids) = pending.get_mut(session_id) else {
            return Ok(Vec::new());
        };
        ids.retain(|id| commands.get(id).is_some_and(|c| c.expires > now));
        let out = ids
            .iter()
            .filter_map(|id| commands.get(id).map(|c| Arc::clone(&c.record)))
            .collect();
        if consume || ids.is_empty() {
            pending.remove(session_id);
        }
        Ok(out)
    }

    async fn ack_command(
        &self,
        command_id: &str,
        session_id: Option<&str>,
        _ack: &str,
    ) -> Result<Option<AckedCommand>, StoreError> {
        let now = Instant::now();
        let mut state = self.state.lock();
        let Some(c) = state.commands.get_mut(command_id) else {
            return Ok(None);
        };
        if c.expires <= now {
            state.commands.remove(command_id);
            return Ok(None);
        }
        if session_id.is_some_and(|s| s != c.session_id) {
            return Ok(None);
        }
        let first = !c.acked;
        c.acked = true;
        let acked = AckedCommand {
            session_id: c.session_id.clone(),
            record: Arc::clone(&c.record),
            first,
        };
        if let Some(ids) = state.pending.get_mut(&acked.session_id) {
            ids.retain(|id| id != command_id);
        }
        Ok(Some(acked))
    }

    async fn push_input(
        &self,
        session_id: &str,
        input_id: &str,
        item: &str,
        ttl: Duration,
    ) -> Result<(), StoreError> {
        let mut state = self.state.lock();
        state
            .input
            .entry(session_id.to_string())
            .or_default()
            .push_back(InputSlot {
                id: input_id.to_string(),
                item: item.into(),
                expires: Instant::now() + ttl,
            });
        let _ = self.bus.send(BusMessage::Wake {
            session_id: session_id.into(),
            queue: Queue::Input,
        });
        Ok(())
    }

    async fn take_input(
        &self,
        session_id: &str,
        consume: bool,
    ) -> Result<Vec<Arc<str>>, StoreError> {
        let now = Instant::now();
        let mut state = self.state.lock();
        let Some(q) = state.input.get_mut(session_id) else {
            return Ok(Vec::new());
        };
        q.retain(|i| i.expires > now);
        let out = q.iter().map(|i| Arc::clone(&i.item)).collect();
        if consume || q.is_empty() {
            state.input.remove(session_id);
        }
        Ok(out)
    }

    async fn ack_input(&self, session_id: &str, input_id: &str) -> Result<bool, StoreError> {
        let now = Instant::now();
        let mut state = self.state.lock();
        let Some(q) = state.input.get_mut(session_id) else {
            return Ok(false);
        };
        let before = q.len();
        q.retain(|i| i.id != input_id || i.expires <= now);
        let removed = q.len() < before;
        q.retain(|i| i.expires > now);
        if q.is_empty() {
            state.input.remove(session_id);
        }
        Ok(removed)
    }

    async fn get_chain(&self, id: &str) -> Result<Option<(u64, Arc<str>)>, StoreError> {
        let now = Instant::now();
        let state = self.state.lock();
        Ok(state
            .chains
            .get(id)
            .filter(|c| c.expires > now)
            .map(|c| (c.version, Arc::clone(&c.json))))
    }

    async fn put_chain(&self, c: &ChainWrite, expected: u64) -> Result<bool, StoreError> {
        let now = Instant::now();
        let mut state = self.state.lock();
        let current = state
            .chains
            .get(&c.id)
            .filter(|s| s.expires > now)
            .map_or(0, |s| s.version);
        if current != expected {
            return Ok(false);
        }
        let json: Arc<str> = c.json.as_str().into();
        state.chains.insert(
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
                .session_chains
                .entry(c.session_id.clone())
                .or_default();
            if !ids.contains(&c.id) {
                ids.push(c.id.clone());
            }
            if let Some(slot) = state.slot(&c.session_id, now) {
                let n: u64 = slot
                    .fields
                    .get(field::CHAINS)
                    .and_then(|n| n.parse().ok())
                    .unwrap_or(0);
                slot.fields
                    .insert(field::CHAINS.into(), (n + 1).to_string());
            }
        }
        let _ = self.bus.send(BusMessage::Chain {
            session_id: c.session_id.as_str().into(),
            chain: json,
        });
        Ok(true)
    }

    async fn list_chains(&self, filter: ChainFilter<'_>) -> Result<Vec<Arc<str>>, StoreError> {
        let now = Instant::now();
        let state = self.state.lock();
        let live = |id: &String| state.chains.get(id).filter(|c| c.expires > now);
        Ok(match filter {
            ChainFilter::Session(sid) => state
                .session_chains
                .get(sid)
                .map(|ids| {
                    ids.iter()
                        .filter_map(live)
                        .map(|c| Arc::clone(&c.json))
                        .collect()
                })
                .unwrap_or_default(),
            ChainFilter::Active | ChainFilter::All => {
                let active_only = matches!(filter, ChainFilter::Active);
                let mut rows: Vec<&ChainSlot> = state
                    .chains
                    .values()
                    .filter(|c| c.expires > now && (c.active || !active_only))
                    .collect();
                rows.sort_by_key(|c| c.updated_ms);
                rows.into_iter().map(|c| Arc::clone(&c.json)).collect()
            }
        })
    }

    fn subscribe_bus(&self) -> broadcast::Receiver<BusMessage> {
        self.bus.subscribe()
    }

    async fn readiness(&self) -> Result<(), String> {
        Ok(())
    }
}
