//! Whether the store can serve (`/ready`), and what Redis says of itself
//! (`/api/health/redis`, `/health?checks=true`).

use async_trait::async_trait;
use serde::Serialize;

#[async_trait]
pub trait StoreHealth: Send + Sync + 'static {
    /// `Ok` when the store answers and its feed of the bus is live; otherwise why not.
    async fn readiness(&self) -> Result<(), String>;

    /// Whether the instance's pub/sub feed is subscribed (every partition's, on a Cluster):
    /// two atomic loads; `None` on the embedded store.
    fn pubsub_subscribed(&self) -> Option<bool> {
        None
    }

    /// What Redis reports of itself; `None` on the embedded store. Without `detail`, only
    /// the `PING` and the pub/sub feed (what a probe needs), not `INFO` and `DBSIZE`.
    async fn redis_report(&self, detail: bool) -> Option<RedisReport> {
        let _ = detail;
        None
    }
}

/// Redis as one `PING`, one `INFO` and one `DBSIZE` found it (each field `None` when that
/// answer did not come or did not say).
#[derive(Debug, Clone, Default, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct RedisReport {
    pub up: bool,
    /// The `PING`'s round trip.
    pub latency_ms: Option<f64>,
    /// `DBSIZE` (summed over a Cluster's primaries): every key of the database, the gateway's
    /// and any other.
    pub keys: Option<u64>,
    pub used_memory: Option<u64>,
    pub used_memory_human: Option<String>,
    /// `maxmemory`; 0: no limit.
    pub max_memory: Option<u64>,
    pub eviction_policy: Option<String>,
    pub version: Option<String>,
    pub role: Option<String>,
    pub connected_clients: Option<u64>,
    /// `cluster`, `sentinel` or `standalone`: how the gateway reaches Redis.
    pub mode: &'static str,
    pub pubsub: PubSubReport,
    /// Why Redis is down (the client's error, never a password: URLs are not in it).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

#[derive(Debug, Clone, Default, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct PubSubReport {
    /// The instance's subscription is live (and, on a Cluster, every partition's).
    pub subscribed: bool,
    /// Channels and patterns subscribed (the events and control channels, other tenants'
    /// patterns, a Cluster's partitions).
    pub channels: u64,
    /// Since the last message of any channel came (the instance's own probes included, so
    /// a live subscription is never quiet longer than the probe interval).
    pub last_message_age_ms: Option<u64>,
    /// Subscribes after the first.
    pub reconnects: u64,
}

/// The fields of `INFO`'s text the report reads (`name:value` lines).
pub fn info_field<'a>(info: &'a str, name: &str) -> Option<&'a str> {
    info.lines().find_map(|line| {
        let (k, v) = line.split_once(':')?;
        (k == name).then(|| v.trim())
    })
}

/// Whether a `maxmemory-policy` may evict the gateway's keys, and what to say about it.
pub fn eviction_warning(policy: &str, max_memory: u64) -> Option<String> {
    if policy == "noeviction" {
        return None;
    }
    let limit = if max_memory == 0 {
        "once a maxmemory is set"
    } else {
        "when Redis is full"
    };
    let which = if policy.starts_with("allkeys-") {
        "any key"
    } else {
        "any key with a TTL, which nearly every key of the gateway has"
    };
    Some(format!(
        "maxmemory-policy {policy} evicts {which} {limit}: event lists, sessions and queued \
         commands and input would vanish without an error, and resume would find gaps. Use \
         noeviction: a full Redis then refuses writes, which the gateway answers with 503 \
         store_unavailable and its clients retry."
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn info_fields_and_the_eviction_warning() {
        let info = "# Server\r\nredis_version:7.2.4\r\nrole:master\r\nused_memory:1024\r\n";
        assert_eq!(info_field(info, "redis_version"), Some("7.2.4"));
        assert_eq!(info_field(info, "role"), Some("master"));
        assert_eq!(info_field(info, "used_memory"), Some("1024"));
        assert_eq!(info_field(info, "used"), None);
        assert_eq!(eviction_warning("noeviction", 100), None);
        assert!(eviction_warning("allkeys-lru", 100)
            .unwrap()
            .contains("evicts any key when Redis is full"));
        assert!(eviction_warning("volatile-ttl", 0)
            .unwrap()
            .contains("with a TTL"));
    }
}
