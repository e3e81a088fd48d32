//! Long polls waiting on a session's command or input queue, a lock or a job queue. A wait
//! registers here before it reads the store, and the fan-out wakes it when the bus says
//! something was queued or released (on any instance), so a long poll answers as soon as an
//! item arrives, never by re-reading on a timer. Entries disappear with their last waiter.

use std::sync::Arc;

use dashmap::DashMap;
use tokio::sync::Notify;

use crate::bus::Signal;
use crate::domain::control::ControlQueue;
use crate::metrics::Metrics;

/// What a wait is on, beside its name (a session id, a lock or job queue name).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum Topic {
    ControlQueue(ControlQueue),
    Signal(Signal),
}

type Key = (Arc<str>, Topic);

pub struct Waiters {
    map: Arc<DashMap<Key, Arc<Notify>>>,
    metrics: Arc<Metrics>,
    /// The tenant whose services register through this handle (`None`: the default one):
    /// their names are registered as scoped ids, as the bus carries them.
    tenant: Option<Arc<str>>,
}

/// One registered wait; dropping it (the poll answered, or its client went away) unregisters.
pub struct Waiting<'a> {
    waiters: &'a Waiters,
    key: Key,
    pub notify: Arc<Notify>,
}

impl Waiters {
    pub fn new(metrics: Arc<Metrics>) -> Waiters {
        Waiters {
            map: Arc::default(),
            metrics,
            tenant: None,
        }
    }

    /// The same waits, registered for `tenant`'s services (see [`crate::tenancy`]).
    pub fn scoped(&self, tenant: &Arc<str>) -> Waiters {
        Waiters {
            map: Arc::clone(&self.map),
            metrics: Arc::clone(&self.metrics),
            tenant: Some(Arc::clone(tenant)),
        }
    }

    fn name(&self, name: &str) -> Arc<str> {
        crate::scope::scoped(self.tenant.as_deref(), name).into()
    }

    pub fn register(&self, session_id: &str, queue: ControlQueue) -> Waiting<'_> {
        self.register_key((self.name(session_id), Topic::ControlQueue(queue)))
    }

    /// Registers a wait on a lock or job queue `name`.
    pub fn register_signal(&self, signal: Signal, name: &str) -> Waiting<'_> {
        self.register_key((self.name(name), Topic::Signal(signal)))
    }

    fn register_key(&self, key: Key) -> Waiting<'_> {
        let notify = Arc::clone(self.map.entry(key.clone()).or_default().value());
        self.metrics.long_polls.inc();
        Waiting {
            waiters: self,
            key,
            notify,
        }
    }

    /// Wakes every wait on the session's queue on this instance.
    pub fn wake(&self, session_id: &str, queue: ControlQueue) {
        self.wake_key(&(self.name(session_id), Topic::ControlQueue(queue)));
    }

    /// Wakes one wait on the lock or job queue `name` on this instance: one released lock or
    /// one new job is for one waiter, and waking them all would have every one of them retry
    /// against the store for it. A woken wait that goes away unanswered passes the wake-up
    /// on (tokio's `Notify`), and a wait also retries at the next time the store named.
    ///
    /// A settled permission request wakes every wait on it (each is a delivery of its hook,
    /// and each is answered).
    pub fn wake_signal(&self, signal: Signal, name: &str) {
        if let Some(n) = self.map.get(&(self.name(name), Topic::Signal(signal))) {
            match signal {
                Signal::Permission => n.notify_waiters(),
                Signal::Lock | Signal::Jobs => n.notify_one(),
            }
        }
    }

    fn wake_key(&self, key: &Key) {
        if let Some(n) = self.map.get(key) {
            n.notify_waiters();
        }
    }

    /// Sessions and queues with a wait registered (for tests).
    pub fn len(&self) -> usize {
        self.map.len()
    }

    pub fn is_empty(&self) -> bool {
        self.map.is_empty()
    }
}

impl Drop for Waiting<'_> {
    fn drop(&mut self) {
        self.waiters.metrics.long_polls.dec();
        // The map's reference and ours: nobody else waits on this key.
        self.waiters
            .map
            .remove_if(&self.key, |_, n| Arc::strong_count(n) <= 2);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_registered_wait_is_woken_and_the_entry_goes_with_it() {
        let w = Waiters::new(Arc::default());
        let waiting = w.register("s", ControlQueue::Input);
        {
            let notified = waiting.notify.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            w.wake("s", ControlQueue::Commands);
            w.wake("s", ControlQueue::Input);
            tokio::time::timeout(std::time::Duration::from_secs(1), notified)
                .await
                .expect("woken");
        }
        let second = w.register("s", ControlQueue::Input);
        drop(waiting);
        assert_eq!(w.len(), 1, "still one waiter");
        drop(second);
        assert!(w.is_empty());
    }
}
