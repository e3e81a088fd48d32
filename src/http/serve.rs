//! The accept loop: HTTP/1.1 connections served by hyper with the limits a public endpoint
//! needs, which `axum::serve` does not expose.
//!
//! - A request's headers must arrive within `HTTP_HEADER_TIMEOUT_SECS`, counted from the end of
//!   the previous request, so the same limit closes idle keep-alive connections.
//! - Headers are capped at `HTTP_MAX_HEADER_BYTES` (the read buffer too, so an unfinished
//!   header costs at most that much memory).
//! - At most `MAX_CONNECTIONS` connections (WebSockets included) do work. The next
//!   [`HEALTH_HEADROOM`] are still served `/health` and `/ready` (so probes see the instance is
//!   alive and full) and get 503 `over_capacity` for anything else; past those a connection is
//!   closed at once. Those get [`OVER_CAPACITY_HEADER_TIMEOUT`] to send their one request, so
//!   a flood cannot hold the headroom. Refusals are counted and logged at most once per
//!   [`WARN_EVERY`].
//! - hyper's own bodiless error answers (400, 431) get the API's JSON error ([`JsonErrors`]).
//! - Every request carries its body deadline (`HTTP_BODY_TIMEOUT_SECS`) for the JSON
//!   extractor, and the address it came from (one [`Arrival`] each).

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::body::Body;
use axum::http::Request;
use axum::Router;
use hyper::body::Incoming;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::service::TowerToHyperService;
use parking_lot::Mutex;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tower::ServiceExt as _;

use super::parse_errors::JsonErrors;
use super::request_id::OverCapacity;
use crate::metrics::Metrics;

/// Connections past `MAX_CONNECTIONS` that are still answered on `/health` and `/ready`.
pub const HEALTH_HEADROOM: usize = 64;
/// File descriptors kept for everything but client connections (Redis, logs, the listener).
const FD_RESERVE: usize = 256;
/// How long a connection past `MAX_CONNECTIONS` may take to send its one request: short, so
/// a flood cannot hold the headroom kept for health checks.
pub const OVER_CAPACITY_HEADER_TIMEOUT: Duration = Duration::from_secs(1);
/// Refusals are logged at most this often.
pub const WARN_EVERY: Duration = Duration::from_secs(10);

/// The limits of the accept loop (see the module documentation).
#[derive(Debug, Clone, Copy)]
pub struct ServeLimits {
    pub header_timeout: Duration,
    pub body_timeout: Duration,
    pub max_header_bytes: usize,
    pub max_connections: usize,
}

/// When a request's body must have arrived (read by [`super::extract::JsonBody`]), and where
/// from: one extension, so a request pays for one insert.
#[derive(Debug, Clone, Copy)]
pub struct Arrival {
    pub body_deadline: tokio::time::Instant,
    /// The address the connection came from (who a keyless client is, for its long polls).
    pub peer: std::net::IpAddr,
}

/// Counts one open HTTP connection for as long as it lives.
struct Open(Arc<AtomicUsize>);

impl Drop for Open {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::Relaxed);
    }
}

/// A warning logged at most once per [`WARN_EVERY`], with how often it was meant since.
struct RateLimitedWarning {
    last: Mutex<(Option<Instant>, u64)>,
}

impl RateLimitedWarning {
    fn hit(&self, what: &str, open: usize) {
        let mut last = self.last.lock();
        last.1 += 1;
        if last.0.is_some_and(|t| t.elapsed() < WARN_EVERY) {
            return;
        }
        tracing::warn!(
            open,
            refused = last.1,
            "{what}: connections past MAX_CONNECTIONS get 503 over_capacity (health checks still answered)"
        );
        *last = (Some(Instant::now()), 0);
    }
}

/// The most connections the process's descriptor limit allows, if it is lower than `wanted`.
fn fd_cap(wanted: usize) -> usize {
    use nix::sys::resource::{getrlimit, Resource};
    match getrlimit(Resource::RLIMIT_NOFILE) {
        Ok((soft, _)) => {
            let room = (soft as usize).saturating_sub(FD_RESERVE + HEALTH_HEADROOM);
            if room < wanted {
                tracing::warn!(
                    wanted,
                    allowed = room,
                    "MAX_CONNECTIONS is above what the open-file limit allows; using the lower number"
                );
            }
            wanted.min(room.max(1))
        }
        Err(_) => wanted,
    }
}

/// Serves `router` on `listener` until `shutdown`, then lets open requests finish (each
/// connection is closed once its current request is answered) and returns when every HTTP
/// connection has closed. `websockets` holds the upgraded connections, counted against the
/// same limit.
pub async fn serve(
    listener: TcpListener,
    router: Router,
    limits: ServeLimits,
    websockets: TaskTracker,
    metrics: Arc<Metrics>,
    shutdown: CancellationToken,
) -> std::io::Result<()> {
    let max = fd_cap(limits.max_connections);
    let open = Arc::new(AtomicUsize::new(0));
    let connections = TaskTracker::new();
    let warning = Arc::new(RateLimitedWarning {
        last: Mutex::new((None, 0)),
    });
    loop {
        let (stream, peer) = tokio::select! {
            r = listener.accept() => match r {
                Ok(accepted) => accepted,
                Err(e) => {
                    // Out of descriptors or buffers: wait a moment rather than spin.
                    tracing::warn!(error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            _ = shutdown.cancelled() => break,
        };
        let now_open = open.load(Ordering::Relaxed) + websockets.len();
        let over = now_open >= max;
        if over {
            metrics.connections_refused.inc();
            warning.hit("connection limit reached", now_open);
            if now_open >= max + HEALTH_HEADROOM {
                drop(stream);
                continue;
            }
        }
        open.fetch_add(1, Ordering::Relaxed);
        let guard = Open(Arc::clone(&open));
        let _ = stream.set_nodelay(true);
        let body_timeout = limits.body_timeout;
        // A tower service straight over the router: its future is the router's own, so what
        // a connection holds stays as small as under `axum::serve`.
        let service =
            TowerToHyperService::new(router.clone().map_request(move |req: Request<Incoming>| {
                let mut req = req.map(Body::new);
                req.extensions_mut().insert(Arrival {
                    body_deadline: tokio::time::Instant::now() + body_timeout,
                    peer: peer.ip(),
                });
                if over {
                    req.extensions_mut().insert(OverCapacity);
                }
                req
            }));
        let mut builder = hyper::server::conn::http1::Builder::new();
        builder
            .timer(TokioTimer::new())
            .header_read_timeout(if over {
                OVER_CAPACITY_HEADER_TIMEOUT.min(limits.header_timeout)
            } else {
                limits.header_timeout
            })
            .max_buf_size(limits.max_header_bytes.max(8192))
            .keep_alive(!over);
        let shutdown = shutdown.clone();
        connections.spawn(async move {
            let _open = guard;
            let conn = builder
                .serve_connection(TokioIo::new(JsonErrors::new(stream)), service)
                .with_upgrades();
            let mut conn = std::pin::pin!(conn);
            tokio::select! {
                r = conn.as_mut() => {
                    if let Err(e) = r {
                        tracing::debug!(error = %e, "connection ended with an error");
                    }
                    return;
                }
                _ = shutdown.cancelled() => conn.as_mut().graceful_shutdown(),
            }
            let _ = conn.await;
        });
    }
    drop(listener);
    connections.close();
    connections.wait().await;
    Ok(())
}
