//! Redis under Sentinel from plain `redis-server` processes on loopback, as
//! `deploy/redis-sentinel.sh` starts them: a primary, two replicas and three sentinels (quorum
//! two), each on a free port in one temp dir, every process stopped (by pid) on drop.
#![allow(dead_code)]

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use super::redis::{free_port, redis_server_binary};

/// The name the sentinels monitor the primary under.
pub const MASTER: &str = "afw";

pub struct SentinelSet {
    /// The data nodes: `(port, process)`; the first starts as the primary.
    pub nodes: Vec<(u16, Option<Child>)>,
    pub sentinels: Vec<(u16, Child)>,
    dir: tempfile::TempDir,
    /// With TLS only (data nodes, replication and sentinels): its files.
    pub tls: Option<super::TlsFiles>,
}

fn spawn(args: &[String]) -> Child {
    Command::new(redis_server_binary())
        .args(args)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot run redis-server ({e}): scripts/test.sh installs it"))
}

async fn query<T: redis::FromRedisValue>(
    tls: Option<&super::TlsFiles>,
    port: u16,
    cmd: &mut redis::Cmd,
) -> Option<T> {
    let client = match tls {
        Some(t) => t.client(port).ok()?,
        None => redis::Client::open(format!("redis://127.0.0.1:{port}")).ok()?,
    };
    let mut c = tokio::time::timeout(
        Duration::from_secs(1),
        client.get_multiplexed_async_connection(),
    )
    .await
    .ok()?
    .ok()?;
    cmd.query_async(&mut c).await.ok()
}

impl SentinelSet {
    /// Starts the six processes and waits until every sentinel knows the primary and
    /// both replicas, and both replicas are in sync.
    pub async fn start() -> SentinelSet {
        SentinelSet::start_with(false).await
    }

    /// The same, every process listening with TLS only, replication included, its
    /// certificate signed by an authority made here ([`SentinelSet::tls`]).
    pub async fn start_tls() -> SentinelSet {
        SentinelSet::start_with(true).await
    }

    async fn start_with(tls: bool) -> SentinelSet {
        let dir = tempfile::tempdir().expect("temp dir");
        let tls = tls.then(|| super::TlsFiles::write(dir.path()));
        let primary = free_port();
        let mut nodes = Vec::new();
        for i in 0..3 {
            let port = if i == 0 { primary } else { free_port() };
            let mut args = match &tls {
                Some(t) => t.server_args(port),
                None => vec!["--port".to_string(), port.to_string()],
            };
            args.extend([
                "--bind".to_string(),
                "127.0.0.1".into(),
                "--save".into(),
                String::new(),
                "--appendonly".into(),
                "no".into(),
                "--dir".into(),
                dir.path().display().to_string(),
                "--dbfilename".into(),
                format!("dump-{port}.rdb"),
            ]);
            if i > 0 {
                args.extend([
                    "--replicaof".into(),
                    "127.0.0.1".into(),
                    primary.to_string(),
                ]);
            }
            nodes.push((port, Some(spawn(&args))));
        }
        let mut sentinels = Vec::new();
        for _ in 0..3 {
            let port = free_port();
            let conf = dir.path().join(format!("sentinel-{port}.conf"));
            let listen = match &tls {
                Some(t) => format!(
                    "port 0\ntls-port {port}\ntls-replication yes\ntls-auth-clients no\n\
                     tls-cert-file {}\ntls-key-file {}\ntls-ca-cert-file {}\n",
                    t.cert.display(),
                    t.key.display(),
                    t.ca.display()
                ),
                None => format!("port {port}\n"),
            };
            std::fs::write(
                &conf,
                format!(
                    "{listen}bind 127.0.0.1\ndir {}\n\
                     sentinel monitor {MASTER} 127.0.0.1 {primary} 2\n\
                     sentinel down-after-milliseconds {MASTER} 1000\n\
                     sentinel failover-timeout {MASTER} 10000\n\
                     sentinel parallel-syncs {MASTER} 2\n",
                    dir.path().display()
                ),
            )
            .expect("sentinel config");
            let child = spawn(&[conf.display().to_string(), "--sentinel".into()]);
            sentinels.push((port, child));
        }
        let set = SentinelSet {
            nodes,
            sentinels,
            dir,
            tls,
        };
        set.wait_settled(primary).await;
        set
    }

    /// `host:port` of every sentinel, as `REDIS_SENTINELS` takes them.
    pub fn sentinel_list(&self) -> Vec<String> {
        self.sentinels
            .iter()
            .map(|(p, _)| format!("127.0.0.1:{p}"))
            .collect()
    }

    /// The primary's port as the first sentinel that answers names it.
    pub async fn primary(&self) -> Option<u16> {
        for (port, _) in &self.sentinels {
            let answer: Option<(String, u16)> = query(
                self.tls.as_ref(),
                *port,
                redis::cmd("SENTINEL")
                    .arg("get-master-addr-by-name")
                    .arg(MASTER),
            )
            .await;
            if let Some((_, p)) = answer {
                return Some(p);
            }
        }
        None
    }

    /// Waits until every sentinel names `primary` and knows two replicas, and both replicas'
    /// links to it are up.
    async fn wait_settled(&self, primary: u16) {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let mut ok = true;
            for (port, _) in &self.sentinels {
                let replicas: Option<Vec<redis::Value>> = query(
                    self.tls.as_ref(),
                    *port,
                    redis::cmd("SENTINEL").arg("replicas").arg(MASTER),
                )
                .await;
                ok &= replicas.is_some_and(|r| r.len() == 2);
            }
            for (port, _) in self.nodes.iter().filter(|(p, _)| *p != primary) {
                let info: Option<String> = query(
                    self.tls.as_ref(),
                    *port,
                    redis::cmd("INFO").arg("replication"),
                )
                .await;
                ok &= info.is_some_and(|i| i.contains("master_link_status:up"));
            }
            if ok && self.primary().await == Some(primary) {
                return;
            }
            assert!(Instant::now() < deadline, "the sentinels did not settle");
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    /// `kill -9` of the primary; returns its port.
    pub async fn kill_primary(&mut self) -> u16 {
        let port = self.primary().await.expect("a primary");
        let node = self
            .nodes
            .iter_mut()
            .find(|(p, _)| *p == port)
            .expect("the primary is one of the nodes");
        if let Some(mut child) = node.1.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
        port
    }

    /// Waits until the sentinels name a primary other than `old`, and it says it is one.
    pub async fn wait_promoted(&self, old: u16) -> u16 {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            if let Some(p) = self.primary().await.filter(|p| *p != old) {
                let role: Option<Vec<redis::Value>> =
                    query(self.tls.as_ref(), p, &mut redis::cmd("ROLE")).await;
                let primary = role.is_some_and(
                    |r| matches!(r.first(), Some(redis::Value::BulkString(b)) if b == b"master"),
                );
                if primary {
                    return p;
                }
            }
            assert!(Instant::now() < deadline, "no replica was promoted");
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }
}

impl Drop for SentinelSet {
    fn drop(&mut self) {
        for (_, child) in &mut self.sentinels {
            let _ = child.kill();
            let _ = child.wait();
        }
        for (_, child) in &mut self.nodes {
            if let Some(c) = child {
                let _ = c.kill();
                let _ = c.wait();
            }
        }
    }
}
