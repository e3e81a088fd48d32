//! Redis over TLS: a `redis-server` that listens with TLS only, its certificate signed by a
//! certificate authority made for the test. Two gateways given `rediss://` and that authority
//! (`REDIS_TLS_CA_FILE`) store and fan out over it; one that trusts only the system's roots
//! never gets ready (the certificate is checked, not just encrypted). The same for a Redis
//! Cluster whose nodes speak TLS only (`REDIS_TLS`).

#[path = "support/mod.rs"]
mod support;

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use afw_gateway::Config;
use serde_json::json;
use support::{
    certificates, free_port, redis_server_binary, Gateway, RedisCluster, SentinelSet, WsClient,
    MASTER,
};

struct TlsRedis {
    child: Child,
    port: u16,
}

impl Drop for TlsRedis {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

async fn tls_redis(dir: &std::path::Path) -> TlsRedis {
    let (ca, cert, key) = certificates();
    for (name, pem) in [("ca.pem", &ca), ("redis.pem", &cert), ("redis.key", &key)] {
        std::fs::write(dir.join(name), pem).unwrap();
    }
    let port = free_port();
    let child = Command::new(redis_server_binary())
        .args([
            "--port",
            "0",
            "--tls-port",
            &port.to_string(),
            "--bind",
            "127.0.0.1",
        ])
        .args([
            "--save",
            "",
            "--appendonly",
            "no",
            "--tls-auth-clients",
            "no",
        ])
        .arg("--tls-cert-file")
        .arg(dir.join("redis.pem"))
        .arg("--tls-key-file")
        .arg(dir.join("redis.key"))
        .arg("--tls-ca-cert-file")
        .arg(dir.join("ca.pem"))
        .arg("--dir")
        .arg(dir)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("redis-server (scripts/test.sh installs it)");
    let deadline = Instant::now() + Duration::from_secs(10);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(
            Instant::now() < deadline,
            "redis-server with TLS did not listen"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    TlsRedis { child, port }
}

fn config(redis: &TlsRedis, ca: Option<std::path::PathBuf>) -> Config {
    let mut c = Config::default();
    c.store.redis_url = Some(format!("rediss://127.0.0.1:{}", redis.port));
    c.store.redis_tls_ca_file = ca;
    c
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_gateways_store_and_fan_out_over_tls_and_an_untrusted_server_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let redis = tls_redis(dir.path()).await;
    let ca = Some(dir.path().join("ca.pem"));
    let a = Gateway::start(config(&redis, ca.clone())).await;
    let b = Gateway::start(config(&redis, ca)).await;
    let mut watcher = WsClient::connect(&a.ws_url()).await;
    watcher.subscribe("tls", None, None).await;
    for n in 1..=3u64 {
        let (s, v) = b
            .post(
                "/api/events",
                json!({"sessionId": "tls", "type": "t", "n": n}),
            )
            .await;
        assert_eq!(s, 201, "{v}");
        assert_eq!(watcher.next_event().await["seq"], n);
    }
    watcher.close().await;

    // Without the authority the server's certificate is not trusted: never ready.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let untrusting = tokio::spawn(afw_gateway::run(config(&redis, None), listener, async {
        let _ = stopped.await;
    }));
    let ep = support::Endpoint::new(addr);
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(ep.get("/ready").await.0, 503);
    let (s, _) = ep
        .post("/api/events", json!({"sessionId": "tls", "type": "t"}))
        .await;
    assert_eq!(s, 503);
    let _ = stop.send(());
    let _ = untrusting.await;
    a.stop().await;
    b.stop().await;
}

#[test]
fn a_ca_file_without_a_certificate_or_without_rediss_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let empty = dir.path().join("empty.pem");
    std::fs::write(&empty, "not a certificate").unwrap();
    let mut c = Config::default();
    c.store.redis_url = Some("rediss://127.0.0.1:6379".into());
    c.store.redis_tls_ca_file = Some(empty);
    let e = c.validate().unwrap_err().to_string();
    assert!(e.contains("REDIS_TLS_CA_FILE"), "{e}");
    std::fs::write(dir.path().join("ca.pem"), certificates().0).unwrap();
    c.store.redis_tls_ca_file = Some(dir.path().join("ca.pem"));
    assert!(c.validate().is_ok());
    c.store.redis_url = Some("redis://127.0.0.1:6379".into());
    let e = c.validate().unwrap_err().to_string();
    assert!(e.contains("rediss://"), "{e}");
}

