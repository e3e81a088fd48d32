//! The HTTP server's settings: how long a request may take to arrive, how large its head may
//! be, how many connections and long polls an instance takes, and how long shutdown waits.

use std::time::Duration;

use clap::Args;

use super::values::{bad, parse_secs, ConfigError};

#[derive(Clone, Debug, Args)]
#[command(next_help_heading = "HTTP")]
pub struct Http {
    /// Seconds a connection may take to send a request's headers, counted from the end of the
    /// previous request on it: so also how long an idle keep-alive connection stays open.
    #[arg(long, env = "HTTP_HEADER_TIMEOUT_SECS", value_name = "HTTP_HEADER_TIMEOUT_SECS", value_parser = parse_secs, default_value = "15")]
    pub http_header_timeout: Duration,
    /// Seconds a request's body may take to arrive, from the end of its headers (408 after).
    #[arg(long, env = "HTTP_BODY_TIMEOUT_SECS", value_name = "HTTP_BODY_TIMEOUT_SECS", value_parser = parse_secs, default_value = "30")]
    pub http_body_timeout: Duration,
    /// Largest request head (request line and headers), in bytes; at least 8192.
    #[arg(long, env = "HTTP_MAX_HEADER_BYTES", value_name = "HTTP_MAX_HEADER_BYTES", default_value_t = 16 * 1024)]
    pub http_max_header_bytes: usize,
    /// Open connections (WebSockets included) an instance serves; the next 64 get only
    /// `/health` and `/ready`. Lowered to what the open-file limit allows.
    #[arg(
        long,
        env = "MAX_CONNECTIONS",
        value_name = "MAX_CONNECTIONS",
        default_value_t = 100_000
    )]
    pub max_connections: usize,
    /// Long polls (claims, lock requests, command and input polls that wait) one client may
    /// have waiting at once on an instance; one more gets 429 `too_many_waits`. A client is its
    /// credential, or its address when it sends none.
    #[arg(
        long,
        env = "MAX_WAITS_PER_CLIENT",
        value_name = "MAX_WAITS_PER_CLIENT",
        default_value_t = 1000
    )]
    pub max_waits_per_client: usize,
    /// Seconds shutdown waits for in-flight requests and background tasks after closing every
    /// WebSocket with 1001; then the process exits anyway.
    #[arg(long, env = "SHUTDOWN_TIMEOUT_SECS", value_name = "SHUTDOWN_TIMEOUT_SECS", value_parser = parse_secs, default_value = "10")]
    pub shutdown_timeout: Duration,
}

impl Default for Http {
    fn default() -> Self {
        Http {
            http_header_timeout: Duration::from_secs(15),
            http_body_timeout: Duration::from_secs(30),
            http_max_header_bytes: 16 * 1024,
            max_connections: 100_000,
            max_waits_per_client: 1000,
            shutdown_timeout: Duration::from_secs(10),
        }
    }
}

impl Http {
    pub fn validate(&self) -> Result<(), ConfigError> {
        if !(8192..=1024 * 1024).contains(&self.http_max_header_bytes) {
            return Err(bad(
                "HTTP_MAX_HEADER_BYTES",
                "must be between 8192 and 1048576 bytes",
            ));
        }
        if self.max_connections == 0 {
            return Err(bad("MAX_CONNECTIONS", "must be at least 1"));
        }
        if !(1..=1_000_000).contains(&self.max_waits_per_client) {
            return Err(bad("MAX_WAITS_PER_CLIENT", "must be between 1 and 1000000"));
        }
        if self.shutdown_timeout.is_zero() {
            return Err(bad("SHUTDOWN_TIMEOUT_SECS", "must be more than 0 seconds"));
        }
        Ok(())
    }
}
