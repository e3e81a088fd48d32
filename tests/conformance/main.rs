//! One suite per service, each run against both stores through the HTTP API: the memory
//! store must behave exactly like Redis, on one server and on a Cluster. Each case is an async
//! function of an [`Env`] named for the promise it checks; the [`conformance!`] macro makes a
//! `memory::`, a `redis::` and a `cluster::` test of each (the last on three masters, with
//! two partitions per master). A new service adds one file here, shaped like these.

#[path = "../support/mod.rs"]
mod support;

use afw_gateway::Config;
use serde_json::Value;
use support::{Gateway, RedisCluster, RedisServer};

pub struct Env {
    pub gw: Gateway,
    /// The one server, when the case runs on one (its keys can be inspected directly).
    pub redis: Option<RedisServer>,
    pub cluster: Option<RedisCluster>,
}

/// Where a case's gateway keeps its data.
#[derive(Clone, Copy)]
pub enum On {
    Memory,
    Redis,
    Cluster,
}

impl Env {
    pub async fn start(on: On, tweak: fn(&mut Config)) -> Env {
        let redis = match on {
            On::Redis => Some(RedisServer::start().await),
            _ => None,
        };
        let cluster = match on {
            On::Cluster => Some(RedisCluster::start(3, 0).await),
            _ => None,
        };
        let mut config = support::config(redis.as_ref());
        if let Some(c) = &cluster {
            config.store.cluster.redis_cluster_nodes = c.node_list();
            config.store.cluster.redis_pubsub_partitions = 6;
            // Three masters without replicas: no replica to wait for.
            config.store.sentinel.redis_wait_replicas = 0;
        }
        tweak(&mut config);
        Env {
            gw: Gateway::start(config).await,
            redis,
            cluster,
        }
    }
}

/// The config tweak of cases that need none.
pub fn defaults(_: &mut Config) {}

/// Makes a `memory::`, a `redis::` and a `cluster::` test of each case, with its config tweak.
macro_rules! conformance {
    ($($name:ident => $tweak:expr),* $(,)?) => {
        mod memory {
            $( #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
               async fn $name() { super::$name(crate::Env::start(crate::On::Memory, $tweak).await).await; } )*
        }
        mod redis {
            $( #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
               async fn $name() { super::$name(crate::Env::start(crate::On::Redis, $tweak).await).await; } )*
        }
        mod cluster {
            $( #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
               async fn $name() { super::$name(crate::Env::start(crate::On::Cluster, $tweak).await).await; } )*
        }
    };
}

mod actionflows;
mod actionflows_socket;
mod cache;
mod chain_bounds;
mod chains;
mod control;
mod events;
mod instances;
mod job_batches;
mod job_bounds;
mod jobs;
mod locks;
mod permissions;
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
