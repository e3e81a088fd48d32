//! The instances that serve: each one's latest figures for the operations view
//! (`GET /api/ops/summary`), recorded every `OPS_REPORT_SECS` by the instance itself and
//! forgotten when it stops recording. On Redis one HASH for every instance, so a summary is
//! one read whichever instance serves it; on the embedded store a map in the process.

use std::time::Duration;

use async_trait::async_trait;

use super::StoreError;

#[async_trait]
pub trait InstanceStore: Send + Sync + 'static {
    /// Records `id`'s figures (a JSON object), to be forgotten `ttl` from now unless recorded
    /// again.
    async fn report_instance(
        &self,
        id: &str,
        figures: &str,
        ttl: Duration,
    ) -> Result<(), StoreError>;

    /// Every instance's latest figures still within their `ttl`, each once, in id order.
    async fn instances(&self) -> Result<Vec<String>, StoreError>;
}
