//! Configuration: one struct, read from flags with environment fallbacks (docs/configuration.md) and
//! validated before anything binds or connects. Tests build it with [`Config::default`] and
//! struct update syntax instead of touching the process environment.

use std::net::IpAddr;
use std::time::Duration;

use clap::Parser;

use crate::domain::chain::ChainLimits;

mod aliases;
mod http;
mod realtime;
mod services;
mod values;
pub use aliases::Aliases;
pub use http::Http;
pub use realtime::Realtime;
pub use services::Services;
use values::{bad, check_api_keys, parse_secs, trimmed};
pub use values::{Compat, ConfigError, LogFormat, MIN_API_KEY_CHARS};

pub const DEFAULT_PORT: u16 = 3001;
pub const DEFAULT_PREFIX: &str = "afw:";
pub const DEFAULT_SESSION_TTL_SECS: u64 = 24 * 60 * 60;
pub const DEFAULT_MAX_EVENTS_PER_SESSION: usize = 10_000;
pub const DEFAULT_QUEUE_TTL_SECS: u64 = 300;
pub const DEFAULT_CHAIN_STALE_SECS: u64 = 3600;
pub const DEFAULT_MAX_EVENT_BYTES: usize = 1024 * 1024;
/// One full batch fits an empty outbound queue of the default size.
pub const DEFAULT_MAX_BATCH_BYTES: usize = 4 * 1024 * 1024;
pub const DEFAULT_WS_OUTBOUND_LIMIT_BYTES: usize = 4 * 1024 * 1024;
pub const DEFAULT_MAX_SESSION_EVENT_BYTES: usize = 64 * 1024 * 1024;
pub const DEFAULT_CHAIN_MAX_BYTES: usize = 256 * 1024;
pub const DEFAULT_CHAIN_VALUE_MAX_BYTES: usize = 16 * 1024;
/// Room a `chain` frame needs around the chain itself.
const CHAIN_FRAME_OVERHEAD: usize = 4096;

