//! Changes to a running [`RedisCluster`]'s layout, as an operator makes them: a slot moved
//! to another master, a replica promoted by `CLUSTER FAILOVER`.

use std::time::Duration;

use super::redis_cluster::{NodeLine, RedisCluster};

impl RedisCluster {
    /// Moves `slot` and its keys from the master that holds it to master `to`, the way
    /// `redis-cli --cluster reshard` does: IMPORTING/MIGRATING, `MIGRATE` in batches, then
    /// `SETSLOT NODE` on both and every other master.
    pub async fn migrate_slot(&self, slot: u16, to: &NodeLine) {
        let from = self.owner_of(slot).await;
        assert_ne!(from.id, to.id, "the slot is already there");
        let setslot = |port: u16, args: Vec<String>| async move {
            let mut cmd = redis::cmd("CLUSTER");
            cmd.arg("SETSLOT").arg(slot);
            for a in &args {
                cmd.arg(a);
            }
            self.query::<()>(port, &mut cmd).await
        };
        setslot(to.port, vec!["IMPORTING".into(), from.id.clone()])
            .await
            .expect("IMPORTING");
        setslot(from.port, vec!["MIGRATING".into(), to.id.clone()])
            .await
            .expect("MIGRATING");
        loop {
            let keys: Vec<String> = self
                .query(
                    from.port,
                    redis::cmd("CLUSTER")
                        .arg("GETKEYSINSLOT")
                        .arg(slot)
                        .arg(100),
                )
                .await
                .expect("GETKEYSINSLOT");
            if keys.is_empty() {
                break;
            }
            let mut cmd = redis::cmd("MIGRATE");
            cmd.arg("127.0.0.1")
                .arg(to.port)
                .arg("")
                .arg(0)
                .arg(5000)
                .arg("REPLACE")
                .arg("KEYS")
                .arg(&keys);
            let _: String = self.query(from.port, &mut cmd).await.expect("MIGRATE");
        }
        for port in [to.port, from.port] {
            setslot(port, vec!["NODE".into(), to.id.clone()])
                .await
                .expect("SETSLOT NODE");
        }
        for m in self.masters().await {
            if m.port != to.port && m.port != from.port {
                let _ = setslot(m.port, vec!["NODE".into(), to.id.clone()]).await;
            }
        }
    }

    /// `CLUSTER FAILOVER` on a replica of master `of`: it takes over, with the master's
    /// agreement. Returns the replica's port once it is a master.
    pub async fn manual_failover(&self, of: &NodeLine) -> u16 {
        let replica = self.replica_of(&of.id).await.expect("a live replica");
        let _: () = self
            .query(replica, redis::cmd("CLUSTER").arg("FAILOVER"))
            .await
            .expect("CLUSTER FAILOVER");
        self.wait(Duration::from_secs(30), "the replica promoted", || async {
            self.masters().await.iter().any(|m| m.port == replica)
        })
        .await;
        replica
    }
}
