//! Whether Redis serves the instance (`/ready`) and what it says of itself
//! (`/api/health/redis`): one `PING` timed, one `INFO` and one `DBSIZE` (the probe's
//! `/health?checks=true` asks only the `PING`), each bounded by the
//! connection's response timeout, plus what the instance knows of its pub/sub feed.

use std::sync::atomic::Ordering;
use std::time::Instant;

use async_trait::async_trait;
use redis::Value;

use super::RedisStore;
use crate::store::health::{info_field, PubSubReport, RedisReport};
use crate::store::StoreHealth;

/// `INFO`'s text: a Cluster's answer is one text per node, and the first one stands for all.
fn info_text(v: Value) -> Option<String> {
    match v {
        Value::BulkString(b) => String::from_utf8(b).ok(),
        Value::SimpleString(s) => Some(s),
        Value::VerbatimString { text, .. } => Some(text),
        Value::Map(pairs) => pairs.into_iter().find_map(|(_, v)| info_text(v)),
        Value::Array(items) => items.into_iter().find_map(info_text),
        _ => None,
    }
}

impl RedisStore {
    fn pubsub_report(&self) -> PubSubReport {
        let last = self.last_message_ms.load(Ordering::Relaxed);
        let subscribes = self.settings.metrics.pubsub_subscribes.get();
        PubSubReport {
            subscribed: self.pubsub_subscribed().unwrap_or(false),
            // The events and control channels, and a pattern for other tenants' each; a
            // Cluster's events go on its partitions' sharded channels instead.
            channels: if self.mode == "cluster" {
                2 + self.keys.partitions() as u64
            } else {
                4
            },
            last_message_age_ms: (last > 0).then(|| (crate::time::now_ms() - last).max(0) as u64),
            reconnects: subscribes.saturating_sub(1),
        }
    }
}

#[async_trait]
impl StoreHealth for RedisStore {
    async fn readiness(&self) -> Result<(), String> {
        // Both connections: the read connection reconnects on its own use, and ready means
        // a read would be answered too.
        let (mut conn, mut reads) = (self.conn(), self.read_conn());
        let (ping_w, ping_r) = (redis::cmd("PING"), redis::cmd("PING"));
        let (w, r) = futures::join!(
            ping_w.query_async::<String>(&mut conn),
            ping_r.query_async::<String>(&mut reads),
        );
        if let Err(e) = w.and(r) {
            // The detail is for the log; `/ready` answers anyone, so it says only what failed.
            tracing::debug!(error = %e, "readiness: redis does not answer");
            return Err("the store is unreachable".into());
        }
        if !self.pubsub_live.load(Ordering::Acquire) {
            return Err("redis pub/sub subscription is not live".into());
        }
        if !self.shards_live.load(Ordering::Acquire) {
            return Err("a sharded pub/sub partition is not subscribed".into());
        }
        Ok(())
    }

    fn pubsub_subscribed(&self) -> Option<bool> {
        Some(self.pubsub_live.load(Ordering::Acquire) && self.shards_live.load(Ordering::Acquire))
    }

    async fn redis_report(&self, detail: bool) -> Option<RedisReport> {
        let mut report = RedisReport {
            mode: self.mode,
            pubsub: self.pubsub_report(),
            ..RedisReport::default()
        };
        let mut conn = self.conn();
        let started = Instant::now();
        if let Err(e) = redis::cmd("PING").query_async::<String>(&mut conn).await {
            report.error = Some(e.to_string());
            return Some(report);
        }
        report.up = true;
        report.latency_ms = Some((started.elapsed().as_secs_f64() * 1e6).round() / 1e3);
        if !detail {
            return Some(report);
        }
        let (info_cmd, size_cmd, mut other) =
            (redis::cmd("INFO"), redis::cmd("DBSIZE"), self.conn());
        let (info, keys) = futures::join!(
            info_cmd.query_async::<Value>(&mut conn),
            size_cmd.query_async::<u64>(&mut other),
        );
        report.keys = keys.ok();
        if let Some(info) = info.ok().and_then(info_text) {
            let num = |name| info_field(&info, name).and_then(|v| v.parse().ok());
            let text = |name| info_field(&info, name).map(str::to_string);
            report.used_memory = num("used_memory");
            report.used_memory_human = text("used_memory_human");
            report.max_memory = num("maxmemory");
            report.eviction_policy = text("maxmemory_policy");
            report.version = text("redis_version");
            report.role = text("role");
            report.connected_clients = num("connected_clients");
        }
        Some(report)
    }
}
