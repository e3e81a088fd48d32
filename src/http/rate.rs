//! The rate limit of each credential (and of each address whose credentials are refused),
//! taken from the store before the route runs: on Redis one budget for every instance. Over
//! it: 429 `rate_limited` with `Retry-After` and the IETF draft's `RateLimit-Limit`,
//! `RateLimit-Remaining` and `RateLimit-Reset`. A store that fails or is slow lets the request
//! through and counts it, so the limiter never stops the gateway on its own.
//!
//! A busy subject's requests are taken from the store in chunks ([`chunk`]: a twentieth of the
//! burst, at most a twentieth of a second of the rate), spent here for at most
//! [`CHUNK_LIFE`]: one store call per chunk instead of one per request. What a chunk takes
//! from the shared budget and its instance does not spend in time is lost, so instances
//! together may allow up to a chunk each fewer than the budget, never more. Requests that
//! miss at once each take a chunk; what they leave joins the one in hand (never replaces it).

use std::hash::{BuildHasher, RandomState};
use std::net::IpAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::extract::Request;
use axum::http::{HeaderName, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use dashmap::DashMap;
use ipnet::IpNet;

use super::error::ApiError;
use super::serve::Arrival;
use crate::domain::rate::{Decision, Gcra};
use crate::metrics::Metrics;
use crate::store::RateStore;

/// How long a chunk taken from the store may be spent here.
pub const CHUNK_LIFE: Duration = Duration::from_millis(100);
/// Subjects with a chunk in hand at most; past it the spent and lapsed ones are dropped.
const CHUNKS_MAX: usize = 10_000;

/// Requests taken from the store at once for a busy subject: a twentieth of the burst, and
/// no more than the rate gives in a twentieth of a second (so 1 for small limits: exact).
pub fn chunk(gcra: Gcra) -> u64 {
    let per_20th_second = 50_000 / gcra.interval_us.max(1);
    (gcra.burst / 20).min(per_20th_second).max(1)
}

/// Requests of a chunk not spent yet, until when.
struct Chunk {
    left: u64,
    until: Instant,
}

pub struct Limiter {
    store: Arc<dyn RateStore>,
    gcra: Gcra,
    wait: Duration,
    metrics: Arc<Metrics>,
    /// Load balancers whose `X-Forwarded-For` is believed.
    trusted: Vec<IpNet>,
    chunk: u64,
    /// By a hash of tenant and subject (a collision shares a chunk, at worst).
    chunks: DashMap<u64, Chunk>,
    hasher: RandomState,
}

impl Limiter {
    pub fn new(
        store: Arc<dyn RateStore>,
        gcra: Gcra,
        wait: Duration,
        metrics: Arc<Metrics>,
        trusted: Vec<IpNet>,
    ) -> Limiter {
        Limiter {
            store,
            gcra,
            wait,
            metrics,
            trusted,
            chunk: chunk(gcra),
            chunks: DashMap::new(),
            hasher: RandomState::new(),
        }
    }

    /// Takes one request from the budget of `kind` (`k:` a credential, `a:` an address)
    /// `name` in `tenant`: `None` when it may go on, else the 429. A request spent from a chunk
    /// in hand allocates nothing; the store's subject (`{kind}{name}`) is made only to ask it.
    pub async fn check(&self, tenant: &str, kind: &'static str, name: &str) -> Option<Response> {
        let id = self.hasher.hash_one((tenant, kind, name));
        if self.chunk > 1 {
            if let Some(mut c) = self.chunks.get_mut(&id) {
                if c.left > 0 && Instant::now() < c.until {
                    c.left -= 1;
                    return None;
                }
            }
        }
        let subject = format!("{kind}{name}");
        let mut count = self.chunk;
        loop {
            let taken = self.store.take_rate(tenant, &subject, self.gcra, count);
            match tokio::time::timeout(self.wait, taken).await {
                Ok(Ok(d)) if d.allowed => {
                    if count > 1 {
                        self.keep(id, count - 1);
                    }
                    return None;
                }
                // A whole chunk does not fit: maybe one request still does.
                Ok(Ok(_)) if count > 1 => count = 1,
                Ok(Ok(d)) => {
                    self.metrics.http_rate_limited.inc();
                    return Some(too_many(self.gcra, d));
                }
                Ok(Err(_)) | Err(_) => {
                    self.metrics.rate_limiter_unavailable.inc();
                    return None;
                }
            }
        }
    }

    fn keep(&self, id: u64, left: u64) {
        let now = Instant::now();
        if self.chunks.len() >= CHUNKS_MAX {
            self.chunks.retain(|_, c| c.left > 0 && c.until > now);
        }
        let until = now + CHUNK_LIFE;
        let mut c = self.chunks.entry(id).or_insert(Chunk { left: 0, until });
        if c.until <= now {
            c.left = 0;
        }
        c.left += left;
        c.until = until;
    }

    /// Who an anonymous request is (its budget's name under `a:`): the connection's address,
    /// or behind a trusted load balancer the last `X-Forwarded-For` address that is not one
    /// of them.
    pub fn client(&self, req: &Request) -> String {
        let peer = req.extensions().get::<Arrival>().map(|a| a.peer);
        let trusted = |ip: &IpAddr| self.trusted.iter().any(|n| n.contains(ip));
        let mut client = peer;
        if peer.as_ref().is_some_and(trusted) {
            let forwarded = req
                .headers()
                .get_all("x-forwarded-for")
                .iter()
                .filter_map(|v| v.to_str().ok())
                .flat_map(|v| v.split(','))
                .filter_map(|a| a.trim().parse::<IpAddr>().ok())
                .collect::<Vec<_>>();
            if let Some(ip) = forwarded.iter().rev().find(|ip| !trusted(ip)) {
                client = Some(*ip);
            }
        }
        match client {
            Some(ip) => ip.to_string(),
            None => "unknown".to_string(),
        }
    }
}

fn secs(us: u64) -> u64 {
    us.div_ceil(1_000_000)
}

fn too_many(gcra: Gcra, d: Decision) -> Response {
    let mut resp = ApiError::new(
        StatusCode::TOO_MANY_REQUESTS,
        "rate_limited",
        format!(
            "over the rate limit of these credentials; retry in {} ms",
            d.retry_after_us.div_ceil(1000)
        ),
    )
    .into_response();
    let h = resp.headers_mut();
    for (name, value) in [
        ("retry-after", secs(d.retry_after_us).max(1)),
        ("ratelimit-limit", gcra.burst),
        ("ratelimit-remaining", d.remaining),
        ("ratelimit-reset", secs(d.reset_us)),
    ] {
        h.insert(HeaderName::from_static(name), HeaderValue::from(value));
    }
    resp
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chunks_are_a_small_part_of_the_budget() {
        let default = Gcra::new(500.0, 5000).unwrap();
        assert_eq!(chunk(default), 25);
        assert_eq!(
            chunk(Gcra::new(4.0, 20).unwrap()),
            1,
            "small limits stay exact"
        );
        assert_eq!(chunk(Gcra::new(100.0, 200).unwrap()), 5);
        assert_eq!(chunk(Gcra::new(1_000_000.0, 10).unwrap()), 1);
    }
}