/// Every setting of the gateway. Each field's flag is also read from the environment variable
/// shown as its value name, so `--port 4000` and `PORT=4000` mean the same.
#[derive(Clone, Debug, Parser)]
#[command(
    name = "afw-gateway",
    version,
    about = "Real-time WebSocket event gateway"
)]
pub struct Config {
    /// TCP port to listen on.
    #[arg(long, env = "PORT", value_name = "PORT", default_value_t = DEFAULT_PORT)]
    pub port: u16,
    /// Address to bind. A non-loopback address needs AFW_API_KEYS (or AFW_INSECURE=1).
    #[arg(long, env = "HOST", value_name = "HOST", default_value = "127.0.0.1")]
    pub host: IpAddr,
    /// Redis URL (`redis://[user:pass@]host:port/db`). Unset: the embedded in-memory store.
    #[arg(
        long,
        env = "REDIS_URL",
        value_name = "REDIS_URL",
        hide_env_values = true
    )]
    pub redis_url: Option<String>,
    /// Prefix of every Redis key and pub/sub channel.
    #[arg(long, env = "REDIS_PREFIX", value_name = "REDIS_PREFIX", default_value = DEFAULT_PREFIX)]
    pub redis_prefix: String,
    /// Comma-separated API keys accepted as `Authorization: Bearer <key>` (each at least 16
    /// characters, never the examples' placeholder). Empty: no auth, loopback only.
    #[arg(
        long,
        env = "AFW_API_KEYS",
        value_name = "AFW_API_KEYS",
        value_delimiter = ',',
        value_parser = trimmed,
        hide_env_values = true
    )]
    pub api_keys: Vec<String>,
    /// Comma-separated origins allowed by CORS and for WebSocket upgrades and requests that
    /// carry an `Origin` (`*` for any). Empty: no CORS headers, and only the gateway's own
    /// origin.
    #[arg(
        long,
        env = "AFW_CORS_ORIGINS",
        value_name = "AFW_CORS_ORIGINS",
        value_delimiter = ',',
        value_parser = trimmed
    )]
    pub cors_origins: Vec<String>,
    /// Comma-separated host names a gateway without AFW_API_KEYS answers beside the loopback
    /// ones (`localhost`, `127.0.0.1`, `[::1]`, ...), with or without a port; `*` for any.
    /// Other `Host` headers get 403 (so a page cannot reach a local gateway by DNS rebinding).
    #[arg(
        long,
        env = "AFW_ALLOWED_HOSTS",
        value_name = "AFW_ALLOWED_HOSTS",
        value_delimiter = ',',
        value_parser = trimmed
    )]
    pub allowed_hosts: Vec<String>,
    /// Seconds a session and its events live after their last activity.
    #[arg(long, env = "SESSION_TTL_SECS", value_name = "SESSION_TTL_SECS", default_value_t = DEFAULT_SESSION_TTL_SECS)]
    pub session_ttl_secs: u64,
    /// Seconds each command and each input item lives in its queue (its own clock).
    #[arg(long, env = "QUEUE_TTL_SECS", value_name = "QUEUE_TTL_SECS", default_value_t = DEFAULT_QUEUE_TTL_SECS)]
    pub queue_ttl_secs: u64,
    /// Seconds without an update after which `POST /api/chains/cleanup` fails an active chain.
    #[arg(long, env = "CHAIN_STALE_SECS", value_name = "CHAIN_STALE_SECS", default_value_t = DEFAULT_CHAIN_STALE_SECS)]
    pub chain_stale_secs: u64,
    /// Newest events kept per session; older ones are trimmed.
    #[arg(long, env = "MAX_EVENTS_PER_SESSION", value_name = "MAX_EVENTS_PER_SESSION", default_value_t = DEFAULT_MAX_EVENTS_PER_SESSION)]
    pub max_events_per_session: usize,
    /// Largest accepted request body for one event (and most routes), in bytes.
    #[arg(long, env = "MAX_EVENT_BYTES", value_name = "MAX_EVENT_BYTES", default_value_t = DEFAULT_MAX_EVENT_BYTES)]
    pub max_event_bytes: usize,
    /// Bytes of stored events a session keeps; past them the oldest are trimmed (>= 4096).
    #[arg(long, env = "MAX_SESSION_EVENT_BYTES", value_name = "MAX_SESSION_EVENT_BYTES", default_value_t = DEFAULT_MAX_SESSION_EVENT_BYTES)]
    pub max_session_event_bytes: usize,
    /// Largest accepted body of `POST /api/events/batch`, in bytes.
    #[arg(long, env = "MAX_BATCH_BYTES", value_name = "MAX_BATCH_BYTES", default_value_t = DEFAULT_MAX_BATCH_BYTES)]
    pub max_batch_bytes: usize,
    /// Largest stored chain, in bytes of JSON; a change past it is refused (413 on the chain
    /// routes; logged and counted for chain events). Unset: a quarter of
    /// WS_OUTBOUND_LIMIT_BYTES (256 KiB). Must leave room below WS_OUTBOUND_LIMIT_BYTES, so one
    /// chain frame never closes a reader that keeps up.
    #[arg(long, env = "CHAIN_MAX_BYTES", value_name = "CHAIN_MAX_BYTES")]
    pub chain_max_bytes: Option<usize>,
    /// Largest free-form value of a chain (an error, data, a step's fields) kept as given;
    /// a larger one is replaced by `{"truncated":true,"bytes":N,"preview":"..."}`.
    #[arg(long, env = "CHAIN_VALUE_MAX_BYTES", value_name = "CHAIN_VALUE_MAX_BYTES", default_value_t = DEFAULT_CHAIN_VALUE_MAX_BYTES)]
    pub chain_value_max_bytes: usize,
    /// Most bytes of events one store read returns (a replay page, a `GET /api/events` page);
    /// a page stops short of it (with `nextAfter`) rather than load more at once.
    #[arg(long, env = "READ_MAX_BYTES", value_name = "READ_MAX_BYTES", default_value_t = 4 * 1024 * 1024)]
    pub read_max_bytes: usize,
    /// Live items one session's command queue (and its input queue) holds at most; a push past
    /// it gets 429 `queue_full`.
    #[arg(
        long,
        env = "QUEUE_MAX_ITEMS",
        value_name = "QUEUE_MAX_ITEMS",
        default_value_t = 256
    )]
    pub queue_max_items: usize,
    /// Bytes of data the embedded memory store holds at most; a write past it gets 503
    /// `store_full` (counted in `afw_store_full_total`). Unused on Redis (set its `maxmemory`).
    #[arg(long, env = "MEMORY_STORE_MAX_BYTES", value_name = "MEMORY_STORE_MAX_BYTES", default_value_t = 1024 * 1024 * 1024)]
    pub memory_store_max_bytes: usize,
    /// Serve the dashboard's files from this folder instead of the copies built into the binary
    /// (for editing `web-demo/` without rebuilding). Unset: the built-in copies.
    #[arg(long, env = "WEB_DEMO_DIR", value_name = "WEB_DEMO_DIR")]
    pub web_demo_dir: Option<std::path::PathBuf>,
    /// `actionflows`: bare event frames and, without AFW_CORS_ORIGINS, that dashboard's origins.
    #[arg(long, env = "AFW_COMPAT", value_name = "AFW_COMPAT", value_enum)]
    pub compat: Option<Compat>,
    /// Log format: pretty or json.
    #[arg(long, env = "LOG_FORMAT", value_name = "LOG_FORMAT", value_enum, default_value_t = LogFormat::Pretty)]
    pub log_format: LogFormat,
    /// Allow a non-loopback bind without credentials.
    #[arg(long, env = "AFW_INSECURE", value_name = "AFW_INSECURE")]
    pub insecure: bool,
    /// Seconds between probes of the Redis pub/sub subscription. A probe that has not come back
    /// by the next one means the subscription is wedged: it is dropped and made again.
    #[arg(long, env = "PUBSUB_PROBE_SECS", value_name = "PUBSUB_PROBE_SECS", value_parser = parse_secs, default_value = "5")]
    pub pubsub_probe_every: Duration,
    #[command(flatten)]
    pub http: Http,
    #[command(flatten)]
    pub realtime: Realtime,
    #[command(flatten)]
    pub services: Services,
    #[command(flatten)]
    pub aliases: Aliases,
}

