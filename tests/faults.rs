//! The guarantees of docs/guarantees.md under real faults: a wedged pub/sub subscription, `kill -9` of
//! an instance, Redis killed and started again (with and without its data), a client that
//! never reads, and SIGTERM. Instances that must die run as child processes of the real
//! binary; every process is ended by pid when its handle drops.

mod support;

use std::time::{Duration, Instant};

use afw_gateway::Config;
use serde_json::{json, Value};
use support::{
    Crowd, Follow, Gateway, GatewayProcess, Poster, Proxy, RedisServer, Verdict, WsClient,
};

/// `n` resuming clients per session, each first connecting to `instances[start]`.
fn followers(sessions: &[&str], n: usize, instances: &support::Instances, start: usize) -> Crowd {
    let mut crowd = Crowd::default();
    for s in sessions {
        for _ in 0..n {
            crowd.add(Follow {
                session: s.to_string(),
                instances: instances.clone(),
                start,
                stall: None,
            });
        }
    }
    crowd
}

/// Redis, instance A reaching it through a [`Proxy`] that can wedge A's subscription (A
/// probes every `probe`), instance B reaching it directly, and a client on A subscribed to
/// `session` that has received seq 1 (posted on B).
async fn wedgeable(
    probe: Duration,
    session: &str,
) -> (RedisServer, Proxy, Gateway, Gateway, WsClient) {
    let redis = RedisServer::start().await;
    let proxy = Proxy::start(redis.port).await;
    let mut config = Config::default();
    config.store.redis_url = Some(proxy.url());
    config.store.pubsub_probe_every = probe;
    let a = Gateway::start(config).await;
    let b = Gateway::start(support::config(Some(&redis))).await;
    let mut c = WsClient::connect(&a.ws_url()).await;
    c.subscribe(session, None, None).await;
    b.post_event(json!({"sessionId": session, "type": "t"}))
        .await;
    assert_eq!(c.next_event().await["seq"], 1);
    (redis, proxy, a, b, c)
}

