//! A Redis Cluster from plain `redis-server` processes on loopback, as
//! `deploy/redis-cluster.sh` starts one: `masters` masters holding even ranges of the slots,
//! each with `replicas` replicas, every node on free ports in one temp dir, every process
//! stopped (by pid) on drop.
#![allow(dead_code)]

use std::collections::{BTreeMap, BTreeSet};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use super::redis::{free_port, redis_server_binary};

pub struct RedisCluster {
    /// Every node by port; `None` once killed.
    pub nodes: BTreeMap<u16, Option<Child>>,
    dir: tempfile::TempDir,
    /// With TLS only: its files.
    pub tls: Option<super::TlsFiles>,
}

/// One node's view of one node of the cluster (a line of `CLUSTER NODES`).
#[derive(Debug, Clone)]
pub struct NodeLine {
    pub id: String,
    pub port: u16,
    pub master: bool,
    pub failed: bool,
    /// The master this replica follows (its id).
    pub of: Option<String>,
    pub slots: Vec<(u16, u16)>,
}

pub async fn node_query<T: redis::FromRedisValue>(
    port: u16,
    cmd: &mut redis::Cmd,
) -> redis::RedisResult<T> {
    let client = redis::Client::open(format!("redis://127.0.0.1:{port}"))?;
    let mut c = tokio::time::timeout(
        Duration::from_secs(2),
        client.get_multiplexed_async_connection(),
    )
    .await
    .map_err(|_| redis::RedisError::from((redis::ErrorKind::Io, "connect timed out")))??;
    tokio::time::timeout(Duration::from_secs(5), cmd.query_async(&mut c))
        .await
        .map_err(|_| redis::RedisError::from((redis::ErrorKind::Io, "timed out")))?
}

/// A cluster node on `port` keeping its state in `dir` (so a restarted one rejoins).
fn spawn_node(dir: &std::path::Path, port: u16, tls: Option<&super::TlsFiles>) -> Child {
    let listen = match tls {
        Some(t) => t.server_args(port),
        None => vec!["--port".into(), port.to_string()],
    };
    Command::new(redis_server_binary())
        .args(listen)
        .args([
            "--bind",
            "127.0.0.1",
            "--cluster-enabled",
            "yes",
            "--cluster-config-file",
            &format!("nodes-{port}.conf"),
            "--cluster-node-timeout",
            "1000",
            "--save",
            "",
            "--appendonly",
            "no",
            "--dir",
            &dir.display().to_string(),
        ])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot run redis-server ({e}): scripts/test.sh installs it"))
}

/// A port whose cluster bus port (its own +10000 is Redis's default) is free too.
fn node_port() -> u16 {
    loop {
        let p = free_port();
        if p < 55_000 && std::net::TcpListener::bind(("127.0.0.1", p + 10_000)).is_ok() {
            return p;
        }
    }
}

impl RedisCluster {
    /// Sends `cmd` to the node on `port` (over TLS on a TLS cluster).
    pub async fn query<T: redis::FromRedisValue>(
        &self,
        port: u16,
        cmd: &mut redis::Cmd,
    ) -> redis::RedisResult<T> {
        match &self.tls {
            None => node_query(port, cmd).await,
            Some(t) => {
                let mut c = tokio::time::timeout(
                    Duration::from_secs(2),
                    t.client(port)?.get_multiplexed_async_connection(),
                )
                .await
                .map_err(|_| {
                    redis::RedisError::from((redis::ErrorKind::Io, "connect timed out"))
                })??;
                cmd.query_async(&mut c).await
            }
        }
    }

    /// Starts the nodes, gives each master its share of the slots, joins them and waits until
    /// every node sees the cluster as ok and every replica is in sync.
    pub async fn start(masters: usize, replicas: usize) -> RedisCluster {
        RedisCluster::start_with(masters, replicas, false).await
    }

    /// The same, every node listening with TLS only (its bus and replication too), its
    /// certificate signed by an authority made here ([`RedisCluster::tls`]).
    pub async fn start_tls(masters: usize, replicas: usize) -> RedisCluster {
        RedisCluster::start_with(masters, replicas, true).await
    }

