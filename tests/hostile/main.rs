//! Attacks a stranger can make on the HTTP and WebSocket edge and the event stream, each
//! bounded by a named setting, while (where it matters) a bystander agent and its subscriber
//! keep working. Each test here failed on the gateway before its bound existed. By family:
//! [`connections`] and [`amplification`]. The services beside the stream have theirs in
//! `tests/hostile_services/` (a binary of its own, so its heavy tests never share the machine
//! with the timing of these connection caps).

#[path = "../support/mod.rs"]
mod support;

mod amplification;
mod connections;

use std::time::Duration;

use afw_gateway::http::serve::HEALTH_HEADROOM;
use afw_gateway::Config;
use serde_json::Value;
use support::*;
use tokio::io::AsyncWriteExt;

/// A gateway process on the memory store or on a fresh Redis, with `env`.
async fn process(redis: bool, env: &[(&str, &str)]) -> (GatewayProcess, Option<RedisServer>) {
    let redis = if redis {
        Some(RedisServer::start().await)
    } else {
        None
    };
    let mut vars: Vec<(&str, String)> = env.iter().map(|(k, v)| (*k, v.to_string())).collect();
    if let Some(r) = &redis {
        vars.push(("REDIS_URL", r.url()));
    }
    (GatewayProcess::start(&vars).await, redis)
}

/// Posts `mib` MiB to `session` in batches of fifteen 60 KiB events.
async fn fill(at: &Endpoint, session: &str, mib: usize) {
    let pad = "r".repeat(60 * 1024);
    for b in 0..(mib * 1024 / (15 * 60)) {
        let events: Vec<Value> = (0..15)
            .map(|i| serde_json::json!({"sessionId": session, "type": "t", "b": b, "i": i, "pad": pad}))
            .collect();
        let (s, v) = at
            .post("/api/events/batch", serde_json::json!({"events": events}))
            .await;
        assert_eq!(s, 201, "{v}");
    }
}