fn event(session: &str, n: u64) -> Value {
    json!({"sessionId": session, "type": "t", "eventId": format!("{session}-{n}"), "payload": {"n": n}})
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wedged_subscription_is_caught_by_its_probe_and_nothing_is_lost() {
    let (_redis, proxy, a, b, mut c) = wedgeable(Duration::from_millis(200), "wedge").await;

    // A's subscription stays connected but Redis no longer reaches it; B keeps posting.
    proxy.wedge_subscribers();
    for _ in 0..20 {
        b.post_event(json!({"sessionId": "wedge", "type": "t"}))
            .await;
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    for seq in 2..=21 {
        assert_eq!(
            c.next_event().await["seq"],
            seq,
            "every event, in order, once"
        );
    }
    c.assert_quiet("no duplicate after the resubscribe").await;
    assert!(
        a.metric("afw_pubsub_probe_timeouts_total").await >= 1.0,
        "the probe noticed"
    );
    assert!(a.metric("afw_pubsub_subscribes_total").await >= 2.0);
    assert_eq!(b.metric("afw_pubsub_probe_timeouts_total").await, 0.0);
    a.stop().await;
    b.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_backlog_after_pubsub_loss_does_not_close_readers_that_keep_up() {
    let (_redis, proxy, a, b, mut c) = wedgeable(Duration::from_millis(500), "backlog").await;
    // While A's subscription is wedged, 3 MiB is posted on B: three times A's 1 MiB queue.
    proxy.wedge_subscribers();
    let pad = "b".repeat(16 * 1024);
    for i in 0..12 {
        let events: Vec<Value> = (0..16)
            .map(|j| json!({"sessionId": "backlog", "type": "t", "i": i, "j": j, "pad": pad}))
            .collect();
        let (s, v) = b.post("/api/events/batch", json!({"events": events})).await;
        assert_eq!(s, 201, "{v}");
    }
    for seq in 2..=193 {
        assert_eq!(
            c.next_event().await["seq"],
            seq,
            "the whole backlog, in order, on the same connection"
        );
    }
    assert_eq!(a.metric("afw_ws_closes_total{code=\"4008\"}").await, 0.0);
    assert!(a.metric("afw_pubsub_probe_timeouts_total").await >= 1.0);
    a.stop().await;
    b.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn clients_of_an_instance_killed_with_sigkill_resume_elsewhere_with_every_event_once() {
    let redis = RedisServer::start().await;
    let env = [("REDIS_URL", redis.url())];
    let mut a = GatewayProcess::start(&env).await;
    let b = GatewayProcess::start(&env).await;
    let sessions = ["k1", "k2", "k3"];
    // Clients start on A and move to B when A dies.
    let clients = support::instances(&[a.addr, b.addr]);
    let crowd = followers(&sessions, 10, &clients, 0);
    for s in sessions {
        assert_eq!(a.post("/api/sessions", json!({"id": s})).await.0, 201);
    }
    let mut poster = Poster::new(support::instances(&[b.addr]), 0);
    for n in 0..600 {
        if n == 200 {
            a.kill9();
        }
        poster.post(&event(sessions[n as usize % 3], n)).await;
        if n % 20 == 0 {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }
    let (total, tallies) = crowd.finish(&b).await;
    println!("kill -9: {total:?}");
    assert_eq!(
        total,
        Verdict {
            delivered: 30 * 200,
            ..Verdict::default()
        },
        "every client has every seq exactly once, in order"
    );
    assert!(
        tallies
            .iter()
            .all(|t| t.connects >= 2 && t.unrecovered == 0),
        "each client reconnected and resumed exactly"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_outage_answers_503_and_loses_no_acknowledged_event() {
    let mut redis = RedisServer::start_persistent().await;
    let a = Gateway::start(support::config(Some(&redis))).await;
    let b = Gateway::start(support::config(Some(&redis))).await;
    let clients = support::instances(&[b.addr, a.addr]);
    let crowd = followers(&["out"], 10, &clients, 0);
    assert_eq!(a.post("/api/sessions", json!({"id": "out"})).await.0, 201);
    let mut poster = Poster::new(support::instances(&[a.addr]), 0);
    for n in 0..50 {
        poster.post(&event("out", n)).await;
    }

    redis.kill9();
    let r = a
        .http
        .post(a.url("/api/events"))
        .json(&event("out", 1000))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 503, "a write that cannot be stored is not 2xx");
    assert_eq!(r.headers()["retry-after"], "1");
    for gw in [&a, &b] {
        assert_eq!(gw.get("/ready").await.0, 503, "not ready without Redis");
        assert_eq!(gw.get("/health").await.0, 200, "but alive");
    }
    // The agent keeps trying while Redis is down; Redis comes back with its data.
    let retrying = tokio::spawn(async move {
        for n in 50..150 {
            poster.post(&event("out", n)).await;
        }
        poster
    });
    tokio::time::sleep(Duration::from_millis(1500)).await;
    redis.start_again().await;
    let poster = retrying.await.unwrap();
    assert!(
        poster.failures.get(&503).copied().unwrap_or(0) >= 1,
        "the outage was seen as 503s: {:?}",
        poster.failures
    );
    for gw in [&a, &b] {
        gw.wait_ready().await;
    }

    let (total, tallies) = crowd.finish(&a).await;
    println!("redis outage: {total:?}");
    assert_eq!(
        total,
        Verdict {
            delivered: 10 * 150,
            ..Verdict::default()
        }
    );
    assert!(tallies.iter().all(|t| t.unrecovered == 0));
    // The probe at 1000 was refused, so it is not stored; the 150 acknowledged ones all are.
    let stored = support::stored_events(&a, "out").await;
    let ids: Vec<String> = stored.iter().map(|(_, id)| id.clone()).collect();
    let want: Vec<String> = (0..150).map(|n| format!("out-{n}")).collect();
    assert_eq!(ids, want, "every acknowledged event once, in order");
    a.stop().await;
    b.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_that_never_reads_is_closed_and_the_gateway_memory_stays_bounded() {
    let redis = RedisServer::start().await;
    let gw = GatewayProcess::start(&[
        ("REDIS_URL", redis.url()),
        ("MAX_EVENTS_PER_SESSION", "64".to_string()),
    ])
    .await;
    let mut stuck = WsClient::connect_small_buffer(gw.addr).await;
    stuck.subscribe("flood", None, None).await;
    let mut reader = WsClient::connect(&gw.ws_url()).await;
    reader.subscribe("flood", None, None).await;

    const BATCHES: u64 = 256;
    const PER_BATCH: u64 = 16;
    let pad = "m".repeat(16 * 1024);
    let batch = |b: u64| {
        let events: Vec<Value> = (0..PER_BATCH)
            .map(|i| json!({"sessionId": "flood", "type": "t", "b": b, "i": i, "pad": pad}))
            .collect();
        json!({"events": events})
    };
    // Warm up (allocator arenas, buffers) before the baseline.
    let (s, _) = gw.post("/api/events/batch", batch(0)).await;
    assert_eq!(s, 201);
    for seq in 1..=PER_BATCH {
        assert_eq!(reader.next_event().await["seq"], seq);
    }
    let baseline = gw.rss_kib();
    // The server waits a bounded time to hand its Close to a client that reads nothing;
    // start reading as soon as it has given up on this one, so the frame arrives.
    let closed = {
        let at = gw.endpoint();
        tokio::spawn(async move {
            while at.metric("afw_ws_closes_total{code=\"4008\"}").await < 1.0 {
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            stuck.recv_close().await
        })
    };
    let pid = gw.pid();
    let sampling = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(true));
    let sampler = {
        let sampling = sampling.clone();
        tokio::task::spawn_blocking(move || {
            let mut peak = 0;
            while sampling.load(std::sync::atomic::Ordering::Acquire) {
                peak = peak.max(support::rss_kib(pid));
                std::thread::sleep(Duration::from_millis(10));
            }
            peak
        })
    };
    // 64 MiB posted in 256 KiB batches, paced by the reader that keeps up.
    for b in 1..BATCHES {
        let (s, v) = gw.post("/api/events/batch", batch(b)).await;
        assert_eq!(s, 201, "{v}");
        for i in 0..PER_BATCH {
            let m = reader.next_event().await;
            assert_eq!(m["seq"], b * PER_BATCH + i + 1, "the reader misses nothing");
        }
    }
    sampling.store(false, std::sync::atomic::Ordering::Release);
    let peak = sampler.await.unwrap();
    let posted_mib = BATCHES * PER_BATCH * 16 / 1024;
    println!(
        "never-reading client: RSS baseline {baseline} KiB, peak {peak} KiB, while {posted_mib} MiB was posted"
    );
    assert_eq!(
        closed.await.unwrap(),
        Some(4008),
        "closed as a slow consumer"
    );
    assert!(
        peak.saturating_sub(baseline) < 24 * 1024,
        "memory grew by {} KiB for a client that reads nothing",
        peak - baseline
    );
    assert_eq!(gw.metric("afw_ws_closes_total{code=\"4008\"}").await, 1.0);
}

/// Sends a POST whose body is only half there, so the request is in flight.
async fn half_sent_request(gw: &GatewayProcess) -> (tokio::net::TcpStream, String) {
    use tokio::io::AsyncWriteExt;
    let body = json!({"sessionId": "inflight", "type": "t"}).to_string();
    let mut s = tokio::net::TcpStream::connect(gw.addr).await.unwrap();
    let head = format!(
        "POST /api/events HTTP/1.1\r\nhost: localhost\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\r\n",
        body.len()
    );
    s.write_all(head.as_bytes()).await.unwrap();
    let (first, rest) = body.split_at(10);
    s.write_all(first.as_bytes()).await.unwrap();
    (s, rest.to_string())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_closes_every_client_with_1001_finishes_requests_and_exits_in_time() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut gw = GatewayProcess::start(&[("SHUTDOWN_TIMEOUT_SECS", "3".to_string())]).await;
    let mut clients = Vec::new();
    for i in 0..20 {
        let mut c = WsClient::connect(&gw.ws_url()).await;
        c.subscribe(&format!("s{}", i % 4), None, None).await;
        clients.push(c);
    }
    let (mut finishing, rest) = half_sent_request(&gw).await;
    let (_never_finished, _) = half_sent_request(&gw).await;
    tokio::time::sleep(Duration::from_millis(100)).await;

    let signalled = Instant::now();
    gw.term();
    for c in &mut clients {
        assert_eq!(c.recv_close().await, Some(1001), "going away");
    }
    // The request in flight is finished and answered.
    finishing.write_all(rest.as_bytes()).await.unwrap();
    let mut answer = String::new();
    let _ = tokio::time::timeout(
        Duration::from_secs(5),
        finishing.read_to_string(&mut answer),
    )
    .await;
    assert!(
        answer.starts_with("HTTP/1.1 201"),
        "in-flight request answered: {answer:?}"
    );
    // The one that never finishes does not hold the process beyond the bound.
    let status = gw
        .wait_exit(Duration::from_secs(3 + 5))
        .await
        .expect("the process exits within SHUTDOWN_TIMEOUT_SECS and a margin");
    println!("SIGTERM: exited {status} after {:?}", signalled.elapsed());
    assert!(status.success(), "clean exit: {status}");
}