/// The WebSocket ping interval (docs/protocol.md#websocket-get-ws)...
pub const DEFAULT_WS_PING_EVERY: Duration = Duration::from_secs(25);
/// ...and how long a pong may take.
pub const DEFAULT_WS_PONG_TIMEOUT: Duration = Duration::from_secs(10);

impl Default for Config {
    fn default() -> Self {
        Config {
            port: DEFAULT_PORT,
            host: IpAddr::from([127, 0, 0, 1]),
            redis_url: None,
            redis_prefix: DEFAULT_PREFIX.to_string(),
            api_keys: Vec::new(),
            cors_origins: Vec::new(),
            allowed_hosts: Vec::new(),
            web_demo_dir: None,
            compat: None,
            session_ttl_secs: DEFAULT_SESSION_TTL_SECS,
            queue_ttl_secs: DEFAULT_QUEUE_TTL_SECS,
            chain_stale_secs: DEFAULT_CHAIN_STALE_SECS,
            max_events_per_session: DEFAULT_MAX_EVENTS_PER_SESSION,
            max_event_bytes: DEFAULT_MAX_EVENT_BYTES,
            max_batch_bytes: DEFAULT_MAX_BATCH_BYTES,
            max_session_event_bytes: DEFAULT_MAX_SESSION_EVENT_BYTES,
            chain_max_bytes: None,
            chain_value_max_bytes: DEFAULT_CHAIN_VALUE_MAX_BYTES,
            read_max_bytes: 4 * 1024 * 1024,
            queue_max_items: 256,
            memory_store_max_bytes: 1024 * 1024 * 1024,
            log_format: LogFormat::Pretty,
            insecure: false,
            pubsub_probe_every: Duration::from_secs(5),
            http: Http::default(),
            realtime: Realtime::default(),
            services: Services::default(),
            aliases: Aliases::default(),
        }
    }
}

impl Config {
    /// The largest stored chain (`CHAIN_MAX_BYTES`, or 256 KiB within the outbound budget).
    pub fn chain_limit(&self) -> usize {
        let room = self
            .realtime
            .ws_outbound_limit_bytes
            .saturating_sub(CHAIN_FRAME_OVERHEAD);
        self.chain_max_bytes
            .unwrap_or(DEFAULT_CHAIN_MAX_BYTES.min(room))
    }

