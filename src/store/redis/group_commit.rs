//! Group commit on one server: the appends of concurrent requests stored by one script call.
//! A request queues its share ([`super::events::Share`]) and waits; one task takes whatever
//! is queued when a call can start (nothing waits for company: a lone append goes at once),
//! keeps [`CALLS_IN_FLIGHT`] calls going on the command connection, and answers each request
//! with its events' replies. Redis's cost per call (reading the command, setting up the
//! script, replying, and the `MULTI`/`EXEC` around its writes in the AOF) is then paid once
//! per call, not once per request.
//!
//! A call holds shares of one key space only (one tenant's: its session index and channel):
//! what is queued is split into one call per key space, each of at most [`MAX_BATCH_EVENTS`]
//! events and `MAX_BATCH_BYTES` of them, as a batch post may; a share that does not fit
//! waits for the next round. Each request's events stay together
//! and in order; requests in one call are in the order they were queued. A call that fails
//! fails every request in it (nothing of theirs was answered, and a retry with the same
//! `eventId`s stores each event once). Under `REDIS_WAIT_REPLICAS` the call waits for the
//! replicas before any of its requests is answered.

use std::sync::Arc;

use futures::stream::{FuturesUnordered, StreamExt};
use redis::cluster_routing::{Route, SlotAddr};
use redis::Value;
use tokio::sync::{mpsc, oneshot};

use super::events::{call, wait_on, Head, Share};
use super::links::Links;
use super::measured::Measured;
use crate::domain::event::MAX_BATCH_EVENTS;
use crate::metrics::Metrics;
use crate::store::StoreError;

/// Append calls the group commit keeps going at once: while Redis runs one, the next is
/// gathered and sent, so Redis never waits for the gateway between calls.
pub const CALLS_IN_FLIGHT: usize = 2;

type Replies = Result<Vec<Vec<Value>>, StoreError>;

struct Queued {
    head: Head,
    share: Share,
    done: oneshot::Sender<Replies>,
}

/// The queue of one server's appends; its task ends when the last handle is dropped.
pub(super) struct GroupCommit {
    queue: mpsc::UnboundedSender<Queued>,
}

impl GroupCommit {
    pub(super) fn start(
        links: Arc<Links>,
        metrics: Arc<Metrics>,
        wait_replicas: Option<(u64, std::time::Duration)>,
        max_bytes: usize,
    ) -> GroupCommit {
        let (queue, rx) = mpsc::unbounded_channel();
        let committer = Committer {
            links,
            metrics,
            wait_replicas,
            max_bytes,
        };
        tokio::spawn(committer.run(rx));
        GroupCommit { queue }
    }

    /// Stores `share` in the next call of `head`'s key space: its events' replies.
    pub(super) async fn append(&self, head: Head, share: Share) -> Replies {
        let (done, answer) = oneshot::channel();
        self.queue
            .send(Queued { head, share, done })
            .map_err(|_| StoreError::Unavailable("the store is shutting down".into()))?;
        answer
            .await
            .unwrap_or_else(|_| Err(StoreError::Unavailable("the append was dropped".into())))
    }
}

struct Committer {
    links: Arc<Links>,
    metrics: Arc<Metrics>,
    wait_replicas: Option<(u64, std::time::Duration)>,
    max_bytes: usize,
}

impl Committer {
    async fn run(self, mut rx: mpsc::UnboundedReceiver<Queued>) {
        let mut flying = FuturesUnordered::new();
        let mut held: Option<Queued> = None;
        loop {
            if flying.len() >= CALLS_IN_FLIGHT {
                flying.next().await;
                continue;
            }
            let first = match held.take() {
                Some(q) => q,
                None => tokio::select! {
                    q = rx.recv() => match q {
                        Some(q) => q,
                        None => break,
                    },
                    Some(()) = flying.next(), if !flying.is_empty() => continue,
                },
            };
            for group in self.gather(first, &mut rx, &mut held) {
                flying.push(self.commit(group));
            }
        }
        while flying.next().await.is_some() {}
    }

    /// `first` and what else is queued, as one group per key space (in the order queued);
    /// the first that does not fit its group is held for the next round.
    fn gather(
        &self,
        first: Queued,
        rx: &mut mpsc::UnboundedReceiver<Queued>,
        held: &mut Option<Queued>,
    ) -> Vec<Vec<Queued>> {
        let mut groups: Vec<(usize, usize, Vec<Queued>)> = Vec::new();
        let mut next = Some(first);
        while let Some(q) = next.take() {
            let (events, bytes) = (q.share.events, q.share.bytes);
            match groups
                .iter_mut()
                .find(|g| g.2[0].head.index == q.head.index)
            {
                None => groups.push((events, bytes, vec![q])),
                Some(g) if g.0 + events <= MAX_BATCH_EVENTS && g.1 + bytes <= self.max_bytes => {
                    g.0 += events;
                    g.1 += bytes;
                    g.2.push(q);
                }
                Some(_) => {
                    *held = Some(q);
                    break;
                }
            }
            next = rx.try_recv().ok();
        }
        groups.into_iter().map(|g| g.2).collect()
    }

    async fn commit(&self, group: Vec<Queued>) {
        let mut conn = Measured {
            raw: self.links.conn(),
            metrics: Arc::clone(&self.metrics),
        };
        let shares: Vec<&Share> = group.iter().map(|q| &q.share).collect();
        let mut result = call(&mut conn, &group[0].head, &shares).await;
        if let (Ok(_), Some((replicas, timeout))) = (&result, self.wait_replicas) {
            // One server: the route is not used.
            let node = Route::new(0, SlotAddr::Master);
            if let Err(e) = wait_on(&mut conn, replicas, timeout, node).await {
                result = Err(e);
            }
        }
        match result {
            Ok(replies) => {
                for (q, r) in group.into_iter().zip(replies) {
                    let _ = q.done.send(Ok(r));
                }
            }
            Err(e) => {
                for q in group {
                    let _ = q.done.send(Err(e.clone()));
                }
            }
        }
    }
}
