//! The instance's one fan-out task: reads the store's bus in order and hands each event to the
//! hub. When the hub reports a gap (a pub/sub message was lost) or the bus reports that
//! messages may have been lost (pub/sub reconnected, or this task lagged), the missing events
//! are read from the store and delivered first, so subscribers still see every seq in order.

use std::sync::Arc;

use tokio::sync::broadcast::{self, error::RecvError};
use tokio_util::sync::CancellationToken;

use super::hub::{Hub, Offer};
use super::protocol::REPLAY_PAGE;
use crate::model::{BusMessage, LiveEvent};
use crate::store::{Pages, Store};

pub async fn run(
    store: Arc<dyn Store>,
    hub: Arc<Hub>,
    mut bus: broadcast::Receiver<BusMessage>,
    shutdown: CancellationToken,
) {
    loop {
        let msg = tokio::select! {
            _ = shutdown.cancelled() => return,
            m = bus.recv() => m,
        };
        match msg {
            Ok(BusMessage::Event(ev)) => handle_event(&*store, &hub, &ev).await,
            Ok(BusMessage::SessionDeleted(sid)) => hub.session_deleted(&sid),
            Ok(BusMessage::Resync) => resync(&*store, &hub).await,
            Err(RecvError::Lagged(n)) => {
                tracing::warn!(
                    missed = n,
                    "fan-out lagged behind the bus; resyncing from the store"
                );
                resync(&*store, &hub).await;
            }
            Err(RecvError::Closed) => return,
        }
    }
}

async fn handle_event(store: &dyn Store, hub: &Hub, ev: &LiveEvent) {
    match hub.offer(ev) {
        Offer::Delivered | Offer::Duplicate => {}
        Offer::Gap { after } => {
            tracing::warn!(session = %ev.session_id, after, seq = ev.seq, "gap in pub/sub; filling from the store");
            fill(
                store,
                hub,
                &ev.session_id,
                &ev.epoch,
                after,
                Some(ev.seq - 1),
            )
            .await;
            hub.deliver(ev);
        }
    }
}

async fn resync(store: &dyn Store, hub: &Hub) {
    for (session_id, epoch, last) in hub.resync_targets() {
        fill(store, hub, &session_id, &epoch, last, None).await;
    }
}

/// Delivers the stored events of `session_id` after `after` (up to `until`, or all), as long
/// as the stored stream is still `epoch`. A store failure is logged and leaves the gap to the
/// connections' own check, which reads again when the next event shows it.
async fn fill(
    store: &dyn Store,
    hub: &Hub,
    session_id: &Arc<str>,
    epoch: &Arc<str>,
    after: u64,
    until: Option<u64>,
) {
    let mut pages = Pages::new(store, session_id, Some(Arc::clone(epoch)), after, until);
    loop {
        let page = match pages.next(REPLAY_PAGE).await {
            Ok(Some(page)) => page,
            Ok(None) => return,
            Err(e) => {
                tracing::warn!(session = %session_id, error = %e, "could not fill gap from the store");
                return;
            }
        };
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
