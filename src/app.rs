//! The state every handler shares: config, the stores, the services built on them, the hub,
//! identity, and the shutdown signal. Handlers extract just the service they use (each
//! implements `FromRef<AppState>`), so a handler's signature says what it may touch.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use axum::extract::FromRef;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::config::Config;
use crate::demo::DemoRunner;
use crate::domain::cache::CacheLimits;
use crate::domain::jobs::JobLimits;
use crate::domain::locks::LockLimits;
use crate::metrics::Metrics;
use crate::realtime::hub::Hub;
use crate::realtime::ws::WsContext;
use crate::service::cache::Cache;
use crate::service::chains::{ChainLimits, Chains};
use crate::service::control::Control;
use crate::service::events::Events;
use crate::service::jobs::Jobs;
use crate::service::locks::Locks;
use crate::service::sessions::Sessions;
use crate::service::usage::Usage;
use crate::service::user_context::UserContexts;
use crate::service::wait_slots::WaitSlots;
use crate::store::Stores;

#[derive(Clone)]
pub struct AppState(Arc<Inner>);

struct Inner {
    config: Config,
    stores: Stores,
    sessions: Arc<Sessions>,
    events: Arc<Events>,
    control: Arc<Control>,
    chains: Arc<Chains>,
    locks: Arc<Locks>,
    jobs: Arc<Jobs>,
    cache: Arc<Cache>,
    user_contexts: Arc<UserContexts>,
    usage: Arc<Usage>,
    hub: Arc<Hub>,
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
    /// Long polls parked per client (`MAX_WAITS_PER_CLIENT`).
    waits: Arc<WaitSlots>,
}

impl AppState {
    pub fn new(
        config: Config,
        stores: Stores,
        hub: Arc<Hub>,
        metrics: Arc<Metrics>,
        instance_id: Arc<str>,
        shutdown: CancellationToken,
    ) -> AppState {
        let sessions = Sessions {
            store: Arc::clone(&stores.sessions),
        };
        let chains = Chains {
            store: Arc::clone(&stores.chains),
            ttl: Duration::from_secs(config.session_ttl_secs),
            stale_after: Duration::from_secs(config.chain_stale_secs),
            limits: ChainLimits {
                max_bytes: config.chain_limit(),
                max_value_bytes: config.chain_value_max_bytes,
            },
            metrics: Arc::clone(&metrics),
        };
        let events = Events {
            store: Arc::clone(&stores.events),
            sessions: Arc::clone(&stores.sessions),
            chains: chains.clone(),
            metrics: Arc::clone(&metrics),
            max_event_bytes: config.max_event_bytes,
        };
        let control = Control {
            store: Arc::clone(&stores.control),
            sessions: sessions.clone(),
            events: events.clone(),
            waiters: Arc::clone(hub.waiters()),
            ttl: Duration::from_secs(config.queue_ttl_secs),
            shutdown: shutdown.clone(),
            metrics,
        };
        let s = &config.services;
        let locks = Locks {
            store: Arc::clone(&stores.locks),
            waiters: Arc::clone(hub.waiters()),
            limits: LockLimits {
                min_ttl_ms: s.lock_min_ttl_ms,
                max_ttl_ms: s.lock_max_ttl_ms,
                max_wait_ms: s.lock_max_wait_ms,
            },
            shutdown: shutdown.clone(),
        };
        let jobs = Jobs {
            store: Arc::clone(&stores.jobs),
            waiters: Arc::clone(hub.waiters()),
            limits: JobLimits {
                lease_ms: s.job_lease_ms,
                max_lease_ms: s.job_max_lease_ms,
                max_attempts: s.job_max_attempts,
                backoff_ms: s.job_backoff_ms,
                backoff_max_ms: s.job_backoff_max_ms,
                max_delay_ms: s.job_max_delay_ms,
                max_bytes: s.job_max_bytes,
                claim_max: s.job_claim_max,
                bulk_max: s.job_bulk_max,
                max_wait_ms: s.lock_max_wait_ms,
            },
            shutdown: shutdown.clone(),
        };
        let cache = Cache {
            store: Arc::clone(&stores.cache),
            limits: CacheLimits {
                max_value_bytes: s.cache_max_value_bytes,
                max_ttl_secs: s.cache_max_ttl_secs,
                max_tags: s.cache_max_tags,
            },
        };
        let contexts = UserContexts {
            store: Arc::clone(&stores.user_contexts),
            value_max: s.context_value_max_bytes,
        };
        let usage = Usage {
            store: Arc::clone(&stores.usage),
        };
        let ws = Arc::new(WsContext {
            hub: Arc::clone(&hub),
            events: Arc::clone(&stores.events),
            control: control.clone(),
            instance_id: Arc::clone(&instance_id),
            shutdown: shutdown.clone(),
            outbound_limit: config.ws_outbound_limit_bytes,
            max_event_bytes: config.max_event_bytes,
            write_timeout: config.ws_write_timeout,
            ping_every: config.ws_ping_every,
            pong_timeout: config.ws_pong_timeout,
            heartbeat_every: Some(config.ws_heartbeat_every).filter(|d| !d.is_zero()),
            heartbeat: hub.frames().heartbeat(),
        });
        let max_waits = config.max_waits_per_client;

        AppState(Arc::new(Inner {
            config,
            stores,
            sessions: Arc::new(sessions),
            events: Arc::new(events),
            control: Arc::new(control),
            chains: Arc::new(chains),
            locks: Arc::new(locks),
            jobs: Arc::new(jobs),
            cache: Arc::new(cache),
            user_contexts: Arc::new(contexts),
            usage: Arc::new(usage),
            hub,
            ws,
            instance_id,
            started: Instant::now(),
            shutdown,
            connections: TaskTracker::new(),
            next_connection_id: AtomicU64::new(1),
            local_addr: OnceLock::new(),
            demo: Arc::default(),
            waits: Arc::new(WaitSlots::new(max_waits)),
        }))
    }

    pub fn config(&self) -> &Config {
        &self.0.config
    }

    pub fn stores(&self) -> &Stores {
        &self.0.stores
    }

    pub fn sessions(&self) -> &Sessions {
        &self.0.sessions
    }

    pub fn events(&self) -> &Events {
        &self.0.events
    }

    pub fn control(&self) -> &Control {
        &self.0.control
    }

    pub fn chains(&self) -> &Chains {
        &self.0.chains
    }

    pub fn hub(&self) -> &Hub {
        &self.0.hub
    }

    pub fn ws_context(&self) -> Arc<WsContext> {
        Arc::clone(&self.0.ws)
    }

    pub fn metrics(&self) -> &Metrics {
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

/// Each service as an axum substate of the app. Behind one `Arc` each, so extracting one
/// costs a single reference count, as extracting the whole app did.
macro_rules! substate {
    ($($ty:ty => $field:ident),* $(,)?) => {$(
        impl FromRef<AppState> for Arc<$ty> {
            fn from_ref(app: &AppState) -> Arc<$ty> {
                Arc::clone(&app.0.$field)
            }
        }
    )*};
}

substate! {
    WaitSlots => waits,
    Sessions => sessions,
    Events => events,
    Control => control,
    Chains => chains,
    Locks => locks,
    Jobs => jobs,
    Cache => cache,
    UserContexts => user_contexts,
    Usage => usage,
}
