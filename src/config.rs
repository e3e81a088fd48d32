//! Configuration: one struct of groups, one group per part (the server's own settings here;
//! [`Http`], [`Store`], [`Events`], [`Chains`], [`Control`], [`Realtime`], [`Services`]), read
//! from flags with environment fallbacks (docs/configuration.md) and validated before anything
//! binds or connects: each group checks itself, and [`Config::validate`] what spans two. Tests build it with [`Config::default`] and
//! struct update syntax instead of touching the process environment.

use std::net::IpAddr;
use std::time::Duration;

use clap::Parser;

use crate::domain::chain::ChainLimits;

mod aliases;
mod auth;
mod chains;
mod control;
mod events;
mod http;
mod operations;
mod permissions;
mod quotas;
mod rate_limits;
mod realtime;
mod services;
mod store;
mod values;
pub use aliases::Aliases;
pub use auth::Auth;
pub use chains::Chains;
pub use control::Control;
pub use events::{Events, DEFAULT_MAX_EVENT_BYTES};
pub use http::Http;
pub use operations::Operations;
pub use permissions::Permissions;
pub use quotas::Quotas;
pub use rate_limits::RateLimits;
pub use realtime::Realtime;
pub use services::Services;
pub use store::{host_port, Sentinel, Store, MAX_PUBSUB_PARTITIONS};
use values::{bad, trimmed};
pub use values::{Compat, ConfigError, LogFormat, MIN_API_KEY_CHARS};

pub const DEFAULT_PORT: u16 = 3001;
pub const DEFAULT_WS_OUTBOUND_LIMIT_BYTES: usize = 4 * 1024 * 1024;

/// Every setting of the gateway. Each field's flag is also read from the environment variable
/// shown as its value name, so `--port 4000` and `PORT=4000` mean the same.
#[derive(Clone, Debug, Parser)]
#[command(
    name = "afw-gateway",
    next_help_heading = "Server",
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
    #[command(flatten)]
    pub auth: Auth,
    #[command(flatten)]
    pub rate_limits: RateLimits,
    #[command(flatten)]
    pub quotas: Quotas,
    #[command(flatten)]
    pub http: Http,
    #[command(flatten)]
    pub store: Store,
    #[command(flatten)]
    pub events: Events,
    #[command(flatten)]
    pub chains: Chains,
    #[command(flatten)]
    pub control: Control,
    #[command(flatten)]
    pub operations: Operations,
    #[command(flatten)]
    pub realtime: Realtime,
    #[command(flatten)]
    pub services: Services,
    #[command(flatten)]
    pub permissions: Permissions,
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
            cors_origins: Vec::new(),
            allowed_hosts: Vec::new(),
            web_demo_dir: None,
            compat: None,
            log_format: LogFormat::Pretty,
            insecure: false,
            auth: Auth::default(),
            rate_limits: RateLimits::default(),
            quotas: Quotas::default(),
            http: Http::default(),
            store: Store::default(),
            events: Events::default(),
            chains: Chains::default(),
            control: Control::default(),
            operations: Operations::default(),
            realtime: Realtime::default(),
            services: Services::default(),
            permissions: Permissions::default(),
            aliases: Aliases::default(),
        }
    }
}

impl Config {
    /// What one chain may hold, as the chains service keeps it.
    pub fn chain_limits(&self) -> ChainLimits {
        self.chains.limits(self.realtime.ws_outbound_limit_bytes)
    }

    /// Checks what clap's types cannot: ranges, URL syntax, and the bind/credentials rule.
    pub fn validate(&self) -> Result<(), ConfigError> {
        if let Some(dir) = &self.web_demo_dir {
            if !dir.join("index.html").is_file() {
                return Err(bad(
                    "WEB_DEMO_DIR",
                    format!("{} has no index.html", dir.display()),
                ));
            }
        }
        self.auth.validate()?;
        self.rate_limits.validate()?;
        self.quotas.validate()?;
        self.store.validate()?;
        self.events.validate()?;
        self.control.validate()?;
        self.operations.validate()?;
        if self.realtime.ws_outbound_limit_bytes < self.events.max_event_bytes {
            return Err(bad(
                "WS_OUTBOUND_LIMIT_BYTES",
                "must be at least MAX_EVENT_BYTES, or no event could be delivered",
            ));
        }
        self.chains
            .validate(self.realtime.ws_outbound_limit_bytes)?;
        self.http.validate()?;
        self.realtime.validate()?;
        self.services.validate()?;
        self.permissions.validate()?;
        if !self.host.is_loopback() && !self.auth.required() && !self.insecure {
            return Err(bad(
                "HOST",
                format!(
                    "{} is not a loopback address and no credentials are set (AFW_API_KEYS, AFW_JWT_SECRET or AFW_JWT_PUBLIC_KEYS); set them or AFW_INSECURE=1",
                    self.host
                ),
            ));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::values::parse_secs;
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
        assert_eq!(
            c.auth.api_keys,
            ["key-one-0123456789", "key-two-0123456789"]
        );
        assert!(c.validate().is_ok());
        assert_eq!(c.cors_origins, ["http://a", "http://b"]);
        // The entries themselves are checked when the credentials are made from them.
        let refused = |c: &Config| {
            crate::credentials::Credentials::new(&c.auth)
                .err()
                .map(|e| e.var)
        };
        assert_eq!(refused(&c), None);
        let c = parse(&["afw-gateway", "--api-keys", "key-one-0123456789, ,k2"]);
        assert_eq!(refused(&c), Some("AFW_API_KEYS"));
        for weak in ["k", "change-me-to-a-long-random-key"] {
            let c = parse(&["afw-gateway", "--api-keys", weak]);
            assert_eq!(refused(&c), Some("AFW_API_KEYS"), "{weak}");
        }
    }

    #[test]
    fn non_loopback_without_keys_is_refused() {
        let c = Config {
            host: "0.0.0.0".parse().unwrap(),
            ..Config::default()
        };
        assert_eq!(c.validate().unwrap_err().var, "HOST");
        let mut keyed = c.clone();
        keyed.auth.api_keys = vec!["a-key-of-16-chars".into()];
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
            store: Store {
                redis_url: Some("http://nope".into()),
                ..Store::default()
            },
            ..Config::default()
        };
        assert_eq!(c.validate().unwrap_err().var, "REDIS_URL");
        let c = Config {
            events: Events {
                max_events_per_session: 0,
                ..Events::default()
            },
            ..Config::default()
        };
        assert_eq!(c.validate().unwrap_err().var, "MAX_EVENTS_PER_SESSION");
        // A chain frame larger than the outbound budget would close every reader of it.
        let c = Config {
            chains: Chains {
                chain_max_bytes: Some(DEFAULT_WS_OUTBOUND_LIMIT_BYTES),
                ..Chains::default()
            },
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