    /// What one chain may hold, as the chains service keeps it.
    pub fn chain_limits(&self) -> ChainLimits {
        ChainLimits {
            max_bytes: self.chain_limit(),
            max_value_bytes: self.chain_value_max_bytes,
        }
    }

    /// Checks what clap's types cannot: ranges, URL syntax, and the bind/credentials rule.
    pub fn validate(&self) -> Result<(), ConfigError> {
        if let Some(url) = &self.redis_url {
            redis::Client::open(url.as_str())
                .map_err(|e| bad("REDIS_URL", format!("not a usable Redis URL ({e})")))?;
        }
        if let Some(dir) = &self.web_demo_dir {
            if !dir.join("index.html").is_file() {
                return Err(bad(
                    "WEB_DEMO_DIR",
                    format!("{} has no index.html", dir.display()),
                ));
            }
        }
        if self.redis_prefix.is_empty()
            || self.redis_prefix.len() > 64
            || self
                .redis_prefix
                .chars()
                .any(|c| c.is_whitespace() || c.is_control())
        {
            return Err(bad(
                "REDIS_PREFIX",
                "must be 1-64 characters without whitespace",
            ));
        }
        check_api_keys(&self.api_keys)?;
        if self.session_ttl_secs == 0 || self.session_ttl_secs > 365 * 24 * 3600 {
            return Err(bad(
                "SESSION_TTL_SECS",
                "must be between 1 and 31536000 seconds",
            ));
        }
        if self.queue_ttl_secs == 0 || self.queue_ttl_secs > 7 * 24 * 3600 {
            return Err(bad(
                "QUEUE_TTL_SECS",
                "must be between 1 and 604800 seconds",
            ));
        }
        if self.chain_stale_secs == 0 {
            return Err(bad("CHAIN_STALE_SECS", "must be at least 1 second"));
        }
        if self.max_events_per_session == 0 || self.max_events_per_session > 1_000_000 {
            return Err(bad(
                "MAX_EVENTS_PER_SESSION",
                "must be between 1 and 1000000",
            ));
        }
        if self.max_event_bytes < 256 || self.max_event_bytes > 16 * 1024 * 1024 {
            return Err(bad(
                "MAX_EVENT_BYTES",
                "must be between 256 and 16777216 bytes",
            ));
        }
        if self.max_batch_bytes < self.max_event_bytes || self.max_batch_bytes > 256 * 1024 * 1024 {
            return Err(bad(
                "MAX_BATCH_BYTES",
                "must be at least MAX_EVENT_BYTES and at most 268435456 bytes",
            ));
        }
        if self.max_session_event_bytes < 4096 {
            return Err(bad(
                "MAX_SESSION_EVENT_BYTES",
                "must be at least 4096 bytes",
            ));
        }
        if self.realtime.ws_outbound_limit_bytes < self.max_event_bytes {
            return Err(bad(
                "WS_OUTBOUND_LIMIT_BYTES",
                "must be at least MAX_EVENT_BYTES, or no event could be delivered",
            ));
        }
        if self.chain_limit() < 4096
            || self.chain_limit() + CHAIN_FRAME_OVERHEAD > self.realtime.ws_outbound_limit_bytes
        {
            return Err(bad(
                "CHAIN_MAX_BYTES",
                format!("must be at least 4096 and at most WS_OUTBOUND_LIMIT_BYTES - {CHAIN_FRAME_OVERHEAD}"),
            ));
        }
        if self.chain_value_max_bytes < 512 || self.chain_value_max_bytes > self.chain_limit() {
            return Err(bad(
                "CHAIN_VALUE_MAX_BYTES",
                "must be at least 512 and at most CHAIN_MAX_BYTES",
            ));
        }
        if self.read_max_bytes < self.max_event_bytes {
            return Err(bad("READ_MAX_BYTES", "must be at least MAX_EVENT_BYTES"));
        }
        if self.queue_max_items == 0 || self.queue_max_items > 100_000 {
            return Err(bad("QUEUE_MAX_ITEMS", "must be between 1 and 100000"));
        }
        if self.memory_store_max_bytes < 1024 * 1024 {
            return Err(bad("MEMORY_STORE_MAX_BYTES", "must be at least 1048576"));
        }
        self.http.validate()?;
        self.realtime.validate()?;
        self.services.validate()?;
        if !self.host.is_loopback() && self.api_keys.is_empty() && !self.insecure {
            return Err(bad(
                "HOST",
                format!(
                    "{} is not a loopback address and no AFW_API_KEYS are set; set keys or AFW_INSECURE=1",
                    self.host
                ),
            ));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_match_flags() {
        use clap::{CommandFactory, FromArgMatches};
        // Parse with no environment lookups, so the test does not depend on the caller's env.
        let cmd = Config::command().mut_args(|a| a.env(None));
        let matches = cmd.try_get_matches_from(["afw-gateway"]).unwrap();
        let parsed = Config::from_arg_matches(&matches).unwrap();
        assert_eq!(format!("{parsed:?}"), format!("{:?}", Config::default()));
        assert!(Config::default().validate().is_ok());
    }

    #[test]
    fn listed_keys_and_origins_are_trimmed_and_empty_ones_refused() {
        use clap::{CommandFactory, FromArgMatches};
        let parse = |args: &[&str]| {
            let cmd = Config::command().mut_args(|a| a.env(None));
            let m = cmd.try_get_matches_from(args).unwrap();
            Config::from_arg_matches(&m).unwrap()
        };
        let c = parse(&[
            "afw-gateway",
            "--api-keys",
            "key-one-0123456789, key-two-0123456789",
            "--cors-origins",
            " http://a , http://b",
        ]);
        assert_eq!(c.api_keys, ["key-one-0123456789", "key-two-0123456789"]);
        assert!(c.validate().is_ok());
        assert_eq!(c.cors_origins, ["http://a", "http://b"]);
        let c = parse(&["afw-gateway", "--api-keys", "key-one-0123456789, ,k2"]);
        assert_eq!(c.validate().unwrap_err().var, "AFW_API_KEYS");
        for weak in ["k", "change-me-to-a-long-random-key"] {
            let c = parse(&["afw-gateway", "--api-keys", weak]);
            assert_eq!(c.validate().unwrap_err().var, "AFW_API_KEYS", "{weak}");
        }
    }

    #[test]
    fn non_loopback_without_keys_is_refused() {
        let c = Config {
            host: "0.0.0.0".parse().unwrap(),
            ..Config::default()
        };
        assert_eq!(c.validate().unwrap_err().var, "HOST");
        let keyed = Config {
            api_keys: vec!["a-key-of-16-chars".into()],
            ..c.clone()
        };
        assert!(keyed.validate().is_ok());
        let insecure = Config {
            insecure: true,
            ..c
        };
        assert!(insecure.validate().is_ok());
    }

    #[test]
    fn bad_values_name_their_variable() {
        let c = Config {
            redis_url: Some("http://nope".into()),
            ..Config::default()
        };
        assert_eq!(c.validate().unwrap_err().var, "REDIS_URL");
        let c = Config {
            max_events_per_session: 0,
            ..Config::default()
        };
        assert_eq!(c.validate().unwrap_err().var, "MAX_EVENTS_PER_SESSION");
        // A chain frame larger than the outbound budget would close every reader of it.
        let c = Config {
            chain_max_bytes: Some(DEFAULT_WS_OUTBOUND_LIMIT_BYTES),
            ..Config::default()
        };
        assert_eq!(c.validate().unwrap_err().var, "CHAIN_MAX_BYTES");
        use clap::CommandFactory;
        let err = Config::command()
            .mut_args(|a| a.env(None))
            .try_get_matches_from(["afw-gateway", "--port", "abc"])
            .unwrap_err();
        assert!(err.to_string().contains("PORT"), "{err}");
        let err = Config::command()
            .mut_args(|a| a.env(None))
            .try_get_matches_from(["afw-gateway", "--ws-ping-interval-secs", "-1"])
            .unwrap_err();
        assert!(err.to_string().contains("WS_PING_INTERVAL_SECS"), "{err}");
    }

    #[test]
    fn durations_take_decimal_seconds() {
        assert_eq!(parse_secs("25"), Ok(Duration::from_secs(25)));
        assert_eq!(parse_secs("0.25"), Ok(Duration::from_millis(250)));
        assert!(parse_secs("0").is_err());
        assert!(parse_secs("soon").is_err());
        assert!(parse_secs("1e9").is_err());
    }
}
