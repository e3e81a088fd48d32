//! The instances' figures in this process (one instance: its own), beside the state's mutex
//! and not charged to `MEMORY_STORE_MAX_BYTES` (one small entry per instance).

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use parking_lot::Mutex;

use super::MemoryStore;
use crate::store::instances::InstanceStore;
use crate::store::StoreError;

#[derive(Default)]
pub(super) struct InstanceTable(Mutex<BTreeMap<String, (Instant, String)>>);

#[async_trait]
impl InstanceStore for MemoryStore {
    async fn report_instance(
        &self,
        id: &str,
        figures: &str,
        ttl: Duration,
    ) -> Result<(), StoreError> {
        let until = Instant::now() + ttl;
        let mut all = self.instances.0.lock();
        all.retain(|_, (t, _)| *t > Instant::now());
        all.insert(id.to_string(), (until, figures.to_string()));
        Ok(())
    }

    async fn instances(&self) -> Result<Vec<String>, StoreError> {
        let now = Instant::now();
        let all = self.instances.0.lock();
        Ok(all
            .values()
            .filter(|(t, _)| *t > now)
            .map(|(_, f)| f.clone())
            .collect())
    }
}
