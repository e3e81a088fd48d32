//! Where the data lives: Redis (its URL, key prefix and pub/sub probe) or the embedded memory
//! store (its byte budget).

use std::time::Duration;

use clap::Args;

use super::values::{bad, parse_secs, ConfigError};

pub const DEFAULT_PREFIX: &str = "afw:";

#[derive(Clone, Debug, Args)]
#[command(next_help_heading = "Store")]
pub struct Store {
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
    /// Seconds between probes of the Redis pub/sub subscription. A probe that has not come back
    /// by the next one means the subscription is wedged: it is dropped and made again.
    #[arg(long, env = "PUBSUB_PROBE_SECS", value_name = "PUBSUB_PROBE_SECS", value_parser = parse_secs, default_value = "5")]
    pub pubsub_probe_every: Duration,
    /// Bytes of data the embedded memory store holds at most; a write past it gets 503
    /// `store_full` (counted in `afw_store_full_total`). Unused on Redis (set its `maxmemory`).
    #[arg(long, env = "MEMORY_STORE_MAX_BYTES", value_name = "MEMORY_STORE_MAX_BYTES", default_value_t = 1024 * 1024 * 1024)]
    pub memory_store_max_bytes: usize,
}

impl Default for Store {
    fn default() -> Self {
        Store {
            redis_url: None,
            redis_prefix: DEFAULT_PREFIX.to_string(),
            pubsub_probe_every: Duration::from_secs(5),
            memory_store_max_bytes: 1024 * 1024 * 1024,
        }
    }
}

impl Store {
    pub fn validate(&self) -> Result<(), ConfigError> {
        if let Some(url) = &self.redis_url {
            redis::Client::open(url.as_str())
                .map_err(|e| bad("REDIS_URL", format!("not a usable Redis URL ({e})")))?;
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
        if self.memory_store_max_bytes < 1024 * 1024 {
            return Err(bad("MEMORY_STORE_MAX_BYTES", "must be at least 1048576"));
        }
        Ok(())
    }
}
