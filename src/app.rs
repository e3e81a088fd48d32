//! The state every handler shares: config, the stores, the services built on them, the hub,
//! identity, and the shutdown signal. Handlers extract just the service they use (each
//! implements `FromRef<AppState>`), so a handler's signature says what it may touch.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::Instant;

use axum::extract::FromRef;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::config::Config;
use crate::credentials::Credentials;
use crate::demo::DemoRunner;
use crate::metrics::Metrics;
use crate::realtime::hub::Hub;
use crate::realtime::ws::WsContext;
use crate::service::chains::Chains;
use crate::service::control::Control;
use crate::service::events::Events;
use crate::service::sessions::Sessions;
use crate::service::wait_slots::WaitSlots;
use crate::service::Services;
use crate::store::Stores;
use crate::tenancy::Tenants;

#[derive(Clone)]
pub struct AppState(Arc<Inner>);

struct Inner {
    config: Config,
    credentials: Arc<Credentials>,
    /// Every tenant's stores and services; the default tenant's are also `stores` and
    /// `services`.
    tenants: Arc<Tenants>,
    stores: Stores,
    services: Services,
    hub: Arc<Hub>,
    metrics: Arc<Metrics>,
    /// What each WebSocket connection holds of the instance.
    ws: Arc<WsContext>,
    instance_id: Arc<str>,
    started: Instant,
    /// Cancelled when the instance shuts down; connections close with 1001 on it.
    shutdown: CancellationToken,
    /// Every WebSocket connection task, so shutdown can wait for their close frames.
    connections: TaskTracker,
    next_connection_id: AtomicU64,
    /// The address the instance listens on, once bound (the in-process demo posts to it).
    local_addr: OnceLock<SocketAddr>,
    demo: Arc<DemoRunner>,
}

/// The parts the app state is made of, each built by [`crate::run`] in its turn.
pub struct Parts {
    pub config: Config,
    pub credentials: Arc<Credentials>,
    pub tenants: Arc<Tenants>,
    pub hub: Arc<Hub>,
    pub metrics: Arc<Metrics>,
    pub instance_id: Arc<str>,
    pub shutdown: CancellationToken,
}

impl AppState {
    pub fn new(parts: Parts) -> AppState {
        let Parts {
            config,
            credentials,
            tenants,
            hub,
            metrics,
            instance_id,
            shutdown,
        } = parts;
        let stores = tenants.default_tenant().stores.clone();
        let services = tenants.default_tenant().services.clone();
        let ws = Arc::new(WsContext {
            hub: Arc::clone(&hub),
            tenants: Arc::clone(&tenants),
            instance_id: Arc::clone(&instance_id),
            shutdown: shutdown.clone(),
            credentials: Arc::clone(&credentials),
            auth_timeout: config.auth.ws_auth_timeout,
            auth_grace: config.auth.ws_auth_grace,
            message_limit: config.rate_limits.ws(),
            epoch: tokio::time::Instant::now(),
            outbound_limit: config.realtime.ws_outbound_limit_bytes,
            max_event_bytes: config.events.max_event_bytes,
            write_timeout: config.realtime.ws_write_timeout,
            write_coalesce: config.realtime.ws_write_coalesce(),
            ping_every: config.realtime.ws_ping_every,
            pong_timeout: config.realtime.ws_pong_timeout,
            heartbeat_every: Some(config.realtime.ws_heartbeat_every).filter(|d| !d.is_zero()),
            heartbeat: hub.frames().heartbeat(),
            sse_keepalive: config.realtime.sse_keepalive_every,
        });
        AppState(Arc::new(Inner {
            config,
            credentials,
            tenants,
            stores,
            services,
            hub,
            metrics,
            ws,
            instance_id,
            started: Instant::now(),
            shutdown,
            connections: TaskTracker::new(),
            next_connection_id: AtomicU64::new(1),
            local_addr: OnceLock::new(),
            demo: Arc::default(),
        }))
    }

    pub fn config(&self) -> &Config {
        &self.0.config
    }

    pub fn credentials(&self) -> &Arc<Credentials> {
        &self.0.credentials
    }

    pub fn tenants(&self) -> &Arc<Tenants> {
        &self.0.tenants
    }

    /// The default tenant's services.
    pub fn services(&self) -> &Services {
        &self.0.services
    }

    pub fn stores(&self) -> &Stores {
        &self.0.stores
    }

    pub fn sessions(&self) -> &Sessions {
        &self.0.services.sessions
    }

    pub fn events(&self) -> &Events {
        &self.0.services.events
    }

    pub fn control(&self) -> &Control {
        &self.0.services.control
    }

    pub fn chains(&self) -> &Chains {
        &self.0.services.chains
    }

    pub fn hub(&self) -> &Hub {
        &self.0.hub
    }

    pub fn ws_context(&self) -> Arc<WsContext> {
        Arc::clone(&self.0.ws)
    }

    pub fn metrics(&self) -> &Metrics {
        &self.0.metrics
    }

    pub fn metrics_arc(&self) -> &Arc<Metrics> {
        &self.0.metrics
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

    pub fn set_local_addr(&self, addr: SocketAddr) {
        let _ = self.0.local_addr.set(addr);
    }

    pub fn local_addr(&self) -> Option<SocketAddr> {
        self.0.local_addr.get().copied()
    }

    pub fn demo(&self) -> &Arc<DemoRunner> {
        &self.0.demo
    }

    pub fn next_connection_id(&self) -> u64 {
        self.0.next_connection_id.fetch_add(1, Ordering::Relaxed)
    }
}

/// The long polls' allowance as an axum substate of the app, behind one `Arc` (the services
/// are each tenant's: [`crate::http::tenant::Scoped`]).
impl FromRef<AppState> for Arc<WaitSlots> {
    fn from_ref(app: &AppState) -> Arc<WaitSlots> {
        Arc::clone(&app.0.services.wait_slots)
    }
}
