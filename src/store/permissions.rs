//! Permission requests, one implementation for both stores. A request is opened once (a hook
//! delivered again finds the one it opened) and settled once: the first settlement wins in
//! one atomic step, which also wakes the request's holder on every instance. Listings read a
//! request as expired once past its deadline, whether or not its holder lived to mark it.

use async_trait::async_trait;

use super::StoreError;
pub use crate::domain::permissions::PermissionLimits;
use crate::domain::permissions::{Record, Status};

/// What opening a request found.
#[derive(Debug, Clone, PartialEq)]
pub enum Opened {
    /// Stored now, pending, with the deadline the store set.
    New(Record),
    /// A request of this id was opened before (a hook delivered again): as it stands.
    Existing(Record),
}

#[async_trait]
pub trait PermissionStore: Send + Sync + 'static {
    /// Opens request `id` (its JSON) waiting until `expires_at_ms`, unless one with this id
    /// exists. [`StoreError::QueueFull`] when `max_pending` requests already wait.
    async fn open(
        &self,
        id: &str,
        request: &str,
        expires_at_ms: i64,
        limits: PermissionLimits,
    ) -> Result<Opened, StoreError>;

    /// Settles a pending request with `status` and `decision` (JSON), announcing it to every
    /// instance's holder. `(record, true)` for the first settlement; `(record, false)` with
    /// the request as it stands when it was settled before, or is past its deadline (read as
    /// expired; only [`Status::Expired`] and [`Status::Abandoned`] settle it then). `None`
    /// for an unknown id.
    async fn settle(
        &self,
        id: &str,
        status: Status,
        decision: &str,
    ) -> Result<Option<(Record, bool)>, StoreError>;

    async fn permission(&self, id: &str) -> Result<Option<Record>, StoreError>;

    /// The requests, newest first: only those still waiting with `pending_only`, at most
    /// `limit`.
    async fn permissions(
        &self,
        pending_only: bool,
        limit: usize,
    ) -> Result<Vec<Record>, StoreError>;

    /// The rules as last set (JSON text), if ever.
    async fn rules(&self) -> Result<Option<String>, StoreError>;

    async fn set_rules(&self, rules: &str) -> Result<(), StoreError>;
}
