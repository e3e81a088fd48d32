//! One connection's queue: what the hub has for it, with a byte budget. Pushing never waits;
//! a connection over its budget is cancelled (its own task closes it with 4008), and only a
//! push to an empty queue wakes it, so a burst of frames costs one wake-up.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;

use axum::extract::ws::Utf8Bytes;
use parking_lot::Mutex;
use tokio::sync::Notify;

/// Bytes charged to a queue for a message that is not an event frame.
const CONTROL_COST: usize = 64;

/// What the hub queues for a connection. Events and messages are framed once and shared by
/// every subscriber: queuing one for a connection takes one reference, and the queue's slot
/// stays small.
#[derive(Debug)]
pub enum Outbound {
    /// A stored event, already framed.
    Event(Arc<FramedEvent>),
    /// The session is gone for this connection (e.g. `deleted`).
    Unsubscribed {
        session_id: Arc<str>,
        reason: &'static str,
    },
    /// The hub could not fill a possible gap for this session itself: read from the store
    /// from the last seq this connection sent.
    CatchUp { session_id: Arc<str> },
    /// A framed message about the session that is not a stored event (`command`, `chain`).
    Message(Arc<FramedMessage>),
}

/// A stored event framed for the session's subscribers on this instance.
#[derive(Debug)]
pub struct FramedEvent {
    pub session_id: Arc<str>,
    pub seq: u64,
    pub epoch: Arc<str>,
    pub frame: Utf8Bytes,
    /// When it was appended and queued, for the latency metrics.
    pub stamp: super::stamp::Stamp,
}

/// A framed message about a session that is not a stored event.
#[derive(Debug)]
pub struct FramedMessage {
    pub session_id: Arc<str>,
    pub frame: Utf8Bytes,
}

/// A connection's queue: a deque under a lock held only to push or pop, and a wake-up. It
/// allocates nothing until something is queued and gives its memory back once drained, so an
/// idle connection costs a few dozen bytes here (a channel would allocate a block of slots up
/// front for every connection).
#[derive(Debug, Default)]
struct Shared {
    items: Mutex<VecDeque<Outbound>>,
    ready: Notify,
    queued: AtomicUsize,
    /// Set when the connection must go (over budget, or gone); its task is woken through
    /// `ready`. One flag and the one wake-up the queue has anyway: no per-connection token.
    dead: AtomicBool,
}

/// Capacity kept by a drained queue; a larger one is freed.
const KEEP_CAPACITY: usize = 16;

/// The hub's side of one connection's queue.
#[derive(Clone, Debug)]
pub struct ConnHandle {
    pub id: u64,
    shared: Arc<Shared>,
    limit: usize,
}

/// The connection's side of its queue.
pub struct ConnQueue {
    shared: Arc<Shared>,
}

impl ConnQueue {
    /// The next queued message, waiting for one if there is none; `None` once the
    /// connection has been closed (over its budget).
    pub async fn recv(&mut self) -> Option<Outbound> {
        loop {
            if !self.ready().await {
                return None;
            }
            if let Some(item) = self.try_recv() {
                return Some(item);
            }
        }
    }

    /// Waits until a message is queued, and takes none: `false` once the connection has been
    /// closed (over its budget).
    pub async fn ready(&mut self) -> bool {
        loop {
            if self.shared.dead.load(Ordering::Acquire) {
                return false;
            }
            if !self.shared.items.lock().is_empty() {
                return true;
            }
            // A push or close between the checks above and this wait leaves a permit: no lost
            // wake-up.
            self.shared.ready.notified().await;
        }
    }

    pub fn try_recv(&mut self) -> Option<Outbound> {
        let mut items = self.shared.items.lock();
        let item = items.pop_front();
        if items.is_empty() && items.capacity() > KEEP_CAPACITY {
            *items = VecDeque::new();
        }
        item
    }

    /// Gives back the budget of a message once it has been written to the socket.
    pub fn release(&self, item: &Outbound) {
        self.shared.queued.fetch_sub(cost(item), Ordering::AcqRel);
    }
}

fn cost(item: &Outbound) -> usize {
    match item {
        Outbound::Event(e) => e.frame.as_str().len(),
        Outbound::Message(m) => m.frame.as_str().len(),
        _ => CONTROL_COST,
    }
}

/// A new queue with a budget of `limit` bytes.
pub fn queue(id: u64, limit: usize) -> (ConnHandle, ConnQueue) {
    let shared = Arc::new(Shared::default());
    (
        ConnHandle {
            id,
            shared: Arc::clone(&shared),
            limit,
        },
        ConnQueue { shared },
    )
}

impl ConnHandle {
    /// Queues without waiting. `false` when the connection is gone or just went over budget.
    pub(super) fn push(&self, item: Outbound) -> bool {
        if self.shared.dead.load(Ordering::Acquire) {
            return false;
        }
        let c = cost(&item);
        if self.shared.queued.fetch_add(c, Ordering::AcqRel) + c > self.limit {
            self.close();
            return false;
        }
        let mut items = self.shared.items.lock();
        // Only a push to an empty queue wakes the connection: one wake-up per batch. Its task
        // empties the queue before it waits again, so what follows is taken with this one.
        let wake = items.is_empty();
        items.push_back(item);
        drop(items);
        if wake {
            self.shared.ready.notify_one();
        }
        true
    }

    /// Ends the connection: nothing more is queued for it, and its task is told.
    pub fn close(&self) {
        self.shared.dead.store(true, Ordering::Release);
        self.shared.ready.notify_one();
    }

    pub fn is_closed(&self) -> bool {
        self.shared.dead.load(Ordering::Acquire)
    }

    /// The connection's wake-up, for a write that may block on a client that stopped reading
    /// to learn of a close (it also fires when something is queued: check [`Self::is_closed`]).
    pub fn closing(&self) -> tokio::sync::futures::Notified<'_> {
        self.shared.ready.notified()
    }

    /// Bytes waiting in the queue.
    pub fn queued_bytes(&self) -> usize {
        self.shared.queued.load(Ordering::Acquire)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_connection_is_woken_once_per_batch() {
        use futures::FutureExt;
        let (h, mut q) = queue(1, 1 << 20);
        let msg = |n: u64| {
            Outbound::Message(Arc::new(FramedMessage {
                session_id: "s".into(),
                frame: Utf8Bytes::from(n.to_string()),
            }))
        };
        assert!(h.push(msg(1)));
        assert!(h.shared.ready.notified().now_or_never().is_some(), "woken");
        // Its task has not taken the first yet: the second joins the batch without a wake-up.
        assert!(h.push(msg(2)));
        assert!(h.shared.ready.notified().now_or_never().is_none());
        assert_eq!(std::iter::from_fn(|| q.try_recv()).count(), 2);
        assert!(h.push(msg(3)), "a push to the emptied queue wakes it again");
        assert!(h.shared.ready.notified().now_or_never().is_some());
    }
}
