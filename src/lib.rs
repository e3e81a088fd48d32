//! afw-gateway: a real-time WebSocket event gateway for agent workflows.
//!
//! # Layout
//! - [`config`]: every setting, from flags and environment, validated before start.
//! - [`model`]: sessions, events and the bus messages, as serde types, and event validation.
//! - [`store`]: the `Store` trait; [`store::memory`] (one process) and [`store::redis`]
//!   (many instances) behind it with the same semantics.
//! - [`realtime`]: the fan-out task, the hub of local subscribers, and WebSocket connections.
//! - [`http`]: the router, middleware (request ids, auth, errors) and one module per resource.
//! - [`error`]: store errors and the one JSON error of the API.
//!
//! [`run`] takes an already-bound listener and a shutdown future, so tests run real instances
//! on `127.0.0.1:0`.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

pub mod app;
pub mod config;
pub mod error;
pub mod http;
pub mod model;
pub mod realtime;
pub mod store;
pub mod time;

pub use config::Config;

/// How long shutdown waits for connections to take their close frames and for background
/// tasks to stop.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(5);

#[derive(Debug, thiserror::Error)]
pub enum RunError {
    #[error("invalid configuration: {0}")]
    Config(#[from] config::ConfigError),
    #[error("cannot open the store: {0}")]
    Store(#[from] error::StoreError),
    #[error("server failed: {0}")]
    Io(#[from] std::io::Error),
}

/// Serves the gateway on `listener` until `shutdown` completes, then closes every WebSocket
/// with 1001 and waits (briefly) for connections and background tasks to finish.
pub async fn run(
    config: Config,
    listener: TcpListener,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), RunError> {
    config.validate()?;
    let token = CancellationToken::new();
    let tasks = TaskTracker::new();
    let instance_id: Arc<str> = uuid::Uuid::now_v7().to_string().into();
    let store = store::open(&config, Arc::clone(&instance_id), &tasks, token.clone()).await?;
    let hub = Arc::new(realtime::hub::Hub::new());
    // Subscribe to the bus before serving, so no stored event can precede the fan-out.
    let bus = store.subscribe_bus();
    tasks.spawn(realtime::fanout::run(
        Arc::clone(&store),
        Arc::clone(&hub),
        bus,
        token.clone(),
    ));
    let addr = listener.local_addr()?;
    tracing::info!(%addr, store = store.kind(), instance = %instance_id, "afw-gateway listening");
    let app = app::AppState::new(config, store, hub, instance_id, token.clone());
    let router = http::router(app.clone());
    let trigger = token.clone();
    tokio::spawn(async move {
        shutdown.await;
        trigger.cancel();
    });
    let served = axum::serve(listener, router)
        .with_graceful_shutdown(token.clone().cancelled_owned())
        .await;
    token.cancel();
    tasks.close();
    app.connections().close();
    let drained = tokio::time::timeout(SHUTDOWN_GRACE, async {
        app.connections().wait().await;
        tasks.wait().await;
    })
    .await;
    if drained.is_err() {
        tracing::warn!("shutdown grace period ended with tasks still running");
    }
    tracing::info!("afw-gateway stopped");
    served.map_err(RunError::Io)
}
