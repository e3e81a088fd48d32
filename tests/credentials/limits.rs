//! Rate limits across instances and on WebSockets: two instances on one Redis share one
//! budget; a limiter whose Redis is gone lets requests through and counts them; a WebSocket
//! that sends too fast gets `rate_limited`, then close code 1008.

use std::time::{Duration, Instant};

use serde_json::json;

use super::support::{Gateway, RedisServer, WsClient};
use super::{config, ADMIN_KEY, AGENT_KEY};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_instances_on_one_redis_share_one_budget() {
    let redis = RedisServer::start().await;
    let limited = || {
        let mut c = config(Some(&redis));
        c.rate_limits.rate_limit_rps = 4.0;
        c.rate_limits.rate_limit_burst = 20;
        c
    };
    let a = Gateway::start(limited()).await;
    let b = Gateway::start(limited()).await;
    let (ea, eb) = (a.with_key(AGENT_KEY), b.with_key(AGENT_KEY));
    let started = Instant::now();
    let mut allowed = 0;
    let mut refused = 0;
    for i in 0..80 {
        let gw = if i % 2 == 0 { &ea } else { &eb };
        match gw.get("/api/sessions").await.0 {
            200 => allowed += 1,
            429 => refused += 1,
            s => panic!("{s}"),
        }
    }
    let elapsed = started.elapsed().as_secs_f64();
    // The burst, and what the rate added while the requests ran, across both instances.
    let most = 20.0 + 4.0 * elapsed + 1.0;
    assert!(
        allowed >= 20 && (allowed as f64) <= most,
        "{allowed} allowed in {elapsed:.2} s"
    );
    assert_eq!(allowed + refused, 80);
    let limited_a = a
        .with_key(ADMIN_KEY)
        .metric("afw_http_rate_limited_total")
        .await;
    let limited_b = b
        .with_key(ADMIN_KEY)
        .metric("afw_http_rate_limited_total")
        .await;
    assert!(
        limited_a > 0.0 && limited_b > 0.0,
        "{limited_a} {limited_b}"
    );
    a.stop().await;
    b.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn taken_in_chunks_two_instances_still_allow_no_more_than_the_budget() {
    let redis = RedisServer::start().await;
    let limited = || {
        let mut c = config(Some(&redis));
        // Chunks of 5 (a twentieth of a second at 100 a second).
        c.rate_limits.rate_limit_rps = 100.0;
        c.rate_limits.rate_limit_burst = 200;
        c
    };
    let a = Gateway::start(limited()).await;
    let b = Gateway::start(limited()).await;
    let (ea, eb) = (a.with_key(AGENT_KEY), b.with_key(AGENT_KEY));
    let started = Instant::now();
    let mut allowed = 0;
    for round in 0..50 {
        let asks = (0..10).map(|i| {
            let gw = if (round + i) % 2 == 0 { &ea } else { &eb };
            gw.get("/api/whoami")
        });
        for (s, _) in futures::future::join_all(asks).await {
            match s {
                200 => allowed += 1,
                429 => {}
                s => panic!("{s}"),
            }
        }
    }
    let elapsed = started.elapsed().as_secs_f64();
    let most = 200.0 + 100.0 * elapsed + 1.0;
    assert!(
        (allowed as f64) <= most,
        "{allowed} allowed in {elapsed:.2} s (at most {most})"
    );
    // The burst is there to be spent, but for what chunks left unspent may lose.
    assert!(allowed >= 190, "{allowed} allowed in {elapsed:.2} s");
    a.stop().await;
    b.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_limiter_without_its_redis_lets_requests_through_and_counts_them() {
    let mut redis = RedisServer::start().await;
    let mut c = config(Some(&redis));
    c.rate_limits.rate_limit_wait_ms = 200;
    // Small enough that each request asks the store (no chunk in hand).
    c.rate_limits.rate_limit_rps = 10.0;
    c.rate_limits.rate_limit_burst = 20;
    let gw = Gateway::start(c).await;
    let admin = gw.with_key(ADMIN_KEY);
    assert_eq!(admin.get("/api/whoami").await.0, 200);
    assert_eq!(
        admin.metric("afw_rate_limiter_unavailable_total").await,
        0.0
    );
    redis.kill9();
    let started = Instant::now();
    let (s, me) = admin.get("/api/whoami").await;
    assert_eq!((s, me["role"].as_str()), (200, Some("admin")), "{me}");
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "{:?}",
        started.elapsed()
    );
    assert!(admin.metric("afw_rate_limiter_unavailable_total").await >= 1.0);
    gw.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_websocket_that_sends_too_fast_is_told_then_closed_with_1008() {
    let mut c = config(None);
    c.rate_limits.ws_rate_limit_rps = 1.0;
    c.rate_limits.ws_rate_limit_burst = 5;
    let gw = Gateway::start(c).await;
    let mut ws = WsClient::connect(&format!("ws://{}/ws?token={AGENT_KEY}", gw.addr)).await;
    for _ in 0..10 {
        ws.send(json!({"type": "ping"})).await;
    }
    let mut kinds = Vec::new();
    for _ in 0..10 {
        let m = ws.recv().await;
        kinds
            .push(m["type"].as_str().unwrap().to_string() + ":" + m["code"].as_str().unwrap_or(""));
    }
    assert_eq!(kinds[..5], ["pong:"; 5]);
    assert_eq!(kinds[5..], ["error:rate_limited"; 5]);
    // It goes on: closed.
    for _ in 0..60 {
        ws.send(json!({"type": "ping"})).await;
    }
    assert_eq!(ws.recv_close().await, Some(1008));
    assert!(
        gw.with_key(ADMIN_KEY)
            .metric("afw_ws_rate_limited_total")
            .await
            >= 50.0
    );
    gw.stop().await;
}