    async fn start_with(masters: usize, replicas: usize, tls: bool) -> RedisCluster {
        let dir = tempfile::tempdir().expect("temp dir");
        let tls = tls.then(|| super::TlsFiles::write(dir.path()));
        let mut nodes = BTreeMap::new();
        let mut ports = Vec::new();
        for _ in 0..masters * (1 + replicas) {
            let port = node_port();
            nodes.insert(port, Some(spawn_node(dir.path(), port, tls.as_ref())));
            ports.push(port);
        }
        let cluster = RedisCluster { nodes, dir, tls };
        for &p in &ports {
            cluster.wait_ping(p).await;
        }
        for (i, &p) in ports[..masters].iter().enumerate() {
            let (lo, hi) = (i * 16384 / masters, (i + 1) * 16384 / masters - 1);
            let _: () = cluster
                .query(
                    p,
                    redis::cmd("CLUSTER").arg("ADDSLOTSRANGE").arg(lo).arg(hi),
                )
                .await
                .expect("ADDSLOTSRANGE");
        }
        for &p in &ports[1..] {
            let _: () = cluster
                .query(
                    ports[0],
                    redis::cmd("CLUSTER").arg("MEET").arg("127.0.0.1").arg(p),
                )
                .await
                .expect("MEET");
        }
        // Gossip spreads the MEETs; on a loaded machine a handshake can time out and be
        // dropped, so each round introduces again any node a peer does not list.
        let all: BTreeSet<u16> = ports.iter().copied().collect();
        cluster
            .wait(
                Duration::from_secs(40),
                "every node knows every other",
                || async {
                    let mut known = true;
                    for &p in &ports {
                        let seen: BTreeSet<u16> = match cluster.lines(p).await {
                            Some(l) => l.iter().map(|l| l.port).collect(),
                            None => return false,
                        };
                        for &missing in all.difference(&seen) {
                            known = false;
                            let _: redis::RedisResult<()> = cluster
                                .query(
                                    p,
                                    redis::cmd("CLUSTER")
                                        .arg("MEET")
                                        .arg("127.0.0.1")
                                        .arg(missing),
                                )
                                .await;
                        }
                    }
                    known
                },
            )
            .await;
        for (k, &p) in ports[masters..].iter().enumerate() {
            let master = ports[k % masters];
            let id: String = cluster
                .query(master, redis::cmd("CLUSTER").arg("MYID"))
                .await
                .expect("MYID");
            let _: () = cluster
                .query(p, redis::cmd("CLUSTER").arg("REPLICATE").arg(&id))
                .await
                .expect("REPLICATE");
        }
        cluster.wait_ok().await;
        let c = &cluster;
        for &p in &ports[masters..] {
            c.wait(Duration::from_secs(20), "replicas in sync", || async move {
                c.query::<String>(p, redis::cmd("INFO").arg("replication"))
                    .await
                    .is_ok_and(|i| i.contains("master_link_status:up"))
            })
            .await;
        }
        cluster
    }

    async fn wait_ping(&self, port: u16) {
        self.wait(Duration::from_secs(10), "redis-server answers", || async {
            self.query::<String>(port, &mut redis::cmd("PING"))
                .await
                .is_ok()
        })
        .await;
    }

