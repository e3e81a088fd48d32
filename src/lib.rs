//! afw-gateway: a real-time WebSocket event gateway for agent workflows.
//!
//! # Layout
//! Layers from the bottom up; each imports only from the layers below it.
//! - [`time`], [`metrics`], [`config`], [`credentials`]: timestamps, counters, every setting,
//!   and who a key or token stands for.
//! - [`domain`]: what the data is and its rules (sessions, events, commands and input, the
//!   chain state machine), with no I/O.
//! - [`bus`]: what instances tell each other.
//! - [`store`]: one trait per service with a memory and a Redis implementation of each,
//!   held together by [`store::Stores`]; Redis commands live only in [`store::redis`].
//! - [`service`]: what combines stores (appending and counting, long polls, queueing input,
//!   the chain compare-and-set; locks, job queues, the cache, user context, usage), called by
//!   both edges, and built together by [`service::Services::build`].
//! - [`realtime`]: the fan-out task, the hub of local subscribers, WebSocket connections.
//! - [`app`]: the state the HTTP edge is built from, and each service as a substate of it.
//! - [`http`]: the router, middleware, `ApiError`, and one module per resource.
//! - [`demo`]: simulated agents, clients of the HTTP API like any agent.
//!
//! [`build`] makes the parts in order; [`run`] takes an already-bound listener and a shutdown
//! future, so tests run real instances on `127.0.0.1:0`. `docs/architecture.md` draws the
//! event path through them.

use std::future::Future;
use std::sync::Arc;

use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

pub mod app;
pub mod backup;
pub mod bus;
pub mod config;
pub mod credentials;
pub mod demo;
pub mod domain;
pub mod http;
pub mod metrics;
pub mod ops;
pub mod realtime;
pub mod scope;
pub mod service;
pub mod store;
pub mod tenancy;
pub mod time;

pub use config::Config;

#[derive(Debug, thiserror::Error)]
pub enum RunError {
    #[error("invalid configuration: {0}")]
    Config(#[from] config::ConfigError),
    #[error("cannot open the store: {0}")]
    Store(#[from] store::StoreError),
    #[error("server failed: {0}")]
    Io(#[from] std::io::Error),
}

/// Builds the gateway's parts in order, each given what it needs: the credentials, the counters, the store (and
/// its background tasks on `tasks`), the bus it feeds, the long polls' waiters, the services,
/// the hub of local subscribers, the fan-out between bus and hub, and the app state the router
/// is made from. Everything stops on `shutdown`.
pub async fn build(
    config: Config,
    tasks: &TaskTracker,
    shutdown: &CancellationToken,
) -> Result<app::AppState, RunError> {
    config.validate()?;
    let rules = config.permissions.rules_file()?;
    let credentials = Arc::new(credentials::Credentials::new(&config.auth)?);
    let instance_id: Arc<str> = uuid::Uuid::now_v7().to_string().into();
    let metrics = Arc::new(metrics::Metrics::new(config.store.on_redis()));
    let stores = store::open(
        &config,
        Arc::clone(&instance_id),
        Arc::clone(&metrics),
        tasks,
        shutdown.clone(),
    )
    .await?;
    // Subscribe to the bus before serving, so no stored event can precede the fan-out.
    let bus = stores.bus.subscribe();
    let waiters = Arc::new(service::waiters::Waiters::new(Arc::clone(&metrics)));
    let services = service::Services::build(
        &config,
        &stores,
        &waiters,
        &metrics,
        shutdown,
        credentials
            .required()
            .then_some(credentials::DEFAULT_TENANT),
    );
    if let Some(rules) = rules {
        services
            .permissions
            .set_rules(&rules)
            .await
            .map_err(|e| store::StoreError::Unavailable(e.message()))?;
    }
    let tenants = Arc::new(tenancy::Tenants::new(
        tenancy::Tenant { stores, services },
        config.clone(),
        Arc::clone(&waiters),
        Arc::clone(&metrics),
        shutdown.clone(),
    ));
    let frames = match config.compat {
        Some(config::Compat::Actionflows) => realtime::protocol::EventFrames::Bare,
        None => realtime::protocol::EventFrames::Envelope,
    };
    let hub = Arc::new(
        realtime::hub::Hub::new(
            Arc::clone(&metrics),
            config.realtime.ws_outbound_limit_bytes,
        )
        .with_frames(frames),
    );
    tasks.spawn(realtime::fanout::run(
        Arc::clone(&tenants),
        Arc::clone(&hub),
        waiters,
        bus,
        shutdown.clone(),
    ));
    let app = app::AppState::new(app::Parts {
        config,
        credentials,
        tenants,
        hub,
        metrics,
        instance_id,
        shutdown: shutdown.clone(),
    });
    tasks.spawn(ops::report(app.clone(), shutdown.clone()));
    Ok(app)
}

/// Serves the gateway on `listener` until `shutdown` completes, then stops accepting, closes
/// every WebSocket with 1001, and waits at most `SHUTDOWN_TIMEOUT_SECS` for in-flight requests,
/// connections and background tasks to finish.
pub async fn run(
    config: Config,
    listener: TcpListener,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), RunError> {
    let grace = config.http.shutdown_timeout;
    let limits = http::serve::ServeLimits {
        header_timeout: config.http.http_header_timeout,
        body_timeout: config.http.http_body_timeout,
        max_header_bytes: config.http.http_max_header_bytes,
        max_connections: config.http.max_connections,
    };
    let token = CancellationToken::new();
    let tasks = TaskTracker::new();
    let app = build(config, &tasks, &token).await?;
    let addr = listener.local_addr()?;
    tracing::info!(%addr, store = app.stores().kind, instance = %app.instance_id(), "afw-gateway listening");
    app.set_local_addr(addr);
    let router = http::router(app.clone());
    let metrics = Arc::clone(app.metrics_arc());
    let trigger = token.clone();
    tokio::spawn(async move {
        shutdown.await;
        trigger.cancel();
    });
    let mut server = tokio::spawn(http::serve::serve(
        listener,
        router,
        limits,
        app.connections().clone(),
        metrics,
        token.clone(),
    ));
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
    // Serving has stopped: what the embedded store holds now is what a restart finds.
    if let Some(snapshot) = &app.stores().snapshot {
        match snapshot.save() {
            Ok(wrote) => tracing::info!(%wrote, "wrote the memory store's snapshot"),
            Err(error) => tracing::error!(%error, "the memory store's snapshot was not written"),
        }
    }
    tracing::info!("afw-gateway stopped");
    result
}
