//! How fast one credential may call, shared by every instance (on Redis), and how fast one
//! WebSocket may send; whose `X-Forwarded-For` names the client.

use clap::Args;
use ipnet::IpNet;

use super::values::{bad, ConfigError};
use crate::domain::rate::Gcra;

#[derive(Clone, Debug, Args)]
#[command(next_help_heading = "Rate limits")]
pub struct RateLimits {
    /// Requests a second one credential may make on average, across every instance (a batch
    /// is one request); also the budget of an address whose credentials are refused. 0: no
    /// limit. Without credentials configured, nothing is limited.
    #[arg(
        long,
        env = "RATE_LIMIT_RPS",
        value_name = "RATE_LIMIT_RPS",
        default_value_t = 500.0
    )]
    pub rate_limit_rps: f64,
    /// Requests one credential may make at once, beyond the average.
    #[arg(
        long,
        env = "RATE_LIMIT_BURST",
        value_name = "RATE_LIMIT_BURST",
        default_value_t = 5000
    )]
    pub rate_limit_burst: u64,
    /// Messages a second one WebSocket may send on average; past it each message gets an
    /// `error` `rate_limited`, and a connection that goes on is closed with 1008. 0: no limit.
    #[arg(
        long,
        env = "WS_RATE_LIMIT_RPS",
        value_name = "WS_RATE_LIMIT_RPS",
        default_value_t = 100.0
    )]
    pub ws_rate_limit_rps: f64,
    /// Messages one WebSocket may send at once, beyond the average.
    #[arg(
        long,
        env = "WS_RATE_LIMIT_BURST",
        value_name = "WS_RATE_LIMIT_BURST",
        default_value_t = 1000
    )]
    pub ws_rate_limit_burst: u64,
    /// Milliseconds a request waits for the limiter (the store) at most; past it, or when
    /// the store fails, the request goes on unlimited and `afw_rate_limiter_unavailable_total`
    /// counts it.
    #[arg(
        long,
        env = "RATE_LIMIT_WAIT_MS",
        value_name = "RATE_LIMIT_WAIT_MS",
        default_value_t = 250
    )]
    pub rate_limit_wait_ms: u64,
    /// Comma-separated addresses or CIDR ranges of the load balancers in front: from them,
    /// the client is the last address of `X-Forwarded-For` that is not one of them. Empty:
    /// the client is the connection's address.
    #[arg(
        long,
        env = "AFW_TRUSTED_PROXIES",
        value_name = "AFW_TRUSTED_PROXIES",
        value_delimiter = ',',
        value_parser = proxy
    )]
    pub trusted_proxies: Vec<IpNet>,
}

/// `10.0.0.0/8`, or one address (`10.0.0.7`).
fn proxy(text: &str) -> Result<IpNet, String> {
    let text = text.trim();
    text.parse::<IpNet>()
        .or_else(|_| text.parse::<std::net::IpAddr>().map(IpNet::from))
        .map_err(|_| format!("`{text}` is not an address or a CIDR range"))
}

impl Default for RateLimits {
    fn default() -> Self {
        RateLimits {
            rate_limit_rps: 500.0,
            rate_limit_burst: 5000,
            ws_rate_limit_rps: 100.0,
            ws_rate_limit_burst: 1000,
            rate_limit_wait_ms: 250,
            trusted_proxies: Vec::new(),
        }
    }
}

impl RateLimits {
    pub fn validate(&self) -> Result<(), ConfigError> {
        for (var, rps, burst_var, burst) in [
            (
                "RATE_LIMIT_RPS",
                self.rate_limit_rps,
                "RATE_LIMIT_BURST",
                self.rate_limit_burst,
            ),
            (
                "WS_RATE_LIMIT_RPS",
                self.ws_rate_limit_rps,
                "WS_RATE_LIMIT_BURST",
                self.ws_rate_limit_burst,
            ),
        ] {
            if !(0.0..=1_000_000.0).contains(&rps) {
                return Err(bad(var, "must be between 0 and 1000000"));
            }
            if !(1..=10_000_000).contains(&burst) {
                return Err(bad(burst_var, "must be between 1 and 10000000"));
            }
        }
        if !(1..=60_000).contains(&self.rate_limit_wait_ms) {
            return Err(bad("RATE_LIMIT_WAIT_MS", "must be between 1 and 60000"));
        }
        Ok(())
    }

    /// The limit of each credential's requests; `None`: unlimited.
    pub fn http(&self) -> Option<Gcra> {
        Gcra::new(self.rate_limit_rps, self.rate_limit_burst)
    }

    /// The limit of each WebSocket's messages; `None`: unlimited.
    pub fn ws(&self) -> Option<Gcra> {
        Gcra::new(self.ws_rate_limit_rps, self.ws_rate_limit_burst)
    }
}
