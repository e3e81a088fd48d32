//! Tenants kept apart on a Redis Cluster, as `tenants.rs` keeps them on one server.

use super::support::RedisCluster;
use super::tenants::{kept_apart_through_two_instances, tenants_config};

/// On a Cluster every tenant's events share the partitions' sharded channels, their session
/// ids scoped in the message: still two streams, and nothing of one tenant in another's.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn on_a_cluster_through_two_instances_tenants_are_kept_apart() {
    let cluster = RedisCluster::start(3, 0).await;
    kept_apart_through_two_instances(|| {
        let mut c = tenants_config(None);
        c.store.cluster.redis_cluster_nodes = cluster.node_list();
        c.store.sentinel.redis_wait_replicas = 0; // no replicas to wait for
        c
    })
    .await;
}
