//! The WebSocket settings: what one connection may have waiting, how many connections an
//! instance takes, and the pings, heartbeats and write timeouts that keep a link honest (and
//! the keep-alive of a server-sent-events stream, which shares the byte budget).

use std::time::Duration;

use clap::Args;

use super::values::{bad, parse_secs, ConfigError};
use super::{DEFAULT_WS_OUTBOUND_LIMIT_BYTES, DEFAULT_WS_PING_EVERY, DEFAULT_WS_PONG_TIMEOUT};

#[derive(Clone, Debug, Args)]
#[command(next_help_heading = "WebSocket")]
pub struct Realtime {
    /// Bytes queued for one WebSocket client before it is closed with 4008 (slow_consumer).
    #[arg(long, env = "WS_OUTBOUND_LIMIT_BYTES", value_name = "WS_OUTBOUND_LIMIT_BYTES", default_value_t = DEFAULT_WS_OUTBOUND_LIMIT_BYTES)]
    pub ws_outbound_limit_bytes: usize,
    /// Open WebSocket connections an instance serves; an upgrade past it is closed with 1013.
    #[arg(
        long,
        env = "WS_MAX_CONNECTIONS",
        value_name = "WS_MAX_CONNECTIONS",
        default_value_t = 100_000
    )]
    pub ws_max_connections: usize,
    /// Seconds between the server's pings on each WebSocket (decimals allowed).
    #[arg(long, env = "WS_PING_INTERVAL_SECS", value_name = "WS_PING_INTERVAL_SECS", value_parser = parse_secs, default_value = "25")]
    pub ws_ping_every: Duration,
    /// Seconds between the server's application-level `heartbeat` messages on each WebSocket
    /// (what browser code, which cannot see pings, uses to tell a live link); 0: none.
    #[arg(long, env = "WS_HEARTBEAT_SECS", value_name = "WS_HEARTBEAT_SECS", value_parser = parse_secs, default_value = "15")]
    pub ws_heartbeat_every: Duration,
    /// Seconds a pong may take before the connection is closed with 1011.
    #[arg(long, env = "WS_PONG_TIMEOUT_SECS", value_name = "WS_PONG_TIMEOUT_SECS", value_parser = parse_secs, default_value = "10")]
    pub ws_pong_timeout: Duration,
    /// Seconds one write to a WebSocket may wait for the client to take data (live frames and
    /// replays alike) before it is closed with 4008 (slow_consumer).
    #[arg(long, env = "WS_WRITE_TIMEOUT_SECS", value_name = "WS_WRITE_TIMEOUT_SECS", value_parser = parse_secs, default_value = "30")]
    pub ws_write_timeout: Duration,
    /// Milliseconds a WebSocket connection waits, once a frame is queued for it, for more to
    /// write with it in one write (0: write at once). Trades latency for CPU where clients get
    /// many events a second; at most 1000.
    #[arg(
        long,
        env = "WS_WRITE_COALESCE_MS",
        value_name = "WS_WRITE_COALESCE_MS",
        default_value_t = 0
    )]
    pub ws_write_coalesce_ms: u64,
    /// Seconds between the keep-alive comments of a server-sent-events stream
    /// (`/api/sessions/:id/stream`), so proxies do not time an idle stream out.
    #[arg(long, env = "SSE_KEEPALIVE_SECS", value_name = "SSE_KEEPALIVE_SECS", value_parser = parse_secs, default_value = "15")]
    pub sse_keepalive_every: Duration,
}

impl Default for Realtime {
    fn default() -> Self {
        Realtime {
            ws_outbound_limit_bytes: DEFAULT_WS_OUTBOUND_LIMIT_BYTES,
            ws_max_connections: 100_000,
            ws_ping_every: DEFAULT_WS_PING_EVERY,
            ws_heartbeat_every: Duration::from_secs(15),
            ws_pong_timeout: DEFAULT_WS_PONG_TIMEOUT,
            ws_write_timeout: Duration::from_secs(30),
            ws_write_coalesce_ms: 0,
            sse_keepalive_every: Duration::from_secs(15),
        }
    }
}

impl Realtime {
    /// Checks these alone; how they bound the events (`MAX_EVENT_BYTES`) and the chains is
    /// [`super::Config::validate`]'s.
    pub fn validate(&self) -> Result<(), ConfigError> {
        if self.ws_max_connections == 0 {
            return Err(bad("WS_MAX_CONNECTIONS", "must be at least 1"));
        }
        if self.ws_write_coalesce_ms > 1000 {
            return Err(bad("WS_WRITE_COALESCE_MS", "must be between 0 and 1000"));
        }
        for (var, d) in [
            ("WS_PING_INTERVAL_SECS", self.ws_ping_every),
            ("WS_PONG_TIMEOUT_SECS", self.ws_pong_timeout),
            ("SSE_KEEPALIVE_SECS", self.sse_keepalive_every),
        ] {
            if d.is_zero() {
                return Err(bad(var, "must be more than 0 seconds"));
            }
        }
        Ok(())
    }

    /// How long a connection waits for more frames before writing (`WS_WRITE_COALESCE_MS`).
    pub fn ws_write_coalesce(&self) -> Option<Duration> {
        Some(Duration::from_millis(self.ws_write_coalesce_ms)).filter(|d| !d.is_zero())
    }
}
