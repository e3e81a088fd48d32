//! Where the data lives: Redis (its URL, key prefix and pub/sub probe) or the embedded memory
//! store (its byte budget).

use std::time::Duration;

use clap::Args;

use super::values::{bad, parse_secs, trimmed, ConfigError};

pub const DEFAULT_PREFIX: &str = "afw:";

#[derive(Clone, Debug, Args)]
#[command(next_help_heading = "Store")]
pub struct Store {
    /// Redis URL (`redis://[user:pass@]host:port/db`, or `rediss://` for TLS). Unset (and no
    /// `REDIS_SENTINELS`): the embedded in-memory store.
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
    /// A file the embedded store is written to when the gateway stops and read from when it
    /// starts (`--snapshot FILE`); unset: nothing survives a restart. Unused on Redis.
    #[arg(
        long = "snapshot",
        env = "MEMORY_SNAPSHOT_FILE",
        value_name = "MEMORY_SNAPSHOT_FILE"
    )]
    pub memory_snapshot_file: Option<std::path::PathBuf>,
    /// A PEM file of the certificate authority that signed the Redis server's certificate,
    /// for a `rediss://` URL; unset: the system's trusted roots.
    #[arg(long, env = "REDIS_TLS_CA_FILE", value_name = "REDIS_TLS_CA_FILE")]
    pub redis_tls_ca_file: Option<std::path::PathBuf>,
    /// Under Sentinel and on a Cluster: reach the data nodes and the sentinels over TLS,
    /// trusting `REDIS_TLS_CA_FILE` when set, else the system's roots. (One server: a
    /// `rediss://` REDIS_URL.)
    #[arg(long, env = "REDIS_TLS", value_name = "REDIS_TLS")]
    pub redis_tls: bool,
    #[command(flatten)]
    pub sentinel: Sentinel,
    #[command(flatten)]
    pub cluster: Cluster,
}

/// Redis Cluster: the nodes to learn the cluster from, and how events are spread over it.
#[derive(Clone, Debug, Args)]
#[command(next_help_heading = "Store")]
pub struct Cluster {
    /// Comma-separated `host:port` of some of the cluster's nodes (the rest are learned from
    /// them). Set (without `REDIS_URL` or `REDIS_SENTINELS`): Cluster mode, with sharded pub/sub.
    /// Credentials: `REDIS_USERNAME`, `REDIS_PASSWORD`.
    #[arg(
        long,
        env = "REDIS_CLUSTER_NODES",
        value_name = "REDIS_CLUSTER_NODES",
        value_delimiter = ',',
        value_parser = trimmed
    )]
    pub redis_cluster_nodes: Vec<String>,
    /// On Cluster, the partitions events are spread over: each is one sharded pub/sub channel in
    /// a slot of its own, and a session's keys, its events' channel and its share of the listing
    /// indexes live in its partition's slot. Every instance subscribes to all of them; listings
    /// read one index per partition. Changing it moves every session: set it once.
    #[arg(
        long,
        env = "REDIS_PUBSUB_PARTITIONS",
        value_name = "REDIS_PUBSUB_PARTITIONS",
        default_value_t = 16
    )]
    pub redis_pubsub_partitions: usize,
}

impl Default for Cluster {
    fn default() -> Self {
        Cluster {
            redis_cluster_nodes: Vec::new(),
            redis_pubsub_partitions: 16,
        }
    }
}

impl Cluster {
    /// Whether the store is a Redis Cluster.
    pub fn enabled(&self) -> bool {
        !self.redis_cluster_nodes.is_empty()
    }
}

/// Partitions `REDIS_PUBSUB_PARTITIONS` may name at most (each costs every instance a
/// subscription and every listing a read).
pub const MAX_PUBSUB_PARTITIONS: usize = 1024;

