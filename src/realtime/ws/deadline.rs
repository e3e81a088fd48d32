//! The one deadline of every write to a WebSocket: the hub closing the connection for being
//! over its budget, or the socket taking nothing for `WS_WRITE_TIMEOUT_SECS`.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use tokio::sync::futures::Notified;

use super::{close, End};
use crate::realtime::hub::ConnHandle;

/// A write to the socket that ends the connection with 4008 when the hub closes it for being
/// over its budget, or when the socket takes no more for `limit` (`WS_WRITE_TIMEOUT_SECS`): the
/// one deadline of live frames and replays alike. The usual write completes at once and sets
/// nothing up; only a write that waits puts its wake-up and timer on the heap. (A hand-written
/// future, not a `select!`: every connection's future is as large as its largest state, and
/// the write is in the largest.)
pub(super) fn bounded<'a, F>(write: F, handle: &'a ConnHandle, limit: Duration) -> Bounded<'a, F>
where
    F: Future<Output = Result<(), axum::Error>> + Unpin,
{
    Bounded {
        write,
        handle,
        limit,
        waiting: None,
    }
}

pub(super) struct Bounded<'a, F> {
    write: F,
    handle: &'a ConnHandle,
    limit: Duration,
    /// Set when the write first waits: the hub's wake-up (for a close) and the timer.
    waiting: Option<Box<Waiting<'a>>>,
}

struct Waiting<'a> {
    closed: Pin<Box<Notified<'a>>>,
    sleep: Pin<Box<tokio::time::Sleep>>,
}

const SLOW: End = End::Close(close::SLOW_CONSUMER, "slow_consumer");

impl<F> Future for Bounded<'_, F>
where
    F: Future<Output = Result<(), axum::Error>> + Unpin,
{
    type Output = Result<(), End>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<(), End>> {
        let this = &mut *self;
        if let Poll::Ready(r) = Pin::new(&mut this.write).poll(cx) {
            return Poll::Ready(r.map_err(|_| End::Gone));
        }
        let handle = this.handle;
        let limit = this.limit;
        let waiting = this.waiting.get_or_insert_with(|| {
            Box::new(Waiting {
                closed: Box::pin(handle.closing()),
                sleep: Box::pin(tokio::time::sleep(limit)),
            })
        });
        // The hub's wake-up also means "queued"; only the flag says "closed". Register before
        // checking it, so a close between the two is not missed.
        while waiting.closed.as_mut().poll(cx).is_ready() {
            waiting.closed.set(handle.closing());
        }
        if handle.is_closed() {
            return Poll::Ready(Err(SLOW));
        }
        if waiting.sleep.as_mut().poll(cx).is_ready() {
            return Poll::Ready(Err(SLOW));
        }
        Poll::Pending
    }
}
