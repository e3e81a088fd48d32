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
use std::future::IntoFuture;
use std::sync::Arc;

use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

pub mod app;
pub mod chains;
pub mod config;
pub mod control;
pub mod error;
pub mod http;
pub mod metrics;
pub mod model;
pub mod realtime;
pub mod store;
pub mod time;

pub use config::Config;

#[derive(Debug, thiserror::Error)]
pub enum RunError {
    #[error("invalid configuration: {0}")]
    Config(#[from] config::ConfigError),
    #[error("cannot open the store: {0}")]
    Store(#[from] error::StoreError),
    #[error("server failed: {0}")]
    Io(#[from] std::io::Error),
}

/// Serves the gateway on `listener` until `shutdown` completes, then stops accepting, closes
/// every WebSocket with 1001, and waits at most `SHUTDOWN_TIMEOUT_SECS` for in-flight requests,
/// connections and background tasks to finish.
pub async fn run(
    config: Config,
    listener: TcpListener,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), RunError> {
    config.validate()?;
    let grace = config.shutdown_timeout;
    let token = CancellationToken::new();
    let tasks = TaskTracker::new();
    let instance_id: Arc<str> = uuid::Uuid::now_v7().to_string().into();
    let metrics = Arc::new(metrics::Metrics::new());
    let store = store::open(
        &config,
        Arc::clone(&instance_id),
        Arc::clone(&metrics),
        &tasks,
        token.clone(),
    )
    .await?;
    let hub = Arc::new(realtime::hub::Hub::new(
        metrics,
        config.ws_outbound_limit_bytes,
    ));
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
    // `into_make_service` hands each connection a clone of the built router; serving the
    // `Router` itself would rebuild every route for every connection.
    let serve = axum::serve(listener, router.into_make_service())
        .with_graceful_shutdown(token.clone().cancelled_owned())
        .into_future();
    let mut server = tokio::spawn(serve);
    // Serve until the shutdown signal (or until serving fails).
    let early = tokio::select! {
        r = &mut server => Some(r),
        _ = token.cancelled() => None,
    };
    // From here everything is bounded by the grace period: the listener stops accepting,
    // every WebSocket closes with 1001, in-flight HTTP requests finish, background tasks stop.
    token.cancel();
    tasks.close();
    app.connections().close();
    let drained = tokio::time::timeout(grace, async {
        let served = match early {
            Some(r) => r,
            None => (&mut server).await,
        };
        app.connections().wait().await;
        tasks.wait().await;
        served
    })
    .await;
    let result = match drained {
        Ok(Ok(served)) => served.map_err(RunError::Io),
        Ok(Err(join)) => Err(RunError::Io(std::io::Error::other(join))),
        Err(_) => {
            tracing::warn!(
                ?grace,
                "shutdown grace period ended with requests or tasks still running; stopping anyway"
            );
            server.abort();
            Ok(())
        }
    };
    tracing::info!("afw-gateway stopped");
    result
}
