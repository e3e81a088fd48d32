//! One suite per service, each run against both stores through the HTTP API: the memory
//! store must behave exactly like Redis. Each case is an async function of an [`Env`] named
//! for the promise it checks; the [`conformance!`] macro makes a `memory::` and a `redis::`
//! test of each. A new service adds one file here, shaped like these.

#[path = "../support/mod.rs"]
mod support;

use afw_gateway::Config;
use serde_json::Value;
use support::{Gateway, RedisServer};

pub struct Env {
    pub gw: Gateway,
    pub redis: Option<RedisServer>,
}

impl Env {
    pub async fn start(redis: bool, tweak: fn(&mut Config)) -> Env {
        let redis = if redis {
            Some(RedisServer::start().await)
        } else {
            None
        };
        let mut config = support::config(redis.as_ref());
        tweak(&mut config);
        Env {
            gw: Gateway::start(config).await,
            redis,
        }
    }
}

/// The config tweak of cases that need none.
pub fn defaults(_: &mut Config) {}

/// Makes a `memory::` and a `redis::` test of each case, with its config tweak.
macro_rules! conformance {
    ($($name:ident => $tweak:expr),* $(,)?) => {
        mod memory {
            $( #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
               async fn $name() { super::$name(crate::Env::start(false, $tweak).await).await; } )*
        }
        mod redis {
            $( #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
               async fn $name() { super::$name(crate::Env::start(true, $tweak).await).await; } )*
        }
    };
}

mod actionflows;
mod cache;
mod chain_bounds;
mod chains;
mod control;
mod events;
mod job_batches;
mod job_bounds;
mod jobs;
mod locks;
mod quota;
mod rate;
mod sessions;
mod usage;
mod user_context;
mod workflow;

pub async fn events_of(gw: &Gateway, sid: &str, query: &str) -> Value {
    let (status, v) = gw.get(&format!("/api/events/{sid}{query}")).await;
    assert_eq!(status, 200, "{v}");
    v
}

pub fn seqs(page: &Value) -> Vec<u64> {
    page["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["seq"].as_u64().unwrap())
        .collect()
}
