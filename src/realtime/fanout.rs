//! The instance's one fan-out task: reads the store's bus in order and hands each event to the
//! hub, and each wake-up to the waiting long polls. When the hub reports a gap (a pub/sub message was lost) or the bus reports that
//! messages may have been lost (pub/sub reconnected, or this task lagged), the missing events
//! are read from the store and delivered first, so subscribers still see every seq in order.
//!
//! A resync whose store read fails (the pub/sub connection came back before the command
//! connection did) is tried again with backoff until it succeeds: after a resubscribe there
//! may be no later event to reveal what was missed.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::broadcast::{self, error::RecvError};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use super::hub::{Hub, Offer};
use super::protocol::REPLAY_PAGE;
use crate::bus::{BusMessage, LiveEvent};
use crate::domain::control::ControlQueue;
use crate::scope::local;
use crate::service::waiters::Waiters;
use crate::store::Pages;
use crate::tenancy::Tenants;

/// Reads `bus` until `shutdown`: events and chain and command frames go to `hub`, wake-ups
/// to `waiters`; gaps are filled from each session's tenant's store.
pub async fn run(
    tenants: Arc<Tenants>,
    hub: Arc<Hub>,
    waiters: Arc<Waiters>,
    mut bus: broadcast::Receiver<BusMessage>,
    shutdown: CancellationToken,
) {
    let mut retry = Retry::default();
    loop {
        let retry_due = retry.due();
        let msg = tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = retry_due => Ok(BusMessage::Resync),
            m = bus.recv() => m,
        };
        match msg {
            Ok(BusMessage::Event(ev)) => handle_event(&tenants, &hub, &ev).await,
            Ok(BusMessage::SessionDeleted(sid)) => hub.session_deleted(&sid),
            Ok(BusMessage::Command { session_id, record }) => {
                if let Some(frame) = hub.frames().command(local(&session_id), &record) {
                    hub.push_message(&session_id, frame);
                }
                waiters.wake(&session_id, ControlQueue::Commands);
            }
            Ok(BusMessage::Wake { session_id, queue }) => waiters.wake(&session_id, queue),
            Ok(BusMessage::Signal { signal, name }) => waiters.wake_signal(signal, &name),
            Ok(BusMessage::Chain { session_id, chain }) => {
                if let Some(frame) = hub.frames().chain(local(&session_id), &chain) {
                    hub.push_message(&session_id, frame);
                }
            }
            Ok(BusMessage::Resync) => retry.after(resync(&tenants, &hub).await),
            Err(RecvError::Lagged(n)) => {
                tracing::warn!(
                    missed = n,
                    "fan-out lagged behind the bus; resyncing from the store"
                );
                retry.after(resync(&tenants, &hub).await);
            }
            Err(RecvError::Closed) => return,
        }
    }
}

const RETRY_FIRST: Duration = Duration::from_millis(100);
const RETRY_MAX: Duration = Duration::from_secs(2);

/// When to resync again after a resync that could not read the store.
#[derive(Default)]
struct Retry {
    at: Option<Instant>,
    delay: Duration,
}

impl Retry {
    /// Completes when a retry is due (never, when none is pending).
    fn due(&self) -> impl std::future::Future<Output = ()> + 'static {
        let at = self.at;
        async move {
            match at {
                Some(t) => tokio::time::sleep_until(t).await,
                None => std::future::pending().await,
            }
        }
    }

    fn after(&mut self, complete: bool) {
        if complete {
            *self = Retry::default();
        } else {
            self.delay = (self.delay * 2).clamp(RETRY_FIRST, RETRY_MAX);
            self.at = Some(Instant::now() + self.delay);
        }
    }
}

async fn handle_event(tenants: &Tenants, hub: &Hub, ev: &LiveEvent) {
    match hub.offer(ev) {
        Offer::Delivered | Offer::Duplicate => {}
        Offer::Gap { after } => {
            tracing::warn!(session = %local(&ev.session_id), after, seq = ev.seq, "gap in pub/sub; filling from the store");
            hub.metrics().gap_fills.inc();
            fill(
                tenants,
                hub,
                &ev.session_id,
                &ev.epoch,
                after,
                Some(ev.seq - 1),
            )
            .await;
            // Delivered even if the fill failed: each connection then sees the gap itself and
            // reads the store, or closes so that its client resumes with `since`.
            hub.deliver(ev);
        }
    }
}

/// Fills every locally watched session from the store; false if some read failed.
async fn resync(tenants: &Tenants, hub: &Hub) -> bool {
    hub.metrics().resyncs.inc();
    let mut complete = true;
    for (session_id, epoch, last) in hub.resync_targets() {
        complete &= fill(tenants, hub, &session_id, &epoch, last, None).await;
    }
    if !complete {
        tracing::warn!("resync could not read the store; trying again shortly");
    }
    complete
}

/// Delivers the stored events of `session_id` after `after` (up to `until`, or all), as long
/// as the stored stream is still `epoch`; a backlog over the hub's fill budget is handed to
/// the connections instead. False when a store read failed.
async fn fill(
    tenants: &Tenants,
    hub: &Hub,
    session_id: &Arc<str>,
    epoch: &Arc<str>,
    after: u64,
    until: Option<u64>,
) -> bool {
    // The stream is read in its tenant's store, by the id that tenant knows it by.
    let (tenant, id) = tenants.of_scoped(session_id);
    let mut pages = Pages::new(
        &*tenant.stores.events,
        id,
        Some(Arc::clone(epoch)),
        after,
        until,
    );
    let mut pushed = 0;
    loop {
        let page = match pages.next(REPLAY_PAGE).await {
            Ok(Some(page)) => page,
            Ok(None) => return true,
            Err(e) => {
                tracing::warn!(session = %id, error = %e, "could not fill gap from the store");
                return false;
            }
        };
        pushed += page.events.iter().map(|e| e.len()).sum::<usize>();
        if pushed > hub.fill_budget() {
            // A backlog this large would push fast readers over their queue budget at once:
            // let each connection read it from the store at the pace of its own socket.
            hub.hand_over(session_id);
            return true;
        }
        hub.metrics().filled_events.inc_by(page.events.len() as u64);
        for (i, event) in page.events.into_iter().enumerate() {
            hub.deliver(&LiveEvent {
                session_id: Arc::clone(session_id),
                seq: page.start + i as u64,
                epoch: Arc::clone(&page.epoch),
                event,
            });
        }
    }
}