/// Redis under Sentinel: the sentinels to ask for the primary, and the credentials of the
/// data nodes they name.
#[derive(Clone, Debug, Args)]
#[command(next_help_heading = "Store")]
pub struct Sentinel {
    /// Comma-separated `host:port` of the sentinels. Set (with `REDIS_SENTINEL_MASTER`, and
    /// without `REDIS_URL`): the primary is the one they name, followed when it moves.
    #[arg(
        long,
        env = "REDIS_SENTINELS",
        value_name = "REDIS_SENTINELS",
        value_delimiter = ',',
        value_parser = trimmed
    )]
    pub redis_sentinels: Vec<String>,
    /// The name the sentinels monitor the primary under.
    #[arg(
        long,
        env = "REDIS_SENTINEL_MASTER",
        value_name = "REDIS_SENTINEL_MASTER"
    )]
    pub redis_sentinel_master: Option<String>,
    /// The sentinels' password, if they require one.
    #[arg(
        long,
        env = "REDIS_SENTINEL_PASSWORD",
        value_name = "REDIS_SENTINEL_PASSWORD",
        hide_env_values = true
    )]
    pub redis_sentinel_password: Option<String>,
    /// The user of the data nodes the sentinels name, or of the cluster's nodes (with
    /// `REDIS_PASSWORD`; ACL users).
    #[arg(long, env = "REDIS_USERNAME", value_name = "REDIS_USERNAME")]
    pub redis_username: Option<String>,
    /// The password of the data nodes the sentinels name, or of the cluster's nodes.
    #[arg(
        long,
        env = "REDIS_PASSWORD",
        value_name = "REDIS_PASSWORD",
        hide_env_values = true
    )]
    pub redis_password: Option<String>,
    /// Seconds between questions to the sentinels (a `+switch-master` can be missed, so the
    /// gateway asks rather than listens).
    #[arg(long, env = "REDIS_SENTINEL_CHECK_SECS", value_name = "REDIS_SENTINEL_CHECK_SECS", value_parser = parse_secs, default_value = "1")]
    pub redis_sentinel_check: Duration,
    /// Under Sentinel and on a Cluster, replicas that must hold a posted event before it is
    /// answered 2xx (`WAIT`, on the node that stored it): Redis replicates after it answers, so
    /// without it a primary that dies can take the last acknowledged events with it. Not
    /// confirmed in time: 503, and the event may be stored (retry with its `eventId`). 0:
    /// answer once the primary has it (a cluster without replicas needs 0).
    #[arg(
        long,
        env = "REDIS_WAIT_REPLICAS",
        value_name = "REDIS_WAIT_REPLICAS",
        default_value_t = 1
    )]
    pub redis_wait_replicas: u64,
    /// Seconds a posted event waits for `REDIS_WAIT_REPLICAS` at most.
    #[arg(long, env = "REDIS_WAIT_TIMEOUT_SECS", value_name = "REDIS_WAIT_TIMEOUT_SECS", value_parser = parse_secs, default_value = "1")]
    pub redis_wait_timeout: Duration,
}

impl Default for Sentinel {
    fn default() -> Self {
        Sentinel {
            redis_sentinels: Vec::new(),
            redis_sentinel_master: None,
            redis_sentinel_password: None,
            redis_username: None,
            redis_password: None,
            redis_sentinel_check: Duration::from_secs(1),
            redis_wait_replicas: 1,
            redis_wait_timeout: Duration::from_secs(1),
        }
    }
}

/// `host:port` (the port 1-65535), as `REDIS_SENTINELS` lists them.
pub fn host_port(entry: &str) -> Option<(&str, u16)> {
    let (host, port) = entry.rsplit_once(':')?;
    let port = port.parse().ok().filter(|p| *p > 0)?;
    (!host.is_empty()).then_some((host, port))
}

impl Sentinel {
    /// Whether the store is reached through sentinels.
    pub fn enabled(&self) -> bool {
        !self.redis_sentinels.is_empty()
    }
}

impl Default for Store {
    fn default() -> Self {
        Store {
            redis_url: None,
            redis_prefix: DEFAULT_PREFIX.to_string(),
            pubsub_probe_every: Duration::from_secs(5),
            memory_store_max_bytes: 1024 * 1024 * 1024,
            memory_snapshot_file: None,
            redis_tls_ca_file: None,
            redis_tls: false,
            sentinel: Sentinel::default(),
            cluster: Cluster::default(),
        }
    }
}

impl Store {
    /// Whether the store is Redis (one server, the primary sentinels name, or a Cluster)
    /// rather than the embedded one.
    pub fn on_redis(&self) -> bool {
        self.redis_url.is_some() || self.sentinel.enabled() || self.cluster.enabled()
    }

