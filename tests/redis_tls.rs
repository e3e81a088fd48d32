//! Redis over TLS: a `redis-server` that listens with TLS only, its certificate signed by a
//! certificate authority made for the test. Two gateways given `rediss://` and that authority
//! (`REDIS_TLS_CA_FILE`) store and fan out over it; one that trusts only the system's roots
//! never gets ready (the certificate is checked, not just encrypted).

#[path = "support/mod.rs"]
mod support;

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use afw_gateway::Config;
use serde_json::json;
use support::{free_port, redis_server_binary, Gateway, WsClient};

/// The authority's PEM, and the server's certificate and key signed by it (for 127.0.0.1).
fn certificates() -> (String, String, String) {
    let mut ca_params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
    ca_params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    ca_params
        .distinguished_name
        .push(rcgen::DnType::CommonName, "afw test authority");
    let ca_key = rcgen::KeyPair::generate().unwrap();
    let ca = ca_params.self_signed(&ca_key).unwrap();
    let mut params = rcgen::CertificateParams::new(vec!["localhost".to_string()]).unwrap();
    params
        .subject_alt_names
        .push(rcgen::SanType::IpAddress("127.0.0.1".parse().unwrap()));
    let key = rcgen::KeyPair::generate().unwrap();
    let cert = params.signed_by(&key, &ca, &ca_key).unwrap();
    (ca.pem(), cert.pem(), key.serialize_pem())
}

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
