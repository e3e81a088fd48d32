//! The rate limit of each credential (and of each address whose credentials are refused),
//! taken from the store before the route runs: on Redis one budget for every instance. Over
//! it: 429 `rate_limited` with `Retry-After` and the IETF draft's `RateLimit-Limit`,
//! `RateLimit-Remaining` and `RateLimit-Reset`. A store that fails or is slow lets the request
//! through and counts it, so the limiter never stops the gateway on its own.

use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::Request;
use axum::http::{HeaderName, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use ipnet::IpNet;

use super::error::ApiError;
use super::serve::Arrival;
use crate::domain::rate::{Decision, Gcra};
use crate::metrics::Metrics;
use crate::store::RateStore;

pub struct Limiter {
    pub store: Arc<dyn RateStore>,
    pub gcra: Gcra,
    pub wait: Duration,
    pub metrics: Arc<Metrics>,
    /// Load balancers whose `X-Forwarded-For` is believed.
    pub trusted: Vec<IpNet>,
}

impl Limiter {
    /// Takes one request from `subject`'s budget: `None` when it may go on, else the 429.
    pub async fn check(&self, tenant: &str, subject: &str) -> Option<Response> {
        let taken =
            tokio::time::timeout(self.wait, self.store.take_rate(tenant, subject, self.gcra));
        match taken.await {
            Ok(Ok(d)) if d.allowed => None,
            Ok(Ok(d)) => {
                self.metrics.http_rate_limited.inc();
                Some(too_many(self.gcra, d))
            }
            Ok(Err(_)) | Err(_) => {
                self.metrics.rate_limiter_unavailable.inc();
                None
            }
        }
    }

    /// Who an anonymous request is: the connection's address, or behind a trusted load
    /// balancer the last `X-Forwarded-For` address that is not one of them.
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
            Some(ip) => format!("a:{ip}"),
            None => "a:unknown".to_string(),
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