fn cluster_config(cluster: &RedisCluster, ca: Option<std::path::PathBuf>) -> Config {
    let mut c = Config::default();
    c.store.cluster.redis_cluster_nodes = cluster.node_list();
    c.store.redis_tls = true;
    c.store.redis_tls_ca_file = ca;
    // Three masters without replicas: no replica to wait for.
    c.store.sentinel.redis_wait_replicas = 0;
    c
}

/// A Redis Cluster whose nodes listen with TLS only (their bus and replication too): two
/// gateways given `REDIS_TLS` and the authority store and fan out over it, on sharded
/// channels, and one that trusts only the system's roots never gets ready.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cluster_over_tls_stores_and_fans_out_and_an_untrusted_one_is_refused() {
    let cluster = RedisCluster::start_tls(3, 0).await;
    let ca = cluster.tls.as_ref().map(|t| t.ca.clone());
    let a = Gateway::start(cluster_config(&cluster, ca.clone())).await;
    let b = Gateway::start(cluster_config(&cluster, ca)).await;
    // Sessions over every partition, each watched on the other gateway.
    for s in ["tls-a", "tls-b", "tls-c", "tls-d", "tls-e"] {
        let mut watcher = WsClient::connect(&a.ws_url()).await;
        watcher.subscribe(s, None, None).await;
        for n in 1..=3u64 {
            let (st, v) = b
                .post("/api/events", json!({"sessionId": s, "type": "t", "n": n}))
                .await;
            assert_eq!(st, 201, "{v}");
            assert_eq!(watcher.next_event().await["seq"], n);
        }
        watcher.close().await;
    }
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let untrusting = tokio::spawn(afw_gateway::run(
        cluster_config(&cluster, None),
        listener,
        async {
            let _ = stopped.await;
        },
    ));
    let ep = support::Endpoint::new(addr);
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(ep.get("/ready").await.0, 503);
    let (s, _) = ep
        .post("/api/events", json!({"sessionId": "tls-a", "type": "t"}))
        .await;
    assert_eq!(s, 503);
    let _ = stop.send(());
    let _ = untrusting.await;
    a.stop().await;
    b.stop().await;
}

#[test]
fn redis_tls_is_for_sentinel_and_cluster_only() {
    let mut c = Config::default();
    c.store.redis_tls = true;
    let e = c.validate().unwrap_err().to_string();
    assert!(e.contains("REDIS_TLS"), "{e}");
    c.store.redis_url = Some("redis://127.0.0.1:6379".into());
    let e = c.validate().unwrap_err().to_string();
    assert!(e.contains("rediss://"), "{e}");
    c.store.redis_url = None;
    c.store.cluster.redis_cluster_nodes = vec!["127.0.0.1:7000".into()];
    assert!(c.validate().is_ok());
}

/// Redis under Sentinel with every process listening with TLS only (replication and the
/// sentinels included): a gateway given `REDIS_TLS` and the authority finds the primary,
/// stores and fans out, and after the primary is killed writes to the promoted replica.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sentinel_over_tls_follows_the_primary() {
    let mut set = SentinelSet::start_tls().await;
    let mut c = Config::default();
    c.store.sentinel.redis_sentinels = set.sentinel_list();
    c.store.sentinel.redis_sentinel_master = Some(MASTER.into());
    c.store.redis_tls = true;
    c.store.redis_tls_ca_file = set.tls.as_ref().map(|t| t.ca.clone());
    let gw = Gateway::start(c).await;
    let mut watcher = WsClient::connect(&gw.ws_url()).await;
    watcher.subscribe("tls-s", None, None).await;
    for n in 1..=3u64 {
        let (s, v) = gw
            .post("/api/events", json!({"sessionId": "tls-s", "type": "t"}))
            .await;
        assert_eq!(s, 201, "{v}");
        assert_eq!(watcher.next_event().await["seq"], n);
    }
    let old = set.kill_primary().await;
    let new = set.wait_promoted(old).await;
    assert_ne!(old, new);
    let started = Instant::now();
    loop {
        let (s, v) = gw
            .post(
                "/api/events",
                json!({"sessionId": "tls-s", "type": "t", "eventId": "after"}),
            )
            .await;
        if s == 201 {
            break;
        }
        assert_eq!(s, 503, "{v}");
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "never wrote to the new primary"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    gw.stop().await;
}