    /// Replicas a posted event must reach before its answer, and how long it may wait: under
    /// Sentinel and on a Cluster (one server has no replicas to wait for).
    pub fn wait(&self) -> Option<(u64, Duration)> {
        let s = &self.sentinel;
        ((s.enabled() || self.cluster.enabled()) && s.redis_wait_replicas > 0)
            .then_some((s.redis_wait_replicas, s.redis_wait_timeout))
    }

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
        if self.redis_tls && self.redis_url.is_some() {
            return Err(bad(
                "REDIS_TLS",
                "is for REDIS_SENTINELS and REDIS_CLUSTER_NODES; one server takes a rediss:// REDIS_URL",
            ));
        }
        if self.redis_tls && !self.sentinel.enabled() && !self.cluster.enabled() {
            return Err(bad(
                "REDIS_TLS",
                "is for REDIS_SENTINELS and REDIS_CLUSTER_NODES",
            ));
        }
        if let Some(path) = &self.redis_tls_ca_file {
            let tls = self.redis_tls
                || self
                    .redis_url
                    .as_deref()
                    .is_some_and(|u| u.starts_with("rediss://"));
            if !tls {
                return Err(bad(
                    "REDIS_TLS_CA_FILE",
                    "is for a rediss:// REDIS_URL, or REDIS_TLS under Sentinel or on a Cluster",
                ));
            }
            let pem = std::fs::read_to_string(path).unwrap_or_default();
            if !pem.contains("-----BEGIN CERTIFICATE-----") {
                return Err(bad(
                    "REDIS_TLS_CA_FILE",
                    format!("{} holds no PEM certificate", path.display()),
                ));
            }
        }
        let s = &self.sentinel;
        match (s.enabled(), &s.redis_sentinel_master, &self.redis_url) {
            (true, _, Some(_)) => return Err(bad(
                "REDIS_SENTINELS",
                "give REDIS_URL (one server) or REDIS_SENTINELS (a primary they name), not both",
            )),
            (true, None, _) => {
                return Err(bad(
                    "REDIS_SENTINEL_MASTER",
                    "is required with REDIS_SENTINELS",
                ))
            }
            (false, Some(_), _) => {
                return Err(bad("REDIS_SENTINEL_MASTER", "needs REDIS_SENTINELS"))
            }
            _ => {}
        }
        let c = &self.cluster;
        if c.enabled() && (s.enabled() || self.redis_url.is_some()) {
            return Err(bad(
                "REDIS_CLUSTER_NODES",
                "give one of REDIS_URL, REDIS_SENTINELS or REDIS_CLUSTER_NODES",
            ));
        }
        if c.redis_pubsub_partitions == 0 || c.redis_pubsub_partitions > MAX_PUBSUB_PARTITIONS {
            return Err(bad(
                "REDIS_PUBSUB_PARTITIONS",
                format!("must be 1-{MAX_PUBSUB_PARTITIONS}"),
            ));
        }
        for entry in &c.redis_cluster_nodes {
            if host_port(entry).is_none() {
                return Err(bad(
                    "REDIS_CLUSTER_NODES",
                    format!("`{entry}` is not host:port"),
                ));
            }
        }
        for entry in &s.redis_sentinels {
            if host_port(entry).is_none() {
                return Err(bad(
                    "REDIS_SENTINELS",
                    format!("`{entry}` is not host:port"),
                ));
            }
        }
        if self.memory_store_max_bytes < 1024 * 1024 {
            return Err(bad("MEMORY_STORE_MAX_BYTES", "must be at least 1048576"));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn with(f: impl FnOnce(&mut Store)) -> Result<(), String> {
        let mut s = Store::default();
        f(&mut s);
        s.validate().map_err(|e| e.to_string())
    }

    #[test]
    fn sentinel_settings_are_one_mode_and_complete() {
        let sentinels = |s: &mut Store| {
            s.sentinel.redis_sentinels = vec!["127.0.0.1:26379".into(), "s2:26380".into()];
        };
        assert!(with(|s| {
            sentinels(s);
            s.sentinel.redis_sentinel_master = Some("afw".into());
        })
        .is_ok());
        for (bad, var) in [
            (
                with(|s| {
                    sentinels(s);
                    s.sentinel.redis_sentinel_master = Some("afw".into());
                    s.redis_url = Some("redis://127.0.0.1:6379".into());
                }),
                "REDIS_SENTINELS",
            ),
            (with(sentinels), "REDIS_SENTINEL_MASTER"),
            (
                with(|s| s.sentinel.redis_sentinel_master = Some("afw".into())),
                "REDIS_SENTINEL_MASTER",
            ),
            (
                with(|s| {
                    s.sentinel.redis_sentinels = vec!["no-port".into()];
                    s.sentinel.redis_sentinel_master = Some("afw".into());
                }),
                "REDIS_SENTINELS",
            ),
        ] {
            let e = bad.unwrap_err();
            assert!(e.contains(var), "{e}");
        }
        assert_eq!(Store::default().wait(), None, "no waiting on one server");
    }

    #[test]
    fn cluster_settings_are_one_mode_and_complete() {
        let nodes = |s: &mut Store| {
            s.cluster.redis_cluster_nodes = vec!["127.0.0.1:7000".into(), "n2:7001".into()];
        };
        assert!(with(nodes).is_ok());
        for (bad, var) in [
            (
                with(|s| {
                    nodes(s);
                    s.redis_url = Some("redis://127.0.0.1:6379".into());
                }),
                "REDIS_CLUSTER_NODES",
            ),
            (
                with(|s| {
                    nodes(s);
                    s.sentinel.redis_sentinels = vec!["127.0.0.1:26379".into()];
                    s.sentinel.redis_sentinel_master = Some("afw".into());
                }),
                "REDIS_CLUSTER_NODES",
            ),
            (
                with(|s| s.cluster.redis_cluster_nodes = vec!["7000".into()]),
                "REDIS_CLUSTER_NODES",
            ),
            (
                with(|s| s.cluster.redis_pubsub_partitions = 0),
                "REDIS_PUBSUB_PARTITIONS",
            ),
            (
                with(|s| s.cluster.redis_pubsub_partitions = MAX_PUBSUB_PARTITIONS + 1),
                "REDIS_PUBSUB_PARTITIONS",
            ),
        ] {
            let e = bad.unwrap_err();
            assert!(e.contains(var), "{e}");
        }
    }
}
