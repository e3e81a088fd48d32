//! The bus a store feeds: what this instance must hear from every instance, in publish order.

use async_trait::async_trait;
use tokio::sync::broadcast;

use crate::bus::BusMessage;

#[async_trait]
pub trait Bus: Send + Sync + 'static {
    /// The ordered feed of stored events and notifications, for the fan-out.
    fn subscribe(&self) -> broadcast::Receiver<BusMessage>;

    /// `Ok` when the store answers and its bus is live; otherwise why not.
    async fn readiness(&self) -> Result<(), String>;
}
