//! The bus: what instances tell each other, in the order the store published it (stored
//! events, new commands, chain changes, queue wake-ups and deletions). Each store feeds one
//! broadcast of these per instance ([`Bus`]: Redis through pub/sub, memory in-process); the
//! fan-out reads it.

use std::sync::Arc;

use tokio::sync::broadcast;

use crate::domain::control::ControlQueue;

/// What a store feeds: the ordered messages every instance must hear, for the fan-out.
pub trait Bus: Send + Sync + 'static {
    /// The ordered feed of stored events and notifications.
    fn subscribe(&self) -> broadcast::Receiver<BusMessage>;
}

/// How many messages the bus holds for the fan-out before it counts as lagging (and resyncs
/// from the store).
pub const BUS_CAPACITY: usize = 65_536;

/// What one instance's bus hands the hub, in the order the store published it.
#[derive(Debug, Clone)]
pub enum BusMessage {
    /// A stored event.
    Event(Arc<LiveEvent>),
    /// The session was deleted; its subscribers are told and dropped.
    SessionDeleted(Arc<str>),
    /// Messages may have been lost (pub/sub reconnected or the bus lagged): every locally
    /// subscribed session must be caught up from the store.
    Resync,
    /// A new command (its stored record): pushed to the session's subscribers, and it wakes
    /// the session's command long polls.
    Command {
        session_id: Arc<str>,
        record: Arc<str>,
    },
    /// A chain changed (its JSON as it now stands): pushed to the session's subscribers.
    Chain {
        session_id: Arc<str>,
        chain: Arc<str>,
    },
    /// Something was queued: wakes the session's long polls on that queue.
    Wake {
        session_id: Arc<str>,
        queue: ControlQueue,
    },
    /// A lock was released or a queue got jobs: wakes the waits on that name.
    Signal { signal: Signal, name: Arc<str> },
}

impl BusMessage {
    /// The message of a tenant's stores as the bus carries it: every session id and name
    /// scoped to `tenant` (see [`crate::tenancy`]); unchanged for the default tenant.
    pub fn for_tenant(self, tenant: Option<&str>) -> BusMessage {
        let Some(t) = tenant else {
            return self;
        };
        let scope = |id: &str| -> Arc<str> { crate::scope::scoped(Some(t), id).into() };
        match self {
            BusMessage::Event(ev) => BusMessage::Event(Arc::new(LiveEvent {
                session_id: scope(&ev.session_id),
                seq: ev.seq,
                epoch: Arc::clone(&ev.epoch),
                event: Arc::clone(&ev.event),
            })),
            BusMessage::SessionDeleted(sid) => BusMessage::SessionDeleted(scope(&sid)),
            BusMessage::Resync => BusMessage::Resync,
            BusMessage::Command { session_id, record } => BusMessage::Command {
                session_id: scope(&session_id),
                record,
            },
            BusMessage::Chain { session_id, chain } => BusMessage::Chain {
                session_id: scope(&session_id),
                chain,
            },
            BusMessage::Wake { session_id, queue } => BusMessage::Wake {
                session_id: scope(&session_id),
                queue,
            },
            BusMessage::Signal { signal, name } => BusMessage::Signal {
                signal,
                name: scope(&name),
            },
        }
    }
}

/// What a wait that is not a session's queue waits on: a lock by its name (released), a job
/// queue by its name (jobs enqueued or put back), or a permission request by its id (settled).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Signal {
    Lock,
    Jobs,
    /// A permission request was settled: wakes the hook that waits for it.
    Permission,
}

impl Signal {
    pub fn name(self) -> &'static str {
        match self {
            Signal::Lock => "lock",
            Signal::Jobs => "jobs",
            Signal::Permission => "permission",
        }
    }

    pub fn parse(s: &str) -> Option<Signal> {
        match s {
            "lock" => Some(Signal::Lock),
            "jobs" => Some(Signal::Jobs),
            "permission" => Some(Signal::Permission),
            _ => None,
        }
    }

    /// The control-channel message that carries this signal between instances.
    pub fn announcement(self, name: &str) -> String {
        serde_json::json!({"kind": "signal", "signal": self.name(), "name": name}).to_string()
    }
}

#[derive(Debug)]
pub struct LiveEvent {
    pub session_id: Arc<str>,
    pub seq: u64,
    pub epoch: Arc<str>,
    pub event: Arc<str>,
}
