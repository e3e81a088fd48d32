//! The hub: which local connections watch which session, and the fan-out to them.
//!
//! Each event is turned into a frame once per instance and the same bytes are queued for every
//! subscriber ([`super::queue`]: pushing never waits, and a connection over its byte budget is
//! cancelled, closed with 4008 by its own task), so one slow reader cannot slow the others or
//! grow memory without bound. The hub also remembers the last
//! seq it delivered per session, so the fan-out task can notice a gap in what the bus gave it.

use std::sync::Arc;

use axum::extract::ws::Utf8Bytes;
use dashmap::DashMap;

use super::protocol::EventFrames;
pub use super::queue::{queue, ConnHandle, ConnQueue, FramedEvent, FramedMessage, Outbound};
use crate::bus::LiveEvent;
use crate::metrics::Metrics;

struct SessionSubs {
    conns: Vec<ConnHandle>,
    /// Epoch and seq of the last event the hub delivered for this session.
    last: Option<(Arc<str>, u64)>,
}

/// What became of an event offered to the hub.
#[derive(Debug, PartialEq, Eq)]
pub enum Offer {
    /// Queued for every local subscriber, or nobody here watches the session.
    Delivered,
    /// Already delivered (seq at or below the last one): dropped.
    Duplicate,
    /// Events after this seq are missing: fill them from the store, then [`Hub::deliver`] it.
    Gap { after: u64 },
}

pub struct Hub {
    sessions: DashMap<Arc<str>, SessionSubs>,
    metrics: Arc<Metrics>,
    fill_budget: usize,
    frames: EventFrames,
}

impl Default for Hub {
    fn default() -> Hub {
        Hub::new(
            Arc::default(),
            crate::config::DEFAULT_WS_OUTBOUND_LIMIT_BYTES,
        )
    }
}

impl Hub {
    /// A hub whose connections have queues of `outbound_limit` bytes.
    pub fn new(metrics: Arc<Metrics>, outbound_limit: usize) -> Hub {
        Hub {
            sessions: DashMap::new(),
            metrics,
            fill_budget: outbound_limit / 4,
            frames: EventFrames::Envelope,
        }
    }

    /// The same hub, sending events as `frames`.
    pub fn with_frames(mut self, frames: EventFrames) -> Hub {
        self.frames = frames;
        self
    }

    pub fn frames(&self) -> EventFrames {
        self.frames
    }

    /// Queues a framed message (not a stored event) for every subscriber of the session.
    pub fn push_message(&self, session_id: &str, frame: String) {
        let Some(mut subs) = self.sessions.get_mut(session_id) else {
            return;
        };
        let sid = Arc::clone(subs.key());
        let message = Arc::new(FramedMessage {
            session_id: sid,
            frame: Utf8Bytes::from(frame),
        });
        subs.conns
            .retain(|c| c.push(Outbound::Message(Arc::clone(&message))));
        let emptied = subs.conns.is_empty();
        drop(subs);
        if emptied {
            self.drop_if_empty(session_id);
        }
    }

    /// Bytes of missed events the fan-out may push to a session's subscribers at once; a
    /// larger backlog is handed to the connections with [`Hub::hand_over`].
    pub fn fill_budget(&self) -> usize {
        self.fill_budget
    }

    /// Asks every subscriber of the session to read what it misses from the store itself, and
    /// forgets the session's last seq (each connection tracks its own).
    pub fn hand_over(&self, session_id: &str) {
        let Some(mut subs) = self.sessions.get_mut(session_id) else {
            return;
        };
        subs.last = None;
        let sid = Arc::clone(subs.key());
        subs.conns.retain(|c| {
            c.push(Outbound::CatchUp {
                session_id: Arc::clone(&sid),
            })
        });
        let emptied = subs.conns.is_empty();
        drop(subs);
        if emptied {
            self.drop_if_empty(session_id);
        }
    }