    /// Waits up to `limit` for `check`, panicking with `what` after.
    pub async fn wait<F, Fut>(&self, limit: Duration, what: &str, check: F)
    where
        F: Fn() -> Fut,
        Fut: std::future::Future<Output = bool>,
    {
        let start = Instant::now();
        while !check().await {
            assert!(
                start.elapsed() < limit,
                "cluster: not {what} after {limit:?}"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Waits until every live node says `cluster_state:ok` and agrees on which nodes are
    /// masters holding slots.
    pub async fn wait_ok(&self) {
        self.wait(Duration::from_secs(30), "ok on every node", || async {
            let mut views = Vec::new();
            for p in self.live_ports() {
                let ok = self
                    .query::<String>(p, redis::cmd("CLUSTER").arg("INFO"))
                    .await
                    .is_ok_and(|i| i.contains("cluster_state:ok"));
                if !ok {
                    return false;
                }
                let Some(lines) = self.lines(p).await else {
                    return false;
                };
                let mut owners: Vec<(u16, Vec<(u16, u16)>)> = lines
                    .into_iter()
                    .filter(|l| l.master && !l.slots.is_empty())
                    .map(|l| (l.port, l.slots))
                    .collect();
                owners.sort();
                views.push(owners);
            }
            views.windows(2).all(|w| w[0] == w[1])
        })
        .await;
    }

    /// `CLUSTER NODES` as `port` sees it.
    pub async fn lines(&self, port: u16) -> Option<Vec<NodeLine>> {
        let text: String = self
            .query(port, redis::cmd("CLUSTER").arg("NODES"))
            .await
            .ok()?;
        Some(
            text.lines()
                .filter_map(|l| {
                    let f: Vec<&str> = l.split_whitespace().collect();
                    let addr = f.get(1)?;
                    let port = addr.split(['@', ':']).nth(1)?.parse().ok()?;
                    let flags = f.get(2)?;
                    let slots = f
                        .iter()
                        .skip(8)
                        .filter(|s| !s.starts_with('['))
                        .filter_map(|s| {
                            let (a, b) = s.split_once('-').unwrap_or((s, s));
                            Some((a.parse().ok()?, b.parse().ok()?))
                        })
                        .collect();
                    Some(NodeLine {
                        id: f[0].to_string(),
                        port,
                        master: flags.contains("master"),
                        failed: flags.contains("fail") && !flags.contains("fail?"),
                        of: (f.get(3) != Some(&"-")).then(|| f[3].to_string()),
                        slots,
                    })
                })
                .collect(),
        )
    }

    pub fn live_ports(&self) -> Vec<u16> {
        self.nodes
            .iter()
            .filter(|(_, c)| c.is_some())
            .map(|(p, _)| *p)
            .collect()
    }

    /// `host:port` of every node, as `REDIS_CLUSTER_NODES` takes them.
    pub fn node_list(&self) -> Vec<String> {
        self.nodes
            .keys()
            .map(|p| format!("127.0.0.1:{p}"))
            .collect()
    }

    /// The masters holding slots, as a live node sees them.
    pub async fn masters(&self) -> Vec<NodeLine> {
        let p = self.live_ports()[0];
        let mut m: Vec<NodeLine> = self
            .lines(p)
            .await
            .unwrap_or_default()
            .into_iter()
            .filter(|l| l.master && !l.slots.is_empty() && !l.failed)
            .collect();
        m.sort_by_key(|l| l.port);
        m
    }

    /// The master holding `slot`.
    pub async fn owner_of(&self, slot: u16) -> NodeLine {
        self.masters()
            .await
            .into_iter()
            .find(|m| m.slots.iter().any(|(a, b)| (*a..=*b).contains(&slot)))
            .expect("a master holds every slot")
    }

    /// A replica of master `id`, if one is alive.
    pub async fn replica_of(&self, id: &str) -> Option<u16> {
        let p = self.live_ports()[0];
        self.lines(p)
            .await?
            .into_iter()
            .find(|l| {
                l.of.as_deref() == Some(id) && !l.failed && self.live_ports().contains(&l.port)
            })
            .map(|l| l.port)
    }

    /// Kills the node on `port` with SIGKILL.
    pub fn kill9(&mut self, port: u16) {
        if let Some(Some(mut child)) = self.nodes.insert(port, None) {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Starts the node on `port` again (as a supervisor would after a crash): it rejoins
    /// from its `nodes.conf`, as a replica of whichever node took its place.
    pub async fn restart(&mut self, port: u16) {
        let child = spawn_node(self.dir.path(), port, self.tls.as_ref());
        self.nodes.insert(port, Some(child));
        self.wait_ping(port).await;
    }

    /// The shard channels subscribed on `port` (`PUBSUB SHARDCHANNELS`).
    pub async fn shard_channels(&self, port: u16) -> Vec<String> {
        self.query(port, redis::cmd("PUBSUB").arg("SHARDCHANNELS"))
            .await
            .unwrap_or_default()
    }

    /// The slot of a key or channel, as the cluster computes it.
    pub async fn slot_of(&self, key: &str) -> u16 {
        let mut cmd = redis::cmd("CLUSTER");
        cmd.arg("KEYSLOT").arg(key);
        self.query(self.live_ports()[0], &mut cmd)
            .await
            .expect("KEYSLOT")
    }
}

impl Drop for RedisCluster {
    fn drop(&mut self) {
        for child in self.nodes.values_mut().flatten() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}
