//! A session's queues (commands and input), one implementation for both. Each item expires on
//! its own clock; reading can take what it returns in the same atomic step; acknowledging is
//! idempotent. What differs between the queues is data ([`ControlQueue`]'s policy), not code.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;

use super::StoreError;
use crate::domain::control::ControlQueue;

/// An item that was acknowledged: its record, its session, and whether this was the first ack.
#[derive(Debug, Clone)]
pub struct Acked {
    pub session_id: String,
    pub record: Arc<str>,
    pub first: bool,
}

#[async_trait]
pub trait ControlStore: Send + Sync + 'static {
    /// Queues an item (its stored record) for `ttl` and announces it on every instance: a
    /// command as [`crate::bus::BusMessage::Command`], anything else as a wake-up of the
    /// session's long polls on that queue.
    async fn push(
        &self,
        queue: ControlQueue,
        session_id: &str,
        item_id: &str,
        record: &str,
        ttl: Duration,
    ) -> Result<(), StoreError>;

    /// The session's items that are neither taken, acknowledged nor expired, oldest first.
    /// With `take`, what is returned leaves the queue in the same atomic step; it stays
    /// acknowledgeable until it expires only if the queue [keeps taken items](ControlQueue::keeps_taken).
    async fn pending(
        &self,
        queue: ControlQueue,
        session_id: &str,
        take: bool,
    ) -> Result<Vec<Arc<str>>, StoreError>;

    /// Acknowledges an item with `ack` (JSON) and takes it off the queue. `None` for an
    /// unknown or expired item, or one of another session than `session_id` (when given);
    /// `first` is false for a repeated acknowledgement.
    async fn ack(
        &self,
        queue: ControlQueue,
        session_id: Option<&str>,
        item_id: &str,
        ack: &str,
    ) -> Result<Option<Acked>, StoreError>;
}