    pub fn metrics(&self) -> &Metrics {
        &self.metrics
    }

    /// Adds a connection to a session's subscribers (once).
    pub fn subscribe(&self, session_id: &str, conn: &ConnHandle) {
        let mut entry = self
            .sessions
            .entry(Arc::from(session_id))
            .or_insert_with(|| SessionSubs {
                conns: Vec::new(),
                last: None,
            });
        if !entry.conns.iter().any(|c| c.id == conn.id) {
            entry.conns.push(conn.clone());
        }
    }

    pub fn unsubscribe(&self, session_id: &str, conn_id: u64) {
        self.sessions.remove_if_mut(session_id, |_, subs| {
            subs.conns.retain(|c| c.id != conn_id);
            subs.conns.is_empty()
        });
    }

    /// Local subscriptions now (for metrics and tests).
    pub fn subscription_count(&self) -> usize {
        self.sessions.iter().map(|e| e.conns.len()).sum()
    }

    /// Sessions with a local subscriber now: how many, and up to `max` of them.
    pub fn sessions(&self, max: usize) -> (usize, Vec<Arc<str>>) {
        let some = self.sessions.iter().take(max).map(|e| Arc::clone(e.key()));
        (self.sessions.len(), some.collect())
    }

    /// Delivers the event if it is the next one of its session (one map lookup), or says
    /// why not.
    pub fn offer(&self, ev: &LiveEvent) -> Offer {
        let Some(mut subs) = self.sessions.get_mut(&*ev.session_id) else {
            return Offer::Delivered;
        };
        let verdict = match &subs.last {
            None => Offer::Delivered,
            Some((epoch, _)) if **epoch != *ev.epoch => {
                if ev.seq == 1 {
                    Offer::Delivered
                } else {
                    Offer::Gap { after: 0 }
                }
            }
            Some((_, last)) if ev.seq <= *last => Offer::Duplicate,
            Some((_, last)) if ev.seq == last + 1 => Offer::Delivered,
            Some((_, last)) => Offer::Gap { after: *last },
        };
        if verdict == Offer::Delivered {
            let emptied = self.fan_out(&mut subs, ev);
            drop(subs);
            if emptied {
                self.drop_if_empty(&ev.session_id);
            }
        }
        verdict
    }

    /// Delivers the event unless its seq was already delivered (used after a gap fill).
    pub fn deliver(&self, ev: &LiveEvent) {
        let Some(mut subs) = self.sessions.get_mut(&*ev.session_id) else {
            return;
        };
        if let Some((epoch, last)) = &subs.last {
            if **epoch == *ev.epoch && ev.seq <= *last {
                return;
            }
        }
        let emptied = self.fan_out(&mut subs, ev);
        drop(subs);
        if emptied {
            self.drop_if_empty(&ev.session_id);
        }
    }

    /// Frames the event once and queues the same bytes for every subscriber, dropping
    /// subscribers whose queue is gone or over budget. True when none is left.
    fn fan_out(&self, subs: &mut SessionSubs, ev: &LiveEvent) -> bool {
        subs.last = Some((Arc::clone(&ev.epoch), ev.seq));
        let frame = Utf8Bytes::from(self.frames.frame(
            crate::scope::local(&ev.session_id),
            ev.seq,
            &ev.epoch,
            &ev.event,
        ));
        let len = frame.as_str().len() as u64;
        let framed = Arc::new(FramedEvent {
            session_id: Arc::clone(&ev.session_id),
            seq: ev.seq,
            epoch: Arc::clone(&ev.epoch),
            frame,
            stamp: super::stamp::Stamp::of(&ev.event),
        });
        subs.conns
            .retain(|c| c.push(Outbound::Event(Arc::clone(&framed))));
        let n = subs.conns.len() as u64;
        self.metrics.delivered(n, len);
        subs.conns.is_empty()
    }

    fn drop_if_empty(&self, session_id: &str) {
        self.sessions
            .remove_if(session_id, |_, s| s.conns.is_empty());
    }

