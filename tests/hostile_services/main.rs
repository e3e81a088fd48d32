//! The services beside the stream under hostile and heavy use, one test per finding of the
//! review that found them (each failed on the gateway before its fix): real gateway processes,
//! on Redis with the attack on one instance and a bystander agent and its subscriber on another
//! (every post stored, every event delivered once, in order), or on the memory store where the
//! finding was the memory store's. By family: [`jobs`], [`cache`], [`chains`], [`waits`],
//! [`usage`].

#[path = "../support/mod.rs"]
mod support;

mod cache;
mod chains;
mod jobs;
mod usage;
mod waits;

use std::time::Duration;

use serde_json::Value;
use support::{Bystander, Endpoint, GatewayProcess, RedisServer};

/// Two gateway processes on one fresh Redis with `env`: `a` takes the attack, `b` serves the
/// bystander (started here).
pub struct Pair {
    pub a: GatewayProcess,
    pub b: GatewayProcess,
    pub redis: RedisServer,
    pub bystander: Bystander,
}

impl Pair {
    /// With `AFW_API_KEYS` in `env`, the bystander uses the last key.
    pub async fn start(env: &[(&str, &str)]) -> Pair {
        let redis = RedisServer::start().await;
        let mut vars: Vec<(&str, String)> = env.iter().map(|(k, v)| (*k, v.to_string())).collect();
        vars.push(("REDIS_URL", redis.url()));
        let a = GatewayProcess::start(&vars).await;
        let b = GatewayProcess::start(&vars).await;
        let key = env
            .iter()
            .find(|(k, _)| *k == "AFW_API_KEYS")
            .and_then(|(_, keys)| keys.rsplit(',').next());
        let at = match key {
            Some(k) => b.endpoint().with_key(k),
            None => b.endpoint(),
        };
        let bystander = Bystander::start(at, "bystander").await;
        Pair {
            a,
            b,
            redis,
            bystander,
        }
    }

    /// Stops the bystander and checks it was served throughout.
    pub async fn finish(self) {
        // Long enough after the attack for the bystander to show it is still served.
        tokio::time::sleep(SETTLE).await;
        self.bystander.finish().await;
    }

    /// Scripts Redis has run so far (EVALSHA and EVAL calls, from `INFO commandstats`).
    pub async fn script_calls(&self) -> u64 {
        self.command_calls("evalsha").await + self.command_calls("eval").await
    }

    /// How many times Redis has run `command` so far (scripts' commands included), from
    /// `INFO commandstats`.
    pub async fn command_calls(&self, command: &str) -> u64 {
        let mut conn = self.redis.connection().await.expect("redis");
        let info: String = ::redis::cmd("INFO")
            .arg("commandstats")
            .query_async(&mut conn)
            .await
            .expect("INFO");
        let head = format!("cmdstat_{command}:");
        info.lines()
            .filter(|l| l.starts_with(&head))
            .filter_map(|l| {
                l.split("calls=")
                    .nth(1)?
                    .split(',')
                    .next()?
                    .parse::<u64>()
                    .ok()
            })
            .sum()
    }
}

/// A gateway process on the memory store with `env`.
pub async fn memory(env: &[(&str, &str)]) -> GatewayProcess {
    let vars: Vec<(&str, String)> = env.iter().map(|(k, v)| (*k, v.to_string())).collect();
    GatewayProcess::start(&vars).await
}

/// POSTs and expects 200 or 201.
pub async fn ok(at: &Endpoint, path: &str, body: Value) -> Value {
    let (s, v) = at.post(path, body).await;
    assert!(s == 200 || s == 201, "{path}: {s} {v}");
    v
}

/// Runs `n` copies of `f` at once and collects their results.
pub async fn together<F, Fut, T>(n: usize, f: F) -> Vec<T>
where
    F: Fn(usize) -> Fut,
    Fut: std::future::Future<Output = T> + Send + 'static,
    T: Send + 'static,
{
    let tasks: Vec<_> = (0..n).map(|i| tokio::spawn(f(i))).collect();
    let mut out = Vec::with_capacity(n);
    for t in tasks {
        out.push(t.await.expect("task"));
    }
    out
}

/// How long an idle moment is in these tests.
pub const SETTLE: Duration = Duration::from_millis(300);
