//! The state every handler shares: config, store, hub, identity, and the shutdown signal.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Instant;

use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::config::Config;
use crate::realtime::hub::Hub;
use crate::store::Store;

#[derive(Clone)]
pub struct AppState(Arc<Inner>);

struct Inner {
    config: Config,
    store: Arc<dyn Store>,
    hub: Arc<Hub>,
    instance_id: Arc<str>,
    started: Instant,
    /// Cancelled when the instance shuts down; connections close with 1001 on it.
    shutdown: CancellationToken,
    /// Every WebSocket connection task, so shutdown can wait for their close frames.
    connections: TaskTracker,
    next_connection_id: AtomicU64,
}

impl AppState {
    pub fn new(
        config: Config,
        store: Arc<dyn Store>,
        hub: Arc<Hub>,
        instance_id: Arc<str>,
        shutdown: CancellationToken,
    ) -> AppState {
        AppState(Arc::new(Inner {
            config,
            store,
            hub,
            instance_id,
            started: Instant::now(),
            shutdown,
            connections: TaskTracker::new(),
            next_connection_id: AtomicU64::new(1),
        }))
    }

    pub fn config(&self) -> &Config {
        &self.0.config
    }

    pub fn store(&self) -> &dyn Store {
        &*self.0.store
    }

    pub fn hub(&self) -> &Hub {
        &self.0.hub
    }

    /// Chain changes on this instance's store; chains live as long as sessions.
    pub fn chains(&self) -> crate::chains::Chains<'_> {
        crate::chains::Chains {
            store: self.store(),
            ttl: std::time::Duration::from_secs(self.config().session_ttl_secs),
        }
    }

    pub fn metrics(&self) -> &crate::metrics::Metrics {
        self.0.hub.metrics()
    }

    pub fn instance_id(&self) -> &str {
        &self.0.instance_id
    }

    pub fn uptime_secs(&self) -> f64 {
        self.0.started.elapsed().as_secs_f64()
    }

    pub fn shutdown_token(&self) -> &CancellationToken {
        &self.0.shutdown
    }

    pub fn connections(&self) -> &TaskTracker {
        &self.0.connections
    }

    pub fn next_connection_id(&self) -> u64 {
        self.0.next_connection_id.fetch_add(1, Ordering::Relaxed)
    }
}