    /// Tells every subscriber of a deleted session, and forgets the session.
    pub fn session_deleted(&self, session_id: &str) {
        if let Some((sid, subs)) = self.sessions.remove(session_id) {
            for c in subs.conns {
                c.push(Outbound::Unsubscribed {
                    session_id: Arc::clone(&sid),
                    reason: "deleted",
                });
            }
        }
    }

    /// After messages may have been lost: the sessions whose last delivered seq is known (the
    /// fan-out task fills them from the store), after asking the subscribers of every other
    /// session to catch up on their own.
    pub fn resync_targets(&self) -> Vec<(Arc<str>, Arc<str>, u64)> {
        let mut known = Vec::new();
        for entry in self.sessions.iter() {
            match &entry.last {
                Some((epoch, seq)) => {
                    known.push((Arc::clone(entry.key()), Arc::clone(epoch), *seq))
                }
                None => {
                    for c in &entry.conns {
                        c.push(Outbound::CatchUp {
                            session_id: Arc::clone(entry.key()),
                        });
                    }
                }
            }
        }
        known
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ev(seq: u64, epoch: &str) -> LiveEvent {
        LiveEvent {
            session_id: "s".into(),
            seq,
            epoch: epoch.into(),
            event: format!("{{\"seq\":{seq}}}").into(),
        }
    }

    #[test]
    fn offers_in_order_and_spots_gaps() {
        let hub = Hub::default();
        let (h, mut q) = queue(1, 1 << 20);
        assert_eq!(hub.offer(&ev(5, "e")), Offer::Delivered, "nobody watches");
        hub.subscribe("s", &h);
        assert_eq!(hub.offer(&ev(5, "e")), Offer::Delivered);
        assert_eq!(hub.offer(&ev(5, "e")), Offer::Duplicate);
        assert_eq!(hub.offer(&ev(6, "e")), Offer::Delivered);
        assert_eq!(hub.offer(&ev(8, "e")), Offer::Gap { after: 6 });
        assert_eq!(hub.offer(&ev(3, "f")), Offer::Gap { after: 0 });
        assert_eq!(
            hub.offer(&ev(1, "f")),
            Offer::Delivered,
            "a new epoch starts at 1"
        );
        let seqs: Vec<u64> = std::iter::from_fn(|| q.try_recv())
            .map(|item| match item {
                Outbound::Event(e) => {
                    assert!(e.frame.as_str().contains(&format!("\"seq\":{}", e.seq)));
                    e.seq
                }
                other => panic!("{other:?}"),
            })
            .collect();
        assert_eq!(seqs, [5, 6, 1], "gaps and duplicates are not queued");
    }

    #[test]
    fn over_budget_connection_is_cancelled_and_dropped() {
        let hub = Hub::default();
        let (slow, _slow_q) = queue(1, 150);
        let (fast, mut fast_q) = queue(2, 1 << 20);
        hub.subscribe("s", &slow);
        hub.subscribe("s", &fast);
        for seq in 1..=4 {
            hub.deliver(&ev(seq, "e"));
        }
        assert!(slow.is_closed());
        assert!(!fast.is_closed());
        assert_eq!(hub.subscription_count(), 1);
        let mut got = 0;
        while let Some(item) = fast_q.try_recv() {
            fast_q.release(&item);
            got += 1;
        }
        assert_eq!(got, 4);
        assert_eq!(fast.queued_bytes(), 0);
    }

    #[test]
    fn deletion_tells_subscribers() {
        let hub = Hub::default();
        let (h, mut q) = queue(1, 1 << 20);
        hub.subscribe("s", &h);
        hub.session_deleted("s");
        assert!(matches!(
            q.try_recv().unwrap(),
            Outbound::Unsubscribed {
                reason: "deleted",
                ..
            }
        ));
        assert_eq!(hub.subscription_count(), 0);
    }
}
