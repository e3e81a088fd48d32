//! The one deadline of every write to a WebSocket: the hub closing the connection for being
//! over its budget, or the socket taking nothing for `WS_WRITE_TIMEOUT_SECS`.

use std::time::Duration;

use super::{close, End};

/// A write to the socket that ends the connection with 4008 when the hub closes it for being
/// over its budget, or when the socket takes no more for `limit` (`WS_WRITE_TIMEOUT_SECS`): the
/// one deadline of live frames and replays alike. The usual write completes at once and sets no
/// timer.
pub(super) async fn bounded<F>(
    write: F,
    closed: impl std::future::Future<Output = ()>,
    limit: Duration,
) -> Result<(), End>
where
    F: std::future::Future<Output = Result<(), axum::Error>>,
{
    tokio::select! {
        biased;
        r = write => r.map_err(|_| End::Gone),
        _ = closed => Err(End::Close(close::SLOW_CONSUMER, "slow_consumer")),
        _ = Deadline::after(limit) => Err(End::Close(close::SLOW_CONSUMER, "slow_consumer")),
    }
}

/// A timer set on its first poll, on the heap: the usual write completes before it is ever
/// polled, and an idle connection's future holds no timer (it is in every idle connection).
struct Deadline {
    limit: Duration,
    sleep: Option<std::pin::Pin<Box<tokio::time::Sleep>>>,
}

impl Deadline {
    fn after(limit: Duration) -> Deadline {
        Deadline { limit, sleep: None }
    }
}

impl std::future::Future for Deadline {
    type Output = ();

    fn poll(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<()> {
        let limit = self.limit;
        self.sleep
            .get_or_insert_with(|| Box::pin(tokio::time::sleep(limit)))
            .as_mut()
            .poll(cx)
    }
}
