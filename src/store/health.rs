//! Whether the store can serve: what `/ready` reports.

use async_trait::async_trait;

#[async_trait]
pub trait StoreHealth: Send + Sync + 'static {
    /// `Ok` when the store answers and its feed of the bus is live; otherwise why not.
    async fn readiness(&self) -> Result<(), String>;
}
